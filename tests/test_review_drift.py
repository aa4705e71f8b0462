"""``meshlens drift``: a live sidecar's dump against the manifests (or another dump)."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from meshlens.dump import parse_config_dump
from meshlens.review.drift import compare, proxy_status_text
from meshlens.review.xds import of_dump, of_messages

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"
COMPARE = ROOT / "tests" / "conformance" / "istioctl" / "writer" / "compare" / "testdata"
SCHEMA = json.loads((ROOT / "schemas" / "drift.schema.json").read_text())


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          input=stdin, timeout=120)


@pytest.fixture(scope="module")
def lab_dump() -> tuple[str, dict]:  # type: ignore[type-arg]
    """The lab's real Envoy 1.40 /config_dump?include_eds for the seed's client, and what was pushed."""
    from meshlens.lab.runner import Lab
    from meshlens.pipeline import load

    async def run() -> tuple[str, dict]:  # type: ignore[type-arg]
        async with Lab(load([str(SEED)]), "deploy/client.mesh-demo") as lab:
            # the admin is a Unix socket (0600) in the lab's folder: EnvoyProcess.get reaches it
            text = await asyncio.to_thread(lab.envoys["client"].get, "/config_dump?include_eds")
            lc = lab.local["client"]
            return text, of_messages(lc.clusters, lc.endpoints, lc.listeners, lc.routes)

    return asyncio.run(run())


@pytest.mark.envoy
def test_real_envoy_dump_shows_zero_drift(lab_dump: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    text, pushed = lab_dump
    r = compare(pushed, of_dump(parse_config_dump(text)))
    assert r.clean, r.to_dict()["differences"]
    assert r.counts["cluster"]["match"] >= 4 and r.counts["endpoint"]["match"] >= 3
    assert r.counts["listener"]["match"] >= 2 and r.counts["route"]["match"] >= 1
    jsonschema.validate(r.to_dict(), SCHEMA)


def _dynamic(dump: dict, key: str) -> list:  # type: ignore[type-arg]
    section = next(c for c in dump["configs"] if c["@type"].endswith(key))
    return section


@pytest.mark.envoy
def test_planted_differences_are_found_exactly(lab_dump: tuple[str, dict]) -> None:  # type: ignore[type-arg]
    text, pushed = lab_dump
    dump = json.loads(text)
    clusters = _dynamic(dump, "ClustersConfigDump")["dynamic_active_clusters"]
    removed = clusters.pop(next(i for i, c in enumerate(clusters) if c["cluster"]["name"].startswith("outbound|80|v2|")))
    changed = next(c for c in clusters if c["cluster"]["name"].startswith("outbound|80||"))
    changed["cluster"]["connect_timeout"] = "9s"
    listeners = _dynamic(dump, "ListenersConfigDump")["dynamic_listeners"]
    lst = next(x for x in listeners if x["name"] == "virtualOutbound")["active_state"]["listener"]
    chain = copy.deepcopy(lst["filter_chains"][0])
    chain["name"] = "planted-by-envoyfilter"
    lst["filter_chains"].append(chain)
    r = compare(pushed, of_dump(parse_config_dump(json.dumps(dump))))
    got = {(c.type, c.name, c.status): [f.path for f in c.fields] for c in r.changes}
    assert got == {
        ("cluster", removed["cluster"]["name"], "removed"): [],
        # a cluster Envoy does not have has no endpoints there either
        ("endpoint", removed["cluster"]["name"], "removed"): [],
        ("cluster", changed["cluster"]["name"], "changed"): ["connect_timeout"],
        ("listener", "virtualOutbound", "changed"): ["filter_chains[name=planted-by-envoyfilter]"],
    }
    classes = {d["class"] for d in r.to_dict()["differences"]}
    assert classes == {"only_expected", "value_differs"}


def test_compiled_dump_against_the_manifests_is_clean(tmp_path: Path) -> None:
    dump = _cli("compile", "-f", str(SEED), "deploy/client.mesh-demo")
    assert dump.returncode == 0, dump.stderr
    path = tmp_path / "dump.json"
    path.write_text(dump.stdout)
    out = _cli("drift", "deploy/client.mesh-demo", "-f", str(SEED), "--config-dump", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no drift" in out.stdout
    data = json.loads(dump.stdout)
    listeners = next(c for c in data["configs"] if c["@type"].endswith("ListenersConfigDump"))
    listeners["dynamic_listeners"].pop()
    path.write_text(json.dumps(data))
    out = _cli("drift", "deploy/client.mesh-demo", "-f", str(SEED), "--config-dump", str(path), "-o", "json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    jsonschema.validate(report, SCHEMA)
    [diff] = report["differences"]
    assert diff["type"] == "listener" and diff["class"] == "only_expected"
    assert diff["why"].startswith("not pushed yet")


def test_dump_without_eds_uses_the_clusters_dump_for_health(tmp_path: Path) -> None:
    dump = json.loads(_cli("compile", "-f", str(SEED), "deploy/client.mesh-demo").stdout)
    dump["configs"] = [c for c in dump["configs"] if not c["@type"].endswith("EndpointsConfigDump")]
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(dump))
    out = _cli("drift", "deploy/client.mesh-demo", "-f", str(SEED), "--config-dump", str(path))
    assert out.returncode == 0 and "Endpoints: not compared" in out.stdout
    clusters = tmp_path / "clusters.json"
    clusters.write_text(json.dumps({"cluster_statuses": [{
        "name": "outbound|80|v1|llm-server.mesh-demo.svc.cluster.local",
        "host_statuses": [{"address": {"socket_address": {"address": "10.244.0.1", "port_value": 8080}},
                           "health_status": {"eds_health_status": "HEALTHY"}}]}]}))
    out = _cli("drift", "deploy/client.mesh-demo", "-f", str(SEED), "--config-dump", str(path),
               "--clusters-dump", str(clusters), "-o", "json")
    assert out.returncode == 1
    kinds = {(d["type"], d["class"]) for d in json.loads(out.stdout)["differences"]}
    assert ("endpoint", "value_differs") in kinds and ("endpoint", "only_expected") in kinds


def test_proxy_status_verdicts_on_istioctls_comparison_dumps() -> None:
    """istioctl's comparator tests: the same dump matches itself; the _diff one matches nothing."""
    same = (COMPARE / "configdump.json").read_text()
    other = (COMPARE / "configdump_diff.json").read_text()
    a, b = of_dump(parse_config_dump(same)), of_dump(parse_config_dump(other))
    text = proxy_status_text(a, a)
    for line in ("Clusters Match", "Listeners Match", "Routes Match"):
        assert line in text
    text = proxy_status_text(a, b)
    for line in ("Clusters Don't Match", "Listeners Don't Match", "Routes Don't Match"):
        assert line in text
    assert "--- Istiod Clusters" in text and "+++ Envoy Clusters" in text
    out = _cli("drift", "--config-dump", str(COMPARE / "configdump_diff.json"),
               "--against", str(COMPARE / "configdump.json"), "-o", "istioctl")
    assert out.returncode == 1 and "Routes Don't Match" in out.stdout


def test_every_conformance_dump_is_handled_without_a_traceback() -> None:
    dumps = [p for p in (ROOT / "tests" / "conformance" / "istioctl").rglob("*.json")
             if "configs" in p.read_text(errors="replace")[:2000]]
    assert len(dumps) >= 5
    for p in dumps:
        out = _cli("drift", "--config-dump", str(p), "--against", str(p))
        assert out.returncode in (0, 2), (p, out.stderr)
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr, (p, out.stderr)
        if out.returncode == 0:
            assert "no drift" in out.stdout
