"""The semantic checks of istiod's validating webhook, and the API server's object-name rules.

Layer: L2. Imports: source (and resources.schema, resources.re2 of this package).

istiod's webhook (``validation.istio.io``, ``pkg/config/validation/validation.go``,
``virtualservice.go`` and ``agent/validation.go``) runs after the CRD's structural schema and
rejects, or warns about, what the schema cannot express: host names, subset names, durations
finer than a millisecond, percentages, header names and values, RE2 regexes, duplicate ports,
``exportTo`` rules, locality settings, TLS field combinations, and so on. meshlens mirrors it
for the kinds it reads so that it accepts exactly what ``kubectl apply`` would get past
admission. Messages keep the webhook's wording; each :class:`Finding` adds the field path the
webhook does not give.

One module per kind, each exporting ``validate(v, spec, labels)`` (registered in :data:`CHECKS`):
:mod:`.destination_rule`, :mod:`.virtual_service` (with :mod:`.http_route`,
:mod:`.http_policies`, :mod:`.headers`, :mod:`.string_match`), :mod:`.service_entry`,
:mod:`.workload_entry`, :mod:`.sidecar` and :mod:`.security` (PeerAuthentication). Field checks
shared between kinds live in :mod:`.names` (DNS names, hosts, labels, subset and gateway names),
:mod:`.fields` (IPs, ports, protocols, percentages, exportTo, selectors, destinations),
:mod:`.traffic_policy` and :mod:`.locality` (DestinationRule and Sidecar connection pools),
:mod:`.tls` (client and server TLS settings); :mod:`.core` holds the :class:`Collector` and the
value helpers every module uses.

:func:`validate_webhook` expects a resource that already passed :func:`validate_spec` (types
are right) and never raises. Errors reject the resource; warnings (``Finding.warning``) are what
``kubectl`` prints as ``Warning:`` and the resource is kept.

Also here, because they decide whether two objects could ever produce the same Envoy name:
:func:`validate_metadata` (:mod:`.metadata`), the API server's ``ObjectMeta`` checks.

Left out (see the module's tests for the list): Gateway-bound VirtualService rules (meshlens
compiles sidecars), the "unreachable rule" warnings (``meshlens analyze`` reports them as
ML1106/ML1107), and checks that need other resources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from meshlens.resources.webhook import (
    destination_rule, gateway, security, service_entry, sidecar, virtual_service, workload_entry,
)
from meshlens.resources.webhook.core import Collector, Finding, as_obj, as_str, quote
from meshlens.resources.webhook.metadata import validate_metadata
from meshlens.resources.webhook.names import validate_fqdn, validate_wildcard_domain

__all__ = [
    "CHECKS",
    "Finding",
    "validate_fqdn",
    "validate_metadata",
    "validate_webhook",
    "validate_wildcard_domain",
]

#: A kind's check: the collector, the spec and the object's labels.
KindCheck = Callable[[Collector, dict[str, Any], Mapping[str, str]], None]

#: kind → its webhook check (istiod's ``ValidateXxx`` registered for the kind's GVK).
CHECKS: dict[str, KindCheck] = {
    "DestinationRule": destination_rule.validate,
    "VirtualService": virtual_service.validate,
    "ServiceEntry": service_entry.validate,
    "WorkloadEntry": workload_entry.validate,
    "Sidecar": sidecar.validate,
    "PeerAuthentication": security.validate_peer_authentication,
    "Gateway": gateway.validate,
}

_REJECTED_ANNOTATIONS = {
    "internal.istio.io/webhook-always-reject": "annotation found, rejecting",
    "internal.istio.io/parent-namespace": "annotation found, this may not be set by users",
    "internal.istio.io/parents": "annotation found, this may not be set by users",
}


def validate_webhook(kind: str, obj: Mapping[str, Any]) -> list[Finding]:
    """Run istiod's webhook checks for one Istio object (metadata + spec); never raises.

    Example:
        >>> dr = {"metadata": {"name": "r", "namespace": "ns"},
        ...       "spec": {"host": "reviews", "subsets": [{"name": "v1_a"}]}}
        >>> [(f.path, f.message) for f in validate_webhook("DestinationRule", dr)]
        [(('spec', 'subsets', 0, 'name'), 'subset name is invalid: v1_a')]
    """
    meta = as_obj(obj.get("metadata")) or {}
    namespace = as_str(meta.get("namespace")) or "default"
    v = Collector(namespace)
    annotations = as_obj(meta.get("annotations")) or {}
    for key, text in _REJECTED_ANNOTATIONS.items():
        if key in annotations:
            v.err(("metadata", "annotations", key), f"{quote(key)} {text}")
    if kind == "AuthorizationPolicy" and not v.findings:
        from meshlens.resources.authz import webhook_findings

        return [Finding(p, m, w) for p, m, w in webhook_findings(dict(obj))]
    if "istio.io/dry-run" in annotations:
        v.err(
            ("metadata", "annotations", "istio.io/dry-run"),
            f"{namespace}/{as_str(meta.get('name'))} has unsupported annotation istio.io/dry-run, "
            "please remove the annotation",
        )
    if v.findings:
        return v.findings
    if kind == "Gateway":
        gateway.validate_name(v, as_str(meta.get("name")))
    check = CHECKS.get(kind)
    if check is not None:
        labels = {k: s for k, s in (as_obj(meta.get("labels")) or {}).items() if isinstance(s, str)}
        check(v, as_obj(obj.get("spec")) or {}, labels)
    elif kind in ("RequestAuthentication", "EnvoyFilter"):
        from meshlens.resources import authn, envoyfilter

        found = (authn if kind == "RequestAuthentication" else envoyfilter).webhook_findings(dict(obj))
        v.findings.extend(Finding(p, m, w) for p, m, w in found)
    # istiod may append one error twice (a sidecar host that is neither a domain nor an IP).
    return list(dict.fromkeys(v.findings))
