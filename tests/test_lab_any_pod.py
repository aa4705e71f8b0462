"""The lab runs any pod: the proxy under test may itself serve traffic (issue 14).

bookinfo's reviews-v2 calls ratings and is one of the endpoints of its own Service. Its client
Envoy and its server sidecar are two Envoys for one pod: they must not share a node id (the ADS
server would hand both one snapshot: ``NACK LDS ... Address already in use``), ports or logs
(every row of ``lab send`` showed ``?``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from meshlens.lab.report import read_log
from meshlens.lab.runner import Lab
from meshlens.pipeline import load

ROOT = Path(__file__).resolve().parents[1]
BOOKINFO = ROOT / "tests" / "conformance" / "samples" / "bookinfo" / "platform" / "kube" / \
    "bookinfo.yaml"
# bookinfo runs in an injected namespace
INJECTED_DEFAULT = """apiVersion: v1
kind: Namespace
metadata: {name: default, labels: {istio-injection: enabled}}
"""


def test_reviews_v2_is_the_proxy_under_test(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHLENS_LAB_STATE_DIR", str(tmp_path / "labs"))
    ns = tmp_path / "namespace.yaml"
    ns.write_text(INJECTED_DEFAULT)
    loaded = load([str(BOOKINFO), str(ns)])
    own_ip = next(w.ip for w in loaded.mesh.registry.workloads if w.name.startswith("reviews-v2"))

    async def run() -> None:
        async with Lab(loaded, "deploy/reviews-v2.default") as lab:
            own = next(n for n in lab.envoys if n.startswith("reviews-v2"))
            assert len(set(lab.node_ids.values())) == len(lab.node_ids)
            assert lab.node_ids[own] != lab.node_ids["client"]
            assert lab.envoys[own].access_log != lab.envoys["client"].access_log
            assert lab.envoys[own].admin != lab.envoys["client"].admin
            assert lab.nack_dicts() == []
            ratings = (await lab.send("http://ratings:9080/ratings/0", requests=6)).to_dict()
            assert ratings["status"] == {"200": 6} and ratings["flags"] == {"-": 6}
            assert ratings["clusters"] == {"outbound|9080||ratings.default.svc.cluster.local": 6}
            # its own Service: some requests land on its own server sidecar, over mTLS
            reviews = (await lab.send("http://reviews:9080/reviews/0", requests=30,
                                      concurrency=3)).to_dict()
            assert reviews["status"] == {"200": 30} and reviews["flags"] == {"-": 30}
            mine = lab.addressing.ip(own_ip)
            assert reviews["endpoints"].get(f"{mine}:9080", 0) > 0
            assert "?" not in str(reviews["endpoints"]) + str(reviews["clusters"])
            # each Envoy writes its own log: outbound lines in the client's, inbound in the pod's
            client_log, _ = read_log(lab.envoys["client"].access_log)
            server_log, _ = read_log(lab.envoys[own].access_log)
            assert client_log and all(e["cluster"].startswith("outbound|") for e in client_log)
            assert server_log and all(e["cluster"].startswith("inbound|") for e in server_log)

    asyncio.run(run())
