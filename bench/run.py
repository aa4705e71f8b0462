#!/usr/bin/env python3
"""meshlens benchmark: how long and how much memory compiling one sidecar's config takes, and
every target of issue 18 side by side (compile, analyze, trace, start-up; bench/targets.py).

Usage:
    python bench/run.py                          # sizes 1000 and 5000
    python bench/run.py --sizes 1000 --profile   # + cProfiles (compile, serialize, each miss) in bench/out/
    python bench/run.py --json                   # + bench/out/results.json

For each size the mesh is generated (bench/gen.py) into a temporary folder, then fresh
subprocesses measure, so that sizes (and steps) do not pollute each other's memory:

1. the floor: ``yaml.load_all(..., Loader=yaml.CSafeLoader)`` of the same files, nothing else;
2. the pipeline, step by step, in-process: load (``load_paths`` + ``build``), compile
   (``compile_for``, with the time of each compiler stage), serialize (``config_dump_json``),
   then peak RSS (``ru_maxrss``), then optional cProfile runs;
3. the whole command ``meshlens compile -f DIR deploy/client.bench -o json > /dev/null``
   (or, while the CLI does not exist, an equivalent ``python -c`` of the pipeline), wall time,
   CPU time and peak RSS of that process; then ``meshlens analyze`` and ``meshlens trace`` the
   same way (bench/targets.py). Start-up (``--help``, ``explain flag UH``) is measured once.

Every size has a time budget (``--budget``, 180 s): a step that does not finish in it is
reported as "> N s" together with where it was (a faulthandler traceback), and the remaining
steps are skipped. See bench/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import targets  # noqa: E402 - bench/ is not a package
from commands import meshlens_exe, run_command  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(HERE, "out")
PROXY = "deploy/client.bench"
MIB = 1 << 20

#: Targets per size (issue 18): bench/targets.py.
TARGETS = targets.TARGETS

#: The CLI fallback: the same pipeline the CLI runs, printed to stdout.
FALLBACK_CODE = (
    "import sys\n"
    "from meshlens.loader import load_paths\n"
    "from meshlens.pipeline import build, compile_for\n"
    "from meshlens.emit import config_dump_json\n"
    "loaded = build(load_paths([sys.argv[1]]))\n"
    "sys.stdout.write(config_dump_json(compile_for(loaded, sys.argv[2])))\n"
    "sys.stdout.write('\\n')\n"
)


def _maxrss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    # Linux reports KiB, macOS bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(who).ru_maxrss * scale


def _yaml_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        out += [os.path.join(root, f) for f in sorted(files)
                if f.endswith((".yaml", ".yml", ".json"))]
    return out


# --- workers (run in fresh subprocesses; each prints JSON lines, merged by the driver) ----------


def _emit(**fields: Any) -> None:
    """One progress line: the driver merges them, so a killed worker still reports what it did."""
    print(json.dumps(fields), flush=True)


def worker_floor(path: str) -> None:
    """Bare parse of the same files with the C loader: the floor meshlens is measured against."""
    import yaml

    files = _yaml_files(path)
    t0 = time.perf_counter()
    docs = 0
    for f in files:
        with open(f, "rb") as fh:
            text = fh.read().decode("utf-8")
        for d in yaml.load_all(text, Loader=yaml.CSafeLoader):  # noqa: S506 - CSafeLoader
            docs += d is not None
    _emit(floor_s=time.perf_counter() - t0, docs=docs,
          bytes=sum(os.path.getsize(f) for f in files), floor_rss=_maxrss_bytes())


def _count(items: Any) -> int | None:
    return None if items is None else len(items)


def _short_paths(text: str) -> str:
    import site
    import sysconfig

    dirs = site.getsitepackages() + [os.path.join(ROOT, "src"), sysconfig.get_paths()["stdlib"]]
    for p in sorted({d + os.sep for d in dirs}, key=len, reverse=True):
        text = text.replace(p, "")
    return text


def _profile(fn: Any, top: int) -> str:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    buf.write("-- by cumulative time --\n")
    stats.sort_stats("cumulative").print_stats(top)
    buf.write("-- by own time (tottime) --\n")
    stats.sort_stats("tottime").print_stats(top)
    lines = [ln for ln in buf.getvalue().splitlines()
             if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced"))]
    return _short_paths("\n".join(lines))


class GcTimer:
    """Time spent in the cyclic garbage collector, via ``gc.callbacks``."""

    def __init__(self) -> None:
        import gc

        self.total = 0.0
        self.full = 0  # generation-2 collections
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start
            self.full += info.get("generation") == 2

    def snapshot(self) -> tuple[float, int]:
        return self.total, self.full


def _time_stages(stage_s: dict[str, float]) -> Any:
    """Wrap the compiler's STAGES (if it has them) to time each stage and report progress.

    Returns a function that puts the original stages back.
    """
    try:
        import meshlens.compiler as compiler
    except ImportError:
        return lambda: None
    stages = getattr(compiler, "STAGES", None)
    if not isinstance(stages, tuple) or not stages:
        return lambda: None

    def timed(stage: Any) -> Any:
        name = getattr(stage, "__name__", "stage").removeprefix("_stage_")

        def run(*a: Any, **kw: Any) -> Any:
            _emit(running=f"compile: stage {name}")
            t0 = time.perf_counter()
            try:
                return stage(*a, **kw)
            finally:
                stage_s[name] = stage_s.get(name, 0.0) + time.perf_counter() - t0
                _emit(stage_s=stage_s)
        return run

    compiler.STAGES = tuple(timed(s) for s in stages)

    def restore() -> None:
        compiler.STAGES = stages
    return restore


def _watchdog(seconds: float) -> None:
    """After ``seconds``, report where the main thread is (meshlens frames) and exit 3."""
    import threading
    import traceback

    main_id = threading.main_thread().ident

    def fire() -> None:
        frame = sys._current_frames().get(main_id)  # noqa: SLF001 - a sampling watchdog
        stack = traceback.extract_stack(frame) if frame is not None else []
        frames = [f"{_short_paths(f.filename)}:{f.lineno} in {f.name}" for f in reversed(stack)]
        ours = [f for f in frames[1:] if f.startswith("meshlens")]
        _emit(where=frames[:1] + ours[:8], over_budget=True)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def worker_pipeline(path: str, proxy: str, *, profile_steps: list[str], top: int, gc_mode: str,
                    parts: bool, budget: float) -> None:
    """Load, compile and serialize in-process, timing each step; then optionally profile them."""
    import faulthandler
    import gc

    deadline = time.monotonic() + budget
    _watchdog(max(1.0, budget))
    # Backstop if the main thread holds the GIL in C code past the budget: dump frames and exit.
    faulthandler.dump_traceback_later(max(1.0, budget) + 5, exit=True)
    if gc_mode == "off":
        gc.disable()
    gct = GcTimer()
    gc_steps: dict[str, dict[str, float]] = {}
    rss_steps: dict[str, int] = {}

    def step_done(name: str, before: tuple[float, int]) -> None:
        total, full = gct.snapshot()
        gc_steps[name] = {"gc_s": total - before[0], "full_collections": full - before[1]}
        rss_steps[name] = _maxrss_bytes()
        _emit(gc=gc_steps, rss_after=rss_steps)
        if gc_mode == "freeze":
            gc.freeze()  # what a CLI could do between phases: keep long-lived objects out of GC

    t0 = time.perf_counter()
    from meshlens.emit import config_dump, config_dump_json, to_dict
    from meshlens.loader import load_paths
    from meshlens.pipeline import build, compile_for

    stage_s: dict[str, float] = {}
    restore_stages = _time_stages(stage_s)
    _emit(import_s=time.perf_counter() - t0, running="load")

    before = gct.snapshot()
    t0 = time.perf_counter()
    raw = load_paths([path])
    t1 = time.perf_counter()
    _emit(load_paths_s=t1 - t0, running="load: build")
    loaded = build(raw)
    t2 = time.perf_counter()
    load_s = t2 - t0
    _emit(build_s=t2 - t1, load_s=load_s, documents=len(raw.documents),
          load_errors=len(raw.errors), diagnostics=len(loaded.diagnostics), running="compile")
    step_done("load", before)

    before = gct.snapshot()
    t0 = time.perf_counter()
    result = compile_for(loaded, proxy)
    compile_s = time.perf_counter() - t0
    restore_stages()  # the profiled compile runs the compiler as shipped
    _emit(compile_s=compile_s, running="serialize")
    step_done("compile", before)

    before = gct.snapshot()
    t0 = time.perf_counter()
    text = config_dump_json(result)
    serialize_s = time.perf_counter() - t0
    step_done("serialize", before)  # before measuring the text: an encoded copy would add to RSS
    _emit(serialize_s=serialize_s, running="counting",
          json_bytes=len(text) if text.isascii() else len(text.encode("utf-8")))
    del text

    bootstrap = result.bootstrap
    routes = getattr(result, "routes", None)
    _emit(
        clusters=len(result.clusters),
        static_clusters=len(bootstrap.static_resources.clusters) if bootstrap is not None else 0,
        cluster_load_assignments=len(result.endpoints),
        endpoints=sum(len(loc.lb_endpoints) for cla in result.endpoints for loc in cla.endpoints),
        dns_endpoints=sum(len(loc.lb_endpoints) for c in result.clusters
                          for loc in c.load_assignment.endpoints),
        listeners=_count(getattr(result, "listeners", None)),
        route_configs=_count(routes),
        virtual_hosts=sum(len(getattr(getattr(rc, "message", rc), "virtual_hosts", ()))
                          for rc in routes or []),
        secrets=_count(getattr(result, "secrets", None)),
        compile_diagnostics=len(result.diagnostics),
        rss=_maxrss_bytes(),  # before any profiling
        running="",
    )

    # Where serialization goes: proto assembly (Any packing) vs to_dict vs the JSON text.
    if parts:
        import meshlens.emit as emit_mod

        dumps = getattr(emit_mod, "dumps", None) or (lambda d: json.dumps(d, indent=2))
        t0 = time.perf_counter()
        dump = config_dump(result)
        t1 = time.perf_counter()
        as_dict = to_dict(dump)
        t2 = time.perf_counter()
        dumps(as_dict)
        t3 = time.perf_counter()
        _emit(serialize_parts={"config_dump_s": t1 - t0, "to_dict_s": t2 - t1,
                               "dumps_s": t3 - t2,
                               "dumps": "emit.dumps" if hasattr(emit_mod, "dumps")
                               else "json.dumps(indent=2)"})
        del dump, as_dict

    # A step runs ~2-3x slower under cProfile; skip what would not fit in the budget.
    measured = {"load": load_s, "compile": compile_s, "serialize": serialize_s}
    profiles: dict[str, str] = {}
    skipped: list[str] = []
    jobs = {"load": lambda: build(load_paths([path])),
            "compile": lambda: compile_for(loaded, proxy),
            "serialize": lambda: config_dump_json(result)}
    for step in ("load", "compile", "serialize"):
        if step not in profile_steps:
            continue
        estimate = 3.0 * measured[step]
        if time.monotonic() + estimate > deadline - 2:
            skipped.append(step)
            continue
        _emit(running=f"profile: {step}")
        profiles[step] = _profile(jobs[step], top)
        _emit(profiles=profiles)
    _emit(profiles=profiles, profiles_skipped=skipped, running="")
    faulthandler.cancel_dump_traceback_later()


# --- the whole command ------------------------------------------------------------------------


def _cli_command(path: str, proxy: str) -> tuple[list[str], str]:
    """The CLI command if ``meshlens compile`` works, else the ``python -c`` fallback."""
    exe = meshlens_exe()
    if exe:
        try:
            probe = subprocess.run([exe, "compile", "--help"], capture_output=True, timeout=60)
            if probe.returncode == 0:
                return [exe, "compile", "-f", path, proxy, "-o", "json"], "cli"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return [sys.executable, "-c", FALLBACK_CODE, path, proxy], "python -c fallback"


def run_whole(path: str, proxy: str, timeout: float) -> dict[str, Any]:
    """Wall time, CPU time and peak RSS of one process running the whole command."""
    cmd, how = _cli_command(path, proxy)
    r = run_command(cmd, timeout)
    out = {"how": how, "command": r["command"], "whole_s": r["wall_s"], "whole_cpu_s": r["cpu_s"],
           "whole_rss": r["rss"], "returncode": r["returncode"], "stderr_tail": r["stderr_tail"]}
    if r.get("timed_out"):
        out["whole_timed_out"] = True
    return out


# --- driver -----------------------------------------------------------------------------------


def _run_worker(args: list[str], timeout: float) -> dict[str, Any]:
    """Run a worker, merge its JSON lines; on failure or timeout keep what it reported."""
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    killed = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout + 10)  # the worker stops itself first
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        killed = True
    out: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            try:
                out.update(json.loads(line))
            except json.JSONDecodeError:
                pass
    if killed or proc.returncode != 0:
        over_budget = killed or out.get("over_budget", False) or "Timeout (" in stderr
        out["error"] = (f"did not finish within its {timeout:.0f} s budget" if over_budget
                        else f"exit {proc.returncode}")
        out["over_budget"] = over_budget
        out["stderr_tail"] = stderr.strip()[-4000:]
        out["where"] = out.get("where") or _where(stderr)
    return out


def _where(stderr: str) -> list[str]:
    """Where a worker was: the innermost frame, then the innermost meshlens frames."""
    frames = []
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("File ") and "line" in line:
            frames.append(_short_paths(line))
    if any("Traceback (most recent call last)" in ln for ln in stderr.splitlines()):
        frames.reverse()  # Python tracebacks list the innermost frame last
    ours = [f for f in frames[1:] if "meshlens" in f and "bench" not in f]
    return frames[:1] + ours[:6]


def _cpu_seconds() -> tuple[float, float] | None:
    """(CPU-seconds used by the whole machine, by this process and its children), Linux only."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...
    busy = sum(fields[:3]) + sum(fields[5:8])
    mine = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        mine += ru.ru_utime + ru.ru_stime
    return busy / os.sysconf("SC_CLK_TCK"), mine


def measure(size: int, args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True
    import gen

    start = time.monotonic()

    def remaining() -> float:
        return args.budget - (time.monotonic() - start)

    res: dict[str, Any] = {"services": size, "budget_s": args.budget}
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    tmp = tempfile.mkdtemp(prefix=f"meshlens-bench-{size}-")
    path = os.path.join(tmp, "mesh")
    try:
        t0 = time.perf_counter()
        groups = gen.generate(size, seed=args.seed, namespaces=args.namespaces,
                              replicas=args.replicas)
        gen.write(groups, path)
        res["generate_s"] = time.perf_counter() - t0
        res["kinds"] = gen.counts(groups)
        del groups
        _log(f"[{size}] generated in {res['generate_s']:.1f} s; floor parse")
        floor = _run_worker(["--_worker", "floor", path], max(remaining(), 10))
        res.update({k: v for k, v in floor.items() if k not in ("error", "where", "stderr_tail")})
        if "error" in floor:
            res["floor_error"] = floor["error"]
        _log(f"[{size}] pipeline (load, compile, serialize"
             f"{', profiles' if args.profile_steps else ''}), {remaining():.0f} s left")
        pipe_budget = max(remaining() - 5, 10)
        worker = ["--_worker", "pipeline", path, "--_profile", ",".join(args.profile_steps),
                  "--_top", str(args.top), "--gc", args.gc, "--budget", f"{pipe_budget:.1f}"]
        pipe = _run_worker(worker + (["--parts"] if args.parts else []), pipe_budget)
        if "error" in pipe:
            res["pipeline_error"] = pipe.pop("error")
            res["pipeline_where"] = pipe.pop("where", [])
            res["pipeline_over_budget"] = pipe.pop("over_budget", False)
            res["pipeline_elapsed_s"] = pipe_budget
        res.update(pipe)
        if args.skip_whole:
            res["whole_skipped"] = "--skip-whole"
            res.update({key: {"skipped": "--skip-whole"} for key in targets.COMMANDS})
        elif "serialize_s" not in res:
            res["whole_skipped"] = "pipeline over budget"
        elif remaining() < 5:
            res["whole_skipped"] = "no time left in the budget"
        else:
            _log(f"[{size}] whole command, {remaining():.0f} s left")
            res.update(run_whole(path, PROXY, remaining()))
        if not args.skip_whole:
            _log(f"[{size}] analyze and trace, {remaining():.0f} s left")
            targets.measure_commands(path, res, remaining)
        res["target_rows"] = targets.checks(res)
        if args.profile_steps:
            res["profile_files"] = targets.profile_misses(size, path, res, set(args.profile_steps),
                                                          OUT_DIR, remaining)
        if args.keep:
            dest = os.path.join(args.keep, f"mesh-{size}")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(path, dest)
            res["kept"] = dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu1 = _cpu_seconds()
    if cpu0 is not None and cpu1 is not None:
        wall = time.monotonic() - wall0
        res["other_cpu_s"] = max(0.0, (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1]))
        res["wall_s"] = wall
    res["checks"] = [r for r in res["target_rows"] if r["ok"] is not None]
    return res


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _opt(value: Any) -> str:
    return "-" if value is None else str(value)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ok" if ok else " MISS")


def _cell_s(r: dict[str, Any], key: str, running: str) -> str:
    """Seconds, or '> N s' for the step that was running when the budget ran out."""
    if key in r:
        return f"{r[key]:.2f} s"
    if r.get("pipeline_over_budget") and r.get("running", "").startswith(running):
        return f"> {r['pipeline_elapsed_s']:.0f} s*"
    return "-"


def render(results: list[dict[str, Any]], meta: dict[str, Any], startup: list[dict[str, Any]]) -> str:
    lines = [f"meshlens benchmark: proxy {meta['proxy']}, seed {meta['seed']}, "
             f"Python {meta['python']}, protobuf {meta['protobuf']} ({meta['protobuf_impl']}), "
             f"PyYAML {meta['pyyaml']}{' + libyaml' if meta['libyaml'] else ''}, "
             f"{meta['cpus']} CPUs, budget {meta['budget']:g} s per size", ""]
    head = ["services", "docs", "input", "floor parse", "load", "compile", "serialize",
            "peak RSS", "whole cmd", "cmd RSS", "clusters", "CLAs", "endpoints", "listeners",
            "routes"]
    rows = [head]
    for r in results:
        target = TARGETS.get(r["services"], {})
        whole_ok = rss_ok = None
        if "compile_s" in target and "whole_s" in r:
            whole_ok = r["whole_s"] < target["compile_s"] and not r.get("whole_timed_out")
        if "rss_bytes" in target and "whole_rss" in r:
            rss_ok = r["whole_rss"] < target["rss_bytes"]
        if "whole_s" in r:
            whole = f"{'> ' if r.get('whole_timed_out') else ''}{r['whole_s']:.2f} s"
        else:
            whole = "not run" if "whole_skipped" in r else "-"
        rows.append([
            str(r["services"]), str(r.get("documents", r.get("docs", "-"))),
            f"{r['bytes'] / 1e6:.1f} MB" if "bytes" in r else "-",
            _cell_s(r, "floor_s", "floor"), _cell_s(r, "load_s", "load"),
            _cell_s(r, "compile_s", "compile"),
            _cell_s(r, "serialize_s", "serialize"),
            f"{r['rss'] / MIB:.0f} MiB" if "rss" in r else "-",
            whole + _mark(whole_ok),
            (f"{r['whole_rss'] / MIB:.0f} MiB" if "whole_rss" in r else "-") + _mark(rss_ok),
            _opt(r.get("clusters")), _opt(r.get("cluster_load_assignments")),
            _opt(r.get("endpoints")), _opt(r.get("listeners")), _opt(r.get("route_configs")),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for k, row in enumerate(rows):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        "",
        "load = load_paths + build (files -> mesh model); compile = compile_for (model -> protos); "
        "serialize = config_dump_json (protos -> JSON text).",
        "peak RSS = ru_maxrss of the in-process pipeline worker; cmd RSS = ru_maxrss of the "
        "whole-command process; * = still running when the size's budget ran out.",
        "",
        "targets (issue 18; whole processes, as a user runs them):",
        "",
        *targets.render(results, startup),
    ]
    lines += ["", "details:"]
    for r in results:
        lines += [f"  {ln}" for ln in _details(r, meta)]
    if any(r.get("how", "cli") != "cli" for r in results):
        lines += ["", "NOTE: `meshlens compile` is not available yet; the whole command was "
                      "measured with an equivalent `python -c` of the pipeline (load_paths, build, "
                      "compile_for, config_dump_json to stdout)."]
    return "\n".join(lines)


def _details(r: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    n = r["services"]
    out = []
    if "other_cpu_s" in r:
        share = r["other_cpu_s"] / max(r["wall_s"], 1e-9)
        out.append(f"{n}: other processes used {r['other_cpu_s']:.0f} CPU-s while this size ran "
                   f"({share:.0%} of one core over {r['wall_s']:.0f} s)"
                   + (" -- the machine was shared: the times are inflated" if share > 0.15 else ""))
    if "generate_s" in r:
        out.append(f"{n}: generated in {r['generate_s']:.1f} s: "
                   + ", ".join(f"{v} {k}" for k, v in r["kinds"].items()))
    if "load_s" in r:
        out.append(f"{n}: load = load_paths {r['load_paths_s']:.2f} s + build "
                   f"{r['build_s']:.2f} s; "
                   f"imports {r['import_s']:.2f} s; diagnostics {r['diagnostics']}, "
                   f"load errors {r['load_errors']}")
    if r.get("stage_s"):
        out.append(f"{n}: compile stages: " + ", ".join(
            f"{k} {v:.2f} s" for k, v in r["stage_s"].items()))
    if "clusters" in r:
        out.append(f"{n}: {r['clusters']} dynamic clusters (+{r['static_clusters']} static), "
                   f"{r['cluster_load_assignments']} ClusterLoadAssignments with {r['endpoints']} "
                   f"lb endpoints, {r['dns_endpoints']} inline (DNS) endpoints; "
                   f"{_opt(r.get('listeners'))} listeners, {_opt(r.get('route_configs'))} route "
                   f"configs with {r.get('virtual_hosts', 0)} virtual hosts, "
                   f"{_opt(r.get('secrets'))} secrets; JSON {r['json_bytes'] / 1e6:.1f} MB")
    if r.get("gc"):
        out.append(f"{n}: time in the garbage collector (gc {meta['gc']}): " + ", ".join(
            f"{k} {v['gc_s']:.2f} s ({v['full_collections']} full)" for k, v in r["gc"].items())
            + "; peak RSS after " + ", ".join(
            f"{k} {v / MIB:.0f} MiB" for k, v in r.get("rss_after", {}).items()))
    if "serialize_parts" in r:
        p = r["serialize_parts"]
        out.append(f"{n}: serialize parts: config_dump {p['config_dump_s']:.2f} s, to_dict "
                   f"{p['to_dict_s']:.2f} s, {p['dumps']} {p['dumps_s']:.2f} s")
    if "pipeline_error" in r:
        out.append(f"{n}: pipeline {r['pipeline_error']}; it was in {r.get('running') or '?'}, "
                   "at (innermost first):")
        for frame in r.get("pipeline_where", []):
            out.append(f"      {frame}")
        if not r.get("pipeline_over_budget") and r.get("stderr_tail"):
            out.append("      " + r["stderr_tail"].strip().replace("\n", "\n      "))
    if r.get("profiles_skipped"):
        out.append(f"{n}: profiles skipped to stay within the budget: "
                   + ", ".join(r["profiles_skipped"]))
    if "how" in r:
        rc = "" if r.get("returncode", 0) == 0 else f" (exit {r.get('returncode')})"
        over = " -- killed: over budget" if r.get("whole_timed_out") else ""
        out.append(f"{n}: whole command via {r['how']}{rc}{over}: {r['command']}")
        if r.get("returncode", 0) != 0 and not r.get("whole_timed_out") and r.get("stderr_tail"):
            out.append("      " + r["stderr_tail"].strip().replace("\n", "\n      "))
    elif "whole_skipped" in r:
        out.append(f"{n}: whole command not run: {r['whole_skipped']}")
    for key in targets.COMMANDS:
        c = r.get(key) or {}
        if "command" in c:
            rc = f" (exit {c['returncode']})" if c.get("failed") else ""
            out.append(f"{n}: {key}{rc}: {c['command']}; peak RSS {c['rss'] / MIB:.0f} MiB")
            if c.get("failed") and c.get("stderr_tail"):
                out.append("      " + c["stderr_tail"].strip().replace("\n", "\n      "))
    return out


def write_profiles(results: list[dict[str, Any]], startup_files: list[str]) -> str:
    """The in-process profiles go to bench/out/ too; the lines list every profile file."""
    files = list(startup_files)
    for r in results:
        for step, text in (r.get("profiles") or {}).items():
            os.makedirs(OUT_DIR, exist_ok=True)
            dest = os.path.join(OUT_DIR, f"{r['services']}-pipeline-{step}.txt")
            with open(dest, "w", encoding="utf-8") as fh:
                fh.write(f"=== cProfile (in-process): {step}, {r['services']} services ===\n{text}\n")
            files.append(dest)
        files += r.get("profile_files", [])
    shown = [os.path.relpath(f, ROOT) if os.path.isabs(f) else f for f in files]
    return "\n".join(["", "profiles:"] + [f"  {f}" for f in shown]) if shown else ""


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    import google.protobuf
    import yaml
    from google.protobuf.internal import api_implementation

    return {"proxy": PROXY, "seed": args.seed, "gc": args.gc, "budget": args.budget,
            "namespaces": args.namespaces, "replicas": args.replicas,
            "python": platform.python_version(), "protobuf": google.protobuf.__version__,
            "protobuf_impl": api_implementation.Type(), "pyyaml": yaml.__version__,
            "libyaml": bool(getattr(yaml, "__with_libyaml__", False)), "cpus": os.cpu_count(),
            "platform": platform.platform(), "git": _git_head(),
            "targets": {str(k): v for k, v in TARGETS.items()}}


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=ROOT, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, cwd=ROOT, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head + (" (src/ modified)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000", help="comma-separated service counts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--namespaces", type=int, default=5)
    ap.add_argument("--replicas", type=int, default=1, help="pods per Deployment")
    ap.add_argument("--json", action="store_true", help="write bench/out/results.json")
    ap.add_argument("--profile", nargs="?", const="compile,serialize,misses", default="",
                    help="profile into bench/out/: in-process steps load, compile, serialize; "
                         "whole commands compile-cmd, analyze, trace (cProfile), startup "
                         "(-X importtime); misses = each command whose target was missed "
                         "(default compile,serialize,misses)")
    ap.add_argument("--startup-runs", type=int, default=7,
                    help="runs of each start-up command; the median is reported (default 7)")
    ap.add_argument("--parts", action="store_true",
                    help="also time config_dump / to_dict / json.dumps separately (one more "
                         "serialization per size)")
    ap.add_argument("--top", type=int, default=15, help="rows per profile table")
    ap.add_argument("--budget", type=float, default=300,
                    help="seconds per size for generate + floor + pipeline (+ profiles) + whole "
                         "commands (compile, analyze, trace) (default 300); what does not fit is "
                         "reported as such")
    ap.add_argument("--gc", choices=("on", "off", "freeze"), default="on",
                    help="garbage collector in the pipeline worker: on (default, as the CLI runs), "
                         "off (gc.disable()), freeze (gc.freeze() after each step); an experiment "
                         "knob, the whole command is always run as is")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--skip-whole", action="store_true", help="do not run the whole command")
    ap.add_argument("--keep", metavar="DIR", help="copy the generated meshes to DIR/mesh-N")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    ap.add_argument("--_profile", default="", help=argparse.SUPPRESS)
    ap.add_argument("--_top", type=int, default=15, help=argparse.SUPPRESS)
    ap.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker == "floor":
        worker_floor(args.path)
        return 0
    if args._worker == "pipeline":
        worker_pipeline(args.path, PROXY, profile_steps=[s for s in args._profile.split(",") if s],
                        top=args._top, gc_mode=args.gc, parts=args.parts, budget=args.budget)
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.profile_steps = [s.strip() for s in args.profile.split(",") if s.strip()]
    bad = set(args.profile_steps) - {"load", "compile", "serialize", "compile-cmd", "analyze",
                                     "trace", "startup", "misses"}
    if bad:
        ap.error(f"unknown profile step(s): {', '.join(sorted(bad))}")
    # As installed: pip compiles a package's bytecode; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 would compile every module from source in every process.
    import compileall

    compileall.compile_dir(os.path.join(ROOT, "src"), quiet=1)
    meta = _meta(args)
    _log(f"start-up: {args.startup_runs} runs each of " + ", ".join(
        "meshlens " + " ".join(a) for a in targets.STARTUP))
    startup = targets.measure_startup(args.startup_runs)
    startup_rows = targets.startup_checks(startup, args.startup_runs)
    startup_files = targets.profile_startup(startup_rows, set(args.profile_steps), OUT_DIR) \
        if args.profile_steps else []
    results = []
    for size in sizes:
        t0 = time.perf_counter()
        results.append(measure(size, args))
        _log(f"[{size}] done in {time.perf_counter() - t0:.0f} s")
    print(render(results, meta, startup_rows))
    if args.profile_steps:
        print(write_profiles(results, startup_files))
    if args.json:
        os.makedirs(OUT_DIR, exist_ok=True)
        dest = os.path.join(OUT_DIR, "results.json")
        with open(dest, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "startup": startup, "startup_checks": startup_rows,
                       "results": results}, fh, indent=2)
            fh.write("\n")
        _log(f"wrote {os.path.relpath(dest)}")
    if any("pipeline_error" in r and not r.get("pipeline_over_budget") for r in results):
        return 2  # a worker crashed: a bug, not a slow run
    failed = any(not c["ok"] for r in results for c in r.get("checks", [])) or \
        any(c["ok"] is False for c in startup_rows)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
