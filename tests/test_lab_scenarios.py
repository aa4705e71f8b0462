"""Every shipped scenario passes on the real Envoy; the CLI's lab commands and the lifecycle."""

from __future__ import annotations

import asyncio
import json
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


def test_dead_envoy_is_reported_with_its_log() -> None:
    async def run() -> None:
        async with Lab(load([str(SEED)]), "deploy/client.mesh-demo", sidecars="none") as lab:
            client = lab.envoys["client"]
            client.child.proc.kill()
            client.child.proc.wait(5)
            with pytest.raises(EnvoyExited, match="envoy client died"):
                await lab.send("http://llm-server.mesh-demo/")

    asyncio.run(run())
