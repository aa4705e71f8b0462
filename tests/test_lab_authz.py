"""The authz scenario on the real Envoy: 200 and 403 as measured, and trace predicts each."""

from __future__ import annotations

import asyncio
from pathlib import Path

from meshlens.lab.scenario import Scenario, run_scenario
from meshlens.pipeline import compile_for, server_compiler
from meshlens.simulate import Request, simulate

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "authz-403-and-200.yaml"


def test_real_envoy_answers_403_and_200_as_trace_predicts() -> None:
    scenario = Scenario.load(SCENARIO)
    res = asyncio.run(run_scenario(scenario))
    failed = [f"{s.name}: {e['key']} {e['want']} measured {e['measured']}"
              for s in res.steps for e in s.expectations if not e["ok"]]
    assert res.ok, res.error or "\n".join(failed)
    loaded = scenario.loaded()
    result = compile_for(loaded, "deploy/curl.shop")
    server = server_compiler(loaded)
    predicted = []
    for step in scenario.data["steps"]:
        send = step["send"]
        headers = [f"{k}: {v}" for k, v in (send.get("headers") or {}).items()]
        t = simulate(result, Request.parse(send["url"], headers=headers), server=server)
        predicted.append(200 if t.verdict == "ok" else t.status)
    measured = [sorted(int(k) for k in s.counts["status"]) for s in res.steps]
    assert predicted == [200, 403, 403]
    assert measured == [[p] for p in predicted]
