"""SDS: the secrets a compiled config asks for (`default`, `ROOTCA`, `file-cert:…`, `kubernetes://…`).

Layer: L4. Imports: xDS protos.

istiod pushes no secret material to sidecars: the pilot-agent serves `default` (the workload
certificate) and `ROOTCA` over the SDS socket, and file-based secrets from the pod's files. This
stage collects every secret name the clusters and listeners reference, in first-use order, so the
dump shows what the sidecar will request.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2


def _walk_tls(ctx: Any, out: list[str]) -> None:
    common = ctx.common_tls_context
    for s in common.tls_certificate_sds_secret_configs:
        out.append(s.name)
    if common.HasField("combined_validation_context"):
        out.append(common.combined_validation_context.validation_context_sds_secret_config.name)
    if common.HasField("validation_context_sds_secret_config"):
        out.append(common.validation_context_sds_secret_config.name)


def _sockets(message: Any) -> list[Any]:
    """Every TransportSocket inside a Cluster or Listener."""
    out = []
    if hasattr(message, "transport_socket_matches"):
        out.extend(m.transport_socket for m in message.transport_socket_matches)
        if message.HasField("transport_socket"):
            out.append(message.transport_socket)
    if hasattr(message, "filter_chains"):
        for fc in list(message.filter_chains) + ([message.default_filter_chain]
                                                  if message.HasField("default_filter_chain") else []):
            if fc.HasField("transport_socket"):
                out.append(fc.transport_socket)
    return out


def _secret_names(msg: Any) -> list[str]:
    names: list[str] = []
    for ts in _sockets(msg):
        for cls in (tls_pb2.UpstreamTlsContext, tls_pb2.DownstreamTlsContext):
            if ts.typed_config.Is(cls.DESCRIPTOR):
                ctx = cls()
                ts.typed_config.Unpack(ctx)
                _walk_tls(ctx, names)
    return names


def build_secrets(clusters: list[Any], listeners: list[Any], *, memo: Any = None) -> list[secret_pb2.Secret]:
    """``memo``: the run's ``BuildCache.per_message`` (a shared cluster is read once per run)."""
    seen: dict[str, None] = {}
    for msg in clusters:
        for n in memo("secret_names", msg, _secret_names) if memo is not None else _secret_names(msg):
            if n:
                seen.setdefault(n, None)
    for msg in listeners:
        for n in _secret_names(msg):
            if n:
                seen.setdefault(n, None)
    return [secret_pb2.Secret(name=n) for n in seen]
