"""Check the ``spec`` of an Istio resource the way the API server's CRD schema does.

Layer: L2. Imports: source (and the standard library).

The schemas are a hand-written transcription of Istio's CRDs (``istio-crds.gen.yaml``;
networking v1/v1beta1/v1alpha3 share one schema, security v1/v1beta1 too), one module per kind
(:mod:`.destination_rule`, :mod:`.virtual_service`, :mod:`.service_entry` with WorkloadEntry,
:mod:`.sidecar`, :mod:`.security`) plus the sub-schemas several kinds share (:mod:`.common`).
They are written in a small DSL (:mod:`.dsl`) whose ``x-kubernetes-validations`` (CEL) rules are
in :mod:`.cel`; :mod:`.walk` checks a value against a schema node, and :mod:`.goduration` parses
Go durations as CEL's ``duration()`` does. :data:`SPECS` registers each kind's ``spec`` schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from meshlens.resources.schema.cel import SKIPPED_CEL, Rule
from meshlens.resources.schema.destination_rule import DESTINATION_RULE
from meshlens.resources.schema.gateway import GATEWAY
from meshlens.resources.schema.dsl import Bool, Int, List, Map, Node, Num, Obj, Open, Str, req
from meshlens.resources.schema.goduration import parse_go_duration
from meshlens.resources.schema.security import PEER_AUTHENTICATION
from meshlens.resources.schema.service_entry import SERVICE_ENTRY, WORKLOAD_ENTRY
from meshlens.resources.schema.sidecar import SIDECAR
from meshlens.resources.schema.virtual_service import VIRTUAL_SERVICE
from meshlens.resources.schema.walk import MAX_PROBLEMS, Problem, check, render_field

__all__ = [
    "KNOWN_KINDS",
    "MAX_PROBLEMS",
    "SKIPPED_CEL",
    "SPECS",
    "SPEC_REQUIRED",
    "Bool",
    "Int",
    "List",
    "Map",
    "Node",
    "Num",
    "Obj",
    "Open",
    "Problem",
    "Rule",
    "Str",
    "check",
    "parse_go_duration",
    "render_field",
    "validate_spec",
]

#: The ``spec`` schema of each kind.
SPECS: Mapping[str, Obj] = {
    "DestinationRule": DESTINATION_RULE,
    "VirtualService": VIRTUAL_SERVICE,
    "ServiceEntry": SERVICE_ENTRY,
    "WorkloadEntry": WORKLOAD_ENTRY,
    "Sidecar": SIDECAR,
    "PeerAuthentication": PEER_AUTHENTICATION,
    "Gateway": GATEWAY,
}
KNOWN_KINDS: frozenset[str] = frozenset(SPECS)


#: Kinds whose CRD requires ``spec`` itself (the root schema lists it as required).
SPEC_REQUIRED: frozenset[str] = frozenset({"ServiceEntry", "WorkloadEntry"})


def _security_specs() -> Mapping[str, Obj]:
    """Kinds whose schema lives in its own module (imported late: they use this DSL)."""
    from meshlens.resources.authn import REQUEST_AUTHENTICATION
    from meshlens.resources.authz import AUTHORIZATION_POLICY
    from meshlens.resources.envoyfilter import ENVOY_FILTER

    return {"AuthorizationPolicy": AUTHORIZATION_POLICY,
            "RequestAuthentication": REQUEST_AUTHENTICATION, "EnvoyFilter": ENVOY_FILTER}


def validate_spec(kind: str, spec: object, *, cel: bool = True) -> list[Problem]:
    """Check the ``spec`` of an Istio resource against its CRD schema.

    Args:
        kind: The resource kind, e.g. "DestinationRule". Kinds outside ``KNOWN_KINDS`` are not
            checked (the result is empty).
        spec: The value of ``spec`` as loaded from YAML; None means absent.
        cel: Also check the CRD's CEL (``x-kubernetes-validations``) rules.

    Returns:
        The problems in document order, at most ``MAX_PROBLEMS``; empty if the API server would
        accept the spec.

    Example:
        >>> [p.message for p in validate_spec("DestinationRule", {"host": 1, "subset": []})]
        ['spec.host: expected string, got integer', 'unknown field "subset"']
        >>> validate_spec("ServiceEntry", None)[0].path
        ('spec',)
    """
    node = SPECS.get(kind) or _security_specs().get(kind)
    if node is None:
        return []
    if kind == "EnvoyFilter":  # patch.value preserves unknown fields: only its type is checked
        from meshlens.resources.envoyfilter import strip_values

        spec = strip_values(spec)
    return check(req(node) if kind in SPEC_REQUIRED else node, spec, ("spec",), cel=cel)
