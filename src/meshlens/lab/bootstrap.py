"""The bootstrap a lab Envoy starts from: Istio's node identity, loopback admin, our ADS server.

Layer: L7 (lab). Imports: compiler (CompileResult), xDS protos.

Pure: builds a dict. Kept from the compiled (Istio) bootstrap: ``node`` (id
``sidecar~IP~POD.NS~NS.svc.cluster.local``, cluster, metadata, locality) and
``layered_runtime``. Replaced:

* ``admin``: a Unix socket with mode 0600 in the lab's private folder (``admin_socket``), so no
  other user can reach ``/quitquitquit`` or ``/config_dump``; without one, 127.0.0.1 port 0 (Envoy
  picks a free port). Envoy writes the address to ``--admin-address-path``.
* ``dynamic_resources``: ADS over gRPC **state of the world** (Istio uses DELTA_GRPC) to the lab's
  server, through the static cluster ``xds-grpc`` (HTTP/2, plaintext) on a Unix socket
  (``ads_socket``; istiod's agent also serves Envoy over a pipe) or on 127.0.0.1 (``ads_port``).
  CDS and LDS come from ADS, as in Istio.
* ``cluster_manager.upstream_bind_config``: the pod's lab address, so a server sidecar sees the
  client pod's address as the peer, as in a cluster.

Dropped: the Prometheus (15090) and health (15021) listeners with their ``prometheus_stats`` and
``agent`` clusters (they bind 0.0.0.0 and talk to the pilot-agent), the ``sds-grpc`` cluster (SDS
goes over ADS), and ``stats_config``: Istio's inclusion list would hide the per-cluster
``upstream_rq_pending_overflow`` and ``outlier_detection.*`` counters the report reads.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from meshlens.compiler import CompileResult

XDS_CLUSTER = "xds-grpc"


def build_lab_bootstrap(result: CompileResult, *, ads_port: int = 0, source_ip: str | None = None,
                        node_id: str | None = None, ads_socket: str | None = None,
                        admin_socket: str | None = None) -> dict[str, Any]:
    """Return the bootstrap (proto3 JSON dict) for one lab Envoy.

    Args:
        result: the compiled sidecar (its bootstrap's node is kept).
        ads_port: the lab's ADS server port on 127.0.0.1 (when there is no ``ads_socket``).
        ads_socket: the ADS server's Unix socket path.
        admin_socket: where Envoy's admin listens (a Unix socket path, mode 0600).
        source_ip: lab address the Envoy's upstream connections come from (the pod's).
        node_id: override the node id (defaults to the compiled one).
    """
    compiled: dict[str, Any] = {}
    if result.bootstrap is not None:
        compiled = json_format.MessageToDict(result.bootstrap, preserving_proto_field_name=True)
    node = dict(compiled.get("node") or {"id": f"sidecar~{result.proxy.ip}~{result.proxy.name}."
                                               f"{result.proxy.namespace}~{result.proxy.namespace}"
                                               ".svc.cluster.local"})
    if node_id:
        node["id"] = node_id
    ads = {"ads": {}, "resource_api_version": "V3"}
    xds_address: dict[str, Any] = (
        {"pipe": {"path": ads_socket}} if ads_socket else
        {"socket_address": {"address": "127.0.0.1", "port_value": ads_port}})
    out: dict[str, Any] = {
        "node": node,
        "admin": {"address": {"pipe": {"path": admin_socket, "mode": 0o600}} if admin_socket
                  else {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}]},
            "cds_config": dict(ads),
            "lds_config": dict(ads),
        },
        "static_resources": {"clusters": [{
            "name": XDS_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": XDS_CLUSTER, "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": xds_address}}]}]},
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                             "HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
        }]},
    }
    if not ads_socket:
        # Bind the control-plane connection to 127.0.0.1 whatever the pod's address is.
        out["static_resources"]["clusters"][0]["upstream_bind_config"] = {
            "source_address": {"address": "127.0.0.1", "port_value": 0}}
    if "layered_runtime" in compiled:
        out["layered_runtime"] = compiled["layered_runtime"]
    if source_ip:
        out["cluster_manager"] = {"upstream_bind_config": {
            "source_address": {"address": source_ip, "port_value": 0}}}
    return out
