"""Endpoints from a cluster export, as istiod derives them (each test names the Go function)."""

from __future__ import annotations

from envoy.config.core.v3 import health_check_pb2 as hc

from live_state import (
    WEB,
    client,
    compile_objs,
    deployment,
    endpoint,
    endpoint_slice,
    endpoints_of,
    load,
    namespace,
    pod,
    replicaset,
    service,
    workload_meta,
)

HEALTHY, UNHEALTHY, DRAINING = hc.HEALTHY, hc.UNHEALTHY, hc.DRAINING

REAL_WEB = [
    deployment("web", replicas=2),
    pod("web-5d9f7c-aaaaa", "10.1.0.11", owner=("ReplicaSet", "web-5d9f7c"), pth="5d9f7c"),
    pod("web-5d9f7c-bbbbb", "10.1.0.12", owner=("ReplicaSet", "web-5d9f7c"), pth="5d9f7c"),
    service("web"),
]


def test_real_pods_win_over_their_deployment_with_and_without_replicaset() -> None:
    # The first case: Deployment (replicas 2) + ReplicaSet + 2 real pods gave 6 (4).
    for objs in (REAL_WEB + [replicaset("web", "5d9f7c")], REAL_WEB):
        r = compile_objs(objs + client())
        assert endpoints_of(r, WEB) == [("10.1.0.11", HEALTHY), ("10.1.0.12", HEALTHY)]


def test_real_pods_matched_by_selector_and_pod_template_hash_without_owner_references() -> None:
    objs = [deployment("web", replicas=3), service("web"),
            pod("web-5d9f7c-aaaaa", "10.1.0.11", pth="5d9f7c")] + client()
    assert endpoints_of(compile_objs(objs), WEB) == [("10.1.0.11", HEALTHY)]


def test_controller_without_real_pods_still_gets_synthesized_ones() -> None:
    objs = [deployment("web", replicas=2), service("web")] + client()
    assert len(endpoints_of(compile_objs(objs), WEB)) == 2


def test_synthesized_pod_never_shadows_a_real_pod_of_the_same_name_in_any_order() -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"containers": [{"name": "db", "image": "db"}]}}}}
    real = pod("db-0", "10.1.0.30", app="db")  # no ownerReferences, so sts is not "owned"
    for objs in ([sts, real], [real, sts]):
        loaded = load(objs + client())
        db0 = [w for w in loaded.mesh.registry.workloads if w.name == "db-0"]
        assert len(db0) == 1 and db0[0].real and db0[0].ip == "10.1.0.30"


def test_failed_pods_are_invisible_and_pending_pods_without_ip_are_not_endpoints() -> None:
    # NewController: pod informer FieldSelector "status.phase!=Failed"; shouldPodBeInEndpoints.
    objs = [service("web"),
            pod("web-1", "10.1.0.11"),
            pod("web-2", "10.1.0.12", phase="Failed", ready=False),
            pod("web-3", None, phase="Pending", ready=False)] + client()
    loaded = load(objs)
    assert "web-2" not in {w.name for w in loaded.mesh.registry.workloads}
    assert endpoints_of(compile_for_client(loaded), WEB) == [("10.1.0.11", HEALTHY)]


def compile_for_client(loaded):  # type: ignore[no-untyped-def]
    from meshlens.pipeline import compile_for

    return compile_for(loaded, "client-1.shop")


def test_slice_endpoint_uses_targetref_not_ip_and_drops_missing_or_failed_pods() -> None:
    # getPod: by targetRef; a referenced pod that is absent (or Failed) drops the address.
    objs = [service("web"),
            pod("web-1", "10.1.0.11"),
            pod("web-2", "10.1.0.12", phase="Failed", ready=False),
            endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1"),
                                            endpoint("10.1.0.12", "web-2"),
                                            endpoint("10.1.0.13", "web-gone")])] + client()
    loaded = load(objs)
    assert endpoints_of(compile_for_client(loaded), WEB) == [("10.1.0.11", HEALTHY)]
    notes = [d.message for d in loaded.diagnostics if d.code == "ML0305"]
    assert any("web-gone" in m for m in notes) and any("web-2" in m for m in notes)


def test_targetref_wins_over_ip_for_metadata() -> None:
    # Two pods claim one IP (one is stale); targetRef names the right one.
    objs = [service("web"),
            pod("web-old", "10.1.0.11", labels={"version": "old"}, ready=False),
            pod("web-new", "10.1.0.11", labels={"version": "new"}),
            endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-new")])] + client()
    r = compile_objs(objs)
    assert workload_meta(r, WEB) == ["web-new;shop;web;new;Kubernetes"]


def test_address_in_two_slices_appears_once() -> None:
    # endpointSliceCache.get dedups by (first address, port name).
    objs = [service("web"), pod("web-1", "10.1.0.11"),
            endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1")]),
            endpoint_slice("web-b", "web", [endpoint("10.1.0.11", "web-1")])] + client()
    assert endpoints_of(compile_objs(objs), WEB) == [("10.1.0.11", HEALTHY)]


def test_slice_without_pod_has_empty_workload_metadata() -> None:
    # NewEndpointBuilder(nil): no namespace, workload or labels → ";;;;Kubernetes".
    objs = [service("ext", selector={}),
            endpoint_slice("ext-a", "ext", [endpoint("192.0.2.10")])] + client()
    r = compile_objs(objs)
    cluster = "outbound|80||ext.shop.svc.cluster.local"
    assert endpoints_of(r, cluster) == [("192.0.2.10", HEALTHY)]
    assert workload_meta(r, cluster) == [";;;;Kubernetes"]


def test_manual_slice_without_targetref_finds_a_ready_pod_by_ip_in_its_namespace() -> None:
    # Controller.getPod: getPodsByIP, same namespace only.
    objs = [service("web"), pod("web-1", "10.1.0.11"),
            endpoint_slice("web-a", "web", [endpoint("10.1.0.11")])] + client()
    # GetDeployMetaFromPod: a pod without generateName is its own workload.
    assert workload_meta(compile_objs(objs), WEB) == ["web-1;shop;web;;Kubernetes"]


def test_terminating_serving_endpoint_is_draining_only_for_persistent_session_services() -> None:
    # endpointHealthStatus + EndpointBuilder.filterIstioEndpoint.
    ep = endpoint("10.1.0.12", "web-2", ready=False, serving=True, terminating=True)
    base = [pod("web-1", "10.1.0.11"), pod("web-2", "10.1.0.12", deleting=True)] + client()
    sl = endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1"), ep])
    plain = compile_objs(base + [service("web"), sl])
    assert endpoints_of(plain, WEB) == [("10.1.0.11", HEALTHY)]  # TERMINATING never sent
    sticky = compile_objs(base + [service("web", labels={"istio.io/persistent-session": "c"}), sl])
    assert endpoints_of(sticky, WEB) == [("10.1.0.11", HEALTHY), ("10.1.0.12", DRAINING)]
    statuses = list(sticky.cluster(WEB).common_lb_config.override_host_status.statuses)
    # HEALTHY, DRAINING, UNKNOWN, DEGRADED (5): never TIMEOUT (4).
    assert statuses == [hc.HEALTHY, hc.DRAINING, hc.UNKNOWN, hc.DEGRADED] == [1, 3, 0, 5]


def test_not_ready_endpoint_is_sent_unhealthy() -> None:
    objs = [service("web"), pod("web-1", "10.1.0.11", ready=False),
            endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1", ready=False,
                                                     serving=False, terminating=False)])] + client()
    assert endpoints_of(compile_objs(objs), WEB) == [("10.1.0.11", UNHEALTHY)]


def test_without_slices_endpoints_follow_the_endpointslice_controller() -> None:
    # podToEndpoint: terminating pods are not ready; istiod then drops TERMINATING.
    objs = [service("web"), pod("web-1", "10.1.0.11"), pod("web-2", "10.1.0.12", deleting=True),
            pod("web-3", "10.1.0.13", ready=False)] + client()
    assert endpoints_of(compile_objs(objs), WEB) == [("10.1.0.11", HEALTHY), ("10.1.0.13", UNHEALTHY)]


def test_fqdn_and_multicluster_slices_are_ignored_and_ports_go_by_name() -> None:
    mcs = endpoint_slice("web-m", "web", [endpoint("10.1.0.50")],
                         labels={"multicluster.kubernetes.io/service-name": "web"})
    fqdn = endpoint_slice("web-f", "web", [endpoint("example.com")], address_type="FQDN")
    named = endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1")], port=9999)
    objs = [service("web"), pod("web-1", "10.1.0.11"), mcs, fqdn, named] + client()
    r = compile_objs(objs)
    cla = next(c for c in r.endpoints if c.cluster_name == WEB)
    ports = [lb.endpoint.address.socket_address.port_value for loc in cla.endpoints
             for lb in loc.lb_endpoints]
    assert ports == [9999]


def test_slice_for_a_missing_service_is_reported_not_fatal() -> None:
    loaded = load([endpoint_slice("gone-a", "gone", [endpoint("10.1.0.11")])] + client())
    assert any(d.code == "ML0305" and "gone" in d.message for d in loaded.diagnostics)


def test_locality_from_the_pods_node_not_the_slice() -> None:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/region": "eu",
                                                      "topology.kubernetes.io/zone": "eu-1"}}}
    sl = endpoint_slice("web-a", "web", [dict(endpoint("10.1.0.11", "web-1"), zone="us-9")])
    r = compile_objs([node, service("web"), pod("web-1", "10.1.0.11", node="node-a"), sl] + client())
    cla = next(c for c in r.endpoints if c.cluster_name == WEB)
    assert (cla.endpoints[0].locality.region, cla.endpoints[0].locality.zone) == ("eu", "eu-1")


def test_dual_stack_pod_with_istio_dual_stack() -> None:
    svc = service("web", cluster_ip="10.96.5.5", ips=["10.96.5.5", "fd00::5"])
    p = pod("web-1", "10.1.0.11", ips=["10.1.0.11", "fd00::11"])
    v4 = endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1")])
    v6 = endpoint_slice("web-b", "web", [endpoint("fd00::11", "web-1")], address_type="IPv6")
    objs = [svc, p, v4, v6] + client()
    off = compile_objs(objs)
    assert [a for a, _ in endpoints_of(off, WEB)] == ["10.1.0.11", "fd00::11"]
    on = compile_objs(objs, pilot_env=("ISTIO_DUAL_STACK=true",))
    cla = next(c for c in on.endpoints if c.cluster_name == WEB)
    lbs = [lb for loc in cla.endpoints for lb in loc.lb_endpoints]
    assert len(lbs) == 1
    assert [a.address.socket_address.address for a in lbs[0].endpoint.additional_addresses] == ["fd00::11"]


def test_namespace_object_present_is_obeyed_for_synthesized_pods() -> None:
    objs = [namespace("shop"), deployment("web"), service("web")] + client()
    loaded = load(objs)
    web = [w for w in loaded.mesh.registry.workloads if w.name.startswith("web-")]
    assert web and not any(w.injected for w in web)


def test_pod_without_a_slice_is_not_an_endpoint_when_the_service_has_slices() -> None:
    # istiod reads only the slices: a selected, ready pod the slices do not list gets no traffic.
    objs = [service("web"), pod("web-1", "10.1.0.11"), pod("web-2", "10.1.0.12"),
            endpoint_slice("web-a", "web", [endpoint("10.1.0.11", "web-1")])] + client()
    assert endpoints_of(compile_objs(objs), WEB) == [("10.1.0.11", HEALTHY)]
