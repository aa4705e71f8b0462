"""The lab's ADS server: SotW protocol details (grpc client) and real Envoy ACKs and NACKs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from meshlens.lab import ads_server
from meshlens.lab.ads_server import CLUSTER, ENDPOINT, AdsServer, Snapshot
from meshlens.lab.runner import Lab
from meshlens.pipeline import load

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"


async def _exchange(server: AdsServer, requests: list[discovery_pb2.DiscoveryRequest],
                    want: int) -> list[discovery_pb2.DiscoveryResponse]:
    """Send requests one by one (each after the previous response), collect ``want`` responses."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    queue: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)

    async def gen():  # type: ignore[no-untyped-def]
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    out: list[discovery_pb2.DiscoveryResponse] = []
    call = stub.StreamAggregatedResources(gen())
    try:
        async def read() -> None:
            async for resp in call:
                out.append(resp)
                if len(out) >= want:
                    return
        await asyncio.wait_for(read(), 5)
    finally:
        queue.put_nowait(None)
        call.cancel()
        await channel.close()
    return out


def test_sotw_wildcard_named_empty_eds_and_stale_nonce() -> None:
    async def run() -> None:
        server = AdsServer()
        await server.start()
        try:
            server.set_snapshot("n1", Snapshot.build(clusters=[cluster_pb2.Cluster(name="a")]))
            node = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            node.node.id = "n1"
            eds = discovery_pb2.DiscoveryRequest(type_url=ENDPOINT, resource_names=["a", "ghost"])
            out = await _exchange(server, [node, eds], want=2)
            assert [r.type_url for r in out] == [CLUSTER, ENDPOINT]
            assert len(out[0].resources) == 1
            # a requested EDS name without endpoints gets an empty assignment, as istiod sends
            assert sorted(r.TypeName() for r in out[1].resources) == [
                "envoy.config.endpoint.v3.ClusterLoadAssignment"] * 2
            kinds = [e.kind for e in server.events]
            assert kinds == ["send", "send"]
        finally:
            await server.stop()

    asyncio.run(run())


def test_real_envoy_acks_pushes_and_nacks_with_its_own_message() -> None:
    """Push a good change (ACK, fast) then a cluster Envoy must reject (NACK with its text)."""

    async def run() -> None:
        async with Lab(load([str(SEED)]), "deploy/client.mesh-demo") as lab:
            node = lab.node_ids["client"]
            acked = {t: lab.ads.acked(node, t) for t in ads_server.TYPES}
            assert all(acked[t] for t in (ads_server.CLUSTER, ads_server.LISTENER,
                                          ads_server.ENDPOINT, ads_server.ROUTE,
                                          ads_server.SECRET)), acked
            local = lab.local["client"]
            bad = cluster_pb2.Cluster()
            bad.CopyFrom(local.clusters[0])
            bad.outlier_detection.max_ejection_percent.value = 150
            snap = Snapshot.build(clusters=[bad, *local.clusters[1:]], endpoints=local.endpoints,
                                  listeners=local.listeners, routes=local.routes,
                                  secrets=lab._secrets(lab.result))  # type: ignore[arg-type]
            changed = lab.ads.set_snapshot(node, snap)
            assert changed == [ads_server.CLUSTER]
            answers = await lab.ads.wait_applied(node, types=changed, timeout=10)
            nack = answers[ads_server.CLUSTER]
            assert nack.kind == "nack"
            assert "Proto constraint validation failed" in nack.error
            assert "MaxEjectionPercent" in nack.error
            assert lab.nack_dicts()[0]["type"] == "CDS"
            # the previous clusters stay in force: traffic still flows
            report = await lab.send("http://llm-server.mesh-demo/", requests=4)
            assert report.counts("status") == {"200": 4}

    asyncio.run(run())


def test_push_to_ack_after_a_manifest_change() -> None:
    text = SEED.read_text()

    async def run() -> None:
        async with Lab(load([str(SEED)]), "deploy/client.mesh-demo") as lab:
            from meshlens.pipeline import load_string

            changed = text.replace("weight: 90", "weight: 80").replace("weight: 10", "weight: 20")
            push = await lab.apply(load_string(changed, "seed-80-20.yaml"))
            assert push["changed"] == ["RDS"]
            assert push["nacks"] == []
            assert push["push_to_ack_ms"] < 1000
            route = lab.local["client"].routes[0]
            weights = [w.weight.value for vh in route.virtual_hosts for r in vh.routes
                       if r.route.HasField("weighted_clusters")
                       for w in r.route.weighted_clusters.clusters]
            assert 80 in weights and 20 in weights

    asyncio.run(run())
