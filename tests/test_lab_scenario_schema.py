"""Scenario files are checked against a schema, read with the loader's limits (issue 12 items 4,
5 and the property test of its "done when")."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from meshlens.cli import app
from meshlens.errors import UsageError
from meshlens.lab.scenario import Scenario
from meshlens.lab.scenario_schema import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"


def _errors(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        Scenario.parse(text, "s.yaml")
    return [str(e) for e in info.value.errors]


def test_every_shipped_scenario_matches_the_schema() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        Scenario.load(path)


def test_manifests_must_be_a_list_of_paths() -> None:
    """`manifests: /abs/app.yaml` as a string walked the whole filesystem."""
    errs = _errors("manifests: /abs/app.yaml\nproxy: deploy/x\nsteps: []\n")
    assert errs == ["s.yaml:1:1: error: manifests: expected a list, got a string [ML0103]"]
    errs = _errors("manifests: [app.yaml, 7, '']\nproxy: deploy/x\nsteps: []\n")
    assert any("manifests.1: expected a file or folder path" in e for e in errs)
    assert any("manifests.2: expected a file or folder path" in e for e in errs)


def test_unknown_keys_types_and_required_keys_have_lines() -> None:
    errs = _errors("""inline: |
  kind: Namespace
proxy: deploy/x
sidecar: none
workloads:
- selector: {app: a}
  respond: {status: "503", latency: 4}
steps:
- send: {url: "http://a/", requests: 0}
  expect: {flags: {UH: "about half"}, colors: {}}
- sleep: 100
- set: {selector: {app: a}}
  send: {url: "http://b/"}
- {}
""")
    assert errs == [
        "s.yaml:4:1: error: sidecar: unknown key 'sidecar' (known keys: claim, description, "
        "inline, manifests, max_sidecars, mesh_config, name, proxy, sidecars, steps, title, "
        "workloads) [ML0102]",
        "s.yaml:7:13: error: workloads.0.respond.status: expected an integer from 100 to 599, "
        "got '503' [ML0106]",
        "s.yaml:7:28: error: workloads.0.respond.latency: unknown key 'latency' (known keys: "
        "down, error_rate, error_status, hang, latency_ms, reset, status) [ML0102]",
        "s.yaml:9:28: error: steps.0.send.requests: expected an integer from 1 to 1000000, got 0 "
        "[ML0106]",
        "s.yaml:10:20: error: steps.0.expect.flags.UH: expected an expectation such as '>=0.9' or "
        "'==0', got 'about half' [ML0106]",
        "s.yaml:10:39: error: steps.0.expect.colors: unknown key 'colors' (known keys: clusters, "
        "endpoints, flags, nacks, pods, stats, status) [ML0102]",
        "s.yaml:11:3: error: steps.1.sleep: expected a number from 0 to 30, got 100 [ML0106]",
        "s.yaml:12:3: error: steps.2: a step is exactly one of send, set, sleep, apply (this one "
        "has send, set) [ML0106]",
        "s.yaml:14:3: error: steps.3: a step is exactly one of send, set, sleep, apply [ML0106]",
    ]
    assert _errors("title: x\n") == [
        "s.yaml:1:1: error: scenario: missing required key 'proxy' [ML0101]",
        "s.yaml:1:1: error: scenario: missing required key 'steps' [ML0101]",
        "s.yaml:1:1: error: scenario: give the mesh with 'manifests' (a list of paths) or "
        "'inline' (YAML text) [ML0101]"]


def test_scenario_yaml_has_the_loaders_limits(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    t0 = time.monotonic()
    errs = _errors(bomb + "proxy: x\nsteps: []\n")
    assert time.monotonic() - t0 < 5 and "[ML0005]" in errs[0]
    deep = "proxy: x\nsteps: " + "[" * 70 + "]" * 70 + "\n"
    assert "[ML0005]" in _errors(deep)[0]
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ScenarioError, match="a scenario is a regular file"):
        Scenario.load(fifo)


def test_relative_paths_resolve_against_the_scenario_folder(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "sc"
    folder.mkdir()
    (folder / "mesh.yaml").write_text(SEED.read_text())
    (folder / "s.yaml").write_text("manifests: [mesh.yaml]\nproxy: deploy/client.mesh-demo\n"
                                   "steps: []\n")
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    loaded = Scenario.load(folder / "s.yaml").loaded()
    assert any(w.name.startswith("llm-server") for w in loaded.mesh.registry.workloads)


def test_cli_reports_each_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("manifests: /\nproxy: 5\nsteps: {}\n")
    res = CliRunner().invoke(app, ["lab", "run", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:1:1: error: manifests: expected a list, got a string [ML0103]" in res.output
    assert f"{bad}:2:1: error: proxy: expected a string, got 5 [ML0106]" in res.output
    assert f"{bad}:3:1: error: steps: expected a list, got a mapping [ML0103]" in res.output
    missing = CliRunner().invoke(app, ["lab", "run", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read the scenario" in missing.output


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(st.sampled_from(["proxy", "steps", "manifests", "inline",
                                                      "send", "url", "expect", "set", "sleep",
                                                      "workloads", "selector", "respond",
                                                      "claim", "x"]) | st.text(max_size=4),
                                     inner, max_size=5), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300).map(lambda b: b.decode("latin-1")), _json.map(repr),
                 _json.map(lambda d: __import__("json").dumps(d))))
def test_random_input_never_gives_a_traceback(text: str) -> None:
    t0 = time.monotonic()
    try:
        Scenario.parse(text, "s.yaml")
    except UsageError as exc:  # ScenarioError: lines with positions
        assert str(exc)
    assert time.monotonic() - t0 < 2
