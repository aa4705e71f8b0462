"""AuthorizationPolicy is read: CRD schema (ML01xx), istiod's webhook (ML0401/ML0402), dry-run."""

from __future__ import annotations

from meshlens.pipeline import load_string

HEAD = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"


def _codes(text: str) -> list[tuple[str, str]]:
    loaded = load_string(HEAD + text)
    return [(d.code, d.message) for d in loaded.diagnostics]


def _kept(text: str) -> int:
    return len([r for r in load_string(HEAD + text).mesh.resources if r.kind == "AuthorizationPolicy"])


def test_a_valid_policy_is_kept_without_findings() -> None:
    text = ("metadata: {name: a, namespace: foo}\nspec:\n  selector: {matchLabels: {app: x}}\n"
            "  rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/b]}}],"
            " to: [{operation: {methods: [GET], ports: ['8080']}}]}]\n")
    assert _codes(text) == []
    assert _kept(text) == 1


def test_crd_rules_reject_selector_with_target_refs_and_sa_with_namespaces() -> None:
    text = ("metadata: {name: b, namespace: foo}\nspec:\n  selector: {matchLabels: {app: x}}\n"
            "  targetRefs: [{kind: Gateway, name: g}]\n"
            "  rules: [{from: [{source: {serviceAccounts: [a], namespaces: [x]}}]}]\n")
    messages = [m for c, m in _codes(text) if c == "ML0106"]
    assert any("only one of targetRefs or selector can be set" in m for m in messages)
    assert any("Cannot set serviceAccounts with namespaces or principals" in m for m in messages)
    assert _kept(text) == 0


def test_webhook_rejects_bad_ports_and_unknown_when_keys() -> None:
    text = ("metadata: {name: c, namespace: foo}\nspec:\n  action: DENY\n  rules:\n"
            "  - to: [{operation: {ports: ['x']}}]\n    when: [{key: foo.bar, values: [a]}]\n")
    found = _codes(text)
    assert ("ML0401", "spec.rules[0].to[0].operation.ports: invalid policy c.foo: bad port (x)") in found
    assert any("unknown attribute: foo.bar" in m for _, m in found)
    assert _kept(text) == 0


def test_deny_without_rules_is_rejected_and_http_only_deny_warns() -> None:
    assert any("DENY action without `rules` is meaningless" in m
               for _, m in _codes("metadata: {name: d, namespace: foo}\nspec: {action: DENY}\n"))
    text = ("metadata: {name: e, namespace: foo}\nspec:\n  action: DENY\n"
            "  rules: [{to: [{operation: {methods: [POST]}}]}]\n")
    assert [c for c, _ in _codes(text)] == ["ML0402"]
    assert _kept(text) == 1


def test_dry_run_annotation_is_allowed_on_allow_and_deny_only() -> None:
    ok = ("metadata: {name: f, namespace: foo, annotations: {istio.io/dry-run: 'true'}}\n"
          "spec: {rules: [{}]}\n")
    assert _codes(ok) == [] and _kept(ok) == 1
    bad_value = ok.replace("'true'", "'yes'")
    assert any("invalid value (yes)" in m for _, m in _codes(bad_value))
    audit = ok.replace("spec: {rules", "spec: {action: AUDIT, rules")
    assert any("only supports action ALLOW/DENY, found action AUDIT" in m for _, m in _codes(audit))
