"""AuthorizationPolicy (security.istio.io v1/v1beta1): CRD schema and istiod's webhook checks.

Layer: L2. Imports: source, resources.schema (the DSL), resources.webhook (``Finding``), lazily.

The schema is transcribed from the AuthorizationPolicy CRD in ``tests/conformance/crds``
(``istio-crds.yaml``; v1 and v1beta1 share it). The webhook half mirrors
``pkg/config/validation/validation.go:ValidateAuthorizationPolicy`` and the attribute checks of
``pkg/config/security/security.go`` (``ValidateAttribute``, ``CheckServiceAccount``,
``CheckValidPathTemplate``, ...), plus ``checkDryRunAnnotation`` (``istio.io/dry-run`` is allowed
on AuthorizationPolicy, with a boolean value, for ALLOW and DENY only). Messages keep istiod's
wording; each finding also carries the field path istiod does not give.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from meshlens.resources.schema.cel import Rule
from meshlens.resources.schema.common import MATCH_SELECTOR, STR, STRS
from meshlens.resources.schema.dsl import Enum, List, Obj, Str, req
from meshlens.source import FieldPath

__all__ = ["AUTHORIZATION_POLICY", "validate_authorization_policy", "dry_run_findings"]

_GROUP_RE = re.compile(r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND_RE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")

GROUP_PATTERN = Rule(_GROUP_RE.pattern, "should match '" + _GROUP_RE.pattern + "'",
                     lambda v: _GROUP_RE.match(v) is not None)
KIND_PATTERN = Rule(_KIND_RE.pattern, "should match '" + _KIND_RE.pattern + "'",
                    lambda v: _KIND_RE.match(v) is not None)
NOT_EMPTY = Rule("minLength: 1", "should be at least 1 chars long", lambda v: len(v) >= 1)
NO_CROSS_NAMESPACE = Rule("self.size() == 0", "cross namespace referencing is not currently supported",
                          lambda v: len(v) == 0)


def _sa_exclusive(src: dict[str, Any]) -> bool:
    if "serviceAccounts" in src or "notServiceAccounts" in src:
        return not any(k in src for k in ("principals", "notPrincipals", "namespaces",
                                          "notNamespaces"))
    return True


def _one_selector(spec: dict[str, Any]) -> bool:
    return sum(1 for k in ("selector", "targetRef", "targetRefs") if k in spec) <= 1


SA_EXCLUSIVE = Rule(
    "(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) && "
    "!has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true",
    "Cannot set serviceAccounts with namespaces or principals", _sa_exclusive)
ONE_SELECTOR = Rule(
    "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) "
    "<= 1", "only one of targetRefs or selector can be set", _one_selector)

_SA_LIST = List(Str(max_len=320), max_items=16)
SOURCE = Obj({
    key: STRS for key in (
        "ipBlocks", "namespaces", "notIpBlocks", "notNamespaces", "notPrincipals",
        "notRemoteIpBlocks", "notRequestPrincipals", "notTrustDomains", "principals",
        "remoteIpBlocks", "requestPrincipals", "trustDomains")
} | {"serviceAccounts": _SA_LIST, "notServiceAccounts": _SA_LIST}, rules=(SA_EXCLUSIVE,))
OPERATION = Obj({key: STRS for key in (
    "hosts", "methods", "notHosts", "notMethods", "notPaths", "notPorts", "paths", "ports")})
CONDITION = Obj({"key": req(STR), "notValues": STRS, "values": STRS})
RULE = Obj({
    "from": List(Obj({"source": SOURCE}), max_items=512),
    "to": List(Obj({"operation": OPERATION})),
    "when": List(CONDITION),
})
TARGET_REF = Obj({
    "group": Str(max_len=253, rules=(GROUP_PATTERN,)),
    "kind": req(Str(max_len=63, rules=(NOT_EMPTY, KIND_PATTERN))),
    "name": req(Str(max_len=253, rules=(NOT_EMPTY,))),
    "namespace": Str(rules=(NO_CROSS_NAMESPACE,)),
})
#: The ``spec`` schema of AuthorizationPolicy (the CRD's ``oneOf`` on ``provider`` is vacuous).
AUTHORIZATION_POLICY = Obj({
    "action": Enum("ALLOW", "DENY", "AUDIT", "CUSTOM"),
    "provider": Obj({"name": STR}),
    "rules": List(RULE, max_items=512),
    "selector": MATCH_SELECTOR,
    "targetRef": TARGET_REF,
    "targetRefs": List(TARGET_REF, max_items=16),
}, rules=(ONE_SELECTOR,))


# --- webhook -------------------------------------------------------------------------------------

_VALID_LITERAL = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")
_CUSTOM_UNSUPPORTED_SOURCE = (
    "namespaces", "notNamespaces", "serviceAccounts", "notServiceAccounts", "trustDomains",
    "notTrustDomains", "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals")
_CUSTOM_UNSUPPORTED_WHEN = ("source.namespace", "source.serviceAccount", "source.trustDomain",
                            "source.principal")


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def check_empty(key: str, values: list[str]) -> str:
    """`security.CheckEmptyValues`."""
    return f"empty value not allowed, found in {key}" if "" in values else ""


def check_wildcards(key: str, values: list[str]) -> str:
    """`security.CheckWildcardValues`."""
    if msg := check_empty(key, values):
        return msg
    for value in values:
        count = value.count("*")
        if count > 1:
            return f'at most one wildcard is allowed, found in {key}: "{value}"'
        if count == 1 and value != "*" and not value.startswith("*") and not value.endswith("*"):
            return f'wildcard is only allowed at the start or end, found in {key}: "{value}"'
    return ""


def check_service_accounts(key: str, values: list[str]) -> str:
    """`security.CheckServiceAccount`."""
    if len(values) > 16:
        return "may not have more than 16 values"
    for value in values:
        if value == "":
            return f"empty value not allowed, found in {key}"
        if "*" in value:
            return f"wildcard not allowed, found in {key}"
        if value.count("/") not in (0, 1):
            return f"expected format 'serviceAccount' or 'namespace/serviceAccount', found \"{value}\" in {key}"
        if len(value) > 320:
            return f'value cannot exceed 320 characters, found "{value}" in {key}'
        ns, sep, sa = value.partition("/")
        if sep and not ns:
            return ("expected format 'serviceAccount' or 'namespace/serviceAccount', found empty "
                    f'namespace "{value}" in {key}')
        if sep and not sa:
            return ("expected format 'serviceAccount' or 'namespace/serviceAccount', found empty "
                    f'serviceAccount "{value}" in {key}')
    return ""


def check_trust_domains(key: str, values: list[str]) -> str:
    """`security.CheckTrustDomainValues`."""
    if msg := check_wildcards(key, values):
        return msg
    for value in values:
        if "/" in value:
            return f"trust domain must not contain '/', found in {key}: \"{value}\""
    return ""


def validate_ips(values: list[str]) -> str:
    """`security.ValidateIPs` (Go's netip: no zones in prefixes, no leading zeros)."""
    errs = []
    for v in values:
        try:
            if "/" in v:
                ipaddress.ip_network(v, strict=False)
            else:
                ipaddress.ip_address(v)
        except ValueError:
            errs.append(f"bad CIDR range ({v})" if "/" in v else f"bad IP address ({v})")
    return "; ".join(errs)


def validate_ports(values: list[str]) -> str:
    """`security.ValidatePorts`."""
    bad = [p for p in values if not (p.isdigit() and int(p) <= 65535)]
    return "; ".join(f"bad port ({p})" for p in bad)


def _map_key(key: str) -> str:
    """`security.validateMapKey`."""
    open_ = key.find("[")
    if key.endswith("]") and 0 < open_ < len(key) - 2:
        return ""
    return f"bad key ({key}): should have format a[b]"


def validate_attribute(key: str, values: list[str]) -> str:
    """`security.ValidateAttribute`: the ``when`` keys istiod knows and their values."""
    if msg := check_empty(key, values):
        return msg
    if key.startswith(("request.headers", "request.auth.claims", "experimental.envoy.filters.")):
        return _map_key(key)
    if key in ("source.ip", "remote.ip", "destination.ip"):
        return validate_ips(values)
    if key == "source.serviceAccount":
        return check_service_accounts(key, values)
    if key == "source.trustDomain":
        return check_wildcards(key, values)
    if key == "destination.port":
        return validate_ports(values)
    if key in ("source.namespace", "source.principal", "request.auth.principal",
               "request.auth.audiences", "request.auth.presenter", "connection.sni"):
        return ""
    if key == "destination.namespace":
        return f"attribute {key} is replaced by the metadata.namespace"
    if key.startswith("destination.labels"):
        return f"attribute {key} is replaced by the workload selector"
    if key in ("destination.name", "destination.user"):
        return f"deprecated attribute {key}: only supported in v1alpha1"
    return f"unknown attribute: {key}"


def check_path_templates(key: str, paths: list[str]) -> str:
    """`security.CheckValidPathTemplate`."""
    for raw in paths:
        has_template = "{*}" in raw or "{**}" in raw
        path = raw.strip("/")
        found_any = False
        for glob in path.split("/"):
            if glob == "{*}" and not found_any:
                continue
            if glob == "{**}" and not found_any:
                found_any = True
                continue
            if glob in ("{*}", "{**}") and found_any:
                return f"invalid or unsupported path {path}, found in {key}. {{**}} is not the last operator"
            if "{" in glob or "}" in glob:
                return (f"invalid or unsupported path {path}, found in {key}. Contains '{{' or '}}' "
                        "beyond a supported path template")
            if has_template and not _VALID_LITERAL.match(glob):
                return (f"invalid or unsupported path {path}, found in {key}. Contains segment "
                        f"{glob} with invalid string literal")
    return ""


def dry_run_findings(name: str, namespace: str, annotations: dict[str, Any],
                     spec: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    """`checkDryRunAnnotation` with ``allowed`` (AuthorizationPolicy)."""
    val = annotations.get("istio.io/dry-run")
    if val is None:
        return []
    path: FieldPath = ("metadata", "annotations", "istio.io/dry-run")
    action = spec.get("action") or "ALLOW"
    if action in ("ALLOW", "DENY"):
        if parse_bool(str(val)) is None:
            return [(path, f"{namespace}/{name} has annotation istio.io/dry-run with invalid value "
                           f"({val}): strconv.ParseBool: parsing \"{val}\": invalid syntax")]
        return []
    return [(path, f"the annotation istio.io/dry-run currently only supports action ALLOW/DENY, "
                   f"found action {action} in {namespace}/{name}")]


def parse_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def validate_authorization_policy(name: str, namespace: str,
                                  spec: dict[str, Any]) -> list[tuple[FieldPath, str, bool]]:
    """`ValidateAuthorizationPolicy`: (path, message, warning) for one policy's spec.

    Example:
        >>> [m for _, m, _ in validate_authorization_policy("p", "ns", {"action": "DENY"})][0][:40]
        'invalid policy p.ns: DENY action without'
    """
    out: list[tuple[FieldPath, str, bool]] = []
    prefix = f"invalid policy {name}.{namespace}: "

    def err(path: FieldPath, msg: str) -> None:
        if msg:
            out.append((path, prefix + msg, False))

    sp: FieldPath = ("spec",)
    action = spec.get("action") or "ALLOW"
    rules = spec.get("rules")
    provider = spec.get("provider")
    if action == "CUSTOM":
        if rules is None:
            err(sp, "CUSTOM action without `rules` is meaningless as it will never be triggered, "
                    "add an empty rule `{}` if you want it be triggered for every request")
        elif not isinstance(provider, dict) or not provider.get("name"):
            err(sp + ("provider",), "`provider.name` must not be empty")
        for i, rule in enumerate(rules or []):
            rule = rule if isinstance(rule, dict) else {}
            for j, frm in enumerate(rule.get("from") or []):
                src = (frm or {}).get("source") if isinstance(frm, dict) else None
                for key in _CUSTOM_UNSUPPORTED_SOURCE if isinstance(src, dict) else ():
                    if _strs(src.get(key)):
                        label = "From." + key[0].upper() + key[1:]
                        err(sp + ("rules", i, "from", j, "source", key),
                            f"{label} is currently not supported with CUSTOM action")
            for j, when in enumerate(rule.get("when") or []):
                key = when.get("key", "") if isinstance(when, dict) else ""
                if key in _CUSTOM_UNSUPPORTED_WHEN or key.startswith("request.auth."):
                    err(sp + ("rules", i, "when", j, "key"),
                        f"{key} is currently not supported with CUSTOM action")
    if provider is not None and action != "CUSTOM":
        err(sp + ("provider",), f"`provider` must not be with non CUSTOM action, found {action}")
    if action == "DENY" and rules is None:
        err(sp, "DENY action without `rules` is meaningless as it will never be triggered, "
                "add an empty rule `{}` if you want it be triggered for every request")
    for i, rule in enumerate(rules or []):
        rp = sp + ("rules", i)
        if not isinstance(rule, dict):
            err(rp, f"`rule` must not be nil, found at rule {i}")
            continue
        _validate_rule(err, out, rp, i, rule, action)
    return out


def _validate_rule(err: Any, out: list[tuple[FieldPath, str, bool]], rp: FieldPath, i: int,
                   rule: dict[str, Any], action: str) -> None:
    froms, tos = rule.get("from"), rule.get("to")
    if froms is not None and not froms:
        err(rp + ("from",), f"`from` must not be empty, found at rule {i}")
    tcp_from = tcp_to = from_exists = to_exists = False
    for j, frm in enumerate(froms or []):
        fp = rp + ("from", j)
        src = frm.get("source") if isinstance(frm, dict) else None
        if not isinstance(src, dict):
            err(fp, f"`from.source` must not be nil, found at rule {i}")
            continue
        from_exists = True
        sp = fp + ("source",)
        vals = {k: _strs(v) for k, v in src.items()}
        if not any(vals.values()):
            err(sp, f"`from.source` must not be empty, found at rule {i}")
        for key in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
            err(sp + (key,), validate_ips(vals.get(key, [])))
        for key in ("principals", "requestPrincipals", "namespaces", "ipBlocks", "remoteIpBlocks",
                    "notPrincipals", "notRequestPrincipals", "notNamespaces", "notIpBlocks",
                    "notRemoteIpBlocks"):
            err(sp + (key,), check_empty(key[0].upper() + key[1:], vals.get(key, [])))
        for key in ("serviceAccounts", "notServiceAccounts"):
            err(sp + (key,), check_service_accounts(key[0].upper() + key[1:], vals.get(key, [])))
        for key in ("trustDomains", "notTrustDomains"):
            err(sp + (key,), check_trust_domains(key[0].upper() + key[1:], vals.get(key, [])))
        if any(k in src for k in ("principals", "notPrincipals", "ipBlocks", "notIpBlocks",
                                  "namespaces", "notNamespaces", "remoteIpBlocks",
                                  "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts")):
            tcp_from = True
    if tos is not None and not tos:
        err(rp + ("to",), f"`to` must not be empty, found at rule {i}")
    for j, to in enumerate(tos or []):
        tp = rp + ("to", j)
        op = to.get("operation") if isinstance(to, dict) else None
        if not isinstance(op, dict):
            err(tp, f"`to.operation` must not be nil, found at rule {i}")
            continue
        to_exists = True
        opp = tp + ("operation",)
        vals = {k: _strs(v) for k, v in op.items()}
        if not any(vals.values()):
            err(opp, f"`to.operation` must not be empty, found at rule {i}")
        for key in ("ports", "notPorts"):
            err(opp + (key,), validate_ports(vals.get(key, [])))
        for key in ("ports", "methods", "paths", "hosts", "notPorts", "notMethods", "notPaths",
                    "notHosts"):
            err(opp + (key,), check_empty(key[0].upper() + key[1:], vals.get(key, [])))
        for key in ("paths", "notPaths"):
            err(opp + (key,), check_path_templates(key[0].upper() + key[1:], vals.get(key, [])))
        if "ports" in op or "notPorts" in op:
            tcp_to = True
    for j, cond in enumerate(rule.get("when") or []):
        cp = rp + ("when", j)
        cond = cond if isinstance(cond, dict) else {}
        key = cond.get("key") or ""
        if not key:
            err(cp, "`key` must not be empty")
            continue
        values, not_values = _strs(cond.get("values")), _strs(cond.get("notValues"))
        if not values and not not_values:
            err(cp, f"at least one of `values` or `notValues` must be set for key {key}")
            continue
        if msg := validate_attribute(key, values):
            err(cp + ("values",), f"invalid `value` for `key` {key}: {msg}")
        if msg := validate_attribute(key, not_values):
            err(cp + ("notValues",), f"invalid `notValue` for `key` {key}: {msg}")
    if ((from_exists and not to_exists and not tcp_from) or (to_exists and not tcp_to)) \
            and action == "DENY":
        out.append((rp, "configured AuthorizationPolicy will deny all traffic to TCP ports under "
                        "its scope due to the use of only HTTP attributes in a DENY rule; it is "
                        "recommended to explicitly specify the port", True))


def webhook_findings(obj: dict[str, Any] | Any) -> list[tuple[FieldPath, str, bool]]:
    """istiod's webhook for one AuthorizationPolicy object (metadata + spec): the dry-run
    annotation check, then `ValidateAuthorizationPolicy`."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "default")
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    dry = dry_run_findings(name, namespace, annotations, spec)
    if dry:
        return [(p, m, False) for p, m in dry]
    return validate_authorization_policy(name, namespace, spec)
