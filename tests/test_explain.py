"""explain: every field with its origin; what a user wrote that did not reach Envoy; flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from golden import check
from meshlens.pipeline import compile_string
from meshlens.render.explain import explain, render_text
from meshlens.render.flags import FLAGS

ROOT = Path(__file__).resolve().parents[1]
SEED = "tests/cases/seed-llm-server-canary/manifests.yaml"
HOST = "llm-server.mesh-demo.svc.cluster.local"


@pytest.fixture(scope="module")
def seed():  # type: ignore[no-untyped-def]
    return compile_string((ROOT / SEED).read_text(), "deploy/client.mesh-demo", name=SEED)


def fields(e):  # type: ignore[no-untyped-def]
    return {f.path: f for f in e.fields}


def test_port_level_trap_is_visible(seed) -> None:  # type: ignore[no-untyped-def]
    e = explain(seed, "cluster", f"outbound|80||{HOST}")
    assert e is not None
    f = fields(e)
    assert f["circuit_breakers.thresholds[0].max_connections"].value == 200
    assert f["circuit_breakers.thresholds[0].max_connections"].origin.rule == "port-level"
    assert "upstream_connection_options.tcp_keepalive" not in " ".join(f)
    lost = [n for n in e.not_applied if n["block"] == "connectionPool"]
    assert lost and "tcp.tcpKeepalive" in lost[0]["reason"] and lost[0]["line"] == 73


def test_subset_quirk_max_retries_zero(seed) -> None:  # type: ignore[no-untyped-def]
    e = explain(seed, "cluster", f"outbound|80|v2|{HOST}")
    f = fields(e)
    row = f["circuit_breakers.thresholds[0].max_retries"]
    assert row.value == 4294967295 and row.origin.rule == "quirk"
    assert row.origin.span.line == 125
    assert f["circuit_breakers.thresholds[0].max_requests"].origin.rule == "subset"
    assert any(q["field"] == "circuit_breakers.thresholds[0].max_retries" for q in e.quirks)


def test_defaults_name_istiod(seed) -> None:  # type: ignore[no-untyped-def]
    e = explain(seed, "cluster", "PassthroughCluster")
    assert fields(e)["circuit_breakers.thresholds[0].max_connections"].origin.rule == "istiod default"


@pytest.mark.parametrize("name", [f"outbound|80||{HOST}", f"outbound|80|v1|{HOST}",
                                  f"outbound|80|v2|{HOST}", "PassthroughCluster"])
def test_golden_explanations(seed, name: str, update_goldens: bool) -> None:  # type: ignore[no-untyped-def]
    text = render_text(explain(seed, "cluster", name))
    slug = name.replace("|", "_").replace(".mesh-demo.svc.cluster.local", "") or "x"
    check(ROOT / "tests" / "goldens" / "explain" / f"{slug}.txt", text, update_goldens)


def test_every_flag_has_a_layer_and_checks() -> None:
    for code in ("UH", "UF", "UO", "NR", "NC", "URX", "UC", "UT", "DC", "LR"):
        assert FLAGS[code].layer and FLAGS[code].checks


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_cli_explain_json_and_errors() -> None:
    r = run("explain", "cluster", f"outbound|80||{HOST}", "deploy/client.mesh-demo", "-f", SEED, "-o", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["kind"] == "cluster" and data["not_applied"]
    row = next(f for f in data["fields"] if f["field"] == "connect_timeout")
    assert row["rule"] == "port-level" and row["file"] == SEED and row["line"] == 97
    bad = run("explain", "cluster", "nope", "deploy/client.mesh-demo", "-f", SEED)
    assert bad.returncode == 2 and "no cluster named 'nope'" in bad.stderr
    flag = run("explain", "flag", "uh,NC", "-o", "json")
    assert [f["code"] for f in json.loads(flag.stdout)] == ["UH", "NC"]
    assert run("explain", "flag", "XX").returncode == 2
