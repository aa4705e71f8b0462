"""Injection, proxy identity, MeshConfig and istiod flags from a cluster export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from live_state import (
    WEB,
    client,
    compile_objs,
    deployment,
    load,
    namespace,
    pod,
    service,
)
from meshlens.errors import UsageError
from meshlens.pipeline import compile_for


def _meta(result: Any) -> dict[str, Any]:
    return json_format.MessageToDict(result.bootstrap.node.metadata)


def _injected(objs: list[dict[str, Any]], **settings: Any) -> dict[str, bool]:
    loaded = load(objs, **settings)
    return {w.name.split("-")[0]: w.injected for w in loaded.mesh.registry.workloads}


# --- injection (mutatingwebhook.yaml selectors + injectRequired) ---------------------------


def test_namespace_without_object_is_assumed_injected_with_one_info_line() -> None:
    loaded = load([deployment("web"), deployment("api", "other")])
    assert all(w.injected for w in loaded.mesh.registry.workloads)
    lines = [d.message for d in loaded.diagnostics if d.code == "ML0304"]
    assert lines == ["namespaces without a Namespace object, assumed labelled for sidecar injection: "
                     "other, shop (--assume-injection=false turns this off)"]


def test_assume_injection_false_and_present_namespace_objects_are_obeyed() -> None:
    assert _injected([deployment("web")], assume_injection=False) == {"web": False}
    assert _injected([namespace("shop"), deployment("web")]) == {"web": False}
    assert _injected([namespace("shop", **{"istio-injection": "enabled"}), deployment("web")]) == {"web": True}


@pytest.mark.parametrize(("ns_labels", "pod_labels", "annotations", "revision", "want"), [
    ({"istio.io/rev": "canary"}, {}, {}, "", False),          # another revision's namespace
    ({"istio.io/rev": "canary"}, {}, {}, "canary", True),     # --revision canary
    ({"istio.io/rev": "default"}, {}, {}, "", True),          # rev.namespace webhook
    ({}, {"sidecar.istio.io/inject": "true"}, {}, "", True),  # object webhook
    ({}, {}, {"sidecar.istio.io/inject": "true"}, "", False),  # annotation alone: no webhook
    ({"istio-injection": "enabled"}, {}, {"sidecar.istio.io/inject": "false"}, "", False),
    ({"istio-injection": "enabled"}, {"sidecar.istio.io/inject": "false"}, {}, "", False),
    ({"istio-injection": "disabled"}, {"sidecar.istio.io/inject": "true"}, {}, "", False),
    ({}, {"istio.io/rev": "default"}, {}, "", True),          # rev.object webhook
])
def test_injection_decided_as_the_injector_decides(ns_labels: dict[str, str], pod_labels: dict[str, str],
                                                   annotations: dict[str, str], revision: str,
                                                   want: bool) -> None:
    d = deployment("web", labels={"app": "web", **pod_labels}, annotations=annotations)
    assert _injected([namespace("shop", **ns_labels), d], revision=revision) == {"web": want}


def test_host_network_and_kube_system_are_never_injected() -> None:
    assert _injected([deployment("web", host_network=True)]) == {"web": False}
    assert _injected([deployment("dns", "kube-system")]) == {"dns": False}


def test_real_pod_injection_comes_from_its_containers_not_todays_namespace_label() -> None:
    # A pod started before its namespace was labelled: no istio-proxy, no tlsMode label.
    objs = [namespace("shop", **{"istio-injection": "enabled"}), service("web"),
            pod("web-1", "10.1.0.11", injected=False)] + client()
    loaded = load(objs)
    web = next(w for w in loaded.mesh.registry.workloads if w.name == "web-1")
    assert not web.injected
    result = compile_for(loaded, "client-1.shop")
    cla = next(c for c in result.endpoints if c.cluster_name == WEB)
    lb = cla.endpoints[0].lb_endpoints[0]
    assert "envoy.transport_socket_match" not in lb.metadata.filter_metadata  # PodTLSMode: disabled
    # ... and a real pod with the container is injected even in an unlabelled namespace.
    assert load([namespace("shop"), pod("web-2", "10.1.0.12")]).mesh.registry.workloads[0].injected


# --- proxy identity (ConstructProxyConfig, GetDeployMetaFromPod, InferPodInfoFromTypedResource) ---


def test_proxy_config_env_of_the_real_pod_reaches_the_bootstrap() -> None:
    env = {"PROXY_CONFIG": json.dumps({"discoveryAddress": "istiod-canary.istio-system.svc:15012"}),
           "ISTIO_META_DNS_CAPTURE": "true"}
    r = compile_objs([pod("web-7d4-x2", "10.1.0.11", owner=("ReplicaSet", "web-7d4"), pth="7d4",
                          env=env)], "web-7d4-x2.shop")
    md = _meta(r)
    assert md["PROXY_CONFIG"]["discoveryAddress"] == "istiod-canary.istio-system.svc:15012"
    assert md["PILOT_SAN"] == ["istiod-canary.istio-system.svc"]
    assert md["DNS_CAPTURE"] == "true"
    assert md["WORKLOAD_NAME"] == "web"  # ReplicaSet name trimmed of -<pod-template-hash>
    assert md["OWNER"] == "kubernetes://apis/apps/v1/namespaces/shop/deployments/web"
    assert r.bootstrap.node.id == "sidecar~10.1.0.11~web-7d4-x2.shop~shop.svc.cluster.local"


def test_workload_name_trim_needs_the_hash_label_and_the_label_override_wins() -> None:
    no_hash = pod("web-7d4-x2", "10.1.0.11", owner=("ReplicaSet", "web-7d4"))
    assert _meta(compile_objs([no_hash], "web-7d4-x2.shop"))["WORKLOAD_NAME"] == "web-7d4"
    named = pod("web-7d4-x2", "10.1.0.11", owner=("ReplicaSet", "web-7d4"), pth="7d4",
                labels={"service.istio.io/workload-name": "storefront"})
    md = _meta(compile_objs([named], "web-7d4-x2.shop"))
    assert md["WORKLOAD_NAME"] == "storefront"
    assert md["OWNER"].endswith("/deployments/web")  # OWNER keeps GetDeployMetaFromPod's name


def test_statefulset_pod_owner() -> None:
    r = compile_objs([pod("db-0", "10.1.0.30", app="db", owner=("StatefulSet", "db"))], "db-0.shop")
    assert _meta(r)["OWNER"] == "kubernetes://apis/apps/v1/namespaces/shop/statefulsets/db"
    assert _meta(r)["WORKLOAD_NAME"] == "db"


def test_deploy_name_picks_a_real_pod_the_way_kubectl_logs_sorts() -> None:
    objs = [deployment("web"),
            pod("web-5d-aaaaa", "10.1.0.11", owner=("ReplicaSet", "web-5d"), pth="5d", ready=False,
                node="n1"),
            pod("web-5d-bbbbb", "10.1.0.12", owner=("ReplicaSet", "web-5d"), pth="5d", node="n1"),
            pod("web-5d-ccccc", "10.1.0.13", owner=("ReplicaSet", "web-5d"), pth="5d")]
    r = compile_for(load(objs), "deploy/web.shop")
    assert r.proxy.name == "web-5d-bbbbb"  # scheduled, Running and Ready first (ByLogging)


def test_pending_pod_without_ip_is_not_a_proxy() -> None:
    with pytest.raises(UsageError, match="no IP"):
        compile_for(load([pod("web-1", None, phase="Pending", ready=False)]), "web-1.shop")


def test_mesh_default_config_reaches_synthesized_pods() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
          "data": {"mesh": "defaultConfig:\n  discoveryAddress: istiod-x.istio-system.svc:15012\n"
                           "  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: \"true\"\n"}}
    r = compile_objs([cm, deployment("web")], "deploy/web.shop")
    md = _meta(r)
    assert md["PROXY_CONFIG"]["discoveryAddress"] == "istiod-x.istio-system.svc:15012"
    assert md["DNS_CAPTURE"] == "true"


# --- MeshConfig from the input, flags from istiod's Deployment ------------------------------


def _istio_cm(mesh: str, name: str = "istio") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "istio-system"}, "data": {"mesh": mesh}}


def _vo_default(result: Any) -> str:
    vo = next(lst for lst in result.listeners if lst.name == "virtualOutbound")
    chain = vo.filter_chains[-1]
    return json_format.MessageToDict(chain.filters[0].typed_config)["cluster"]


def test_mesh_config_comes_from_the_istio_configmap_and_mesh_config_overrides(tmp_path: Any) -> None:
    objs = [_istio_cm("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"), deployment("web")]
    r = compile_objs(objs, "deploy/web.shop")
    assert _vo_default(r) == "BlackHoleCluster"
    loaded = load(objs)
    assert not any("ConfigMap" in d.message for d in loaded.diagnostics)  # consumed, not skipped
    # istio-REV for a revision
    rev = compile_objs([_istio_cm("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n", "istio-canary"),
                        namespace("shop", **{"istio.io/rev": "canary"}), deployment("web")],
                       "deploy/web.shop", revision="canary")
    assert _vo_default(rev) == "BlackHoleCluster"
    # --mesh-config overrides the input's
    from meshlens.pipeline import load as load_files
    from live_state import as_yaml

    f = tmp_path / "export.yaml"
    f.write_text(as_yaml(objs))
    mc = tmp_path / "mesh.yaml"
    mc.write_text("outboundTrafficPolicy:\n  mode: ALLOW_ANY\n")
    over = compile_for(load_files([str(f)], mesh_config=str(mc)), "deploy/web.shop")
    assert _vo_default(over) == "PassthroughCluster"


def _istiod(env: dict[str, str]) -> dict[str, Any]:
    d = deployment("istiod", "istio-system", replicas=1, labels={"app": "istiod",
                                                                 "sidecar.istio.io/inject": "false"})
    d["spec"]["template"]["spec"]["containers"] = [
        {"name": "discovery", "image": "pilot", "env": [{"name": k, "value": v} for k, v in env.items()]}]
    return d


def _has_mx(result: Any) -> bool:
    return any(f.name == "istio.metadata_exchange" for c in result.clusters for f in c.filters)


def test_flags_from_the_istiod_deployment_env_and_pilot_env() -> None:
    base = [deployment("web"), service("web")]
    assert _has_mx(compile_objs(base, "deploy/web.shop"))
    off = base + [_istiod({"PILOT_ENABLE_METADATA_EXCHANGE": "false", "PILOT_CERT_PROVIDER": "istiod"})]
    assert not _has_mx(compile_objs(off, "deploy/web.shop"))
    # --pilot-env wins over the input's env
    assert _has_mx(compile_objs(off, "deploy/web.shop",
                                pilot_env=("PILOT_ENABLE_METADATA_EXCHANGE=true",)))


def test_unmodelled_and_bad_flags_are_reported() -> None:
    loaded = load([_istiod({"PILOT_ENABLE_QUIC_LISTENERS": "true", "REVISION": "default",
                            "PILOT_SEND_UNHEALTHY_ENDPOINTS": "maybe"})])
    msgs = [d.message for d in loaded.diagnostics if d.code == "ML0306"]
    assert len(msgs) == 2
    assert any("PILOT_ENABLE_QUIC_LISTENERS" in m and "does not model" in m for m in msgs)
    assert any("PILOT_SEND_UNHEALTHY_ENDPOINTS=maybe" in m and "not a boolean" in m for m in msgs)


def test_bad_pilot_env_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        load([], pilot_env=("NOEQUALS",))


def test_job_and_cronjob_pods() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "report-29012345", "namespace": "shop"},
           "spec": {"parallelism": 2, "template": {"metadata": {"labels": {"app": "report"}},
                                                   "spec": {"containers": [{"name": "r", "image": "r"}],
                                                            "restartPolicy": "Never"}}}}
    loaded = load([job])
    pods = [w for w in loaded.mesh.registry.workloads if w.name.startswith("report-")]
    assert len(pods) == 2 and all(w.injected for w in pods)
    md = _meta(compile_for(loaded, pods[0].key))
    # GetDeployMetaFromPod: a Job named NAME-<8..10 digits> belongs to the CronJob NAME.
    assert md["OWNER"] == "kubernetes://apis/batch/v1/namespaces/shop/cronjobs/report"
    assert md["WORKLOAD_NAME"] == "report"
    real = pod("report-29012345-x1", "10.1.0.40", app="report", owner=("Job", "report-29012345"))
    assert len([w for w in load([job, real]).mesh.registry.workloads if w.name.startswith("report-")]) == 1


def test_rs_name_finds_the_real_pods_of_a_deployments_replicaset() -> None:
    objs = [pod("web-5d-aaaaa", "10.1.0.11", owner=("ReplicaSet", "web-5d"), pth="5d")]
    assert compile_for(load(objs), "rs/web-5d.shop").proxy.name == "web-5d-aaaaa"
    assert compile_for(load(objs), "deploy/web.shop").proxy.name == "web-5d-aaaaa"


def test_mesh_config_from_the_input_takes_effect_everywhere() -> None:
    base = [deployment("web"), service("web")]
    on = compile_objs(base, "deploy/web.shop")
    assert on.cluster(WEB).transport_socket_matches
    off = compile_objs(base + [_istio_cm("enableAutoMtls: false\n")], "deploy/web.shop")
    assert not off.cluster(WEB).transport_socket_matches


def test_revision_default_is_the_default_revision() -> None:
    objs = [_istio_cm("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"),
            namespace("shop", **{"istio-injection": "enabled"}), deployment("web")]
    r = compile_objs(objs, "deploy/web.shop", revision="default")
    assert _vo_default(r) == "BlackHoleCluster"  # getMeshConfigMapName("default") == "istio"
    assert r.proxy.workload.injected


def test_proxyless_grpc_pod_is_named_as_such() -> None:
    d = deployment("echo", annotations={"inject.istio.io/templates": "grpc-agent"})
    r = compile_for(load([d]), "deploy/echo.shop")
    assert any("proxyless gRPC" in x.message for x in r.diagnostics)
