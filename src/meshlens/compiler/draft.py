"""The mutable cluster under construction, finalized once (`clusterWrapper.build()`).

Layer: L4. Imports: compiler.provenance, xDS protos.
"""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2 as hpo_pb2
from google.protobuf import struct_pb2

from meshlens.compiler.provenance import Origin

HPO_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


class ClusterDraft:
    """A Cluster proto being built, its HTTP protocol options and the origin of each field."""

    __slots__ = ("c", "hpo", "origins", "service", "port", "subset", "direction", "meta")

    def __init__(self, name: str, *, service: Any = None, port: Any = None, subset: str = "",
                 direction: str = "outbound") -> None:
        self.c = cluster_pb2.Cluster(name=name)
        self.hpo: hpo_pb2.HttpProtocolOptions | None = None
        self.origins: dict[str, Origin] = {}
        self.service = service
        self.port = port
        self.subset = subset
        self.direction = direction
        self.meta: dict[str, Any] = {}  # metadata.filter_metadata.istio, written at build()

    def set(self, path: str, origin: Origin) -> None:
        self.origins[path] = origin

    def http_options(self) -> hpo_pb2.HttpProtocolOptions:
        if self.hpo is None:
            self.hpo = hpo_pb2.HttpProtocolOptions()
        return self.hpo

    def is_h2(self) -> bool:
        return self.hpo is not None and self.hpo.explicit_http_config.HasField("http2_protocol_options")

    def has_protocol(self) -> bool:
        return self.hpo is not None and self.hpo.WhichOneof("upstream_protocol_options") is not None

    def build(self) -> cluster_pb2.Cluster:
        if self.hpo is not None:
            if not self.has_protocol():
                # Envoy requires the oneof; istiod fills HTTP/1.1 (clusterWrapper.build).
                self.hpo.explicit_http_config.http_protocol_options.SetInParent()
            self.c.typed_extension_protocol_options[HPO_KEY].Pack(self.hpo)
        if self.meta:
            fill_struct(self.c.metadata.filter_metadata["istio"], self.meta)
        return self.c


def fill_struct(st: Any, values: dict[str, Any]) -> None:
    """``Struct.update(values)`` for JSON-like values, written field by field (the library's
    version walks each value in Python through several calls; this is the hot path of every
    cluster's metadata)."""
    fields = st.fields
    for key, value in values.items():
        _fill_value(fields[key], value)


def fill_struct_value(v: Any, value: Any) -> None:
    """One ``struct_pb2.Value`` from a JSON-like value; a ``Value`` message is copied (a part
    built once and written into many clusters' metadata)."""
    _fill_value(v, value)


def _fill_value(v: Any, value: Any) -> None:
    if isinstance(value, str):
        v.string_value = value
    elif isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int | float):
        v.number_value = value
    elif isinstance(value, dict):
        v.struct_value.SetInParent()
        fill_struct(v.struct_value, value)
    elif isinstance(value, list | tuple):
        lv = v.list_value
        lv.SetInParent()
        for item in value:
            _fill_value(lv.values.add(), item)
    elif value is None:
        v.null_value = 0
    elif isinstance(value, struct_pb2.Value):
        v.CopyFrom(value)
    else:
        raise ValueError(f"unexpected type {type(value).__name__} in metadata")


class Built:
    """A finished listener or route configuration with the origin of its fields.

    Field paths use Envoy's proto spelling from the resource root, e.g.
    ``filter_chains[0].filters[0].typed_config.rds.route_config_name`` or
    ``virtual_hosts[2].routes[0].route.weighted_clusters``.
    """

    __slots__ = ("message", "origins")

    def __init__(self, message: Any, origins: dict[str, Origin] | None = None) -> None:
        self.message = message
        self.origins: dict[str, Origin] = origins if origins is not None else {}

    def set(self, path: str, origin: Origin) -> None:
        self.origins[path] = origin
