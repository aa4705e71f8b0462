"""Read Envoy admin dumps (``/config_dump``, ``/clusters?format=json``) into typed protobufs.

Layer: L5. Imports: errors, limits, loader, compiler.istio_protos (and the xDS protos).

A config dump is a JSON object ``{"configs": [Any, ...]}`` as Envoy's admin endpoint prints it,
with or without ``?include_eds``; ``meshlens compile -o json`` (or ``-o yaml``) prints the same
shape. Parsing uses the real protobuf classes of xds-protos through ``json_format.ParseDict``,
like istioctl's ``protojson`` with ``DiscardUnknown``:

* unknown fields are ignored (a dump from a newer Envoy still reads);
* an ``@type`` this Python install has no class for (a newer Envoy's, a custom filter's) is not
  a failure: that Any is skipped and its type named in :attr:`ConfigDump.skipped_types`;
* a dump is untrusted: its ``@type`` names are only looked up, never imported
  (:mod:`~meshlens.dump.types`), and its text is read within :class:`~meshlens.limits.Limits`
  (:mod:`~meshlens.dump.text`);
* a file that is not a dump, or is cut short, raises :class:`~meshlens.errors.DumpError` with
  a message a person can act on.

When several sections have the same ``@type`` the last one wins (istioctl's ``getSection``),
except ECDS, whose sections are all kept in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envoy.admin.v3 import clusters_pb2, config_dump_pb2, config_dump_shared_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError, Message

from meshlens.dump.text import (
    PARSE_ERRORS,
    load_document,
    not_a_config_dump,
    parse_error,
    printable,
    read_dump,
)
from meshlens.dump.types import SKIP, message_class, prune
from meshlens.errors import DumpError
from meshlens.limits import Limits

__all__ = [
    "BOOTSTRAP", "CLUSTERS", "ECDS", "ENDPOINTS", "LISTENERS", "ROUTES", "SCOPED_ROUTES",
    "SECRETS", "TYPE_PREFIX", "ClustersDump", "ConfigDump", "clusters_of", "clusters_status_of",
    "endpoints_of", "from_message", "listeners_of", "message_class", "parse_clusters",
    "parse_config_dump", "printable", "read_dump", "routes_of", "unpack",
]

TYPE_PREFIX = "type.googleapis.com/"
BOOTSTRAP = TYPE_PREFIX + "envoy.admin.v3.BootstrapConfigDump"
CLUSTERS = TYPE_PREFIX + "envoy.admin.v3.ClustersConfigDump"
ENDPOINTS = TYPE_PREFIX + "envoy.admin.v3.EndpointsConfigDump"
LISTENERS = TYPE_PREFIX + "envoy.admin.v3.ListenersConfigDump"
SCOPED_ROUTES = TYPE_PREFIX + "envoy.admin.v3.ScopedRoutesConfigDump"
ROUTES = TYPE_PREFIX + "envoy.admin.v3.RoutesConfigDump"
SECRETS = TYPE_PREFIX + "envoy.admin.v3.SecretsConfigDump"
ECDS = TYPE_PREFIX + "envoy.admin.v3.EcdsConfigDump"

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


# --- parsing -------------------------------------------------------------------------------


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
    data = load_document(text, what="config dump", limits=limits)
    if not isinstance(data, dict) or not isinstance(data.get("configs"), list):
        raise DumpError(not_a_config_dump(data))
    skipped: list[str] = []
    configs = []
    for i, entry in enumerate(data["configs"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("@type"), str):
            raise DumpError(f'not an Envoy config dump: configs[{i}] has no "@type"')
        pruned = prune(entry, any_pb2.Any.DESCRIPTOR, f"configs[{i}]", skipped)
        if pruned is not SKIP:
            configs.append(pruned)
    message = config_dump_pb2.ConfigDump()
    try:
        json_format.ParseDict({"configs": configs}, message, ignore_unknown_fields=True)
    except PARSE_ERRORS as exc:
        raise DumpError(f"not a valid Envoy config dump: {parse_error(exc)}") from exc
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
    data = load_document(text, what="/clusters dump", limits=limits)
    if not isinstance(data, dict):
        raise DumpError("not Envoy's /clusters?format=json output: expected a JSON object "
                        '{"cluster_statuses": [...]}')
    if "configs" in data:
        raise DumpError("this is a /config_dump, not /clusters?format=json output "
                        "(give it with --config-dump instead)")
    message = clusters_pb2.Clusters()
    try:
        json_format.ParseDict(data, message, ignore_unknown_fields=True)
    except PARSE_ERRORS as exc:
        raise DumpError(f"not valid /clusters?format=json output: {parse_error(exc)}") from exc
    return ClustersDump(clusters=message, raw=text)


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
