"""``proxy-config cluster``: istioctl's cluster table (``writer/envoy/configdump/cluster.go``).

Layer: L6. Imports: dump, errors, render.proxy_config.

Columns ``SERVICE FQDN  PORT  SUBSET  DIRECTION  TYPE  DESTINATION RULE`` (padding 5), sorted
by (hostname, subset, port, direction) with Go's unstable sort. Filters are substring tests on
the whole cluster name. A cluster that uses ``cluster_type`` (custom clusters) shows ``STATIC``,
because istioctl reads only the ``type`` member of the oneof.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from meshlens.dump import ConfigDump, clusters_of
from meshlens.errors import DumpError
from meshlens.render.proxy_config.common import (
    check_format,
    describe_management,
    message_list_output,
    metadata_of,
    missing_section,
    parse_subset_key,
    sort_key_of,
    subset_key_less,
)
from meshlens.render.proxy_config.gosort import go_sort_slice
from meshlens.render.proxy_config.ports import PortLayers
from meshlens.render.proxy_config.table import render_table

_TYPE_NAMES = {v: k for k, v in cluster_pb2.Cluster.DiscoveryType.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterFilter:
    """istioctl's ``ClusterFilter``: every non-empty field must be a substring of the name."""

    fqdn: str = ""
    port: int = 0
    subset: str = ""
    direction: str = ""

    def verify(self, name: str) -> bool:
        if not (self.fqdn or self.port or self.subset or self.direction):
            return True
        if self.fqdn and self.fqdn not in name:
            return False
        if self.direction and self.direction not in name:
            return False
        if self.subset and self.subset not in name:
            return False
        return not (self.port and f"|{self.port}|" not in name)


def sorted_clusters(dump: ConfigDump) -> list[Any]:
    """istioctl's ``retrieveSortedClusterSlice``: dynamic active then static, sorted.

    Raises:
        DumpError: no ClustersConfigDump section, or no clusters in it.
    """
    if dump.clusters is None:
        raise missing_section("ClustersConfigDump")
    clusters = clusters_of(dump.clusters)
    if not clusters:
        raise DumpError("no clusters found")
    keyed = [(sort_key_of(c.name), c) for c in clusters]
    return [c for _, c in go_sort_slice(keyed, lambda a, b: subset_key_less(a[0], b[0]))]


def cluster_type(c: Any) -> str:
    """The TYPE cell: the name of the ``type`` enum (``STATIC`` for ``cluster_type`` clusters)."""
    value = c.type if c.WhichOneof("cluster_discovery_type") == "type" else 0
    return str(_TYPE_NAMES.get(value, str(value)))


def render_clusters(dump: ConfigDump, *, filter: ClusterFilter = ClusterFilter(),  # noqa: A002
                    output: str = "short", with_names: bool = False,
                    ports: PortLayers | None = None) -> str:
    """Render ``proxy-config cluster`` (``with_names``: the NAME column of ``proxy-config all``).

    ``ports`` adds meshlens's four port-layer columns (``--explain-ports``).
    """
    check_format(output)
    clusters = sorted_clusters(dump)
    if output != "short":
        return message_list_output([c for c in clusters if filter.verify(c.name)], output)
    header = ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"]
    if with_names:
        header.insert(0, "NAME")
    if ports is not None:
        header += list(ports.header)
    rows = [header]
    for c in clusters:
        if not filter.verify(c.name):
            continue
        dr = describe_management(metadata_of(c))
        name = c.name
        if len(name.split("|")) > 3:
            k = parse_subset_key(name)
            row = [k.hostname, str(k.port), k.subset or "-", k.direction, cluster_type(c), dr]
            if with_names:
                row.insert(0, f"cluster/{name}")
        elif with_names and name:
            # istioctl prefixes the name in place, so it leaks into SERVICE FQDN too.
            row = [f"cluster/{name}", f"cluster/{name}", "-", "-", "-", cluster_type(c), dr]
        else:
            # An unnamed cluster gets no NAME cell even in `all` (one cell short, as upstream).
            row = [name, "-", "-", "-", cluster_type(c), dr]
        if ports is not None:
            row += list(ports.for_cluster(name))
        rows.append(row)
    return render_table(rows, padding=5)
