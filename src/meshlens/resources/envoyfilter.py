"""EnvoyFilter (networking.istio.io v1alpha3): CRD schema and istiod's webhook checks.

Layer: L2. Imports: resources.schema (the DSL), resources.authz (targetRef node).

The schema is transcribed from the EnvoyFilter CRD in ``tests/conformance/crds``. ``patch.value``
is ``x-kubernetes-preserve-unknown-fields``: only its being an object is checked here
(:func:`strip_values` hides its content from the walk); istiod's webhook
(``pkg/config/validation/envoyfilter``: `validateEnvoyFilter`) checks the rest: applyTo and
operation are set, REMOVE/MERGE/ADD fit the target, a listener match has no ``portName``, the
relative operations target filters/routes, and the value converts to the Envoy type of
``applyTo`` (``xds.BuildXDSObjectFromStruct``; meshlens converts it with the Envoy protos it has).
"""

from __future__ import annotations

import copy
from typing import Any

from meshlens.resources.authz import TARGET_REF
from meshlens.resources.schema.cel import Rule
from meshlens.resources.schema.common import LABEL_SELECTOR, STR, STR_MAP, UINT32
from meshlens.resources.schema.dsl import Enum, Int, List, Obj
from meshlens.source import FieldPath

__all__ = ["APPLY_TO", "ENVOY_FILTER", "OPERATIONS", "strip_values", "webhook_findings"]

APPLY_TO = ("INVALID", "LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER",
            "ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG",
            "BOOTSTRAP", "LISTENER_FILTER")
OPERATIONS = ("INVALID", "MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER",
              "INSERT_FIRST", "REPLACE", "MERGE_AND_REPLACE_LIST")
_FILTER = Obj({"name": STR, "subFilter": Obj({"name": STR})})
_WAYPOINT_ONLY = Rule(
    'has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : !has(self.waypoint)) '
    ": !has(self.waypoint)", "only support waypointMatch when context is WAYPOINT",
    lambda m: ("waypoint" in m) == (m.get("context") == "WAYPOINT"))
_ONE_SELECTOR = Rule(
    "(has(self.workloadSelector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
    "only one of targetRefs or workloadSelector can be set",
    lambda s: not ("workloadSelector" in s and "targetRefs" in s))
MATCH = Obj({
    "cluster": Obj({"name": STR, "portNumber": UINT32, "service": STR, "subset": STR}),
    "context": Enum("ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY", "WAYPOINT"),
    "listener": Obj({
        "filterChain": Obj({"applicationProtocols": STR, "destinationPort": UINT32,
                            "filter": _FILTER, "name": STR, "sni": STR, "transportProtocol": STR}),
        "listenerFilter": STR, "name": STR, "portName": STR, "portNumber": UINT32}),
    "proxy": Obj({"metadata": STR_MAP, "proxyVersion": STR}),
    "routeConfiguration": Obj({
        "gateway": STR, "name": STR, "portName": STR, "portNumber": UINT32,
        "vhost": Obj({"domainName": STR, "name": STR, "route": Obj({
            "action": Enum("ANY", "ROUTE", "REDIRECT", "DIRECT_RESPONSE"), "name": STR})})}),
    "waypoint": Obj({"filter": _FILTER, "portNumber": UINT32, "route": Obj({"name": STR})}),
}, one_of=(("listener", "routeConfiguration", "cluster", "waypoint"),), rules=(_WAYPOINT_ONLY,))
#: The ``spec`` schema of EnvoyFilter.
ENVOY_FILTER = Obj({
    "configPatches": List(Obj({
        "applyTo": Enum(*APPLY_TO),
        "match": MATCH,
        "patch": Obj({"filterClass": Enum("UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"),
                      "operation": Enum(*OPERATIONS), "value": STR_MAP}),
    })),
    "priority": Int(int32=True),
    "targetRefs": List(TARGET_REF, max_items=16),
    "workloadSelector": LABEL_SELECTOR,
}, rules=(_ONE_SELECTOR,))


def strip_values(spec: Any) -> Any:
    """``spec`` with every object ``patch.value`` emptied (preserve-unknown-fields)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("configPatches"), list):
        return spec
    out = copy.copy(spec)
    out["configPatches"] = []
    for cp in spec["configPatches"]:
        if isinstance(cp, dict) and isinstance(cp.get("patch"), dict) \
                and isinstance(cp["patch"].get("value"), dict):
            cp = {**cp, "patch": {**cp["patch"], "value": {}}}
        out["configPatches"].append(cp)
    return out


#: `xds.DeprecatedFilterNames` reversed: deprecated name → canonical name.
DEPRECATED_FILTER_NAMES = {
    "envoy.buffer": "envoy.filters.http.buffer", "envoy.cors": "envoy.filters.http.cors",
    "envoy.csrf": "envoy.filters.http.csrf", "envoy.http_dynamo_filter": "envoy.filters.http.dynamo",
    "envoy.ext_authz": "envoy.filters.http.ext_authz", "envoy.fault": "envoy.filters.http.fault",
    "envoy.grpc_http1_bridge": "envoy.filters.http.grpc_http1_bridge",
    "envoy.grpc_json_transcoder": "envoy.filters.http.grpc_json_transcoder",
    "envoy.grpc_web": "envoy.filters.http.grpc_web", "envoy.gzip": "envoy.filters.http.gzip",
    "envoy.health_check": "envoy.filters.http.health_check",
    "envoy.ip_tagging": "envoy.filters.http.ip_tagging", "envoy.lua": "envoy.filters.http.lua",
    "envoy.rate_limit": "envoy.filters.http.ratelimit", "envoy.router": "envoy.filters.http.router",
    "envoy.squash": "envoy.filters.http.squash",
    "envoy.listener.http_inspector": "envoy.filters.listener.http_inspector",
    "envoy.listener.original_dst": "envoy.filters.listener.original_dst",
    "envoy.listener.original_src": "envoy.filters.listener.original_src",
    "envoy.listener.proxy_protocol": "envoy.filters.listener.proxy_protocol",
    "envoy.listener.tls_inspector": "envoy.filters.listener.tls_inspector",
    "envoy.client_ssl_auth": "envoy.filters.network.client_ssl_auth",
    "envoy.http_connection_manager": "envoy.filters.network.http_connection_manager",
    "envoy.mongo_proxy": "envoy.filters.network.mongo_proxy",
    "envoy.ratelimit": "envoy.filters.network.ratelimit",
    "envoy.redis_proxy": "envoy.filters.network.redis_proxy",
    "envoy.tcp_proxy": "envoy.filters.network.tcp_proxy",
}
_MESSAGES = {
    "CLUSTER": ("envoy.config.cluster.v3.cluster_pb2", "Cluster"),
    "LISTENER": ("envoy.config.listener.v3.listener_pb2", "Listener"),
    "ROUTE_CONFIGURATION": ("envoy.config.route.v3.route_pb2", "RouteConfiguration"),
    "FILTER_CHAIN": ("envoy.config.listener.v3.listener_components_pb2", "FilterChain"),
    "HTTP_FILTER": ("envoy.extensions.filters.network.http_connection_manager.v3."
                    "http_connection_manager_pb2", "HttpFilter"),
    "NETWORK_FILTER": ("envoy.config.listener.v3.listener_components_pb2", "Filter"),
    "VIRTUAL_HOST": ("envoy.config.route.v3.route_components_pb2", "VirtualHost"),
    "HTTP_ROUTE": ("envoy.config.route.v3.route_components_pb2", "Route"),
    "EXTENSION_CONFIG": ("envoy.config.core.v3.extension_pb2", "TypedExtensionConfig"),
    "BOOTSTRAP": ("envoy.config.bootstrap.v3.bootstrap_pb2", "Bootstrap"),
    "LISTENER_FILTER": ("envoy.config.listener.v3.listener_components_pb2", "ListenerFilter"),
}


def _import_types(value: Any) -> None:
    """Import the Python protos of every ``@type`` in ``value`` (all modules of its package)."""
    import importlib
    import pkgutil

    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            url = v.get("@type")
            if isinstance(url, str):
                package = url.rsplit("/", 1)[-1].rpartition(".")[0]
                try:
                    mod = importlib.import_module(package)
                    for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
                        if info.name.endswith("_pb2"):
                            importlib.import_module(f"{package}.{info.name}")
                except ImportError:
                    pass
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def build_xds_object(apply_to: str, value: Any, *, strict: bool = False) -> Any:
    """`xds.BuildXDSObjectFromStruct`: the patch value as the Envoy message of ``apply_to``.

    Raises ValueError with the conversion error (unknown field, unknown ``@type``, bad value).
    """
    import importlib

    from google.protobuf import json_format

    if value is None:
        return None
    if apply_to not in _MESSAGES:
        raise ValueError(f"Envoy filter: unknown object type for applyTo {apply_to}")
    module, name = _MESSAGES[apply_to]
    msg = getattr(importlib.import_module(module), name)()
    _import_types(value)
    try:
        json_format.ParseDict(value, msg, ignore_unknown_fields=not strict)
    except (json_format.ParseError, TypeError, KeyError, AttributeError) as exc:
        text = str(exc)
        if "Can not find message descriptor" in text or "could not resolve" in text:
            hint = " (hint: try using the v3 XDS API)" if ".v2." in text else ""
            raise ValueError(f"referenced type unknown{hint}: {text}") from exc
        raise ValueError(f"Envoy filter: {text}") from exc
    return msg


def _deprecated_name_warnings(p: FieldPath, names: list[str]) -> list[tuple[FieldPath, str, bool]]:
    """`validateListenerMatchName`."""
    return [(p, f'using deprecated filter name "{n}"; use "{DEPRECATED_FILTER_NAMES[n]}" instead',
             True) for n in names if n in DEPRECATED_FILTER_NAMES]


def _listener_match(p: FieldPath, apply_to: str, match: dict[str, Any]) -> list[tuple[FieldPath, str, bool]]:
    out: list[tuple[FieldPath, str, bool]] = []
    lm = match.get("listener")
    if not isinstance(lm, dict):
        return [(p + ("match",), "Envoy filter: applyTo for listener class objects cannot have "
                                 "non listener match", False)]
    fc = lm.get("filterChain")
    flt = fc.get("filter") if isinstance(fc, dict) else None
    if not isinstance(flt, dict):
        return out
    fp = p + ("match", "listener", "filterChain", "filter")
    if apply_to in ("LISTENER", "FILTER_CHAIN"):
        out.append((fp, f"Envoy filter: filter match has no effect when used with {apply_to}", True))
    name = str(flt.get("name") or "")
    sub = flt.get("subFilter")
    if not name:
        return out + [(fp, "Envoy filter: filter match has no name to match on", False)]
    if isinstance(sub, dict):
        if apply_to != "HTTP_FILTER":
            return out + [(fp, "Envoy filter: subfilter match can be used with applyTo HTTP_FILTER "
                               "only", False)]
        if name not in ("envoy.filters.network.http_connection_manager",
                        "envoy.http_connection_manager"):
            return out + [(fp, "Envoy filter: subfilter match requires filter match with "
                               "envoy.filters.network.http_connection_manager", False)]
        if not sub.get("name"):
            return out + [(fp, "Envoy filter: subfilter match has no name to match on", False)]
    return out + _deprecated_name_warnings(fp, [name, str((sub or {}).get("name") or "")])


def _patch(p: FieldPath, cp: Any) -> list[tuple[FieldPath, str, bool]]:
    if not isinstance(cp, dict):
        return [(p, "Envoy filter: null config patch", False)]
    match = cp.get("match") if isinstance(cp.get("match"), dict) else None
    if match is not None and match.get("context") == "WAYPOINT":
        return []
    apply_to = str(cp.get("applyTo") or "INVALID")
    if apply_to == "INVALID":
        return [(p, "Envoy filter: missing applyTo", False)]
    patch = cp.get("patch")
    if not isinstance(patch, dict):
        return [(p, "Envoy filter: missing patch", False)]
    op = str(patch.get("operation") or "INVALID")
    if op == "INVALID":
        return [(p + ("patch",), "Envoy filter: missing patch operation", False)]
    if op != "REMOVE" and patch.get("value") is None:
        return [(p + ("patch",), "Envoy filter: missing patch value for non-remove operation", False)]
    out: list[tuple[FieldPath, str, bool]] = []
    objects = match is not None and any(k in match for k in ("listener", "routeConfiguration",
                                                                "cluster", "waypoint"))
    if objects and match is not None:
        if apply_to in ("LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER"):
            found = _listener_match(p, apply_to, match)
            out.extend(found)
            if any(not w for _, _, w in found):
                return out
        elif apply_to in ("ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE") \
                and "routeConfiguration" not in match:
            out.append((p + ("match",), "Envoy filter: applyTo for http route class objects "
                                        "cannot have non route configuration match", False))
        elif apply_to == "CLUSTER" and "cluster" not in match:
            out.append((p + ("match",), "Envoy filter: applyTo for cluster class objects cannot "
                                        "have non cluster match", False))
    vp = p + ("patch", "value")
    try:
        build_xds_object(apply_to, patch.get("value"))
    except ValueError as exc:
        return out + [(vp, str(exc), False)]
    try:
        build_xds_object(apply_to, patch.get("value"), strict=True)
    except ValueError as exc:
        out.append((vp, str(exc), True))
    return out


def webhook_findings(obj: dict[str, Any]) -> list[tuple[FieldPath, str, bool]]:
    """`ValidateEnvoyFilter`: (path, message, warning) for one EnvoyFilter object."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    out: list[tuple[FieldPath, str, bool]] = [(
        ("kind",), "EnvoyFilter exposes internal implementation details that may change at any "
                   "time. Prefer other APIs if possible, and exercise extreme caution, especially "
                   "around upgrades.", True)]
    ws = spec.get("workloadSelector")
    if isinstance(ws, dict) and not ws.get("labels"):
        out.append((("spec", "workloadSelector"), "Envoy filter: workload selector specified "
                    "without labels, will be applied to all services in namespace", True))
    for i, cp in enumerate(spec.get("configPatches") or []):
        out.extend(_patch(("spec", "configPatches", i), cp))
    return out
