"""trace follows the server sidecar's RBAC decision: allowed, or 403 with the policy and line."""

from __future__ import annotations

from pathlib import Path

from meshlens.pipeline import compile_for, load_string, server_compiler
from meshlens.simulate import Request, Trace, simulate

ROOT = Path(__file__).resolve().parents[1]
CASE = (ROOT / "tests/cases/authz-policies/manifests.yaml").read_text()
CLIENTS = """
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: curl, namespace: foo}
spec:
  selector: {matchLabels: {app: curl}}
  template:
    metadata: {labels: {app: curl}}
    spec: {serviceAccountName: curl, containers: [{name: c, image: curl}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: curl, namespace: other}
spec:
  selector: {matchLabels: {app: curl}}
  template:
    metadata: {labels: {app: curl}}
    spec: {serviceAccountName: curl, containers: [{name: c, image: curl}]}
"""


def trace(url: str, *headers: str, proxy: str = "deploy/curl.foo", method: str = "GET",
          extra: str = "") -> Trace:
    loaded = load_string(CASE + CLIENTS + extra, "authz.yaml")
    result = compile_for(loaded, proxy)
    req = Request.parse(url, headers=list(headers), method=method)
    return simulate(result, req, server=server_compiler(loaded))


def test_allowed_request_passes_the_allow_policy() -> None:
    t = trace("http://httpbin.foo:8000/status/200")
    assert t.verdict == "ok", t.reason
    rbac = t.layers[-1].detail["rbac"]
    assert rbac["peer_principal"] == "spiffe://cluster.local/ns/foo/sa/curl"
    allow = [f for f in rbac["filters"] if f["action"] == "ALLOW"][0]
    assert allow["matched_policy"] == "ns[foo]-policy[allow-get-from-ns]-rule[0]"


def test_request_from_another_namespace_gets_403_naming_the_allow_policy() -> None:
    t = trace("http://httpbin.foo:8000/status/200", proxy="deploy/curl.other")
    assert (t.verdict, t.status) == ("rbac_access_denied", 403)
    assert "rbac_access_denied_matched_policy[none]" in t.reason
    assert t.fix is not None and t.fix["resource"] == "AuthorizationPolicy foo/allow-get-from-ns"
    assert (t.fix["file"], t.fix["line"]) == ("authz.yaml", CASE.splitlines().index("  rules:", 30) + 2)


def test_method_not_allowed_is_403() -> None:
    t = trace("http://httpbin.foo:8000/status/200", method="DELETE")
    assert t.status == 403 and "no ALLOW policy matches" in t.reason


def test_deny_policy_wins_and_is_named_with_its_line() -> None:
    t = trace("http://httpbin.foo:8000/admin/x", "x-debug: 1")
    assert (t.verdict, t.status) == ("rbac_access_denied", 403)
    assert "rbac_access_denied_matched_policy[ns[foo]-policy[deny-admin]-rule[0]]" in t.reason
    assert t.fix is not None and t.fix["resource"] == "AuthorizationPolicy foo/deny-admin"
    assert t.fix["yaml_path"] is not None and "rules[0]" in t.fix["yaml_path"]


def test_dry_run_deny_only_reports_in_shadow() -> None:
    t = trace("http://httpbin.foo:8000/headers", method="POST", extra="""
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-post, namespace: foo}
spec: {rules: [{to: [{operation: {methods: [POST]}}]}]}
""")
    assert t.verdict == "ok", t.reason
    deny = [f for f in t.layers[-1].detail["rbac"]["filters"] if f["shadow_action"] == "DENY"][0]
    assert deny["shadow_matched"] == "ns[foo]-policy[dry-run-deny-post]-rule[0]"


def test_tcp_port_only_the_principal_rule_applies() -> None:
    t = trace("tcp://httpbin.foo:5432")
    assert t.verdict == "rbac_access_denied" and t.status is None
    assert "the connection is closed" in t.reason
