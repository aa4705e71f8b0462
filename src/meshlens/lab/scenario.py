"""Scenario files: manifests, workload behaviour, steps that send traffic and expectations.

Layer: L7 (lab). Imports: pipeline, lab.runner, lab.report, errors; PyYAML.

Format (keys of issue 7, extended)::

    title: "UH when a subset selects no pod"     # optional
    claim: {id: C6, text: "...", seed: "✅ 실측 확인"}   # optional: a claim of the seed
    manifests: [path.yaml]          # a list; relative paths: from the scenario's folder
    inline: |                       # YAML text
      ...
    mesh_config: mesh.yaml          # optional
    proxy: client.mesh-demo         # POD[.NS] or deploy/NAME[.NS]
    sidecars: auto                  # or none: no server sidecars
    workloads:                      # behaviour by pod labels (namespace optional)
    - selector: {app: llm-server, version: v2}
      namespace: mesh-demo
      respond: {status: 503}        # {latency_ms: 200}, {error_rate: 0.3}, {reset: true}, {down: true}
    steps:
    - name: canary header
      send: {url: "http://llm-server.mesh-demo/", headers: {x-canary: v2}, requests: 50,
             concurrency: 10}      # or duration: 2.0 (seconds)
      expect:
        flags: {UH: ">=0.9"}        # share of requests with that flag ("-": none)
        status: {"503": ">=0.9"}
        clusters: {"outbound|80|v2|llm-server.mesh-demo.svc.cluster.local": ">=0.9"}
        pods: {llm-server-v2-...: ">0"}      # also: endpoints
        stats:                      # counters of the client sidecar since the lab started
          "outbound|80||x.svc.cluster.local": {upstream_rq_pending_overflow: ">=1"}
        nacks: "==0"
    - set: {selector: {app: x}, respond: {status: 503}}   # change behaviour at run time
    - sleep: 1.5                                           # seconds (at most 30)
    - apply: {inline: "..."}        # recompile with these manifests and push; expect nacks

An expectation is ``OP NUMBER`` with OP one of ``>= <= > < == !=`` (a bare number means ``==``).

The file is read with the manifest loader's limits and checked against
:data:`meshlens.lab.scenario_schema.SCHEMA` (unknown keys, types, required keys, with line numbers)
before anything runs. Relative paths (``manifests``, ``mesh_config``, ``apply.manifests``) are
resolved against the folder of the scenario file, not the working directory.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlens import interrupts
from meshlens.errors import LoadError, UsageError
from meshlens.lab.report import Report
from meshlens.lab.runner import Behaviour, Lab
from meshlens.lab.scenario_schema import EXPR_PATTERN, MAX_SLEEP, ScenarioError, validate
from meshlens.loader import Limits, load_mesh_config, load_paths, load_text
from meshlens.model.mesh import MeshConfig
from meshlens.pipeline import Loaded, build
from meshlens.source import SourceSpan

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b, "==": lambda a, b: abs(a - b) < 1e-9, "!=": lambda a, b: a != b}


def check(expr: str | float | int, value: float) -> bool:
    """Does ``value`` satisfy ``expr``?

    Example:
        >>> check(">=0.9", 0.95), check("==0", 0), check(3, 3.0), check("<0.1", 0.5)
        (True, True, True, False)
    """
    m = EXPR_PATTERN.match(str(expr))
    if not m:
        raise UsageError(f"bad expectation {expr!r}: use e.g. '>=0.9' or '==0'")
    return _OPS[m.group(1) or "=="](value, float(m.group(2)))


@dataclass(slots=True)
class Scenario:
    path: Path | None
    data: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path, *, limits: Limits = Limits()) -> Scenario:
        """Read and check a scenario file (raises :class:`ScenarioError` with every problem)."""
        p = Path(path)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise ScenarioError([LoadError("a scenario is a regular file",
                                                   SourceSpan(str(p), 1, 1), "ML0002")])
                raw = f.read(limits.max_file_bytes + 1)
        except OSError as exc:
            raise ScenarioError([LoadError(f"cannot read the scenario: {exc.strerror}",
                                           SourceSpan(str(p), 1, 1), "ML0002")]) from exc
        if len(raw) > limits.max_file_bytes:
            raise ScenarioError([LoadError(f"larger than {limits.max_file_bytes} bytes",
                                           SourceSpan(str(p), 1, 1), "ML0005")])
        return cls.parse(raw.decode("utf-8", errors="replace"), str(p), path=p, limits=limits)

    @classmethod
    def parse(cls, text: str, name: str, *, path: Path | None = None,
              limits: Limits = Limits()) -> Scenario:
        """Check scenario text (``name`` is what positions are reported against)."""
        loaded = load_text(text, name, limits=limits)
        if loaded.errors:
            raise ScenarioError(list(loaded.errors))
        if len(loaded.documents) != 1:
            what = "nothing" if not loaded.documents else f"{len(loaded.documents)} documents"
            raise ScenarioError([LoadError(f"a scenario is one YAML mapping, not {what}",
                                           SourceSpan(name, 1, 1), "ML0004")])
        doc = loaded.documents[0]
        errors = validate(doc)
        if errors:
            raise ScenarioError(errors)
        return cls(path, doc.data)

    @property
    def name(self) -> str:
        return self.path.stem if self.path else str(self.data.get("name", "scenario"))

    def base(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def loaded(self, spec: dict[str, Any] | None = None) -> Loaded:
        spec = spec if spec is not None else self.data
        docs = None
        paths = [str(self.base() / m) for m in spec.get("manifests") or []]
        if paths:
            docs = load_paths(paths)
        if spec.get("inline"):
            inline = load_text(str(spec["inline"]), f"{self.name}:inline")
            if docs is None:
                docs = inline
            else:
                docs.documents += inline.documents
                docs.diagnostics += inline.diagnostics
                docs.errors += inline.errors
        if docs is None:
            raise UsageError(f"{self.name}: no manifests and no inline YAML")
        mesh_config = None
        if self.data.get("mesh_config"):
            doc, _errors = load_mesh_config(str(self.base() / self.data["mesh_config"]))
            mesh_config = MeshConfig.from_document(doc)
        out = build(docs, mesh_config)
        if out.errors:
            raise UsageError("; ".join(str(e) for e in out.errors))
        return out

    def behaviours(self) -> list[Behaviour]:
        out = []
        for w in self.data.get("workloads") or []:
            out.append(_behaviour(w))
        return out


def _behaviour(w: dict[str, Any]) -> Behaviour:
    if not isinstance(w, dict) or "selector" not in w:
        raise UsageError(f"a workloads entry needs a selector: {w!r}")
    return Behaviour(dict(w["selector"]), dict(w.get("respond") or {}), w.get("namespace"),
                     w.get("sidecar"))


@dataclass(slots=True)
class StepResult:
    name: str
    kind: str
    ok: bool = True
    counts: dict[str, Any] = field(default_factory=dict)
    expectations: list[dict[str, Any]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "ok": self.ok, "counts": self.counts,
                "expectations": self.expectations, **self.detail}


@dataclass(slots=True)
class ScenarioResult:
    name: str
    title: str
    ok: bool
    steps: list[StepResult]
    lab: dict[str, Any]
    localization: list[tuple[str, int, str]]
    claim: dict[str, Any] | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.name, "title": self.title, "ok": self.ok, "error": self.error,
                "claim": self.claim, "steps": [s.to_dict() for s in self.steps],
                "localization": [{"rule": r, "changes": n, "example": ex}
                                 for r, n, ex in self.localization],
                "lab": self.lab}


def evaluate(expect: dict[str, Any], report: Report | None, *, stats: dict[str, dict[str, int]],
             nacks: int) -> list[dict[str, Any]]:
    """Each expectation with the measured value and whether it holds."""
    out = []
    for key, wants in (expect or {}).items():
        if key == "nacks":
            out.append({"key": "nacks", "want": wants, "measured": nacks,
                        "ok": check(wants, nacks)})
            continue
        if key == "stats":
            for cluster, counters in wants.items():
                for counter, want in counters.items():
                    value = stats.get(cluster, {}).get(counter, 0)
                    out.append({"key": f"stats.{cluster}.{counter}", "want": want,
                                "measured": value, "ok": check(want, value)})
            continue
        attr = {"flags": "flags", "status": "status", "clusters": "cluster",
                "endpoints": "endpoint", "pods": "pod"}.get(key)
        if attr is None:
            raise UsageError(f"unknown expectation {key!r}")
        for value, want in wants.items():
            share = report.share(attr, str(value)) if report is not None else 0.0
            out.append({"key": f"{key}.{value}", "want": want, "measured": round(share, 3),
                        "ok": check(want, share)})
    return out


async def run_scenario(sc: Scenario, *, progress: Callable[[str], None] = lambda s: None,
                       timeout: float = 20.0) -> ScenarioResult:
    """Start a lab for the scenario, run its steps, check expectations, stop."""
    title = str(sc.data.get("title", sc.name))
    claim = sc.data.get("claim")
    steps: list[StepResult] = []
    with interrupts.raising():
        loaded = sc.loaded()
    lab = Lab(loaded, str(sc.data["proxy"]), behaviours=sc.behaviours(),
              sidecars=str(sc.data.get("sidecars", "auto")),
              max_sidecars=int(sc.data.get("max_sidecars", 8)))
    try:
        await asyncio.wait_for(lab.start(timeout=timeout), timeout + 5)
        for i, step in enumerate(sc.data.get("steps") or []):
            steps.append(await _run_step(lab, sc, i, step, progress))
        ok = all(s.ok for s in steps)
        return ScenarioResult(sc.name, title, ok, steps, lab.describe(), _localization(lab), claim)
    except Exception as exc:
        return ScenarioResult(sc.name, title, False, steps, {}, [], claim,
                              error=f"{type(exc).__name__}: {exc}")
    finally:
        await lab.close()


def _localization(lab: Lab) -> list[tuple[str, int, str]]:
    from meshlens.lab.localize import summarize

    return summarize(lab.changes())


async def _run_step(lab: Lab, sc: Scenario, i: int, step: dict[str, Any],
                    progress: Callable[[str], None]) -> StepResult:
    name = str(step.get("name", f"step {i + 1}"))
    expect = step.get("expect") or {}
    if "sleep" in step:
        await asyncio.sleep(min(float(step["sleep"]), MAX_SLEEP))
        return StepResult(name, "sleep", detail={"seconds": float(step["sleep"])})
    if "set" in step:
        b = _behaviour(step["set"])
        changed = await lab.set_behaviour(b, replace=bool(step["set"].get("replace")))
        return StepResult(name, "set", detail={"pods": changed})
    if "apply" in step:
        with interrupts.raising():
            new = sc.loaded(step["apply"])
        push = await lab.apply(new)
        result = StepResult(name, "apply", detail={"push": push})
        result.expectations = evaluate(expect, None, stats={}, nacks=len(push["nacks"]))
        result.ok = all(e["ok"] for e in result.expectations)
        return result
    if "send" not in step:
        raise UsageError(f"step {name!r}: one of send, set, sleep, apply")
    send = dict(step["send"])
    headers = send.get("headers") or {}
    hdrs = [f"{k}: {v}" for k, v in headers.items()] if isinstance(headers, dict) else list(headers)
    progress(f"{sc.name}: {name}")
    nacks_before = len(lab.ads.nacks())
    report = await lab.send(str(send["url"]), hdrs, requests=send.get("requests"),
                            duration=send.get("duration"),
                            concurrency=int(send.get("concurrency", 1)),
                            timeout=float(send.get("timeout", 10.0)))
    wanted = list((expect.get("stats") or {}).keys())
    stats = dict(report.stats)
    if wanted:
        assert lab.handle is not None
        stats.update(await asyncio.to_thread(lab.handle.cluster_stats, wanted))
    result = StepResult(name, "send")
    d = report.to_dict()
    result.counts = {k: d[k] for k in ("requests", "status", "flags", "clusters", "endpoints",
                                       "pods", "latency_ms", "combinations")}
    result.counts["stats"] = stats
    result.expectations = evaluate(expect, report, stats=stats,
                                   nacks=len(lab.ads.nacks()) - nacks_before)
    result.ok = all(e["ok"] for e in result.expectations)
    return result


def render_result(res: ScenarioResult) -> str:
    """Plain text: one line per expectation, a verdict per scenario."""
    lines = [f"{'PASS' if res.ok else 'FAIL'} {res.name}: {res.title}"]
    if res.error:
        lines.append(f"  error: {res.error}")
    for s in res.steps:
        if s.kind == "send":
            flags = ", ".join(f"{k} {v}" for k, v in s.counts.get("flags", {}).items())
            clusters = ", ".join(f"{k} {v}" for k, v in s.counts.get("clusters", {}).items())
            lines.append(f"  [{s.name}] {s.counts.get('requests')} requests; status "
                         f"{s.counts.get('status')}; flags {flags}; clusters {clusters}")
        elif s.kind == "apply":
            lines.append(f"  [{s.name}] pushed {s.detail.get('push')}")
        for e in s.expectations:
            mark = "ok  " if e["ok"] else "FAIL"
            lines.append(f"    {mark} {e['key']} {e['want']} (measured {e['measured']})")
    return "\n".join(lines)
