"""Read Envoy admin dumps (``/config_dump``, ``/clusters?format=json``) into typed protobufs.

Layer: L5. Imports: errors (and the xDS protos).

A config dump is a JSON object ``{"configs": [Any, ...]}`` as Envoy's admin endpoint prints it,
with or without ``?include_eds``; ``meshlens compile -o json`` (or ``-o yaml``) prints the same
shape. Parsing uses the real protobuf classes of xds-protos through ``json_format.ParseDict``,
like istioctl's ``protojson`` with ``DiscardUnknown``:

* unknown fields are ignored (a dump from a newer Envoy still reads);
* an ``@type`` this Python install has no class for (Istio's own filters such as
  ``istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig``, or a newer Envoy's) is not a
  failure: that Any is skipped and its type named in :attr:`ConfigDump.skipped_types`;
* a file that is not a dump, or is cut short, raises :class:`~meshlens.errors.DumpError` with
  a message a person can act on.

When several sections have the same ``@type`` the last one wins (istioctl's ``getSection``),
except ECDS, whose sections are all kept in order.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, replace
from typing import Any

from envoy.admin.v3 import clusters_pb2, config_dump_pb2, config_dump_shared_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from meshlens.errors import DumpError, LoadError
from meshlens.limits import Limits, too_deep
from meshlens.loader import load_yaml_text
from meshlens.loader.files import read_input

TYPE_PREFIX = "type.googleapis.com/"
BOOTSTRAP = TYPE_PREFIX + "envoy.admin.v3.BootstrapConfigDump"
CLUSTERS = TYPE_PREFIX + "envoy.admin.v3.ClustersConfigDump"
ENDPOINTS = TYPE_PREFIX + "envoy.admin.v3.EndpointsConfigDump"
LISTENERS = TYPE_PREFIX + "envoy.admin.v3.ListenersConfigDump"
SCOPED_ROUTES = TYPE_PREFIX + "envoy.admin.v3.ScopedRoutesConfigDump"
ROUTES = TYPE_PREFIX + "envoy.admin.v3.RoutesConfigDump"
SECRETS = TYPE_PREFIX + "envoy.admin.v3.SecretsConfigDump"
ECDS = TYPE_PREFIX + "envoy.admin.v3.EcdsConfigDump"

#: The well-known types whose JSON form is not an object of fields: never walked into.
_OPAQUE_WKT = frozenset({
    "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
    "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
    "google.protobuf.Empty", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
    "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDump:
    """The sections of one Envoy config dump; a missing section is ``None``.

    ``raw`` is the dump's JSON text as read (``proxy-config all -o json`` prints it back);
    ``skipped_types`` names every ``@type`` that had no protobuf class, each once, sorted
    (invisible characters escaped, see :func:`printable`).
    """

    bootstrap: config_dump_pb2.BootstrapConfigDump | None = None
    clusters: config_dump_shared_pb2.ClustersConfigDump | None = None
    endpoints: config_dump_shared_pb2.EndpointsConfigDump | None = None
    listeners: config_dump_shared_pb2.ListenersConfigDump | None = None
    scoped_routes: config_dump_shared_pb2.ScopedRoutesConfigDump | None = None
    routes: config_dump_shared_pb2.RoutesConfigDump | None = None
    secrets: config_dump_pb2.SecretsConfigDump | None = None
    ecds: tuple[config_dump_shared_pb2.EcdsConfigDump, ...] = ()
    raw: str = ""
    skipped_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClustersDump:
    """Envoy's ``/clusters?format=json`` (``envoy.admin.v3.Clusters``)."""

    clusters: clusters_pb2.Clusters
    raw: str = ""


# --- type resolution ------------------------------------------------------------------------

#: The Python packages whose generated ``*_pb2`` modules may be imported to resolve an ``@type``:
#: xds-protos's roots. Never a name taken from the input.
_PROTO_ROOTS = ("envoy", "xds", "udpa", "validate")

_modules_by_package: dict[str, tuple[str, ...]] | None = None
_imported: set[str] = set()


def _load_fixed_types() -> None:
    """Import the types every dump uses, and Istio's own filter types meshlens emits."""
    from google.protobuf import (  # noqa: F401 - imported to fill the descriptor pool
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )

    from meshlens.compiler import istio_protos  # noqa: F401 - istio.alpn's FilterConfig


def _proto_modules() -> dict[str, tuple[str, ...]]:
    """Proto package → its ``*_pb2`` modules, from the installed xds-protos files (built once).

    The table is read from the folders of the fixed roots in :data:`_PROTO_ROOTS`, so the only
    modules that can ever be imported are files of xds-protos. Importing all 638 of them up
    front costs 0.75 s; a dump names a few dozen packages, so they are imported on first use.
    """
    global _modules_by_package
    if _modules_by_package is None:
        table: dict[str, list[str]] = {}
        for root in _PROTO_ROOTS:
            try:
                package = importlib.import_module(root)
            except ImportError:
                continue
            for folder in getattr(package, "__path__", []):
                base = os.path.dirname(folder)
                for dirpath, dirnames, filenames in os.walk(folder):
                    dirnames[:] = sorted(d for d in dirnames if d.isidentifier() and d != "__pycache__")
                    rel = os.path.relpath(dirpath, base).split(os.sep)
                    if not all(part.isidentifier() for part in rel):
                        continue
                    name = ".".join(rel)
                    table.setdefault(name, []).extend(
                        f"{name}.{f[:-3]}" for f in sorted(filenames)
                        if f.endswith("_pb2.py") and f[:-3].isidentifier())
        _modules_by_package = {k: tuple(v) for k, v in table.items() if v}
        _load_fixed_types()
    return _modules_by_package


def message_class(type_url: str) -> type[Message] | None:
    """The protobuf class for an Any's type URL, if xds-protos (or Istio's filters) define it.

    Example:
        >>> message_class("type.googleapis.com/envoy.config.cluster.v3.Cluster").__name__
        'Cluster'
        >>> message_class("type.googleapis.com/istio.not.a.real.Type") is None
        True
    """
    desc = _descriptor(type_url.rsplit("/", 1)[-1])
    return None if desc is None else message_factory.GetMessageClass(desc)


def _descriptor(full_name: str) -> Descriptor | None:
    """Resolve a message name in the descriptor pool, never importing a name from the input.

    The name's longest package prefix that is a key of the fixed table of xds-protos packages
    (:func:`_proto_modules`) names the modules to import; the name itself is only ever looked
    up, in that table and in the pool.
    """
    table = _proto_modules()
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(full_name)
    except KeyError:
        pass
    parts = full_name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        modules = table.get(".".join(parts[:end]))
        if modules is None:
            continue
        for module in modules:
            if module not in _imported:
                _imported.add(module)
                try:
                    importlib.import_module(module)
                except Exception:  # noqa: BLE001, S112 - a broken module: its types stay unknown
                    continue
        break
    try:
        return pool.FindMessageTypeByName(full_name)
    except KeyError:
        return None


# --- parsing -------------------------------------------------------------------------------


def read_dump(path: str, limits: Limits = Limits()) -> str:
    """The text of a dump file (``-`` for stdin) within ``limits.max_dump_bytes``.

    A FIFO or device is read with ``limits.read_timeout``, as manifests are.

    Raises:
        DumpError: it cannot be read, is too large, or is not UTF-8 text.
    """
    try:
        data = read_input(path, limits, max_bytes=limits.max_dump_bytes)
    except LoadError as exc:
        raise DumpError(exc.message.replace("(--max-file-bytes)", "").rstrip()) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DumpError("not a config dump: the file is not UTF-8 text") from exc


def parse_config_dump(text: str, limits: Limits = Limits()) -> ConfigDump:
    """Parse the JSON (or YAML) text of a config dump.

    Raises:
        DumpError: the text is not a config dump, or is truncated.

    Example:
        >>> d = parse_config_dump('{"configs": [{"@type": '
        ...     '"type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "static_clusters": '
        ...     '[{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", '
        ...     '"name": "agent"}}]}, {"@type": "type.googleapis.com/acme.Unknown"}]}')
        >>> [c.name for c in clusters_of(d.clusters)], d.skipped_types
        (['agent'], ('type.googleapis.com/acme.Unknown',))
    """
    data = _load_document(text, what="config dump", limits=limits)
    if not isinstance(data, dict) or not isinstance(data.get("configs"), list):
        raise DumpError(_not_a_config_dump(data))
    skipped: list[str] = []
    configs = []
    for i, entry in enumerate(data["configs"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("@type"), str):
            raise DumpError(f'not an Envoy config dump: configs[{i}] has no "@type"')
        pruned = _prune(entry, any_pb2.Any.DESCRIPTOR, f"configs[{i}]", skipped)
        if pruned is not _SKIP:
            configs.append(pruned)
    message = config_dump_pb2.ConfigDump()
    try:
        json_format.ParseDict({"configs": configs}, message, ignore_unknown_fields=True)
    except _PARSE_ERRORS as exc:
        raise DumpError(f"not a valid Envoy config dump: {_parse_error(exc)}") from exc
    raw = text if text.lstrip().startswith("{") else json.dumps(data, indent=2)
    return from_message(message, raw=raw, skipped_types=tuple(sorted(set(skipped))))


def from_message(message: config_dump_pb2.ConfigDump, *, raw: str = "",
                 skipped_types: tuple[str, ...] = ()) -> ConfigDump:
    """Split a ``ConfigDump`` protobuf (parsed, or built by ``meshlens.emit``) into sections."""
    sections: dict[str, Message] = {}
    ecds: list[config_dump_shared_pb2.EcdsConfigDump] = []
    classes: dict[str, type[Message]] = {
        BOOTSTRAP: config_dump_pb2.BootstrapConfigDump,
        CLUSTERS: config_dump_shared_pb2.ClustersConfigDump,
        ENDPOINTS: config_dump_shared_pb2.EndpointsConfigDump,
        LISTENERS: config_dump_shared_pb2.ListenersConfigDump,
        SCOPED_ROUTES: config_dump_shared_pb2.ScopedRoutesConfigDump,
        ROUTES: config_dump_shared_pb2.RoutesConfigDump,
        SECRETS: config_dump_pb2.SecretsConfigDump,
        ECDS: config_dump_shared_pb2.EcdsConfigDump,
    }
    for entry in message.configs:
        cls = classes.get(entry.type_url)
        if cls is None:
            continue
        section = _unpack(entry, cls)
        if entry.type_url == ECDS:
            ecds.append(section)
        else:
            sections[entry.type_url] = section  # the last one wins, as in istioctl
    return ConfigDump(
        bootstrap=sections.get(BOOTSTRAP),
        clusters=sections.get(CLUSTERS),
        endpoints=sections.get(ENDPOINTS),
        listeners=sections.get(LISTENERS),
        scoped_routes=sections.get(SCOPED_ROUTES),
        routes=sections.get(ROUTES),
        secrets=sections.get(SECRETS),
        ecds=tuple(ecds), raw=raw, skipped_types=skipped_types)


def parse_clusters(text: str, limits: Limits = Limits()) -> ClustersDump:
    """Parse ``/clusters?format=json`` (snake_case or camelCase; unknown fields ignored).

    Example:
        >>> parse_clusters("{}").clusters.cluster_statuses
        []
    """
    data = _load_document(text, what="/clusters dump", limits=limits)
    if not isinstance(data, dict):
        raise DumpError("not Envoy's /clusters?format=json output: expected a JSON object "
                        '{"cluster_statuses": [...]}')
    if "configs" in data:
        raise DumpError("this is a /config_dump, not /clusters?format=json output "
                        "(give it with --config-dump instead)")
    message = clusters_pb2.Clusters()
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except _PARSE_ERRORS as exc:
        raise DumpError(f"not valid /clusters?format=json output: {_parse_error(exc)}") from exc
    return ClustersDump(clusters=message, raw=text)


#: What protobuf's ParseDict raises for JSON that does not fit the message (a string where a
#: number goes, a lone surrogate in a string, a key that is not a string, ...).
_PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, AttributeError, KeyError,
                 IndexError, OverflowError, UnicodeError, RecursionError)


def _parse_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it nests too deeply"
    return printable(str(exc) or type(exc).__name__)


def printable(text: str) -> str:
    """``text`` with every invisible or control character escaped: a message stays one line.

    Dump keys, type URLs and protobuf's errors quote the input, which may hold anything.

    Example:
        >>> printable("a\\r\\nb\\u200bc"), printable("é ok")
        ('a\\\\r\\\\nb\\\\u200bc', 'é ok')
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] if c in "\r\n\t" else
                   f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in text)


def _load_document(text: str, *, what: str, limits: Limits) -> Any:
    """The JSON (or YAML) value of a dump's text, within ``limits``.

    JSON numbers with more digits than Python converts (4,300), nesting past Python's
    recursion limit or past ``limits.max_dump_depth``, and YAML alias bombs are errors.
    """
    if not text.strip():
        raise DumpError(f"empty file: expected an Envoy {what} (JSON)")
    if len(text) > limits.max_dump_bytes:
        raise DumpError(f"not a valid Envoy {what}: larger than {limits.max_dump_bytes} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] in "{[":
            # A prefix of a valid document fails at its very end, or inside a string that
            # never closes.
            if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
                raise DumpError(f"truncated JSON: the {what} stops at line {exc.lineno} column "
                                f"{exc.colno} before it is complete (was the copy cut short?)"
                                ) from exc
            raise DumpError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                            ) from exc
        data = _load_yaml(text, what=what, limits=limits)
    except RecursionError as exc:
        raise DumpError(f"not a valid Envoy {what}: the JSON nests deeper than "
                        f"{limits.max_dump_depth} levels") from exc
    except ValueError as exc:  # int() of a number with more than sys.get_int_max_str_digits()
        raise DumpError(f"not a valid Envoy {what}: {_first_line(exc)}") from exc
    if too_deep(data, limits.max_dump_depth):
        raise DumpError(f"not a valid Envoy {what}: it nests deeper than "
                        f"{limits.max_dump_depth} levels")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).split(";")[0].strip()
    return text[0].lower() + text[1:] if text else type(exc).__name__


def _load_yaml(text: str, *, what: str, limits: Limits) -> Any:
    """Not JSON: meshlens's ``compile -o yaml`` prints the same dump as YAML."""
    yaml_limits = replace(limits, max_file_bytes=limits.max_dump_bytes,
                          max_depth=limits.max_dump_depth)
    try:
        docs = [d.data for d in load_yaml_text(text, "dump", yaml_limits)]
    except LoadError as exc:
        if exc.code == "ML0005" or "alias" in exc.message:
            where = f" (line {exc.span.line})" if exc.span is not None else ""
            raise DumpError(f"not a valid Envoy {what}: {exc.message}{where}") from exc
        raise DumpError(f"not an Envoy {what}: the file is neither JSON nor YAML") from exc
    kinds = [str(d["kind"]) for d in docs if isinstance(d, dict) and "kind" in d]
    if kinds:
        shown = ", ".join(kinds[:4]) + (", ..." if len(kinds) > 4 else "")
        raise DumpError(f"not an Envoy {what}: these are Kubernetes manifests ({shown}); "
                        "compile them with -f PATH PROXY instead")
    if len(docs) != 1 or not isinstance(docs[0], dict):
        found = f"{len(docs)} YAML documents" if len(docs) != 1 else _json_kind(docs[0])
        raise DumpError(f"not an Envoy {what}: expected a JSON object, found {found}")
    return docs[0]


def _not_a_config_dump(data: Any) -> str:
    if isinstance(data, dict) and ("cluster_statuses" in data or "clusterStatuses" in data):
        return ("this is Envoy's /clusters?format=json output, not a /config_dump "
                "(give it with --clusters-dump to `proxy-config endpoint`)")
    if isinstance(data, dict):
        keys = ", ".join(printable(k) for k in sorted(map(str, data))[:8]) or "none"
        return (f'not an Envoy config dump: expected a JSON object with a "configs" list '
                f"(from /config_dump); its keys are: {keys}")
    return f"not an Envoy config dump: expected a JSON object, found {_json_kind(data)}"


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


class _Skip:
    pass


_SKIP: Any = _Skip()


def _prune(value: Any, desc: Descriptor, path: str, skipped: list[str]) -> Any:
    """Walk JSON alongside its message type; drop every Any whose type cannot be resolved.

    Only fields typed ``google.protobuf.Any`` are checked, so a Struct holding an "@type"
    key is left alone.
    """
    if desc.full_name == "google.protobuf.Any":
        if not isinstance(value, dict) or not value:
            return value
        url = value.get("@type")
        if not isinstance(url, str):
            return value  # ParseDict reports it
        inner = _descriptor(url.rsplit("/", 1)[-1])
        if inner is None:
            skipped.append(printable(url))
            return _SKIP
        if inner.full_name in _OPAQUE_WKT or inner.full_name == "google.protobuf.Any":
            if inner.full_name == "google.protobuf.Any" and isinstance(value.get("value"), dict):
                walked = _prune(value["value"], inner, path + ".value", skipped)
                return {**value, "value": walked} if walked is not _SKIP else _SKIP
            return value
        return {"@type": url, **_prune_fields({k: v for k, v in value.items() if k != "@type"},
                                               inner, path, skipped)}
    if desc.full_name in _OPAQUE_WKT or not isinstance(value, dict):
        return value
    return _prune_fields(value, desc, path, skipped)


def _prune_fields(value: dict[str, Any], desc: Descriptor, path: str,
                  skipped: list[str]) -> dict[str, Any]:
    by_json = {f.json_name: f for f in desc.fields}
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = by_json.get(key) or desc.fields_by_name.get(key)
        if field is None or field.message_type is None or item is None:
            out[key] = item
            continue
        sub = f"{path}.{key}"
        if field.message_type.GetOptions().map_entry:
            vdesc = field.message_type.fields_by_name["value"].message_type
            if vdesc is None or not isinstance(item, dict):
                out[key] = item
                continue
            kept = {k: _prune(v, vdesc, f"{sub}[{k}]", skipped) for k, v in item.items()}
            out[key] = {k: v for k, v in kept.items() if v is not _SKIP}
        elif field.is_repeated and isinstance(item, list):
            kept_list = [_prune(v, field.message_type, f"{sub}[{i}]", skipped)
                         for i, v in enumerate(item)]
            out[key] = [v for v in kept_list if v is not _SKIP]
        else:
            pruned = _prune(item, field.message_type, sub, skipped)
            if pruned is not _SKIP:
                out[key] = pruned
    return out


# --- typed views of the sections -----------------------------------------------------------


def _unpack(any_msg: any_pb2.Any, cls: type[Message]) -> Message:
    # istioctl rewrites the type URL to the v3 type before unmarshalling; parsing the bytes
    # directly does the same.
    out = cls()
    try:
        out.ParseFromString(any_msg.value)
    except DecodeError as exc:
        raise DumpError(f"cannot read a {cls.DESCRIPTOR.full_name} from "
                        f"{printable(any_msg.type_url)}: {exc}") from exc
    return out


def unpack(any_msg: any_pb2.Any, cls: type[Message]) -> Message:
    """Decode an Any's bytes as ``cls`` (whatever its type URL says, as istioctl does)."""
    return _unpack(any_msg, cls)


def clusters_of(section: config_dump_shared_pb2.ClustersConfigDump | None) -> list[Any]:
    """Dynamic active clusters, then static ones (warming clusters are never shown)."""
    if section is None:
        return []
    out = [unpack(c.cluster, cluster_pb2.Cluster) for c in section.dynamic_active_clusters
           if c.HasField("cluster")]
    out += [unpack(c.cluster, cluster_pb2.Cluster) for c in section.static_clusters
            if c.HasField("cluster")]
    return out


def listeners_of(section: config_dump_shared_pb2.ListenersConfigDump | None) -> list[Any]:
    """Dynamic listeners' active state, then static listeners."""
    if section is None:
        return []
    out = [unpack(x.active_state.listener, listener_pb2.Listener) for x in section.dynamic_listeners
           if x.HasField("active_state") and x.active_state.HasField("listener")]
    out += [unpack(x.listener, listener_pb2.Listener) for x in section.static_listeners
            if x.HasField("listener")]
    return out


def routes_of(section: config_dump_shared_pb2.RoutesConfigDump | None) -> list[Any]:
    """Dynamic route configurations, then static ones."""
    if section is None:
        return []
    out = [unpack(r.route_config, route_pb2.RouteConfiguration)
           for r in section.dynamic_route_configs if r.HasField("route_config")]
    out += [unpack(r.route_config, route_pb2.RouteConfiguration)
            for r in section.static_route_configs if r.HasField("route_config")]
    return out


def endpoints_of(section: config_dump_shared_pb2.EndpointsConfigDump | None) -> list[Any]:
    """Dynamic ClusterLoadAssignments, then static ones."""
    if section is None:
        return []
    out = [unpack(e.endpoint_config, endpoint_pb2.ClusterLoadAssignment)
           for e in section.dynamic_endpoint_configs if e.HasField("endpoint_config")]
    out += [unpack(e.endpoint_config, endpoint_pb2.ClusterLoadAssignment)
            for e in section.static_endpoint_configs if e.HasField("endpoint_config")]
    return out


def clusters_status_of(dump: ConfigDump) -> clusters_pb2.Clusters:
    """What Envoy's ``/clusters?format=json`` would list for this dump, as far as it can tell.

    Every cluster with endpoints gets its hosts: EDS clusters from the ClusterLoadAssignment,
    the others from their ``load_assignment``. Health is the EDS health (``UNKNOWN`` counts as
    ``HEALTHY``, as Envoy does), no host has failed an outlier check, and DNS clusters list
    their configured hostname rather than resolved addresses. Static clusters come first.
    """
    from envoy.config.core.v3 import health_check_pb2

    clas = {cla.cluster_name: cla for cla in endpoints_of(dump.endpoints)}
    section = dump.clusters
    entries: list[tuple[Any, bool]] = []
    if section is not None:
        entries += [(unpack(c.cluster, cluster_pb2.Cluster), False) for c in section.static_clusters
                    if c.HasField("cluster")]
        entries += [(unpack(c.cluster, cluster_pb2.Cluster), True)
                    for c in section.dynamic_active_clusters if c.HasField("cluster")]
    out = clusters_pb2.Clusters()
    for c, via_api in entries:
        status = out.cluster_statuses.add(name=c.name, added_via_api=via_api)
        if c.WhichOneof("cluster_discovery_type") == "type" and c.type == cluster_pb2.Cluster.EDS:
            cla = clas.get(c.eds_cluster_config.service_name or c.name)
        else:
            cla = c.load_assignment if c.HasField("load_assignment") else None
        if cla is None:
            continue
        for loc in cla.endpoints:
            for lb in loc.lb_endpoints:
                host = status.host_statuses.add()
                host.address.CopyFrom(lb.endpoint.address)
                health = lb.health_status or health_check_pb2.HealthStatus.HEALTHY
                host.health_status.eds_health_status = health
                host.weight = lb.load_balancing_weight.value or 1
                if loc.HasField("locality"):
                    host.locality.CopyFrom(loc.locality)
    return out
