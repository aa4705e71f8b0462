"""`meshlens trace` against reality: the cluster and verdict simulate() predicts for a request are
what the real Envoy did (upstream cluster and response flag in its access log).

Any difference is a bug in one of them. Known differences are listed with their cause and marked
``xfail(strict=True)``, so fixing one makes the test fail until the mark is removed.

Compared per request: the verdict's flags (all of them, e.g. ``UF,URX``), the status the client
got, and the upstream cluster. The ``faults`` mesh covers the fault filter (FI, and DI whose delay
does not count against the route timeout), retries (URX), route timeouts (UT), upstream resets and
mTLS between sidecars (PERMISSIVE, STRICT, DISABLE); the what-if options of a request
(``upstream_status``, ``upstream_delay``, ``upstream_reset``) describe what its fake pod does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshlens.lab.runner import Behaviour, Lab
from meshlens.lab.scenario import Scenario
from meshlens.pipeline import Loaded, compile_for, load, server_compiler
from meshlens.simulate import Request, simulate

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"

FAULTS = ROOT / "tests" / "lab" / "faults.yaml"
#: pods of the faults mesh and how they answer
BEHAVIOURS = [Behaviour({"app": "flaky"}, {"status": 503}), Behaviour({"app": "resetter"}, {"reset": True})]
#: what-if options a request's prediction needs (the pod's behaviour, as trace options)
OPTIONS: dict[tuple[str, tuple[str, ...]], dict[str, object]] = {
    ("http://api.shop/", ("x-test: slow", "x-delay-ms: 1000")): {"upstream_delay": 1.0},
    ("http://flaky.shop/", ()): {"upstream_status": 503},
    ("http://flaky.shop/retry", ()): {"upstream_status": 503},
    ("http://resetter.shop/", ()): {"upstream_reset": True},
}

#: (mesh, proxy, [(url, headers, marks)])
CORPUS: list[tuple[str, str, list[tuple[str, list[str], list[object]]]]] = [
    ("seed", "deploy/client.mesh-demo", [
        ("http://llm-server.mesh-demo/", [], []),
        ("http://llm-server.mesh-demo/", ["x-canary: v2"], []),
        ("http://llm-server.mesh-demo/", ["x-canary: v1"], []),
        ("http://llm-server.mesh-demo.svc.cluster.local/v1/models", [], []),
        ("http://llm-server/", [], []),
        ("http://llm-server.mesh-demo/", ["host: nope.example"], []),
        ("http://llm-server.mesh-demo:8080/", [], []),
    ]),
    ("peerauth", "deploy/client.default", [
        ("http://vault.secure:8200/", [], []),
        ("http://vault.secure.svc.cluster.local:8200/x", [], []),
        ("http://old.legacy/", [], []),
    ]),
    ("c6", "deploy/client.shop", [
        ("http://cart.shop/", ["x-subset: v3"], []),
        ("http://cart.shop/", ["x-subset: v2"], []),
        ("http://cart.shop/", [], []),
    ]),
    ("serviceentries", "deploy/client.default", [
        ("http://rr.example.com/", [], []),
    ]),
    ("bookinfo-abort", "deploy/tester.default", [
        ("http://ratings:9080/ratings/0", ["end-user: jason"], []),
        ("http://ratings:9080/ratings/0", [], []),
        ("http://reviews:9080/reviews/0", [], []),
    ]),
    ("bookinfo-delay", "deploy/tester.default", [
        ("http://ratings:9080/ratings/0", ["end-user: jason"], []),
    ]),
    ("faults", "deploy/client.shop", [
        ("http://api.shop/", [], []),
        ("http://api.shop/", ["x-test: abort"], []),
        ("http://api.shop/", ["x-test: delay"], []),
        ("http://api.shop/", ["x-test: slow", "x-delay-ms: 1000"], []),
        ("http://flaky.shop/", [], []),
        ("http://flaky.shop/retry", [], []),
        ("http://resetter.shop/", [], []),
        ("http://strict.shop/", [], []),
        ("http://permissive.shop/", [], []),
        ("http://disabled.shop/", [], []),
        ("http://plain-to-strict.shop/", [], []),
        ("http://api.example.org/", [], []),
        ("http://api.example.org:8123/", [], []),
    ]),
]


def _loaded(mesh: str) -> Loaded:
    if mesh == "seed":
        return load([str(SEED)])
    if mesh == "peerauth":
        return load([str(ROOT / "tests" / "cases" / "peerauth-disable-and-strict" / "manifests.yaml")])
    if mesh == "faults":
        return load([str(FAULTS)])
    if mesh.startswith("bookinfo-"):
        b = ROOT / "tests" / "conformance" / "samples" / "bookinfo"
        return load([str(b / "platform" / "kube" / "bookinfo.yaml"),
                     str(ROOT / "tests" / "lab" / "bookinfo-client.yaml"),
                     str(b / "networking" / "destination-rule-all.yaml"),
                     str(b / "networking" / f"virtual-service-ratings-test-{mesh.split('-')[1]}.yaml")])
    if mesh == "serviceentries":
        return load([str(ROOT / "tests" / "cases" / "serviceentry-resolutions" / "manifests.yaml")])
    return Scenario.load(ROOT / "scenarios" / "c6-nc-missing-cluster-vs-uh-no-endpoints.yaml").loaded()


def _observe() -> Iterator[tuple[str, str, list[str], dict[str, object], dict[str, object]]]:
    """Run each mesh's lab once; yield (mesh, url, headers, predicted, observed) per request."""
    async def run() -> list[tuple[str, str, list[str], dict[str, object], dict[str, object]]]:
        out = []
        for mesh, proxy, requests in CORPUS:
            loaded = _loaded(mesh)
            result = compile_for(loaded, proxy)
            server = server_compiler(loaded)
            behaviours = BEHAVIOURS if mesh == "faults" else []
            async with Lab(loaded, proxy, behaviours=behaviours) as lab:
                for url, headers, _marks in requests:
                    opts = OPTIONS.get((url, tuple(headers)), {})
                    trace = simulate(result, Request.parse(url, headers=headers, **opts),  # type: ignore[arg-type]
                                     server=server)
                    n = 3 if mesh == "bookinfo-delay" else 12  # each waits the 7s delay
                    report = await lab.send(url, headers, requests=n, concurrency=3)
                    predicted = {"verdict": trace.verdict, "flags": trace.flags, "status": trace.status,
                                 "clusters": {c["name"] for c in trace.clusters if c["weight"] > 0}}
                    observed = {"flags": report.counts("flags"), "clusters": report.counts("cluster"),
                                "status": report.counts("status")}
                    out.append((mesh, url, headers, predicted, observed))
        return out

    yield from asyncio.run(run())


_RESULTS: dict[tuple[str, str, tuple[str, ...]], tuple[dict[str, object], dict[str, object]]] = {}


def _result(mesh: str, url: str, headers: list[str]) -> tuple[dict[str, object], dict[str, object]]:
    if not _RESULTS:
        for m, u, h, predicted, observed in _observe():
            _RESULTS[(m, u, tuple(h))] = (predicted, observed)
    return _RESULTS[(mesh, url, tuple(headers))]


CASES = [pytest.param(mesh, url, headers, id=f"{mesh}:{url}{'+' + ';'.join(headers) if headers else ''}",
                      marks=marks)
         for mesh, _proxy, requests in CORPUS for url, headers, marks in requests]


@pytest.mark.parametrize(("mesh", "url", "headers"), CASES)
def test_trace_predicts_what_envoy_did(mesh: str, url: str, headers: list[str]) -> None:
    predicted, observed = _result(mesh, url, headers)
    flags = observed["flags"]
    assert isinstance(flags, dict)
    want = set(predicted["flags"]) or {"-"}  # type: ignore[arg-type]
    # every request got exactly the predicted flags (Envoy prints them comma-separated)
    assert all(set(str(f).split(",")) == want for f in flags), (predicted, observed)
    if predicted["status"] is not None:
        assert set(observed["status"]) == {str(predicted["status"])}, (predicted, observed)  # type: ignore[arg-type]
    clusters = set(observed["clusters"])  # type: ignore[arg-type]
    if predicted["verdict"] == "NC" or not predicted["clusters"]:
        assert clusters == {"-"}  # no cluster to log (a missing one, or a direct response)
    elif predicted["verdict"] == "FI":
        assert clusters <= predicted["clusters"] | {"-"}, (predicted, observed)  # type: ignore[operator]
    else:
        assert clusters <= predicted["clusters"], (predicted, observed)  # type: ignore[operator]
