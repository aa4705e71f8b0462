"""Every shipped scenario passes on the real Envoy; the CLI's lab commands and the lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshlens.cli import app
from meshlens.errors import EnvoyExited
from meshlens.lab.runner import Lab
from meshlens.lab.scenario import Scenario, check, run_scenario
from meshlens.pipeline import load

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_holds(path: Path) -> None:
    res = asyncio.run(run_scenario(Scenario.load(path)))
    failed = [f"{s.name}: {e['key']} {e['want']} measured {e['measured']}"
              for s in res.steps for e in s.expectations if not e["ok"]]
    assert res.ok, res.error or "\n".join(failed)
    assert res.localization  # the localization is reported with every run


def test_expectation_syntax() -> None:
    assert check(">=0.9", 0.9) and check("<0.5", 0.1) and check("==0", 0) and not check(">0", 0)
    with pytest.raises(Exception, match="bad expectation"):
        check("about half", 0.5)


def test_cli_run_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["lab", "run", str(ROOT / "scenarios" / "c6-nc-missing-cluster-vs-uh-no-endpoints.yaml"),
                             "-o", "json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["ok"] and data["steps"][0]["counts"]["flags"] == {"NC": 20}
    bad = tmp_path / "wrong.yaml"
    bad.write_text(f"""
manifests: [{SEED}]
proxy: deploy/client.mesh-demo
steps:
- send: {{url: "http://llm-server.mesh-demo/", headers: {{x-canary: v2}}, requests: 5}}
  expect: {{clusters: {{"outbound|80|v1|llm-server.mesh-demo.svc.cluster.local": ">=0.5"}}}}
""")
    res = runner.invoke(app, ["lab", "run", str(bad)])
    assert res.exit_code == 1
    assert "FAIL" in res.stdout and "measured 0.0" in res.stdout


def test_up_send_and_clean_stop(tmp_path: Path) -> None:
    """`lab up` stays up, `lab send` talks to it, SIGTERM ends every child and removes the dir."""
    env = {**os.environ, "MESHLENS_LAB_STATE_DIR": str(tmp_path / "state"),
           "PYTHONPATH": str(ROOT / "src")}
    up = subprocess.Popen([sys.executable, "-m", "meshlens", "lab", "up", "-f", str(SEED),
                           "deploy/client.mesh-demo"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    state = tmp_path / "state" / "state.json"
    try:
        deadline = time.monotonic() + 30
        while not state.exists():
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline, "lab up did not become ready"
            time.sleep(0.05)
        data = json.loads(state.read_text())
        send = subprocess.run([sys.executable, "-m", "meshlens", "lab", "send",
                               "http://llm-server.mesh-demo/", "-H", "x-canary: v2", "-n", "20",
                               "-c", "4", "-o", "json"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert send.returncode == 0, send.stderr
        report = json.loads(send.stdout)
        assert report["clusters"] == {"outbound|80|v2|llm-server.mesh-demo.svc.cluster.local": 20}
        assert report["status"] == {"200": 20}
        pids = [e["pid"] for e in data["describe"]["envoys"].values()]
        lab_dir = Path(data["describe"]["dir"])
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=20)
    assert "admin http://127.0.0.1:" in out
    for pid in pids:
        with pytest.raises(OSError):
            os.kill(pid, 0)
    assert not lab_dir.exists() and not state.exists()


def test_dead_envoy_is_reported_with_its_log() -> None:
    async def run() -> None:
        async with Lab(load([str(SEED)]), "deploy/client.mesh-demo", sidecars="none") as lab:
            client = lab.envoys["client"]
            client.child.proc.kill()
            client.child.proc.wait(5)
            with pytest.raises(EnvoyExited, match="envoy client died"):
                await lab.send("http://llm-server.mesh-demo/")

    asyncio.run(run())
