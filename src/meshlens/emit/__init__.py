"""Turn a CompileResult into Envoy's ``/config_dump?include_eds`` shape.

Layer: L5. Imports: compiler, xDS protos.

The dump is built from Envoy's own admin protos (``envoy.admin.v3.*ConfigDump``) and printed
with protobuf's JSON mapping using the proto field names, as Envoy prints it, so a real
sidecar's dump and meshlens's are interchangeable for every tool that reads one.

Two ways to the same text: :func:`config_dump` assembles the admin protos (each resource packed
into an ``Any``) for callers that want messages; :func:`config_dump_tree` builds the printed shape
directly around each resource's converted dict (no packing into ``Any`` and parsing back), one
resource at a time, for :mod:`meshlens.emit.stream` to write as it goes (``compile -o json``).
A test holds the two to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2
from google.protobuf import json_format

from meshlens.compiler import CompileResult
from meshlens.emit.stream import Branch, Items, json_bytes, materialize
from meshlens.jsonpb import Printer, type_url, typed

VERSION = "meshlens"


def config_dump(result: CompileResult, *, include_eds: bool = True) -> config_dump_pb2.ConfigDump:
    """Assemble the ConfigDump message (Bootstrap, Clusters, Endpoints sections)."""
    dump = config_dump_pb2.ConfigDump()
    if result.bootstrap is not None:
        bcd = config_dump_pb2.BootstrapConfigDump()
        bcd.bootstrap.CopyFrom(result.bootstrap)
        dump.configs.add().Pack(bcd)
    ccd = config_dump_shared_pb2.ClustersConfigDump(version_info=VERSION)
    if result.bootstrap is not None:
        for c in result.bootstrap.static_resources.clusters:
            ccd.static_clusters.add().cluster.Pack(c)
    for c in result.clusters:
        entry = ccd.dynamic_active_clusters.add(version_info=VERSION)
        entry.cluster.Pack(c)
    dump.configs.add().Pack(ccd)
    for ecds in _ecds_sections(result):
        dump.configs.add().Pack(ecds)
    if include_eds:
        ecd = config_dump_shared_pb2.EndpointsConfigDump()
        for cla in result.endpoints:
            entry = ecd.dynamic_endpoint_configs.add(version_info=VERSION)
            entry.endpoint_config.Pack(cla)
        dump.configs.add().Pack(ecd)
    if result.listeners is not None:
        lcd = config_dump_shared_pb2.ListenersConfigDump(version_info=VERSION)
        if result.bootstrap is not None:
            for lst in result.bootstrap.static_resources.listeners:
                lcd.static_listeners.add().listener.Pack(lst)
        for lst in result.listeners:
            dl = lcd.dynamic_listeners.add(name=lst.name)
            dl.active_state.version_info = VERSION
            dl.active_state.listener.Pack(lst)
        dump.configs.add().Pack(lcd)
        dump.configs.add().Pack(config_dump_shared_pb2.ScopedRoutesConfigDump())
    if result.routes is not None:
        rcd = config_dump_shared_pb2.RoutesConfigDump()
        if result.bootstrap is not None:
            for lst in result.bootstrap.static_resources.listeners:
                for rc in _inline_route_configs(lst):
                    rcd.static_route_configs.add().route_config.Pack(rc)
        for rc in result.routes:
            entry = rcd.dynamic_route_configs.add(version_info=VERSION)
            entry.route_config.Pack(rc)
        dump.configs.add().Pack(rcd)
    if result.secrets is not None:
        # istiod does not push secrets: the sidecar's agent serves them over SDS at run time. The
        # dump lists the secrets the config asks for as "warming", as Envoy shows a secret it has
        # requested but not yet received.
        scd = config_dump_pb2.SecretsConfigDump()
        for secret in result.secrets:
            entry = scd.dynamic_warming_secrets.add(name=secret.name)
            entry.secret.Pack(secret)
        dump.configs.add().Pack(scd)
    return dump


def _ecds_sections(result: CompileResult) -> list[config_dump_shared_pb2.EcdsConfigDump]:
    """One EcdsConfigDump per filter type that asked for a resource (``ecds_filter_http``...),
    in Envoy's order (its config tracker's sorted keys, between clusters and endpoints); a name
    pushed twice shows once, as the last push left it; entries sorted by name."""
    by_section: dict[str, dict[str, Any]] = {}
    for ext in getattr(result, "extension_configs", None) or []:
        for section in ext.sections:
            by_section.setdefault(section, {})[ext.config.name] = ext.config
    out = []
    for section in sorted(by_section):
        ecds = config_dump_shared_pb2.EcdsConfigDump()
        for name in sorted(by_section[section]):
            ecds.ecds_filters.add(version_info=VERSION).ecds_filter.Pack(by_section[section][name])
        out.append(ecds)
    return out


def _inline_route_configs(listener: Any) -> list[Any]:
    """Route configurations inlined in a static listener's HCMs (Envoy lists them as static)."""
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    out = []
    for fc in listener.filter_chains:
        for f in fc.filters:
            if f.typed_config.Is(hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                h = hcm_pb2.HttpConnectionManager()
                f.typed_config.Unpack(h)
                if h.HasField("route_config"):
                    out.append(h.route_config)
    return out


#: JSON keys whose values are protobuf maps or Structs: printed with sorted keys, as Envoy's
#: and Go's JSON printers do (the Python runtime iterates maps in an unstable order).
_MAP_KEYS = frozenset({"filter_metadata", "typed_filter_metadata", "typed_extension_protocol_options",
                       "typed_per_filter_config", "fields"})


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return _number(value)


def _number(value: Any) -> Any:
    # Envoy prints whole floats without a fraction (50, not 50.0).
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _normalize(value: Any, key: str = "", parent: str = "") -> Any:
    if isinstance(value, dict):
        if key in _MAP_KEYS or (key == "match" and parent == "transport_socket_matches") or (
                key == "value" and value.get("@type") is None and parent == "typed_struct"):
            return {k: _sorted(value[k]) for k in sorted(value)} if key != "typed_extension_protocol_options" \
                else {k: _normalize(value[k], k, key) for k in sorted(value)}
        ptype = "typed_struct" if value.get("@type") == "type.googleapis.com/udpa.type.v1.TypedStruct" else key
        return {k: _normalize(v, k, ptype) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v, key, key) for v in value]
    return _number(value)


def to_dict(message: Any) -> dict[str, Any]:
    """protobuf JSON mapping with Envoy's snake_case field names, deterministic map order.

    Built by :mod:`meshlens.jsonpb` (sorted map/Struct keys, whole floats as integers, one
    conversion per distinct packed Any); :func:`to_dict_reference` is the slow path through
    protobuf's own ``json_format`` that tests compare it with.
    """
    from meshlens.jsonpb import to_json_obj

    out: dict[str, Any] = to_json_obj(message)
    return out


def to_dict_reference(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = _normalize(json_format.MessageToDict(message, preserving_proto_field_name=True))
    return out


def dumps(data: Any) -> str:
    """JSON text indented by two spaces, non-ASCII kept (orjson: ~10x faster than json.dumps)."""
    import orjson

    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode("utf-8")


def config_dump_json(result: CompileResult, *, include_eds: bool = True) -> str:
    """The config dump as JSON text (no final newline): what ``compile -o json`` streams."""
    return json_bytes(config_dump_tree(result, include_eds=include_eds)).decode("utf-8")


def config_dump_dict(result: CompileResult, *, include_eds: bool = True) -> dict[str, Any]:
    """``to_dict(config_dump(result))``, built without the Any round trip."""
    out: dict[str, Any] = materialize(config_dump_tree(result, include_eds=include_eds))
    return out


# -- the printed shape, built directly -----------------------------------------------------------
def _admin(name: str) -> str:
    return f"type.googleapis.com/envoy.admin.v3.{name}"


def config_dump_tree(result: CompileResult, *, include_eds: bool = True,
                     printer: Printer | None = None) -> Branch:
    """The JSON shape of :func:`config_dump` as a stream tree: each resource converted on demand.

    Keys and their order are those protobuf prints for the admin messages (field-number order,
    empty fields left out), each resource as its packed ``Any`` prints: ``"@type"`` first.
    """
    p = printer or Printer()
    bs = result.bootstrap
    static = bs.static_resources if bs is not None else None

    def res(msg: Any) -> dict[str, Any]:
        return typed(type_url(msg), msg, p)

    def configs() -> Iterator[Any]:
        if bs is not None:
            yield Branch({"@type": _admin("BootstrapConfigDump"), "bootstrap": p.message(bs)})
        yield Branch({
            "@type": _admin("ClustersConfigDump"), "version_info": VERSION,
            "static_clusters": Items({"cluster": res(c)} for c in (static.clusters if static else ())),
            "dynamic_active_clusters": Items({"version_info": VERSION, "cluster": res(c)}
                                             for c in result.clusters)})
        for ecds in _ecds_sections(result):
            yield Branch({"@type": _admin("EcdsConfigDump"), "ecds_filters": Items(
                {"version_info": VERSION, "ecds_filter": p.message(f.ecds_filter)} for f in ecds.ecds_filters)})
        if include_eds:
            yield Branch({"@type": _admin("EndpointsConfigDump"), "dynamic_endpoint_configs": Items(
                {"version_info": VERSION, "endpoint_config": res(e)} for e in result.endpoints)})
        if result.listeners is not None:
            yield Branch({
                "@type": _admin("ListenersConfigDump"), "version_info": VERSION,
                "static_listeners": Items({"listener": res(x)} for x in (static.listeners if static else ())),
                "dynamic_listeners": Items(_named(x.name, {"active_state": {
                    "version_info": VERSION, "listener": res(x)}}) for x in result.listeners)})
            yield Branch({"@type": _admin("ScopedRoutesConfigDump")})
        if result.routes is not None:
            yield Branch({
                "@type": _admin("RoutesConfigDump"),
                "static_route_configs": Items({"route_config": res(rc)} for x in (
                    static.listeners if static else ()) for rc in _inline_route_configs(x)),
                "dynamic_route_configs": Items({"version_info": VERSION, "route_config": res(rc)}
                                               for rc in result.routes)})
        if result.secrets is not None:
            yield Branch({"@type": _admin("SecretsConfigDump"), "dynamic_warming_secrets": Items(
                _named(s.name, {"secret": res(s)}) for s in result.secrets)})

    return Branch({"configs": Items(configs())})


def _named(name: str, rest: dict[str, Any]) -> dict[str, Any]:
    """A dynamic listener or secret entry: ``name`` (field 1) first, left out when empty."""
    return {"name": name, **rest} if name else rest
