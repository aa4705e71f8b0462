"""Istio's own Envoy extension protos that xds-protos lacks, as real protobuf classes.

Layer: L4. Imports: protobuf.

istiod marshals ``istio.alpn``'s config as ``istio.envoy.config.filter.http.alpn.v2alpha1.
FilterConfig`` (istio/api ``envoy/config/filter/http/alpn/v2alpha1/config.proto``). The message
is declared here from its field numbers, so it serializes exactly as istiod's does and Envoy
dumps print it by name.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "istio.envoy.config.filter.http.alpn.v2alpha1"


def _build() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="envoy/config/filter/http/alpn/v2alpha1/config.proto", package=_PACKAGE, syntax="proto3")
    msg = fdp.message_type.add(name="FilterConfig")
    enum = msg.enum_type.add(name="Protocol")
    for i, name in enumerate(("HTTP10", "HTTP11", "HTTP2")):
        enum.value.add(name=name, number=i)
    override = msg.nested_type.add(name="AlpnOverride")
    F = descriptor_pb2.FieldDescriptorProto
    override.field.add(name="upstream_protocol", number=1, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                       type_name=f".{_PACKAGE}.FilterConfig.Protocol", json_name="upstreamProtocol")
    override.field.add(name="alpn_override", number=2, type=F.TYPE_STRING, label=F.LABEL_REPEATED,
                       json_name="alpnOverride")
    msg.field.add(name="alpn_override", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=f".{_PACKAGE}.FilterConfig.AlpnOverride", json_name="alpnOverride")
    pool = descriptor_pool.Default()
    try:
        desc = pool.FindMessageTypeByName(f"{_PACKAGE}.FilterConfig")
    except KeyError:
        pool.Add(fdp)
        desc = pool.FindMessageTypeByName(f"{_PACKAGE}.FilterConfig")
    return message_factory.GetMessageClass(desc)


AlpnFilterConfig = _build()
