"""The targets of issue 18, measured side by side in one run, each marked MET or MISS.

Used by bench/run.py. Every figure is of a whole ``meshlens`` process as a user runs it
(bench/commands.py), on the mesh bench/gen.py generated for the size:

* ``compile -f MESH deploy/client.bench -o json``: 1,000 services < 2 s and at most 2.5x the
  bare C-YAML parse of the same files (the floor worker); 5,000 < 8 s, peak RSS < 1.5 GB;
* ``analyze -f MESH -o json`` (every injected workload): 1,000 < 8 s; 5,000 < 40 s;
* ``trace -f MESH deploy/client.bench TRACE_URL -o json``: 1,000 < 1.5 s;
* start-up: ``meshlens --help`` and ``meshlens explain flag UH`` < 0.2 s, the median of
  ``--startup-runs`` runs.

With ``--profile``, each missed target's command runs again under cProfile (start-up: under
``-X importtime``) and the profile goes to bench/out/ (git-ignored), so the miss can be explained.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from commands import importtime, median_run, meshlens_exe, profile_command, run_command

GIB = 1 << 30
MIB = 1 << 20
PROXY = "deploy/client.bench"
#: a mesh Service with a VirtualService (header match, then 90/10 over subsets v1/v2): the
#: trace crosses a route, two clusters, their endpoints and both server sidecars
TRACE_URL = "http://svc-00000.ns-00/"
STARTUP = (("--help",), ("explain", "flag", "UH"))
STARTUP_S = 0.2

#: size → {target key: limit}; keys: compile_s, compile_ratio (x floor parse), rss_bytes,
#: analyze_s, trace_s
TARGETS: dict[int, dict[str, float]] = {
    1000: {"compile_s": 2.0, "compile_ratio": 2.5, "analyze_s": 8.0, "trace_s": 1.5},
    5000: {"compile_s": 8.0, "rss_bytes": 1.5 * GIB, "analyze_s": 40.0},
}
#: the commands measured at every size, the quick one first: (arguments, exit codes that are
#: answers rather than failures, runs: the median of several for a short command)
COMMANDS: dict[str, tuple[Callable[[str], list[str]], tuple[int, ...], int]] = {
    "trace": (lambda mesh: ["trace", "-f", mesh, PROXY, TRACE_URL, "-o", "json"], (0, 1), 3),
    "analyze": (lambda mesh: ["analyze", "-f", mesh, "-o", "json"], (0, 79), 1),  # 79: findings
}


def compile_args(mesh: str) -> list[str]:
    return ["compile", "-f", mesh, PROXY, "-o", "json"]


def measure_commands(mesh: str, res: dict[str, Any], remaining: Callable[[], float]) -> None:
    """Run analyze and trace as whole commands on ``mesh``; each gets what is left of the budget."""
    exe = meshlens_exe()
    for key, (args, ok_codes, runs) in COMMANDS.items():
        if not exe:
            res[key] = {"skipped": "no meshlens console script"}
        elif remaining() < 5:
            res[key] = {"skipped": "no time left in the budget"}
        else:
            r = run_command([exe, *args(mesh)], remaining())
            if runs > 1 and not r.get("timed_out") and (runs - 1) * r["wall_s"] < remaining() - 5:
                r = median_run([exe, *args(mesh)], runs, remaining())
            r["failed"] = not r.get("timed_out") and r["returncode"] not in ok_codes
            res[key] = r


def measure_startup(runs: int) -> dict[str, Any]:
    exe = meshlens_exe()
    if not exe:
        return {"skipped": "no meshlens console script"}
    return {" ".join(args): median_run([exe, *args], runs, 30) for args in STARTUP}


def _row(what: str, limit: str, value: str, cpu: str, ok: bool | None, by: str = "") -> dict[str, Any]:
    """One target row; ``cmd`` (the command to profile on a miss) is its first word."""
    return {"what": what, "limit": limit, "value": value, "cpu": cpu, "ok": ok, "miss_by": by,
            "cmd": what.split(" ")[0].rstrip(",")}


def _secs(r: dict[str, Any], key: str = "wall_s") -> str:
    return f"{'> ' if r.get('timed_out') else ''}{r[key]:.2f} s"


def _time_row(what: str, r: dict[str, Any] | None, limit: float | None) -> dict[str, Any]:
    lim = f"< {limit:g} s" if limit is not None else "-"
    if not r or "wall_s" not in r:
        why = f"not run: {r['skipped']}" if r and "skipped" in r else "not run"
        return _row(what, lim, why, "-", False if limit is not None else None)
    ok = None
    by = ""
    if limit is not None:
        ok = not r.get("timed_out") and not r.get("failed") and r["wall_s"] < limit
        if not ok:
            by = f"+{r['wall_s'] - limit:.2f} s ({r['wall_s'] / limit:.1f}x)"
    value = _secs(r) + (f" (exit {r['returncode']})" if r.get("failed") else "")
    return _row(what, lim, value, f"{r['cpu_s']:.2f} s", ok, by)


def checks(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The target rows of one size (every command measured; MET/MISS where issue 18 sets one)."""
    n = res["services"]
    t = TARGETS.get(n, {})
    whole: dict[str, Any] | None = None
    if "whole_s" in res:
        whole = {"wall_s": res["whole_s"], "cpu_s": res.get("whole_cpu_s", 0.0),
                 "timed_out": res.get("whole_timed_out"), "returncode": res.get("returncode", 0),
                 "failed": res.get("returncode", 0) != 0}
    elif "whole_skipped" in res:
        whole = {"skipped": res["whole_skipped"]}
    out = [_time_row(f"compile -o json, {n:,} services", whole, t.get("compile_s"))]
    if "compile_ratio" in t:
        if "wall_s" in whole and "floor_s" in res:
            ratio = whole["wall_s"] / res["floor_s"]
            ok = ratio <= t["compile_ratio"] and not whole.get("failed")
            out.append(_row(f"compile -o json / bare C-YAML parse, {n:,}", f"<= {t['compile_ratio']:g}x",
                            f"{ratio:.1f}x ({whole['wall_s']:.2f} s / {res['floor_s']:.2f} s)", "-", ok,
                            "" if ok else f"+{ratio - t['compile_ratio']:.1f}x"))
        else:
            out.append(_row(f"compile -o json / bare C-YAML parse, {n:,}", f"<= {t['compile_ratio']:g}x",
                            "not measured", "-", False))
    if "rss_bytes" in t:
        peak = res.get("whole_rss", 0)
        ok = 0 < peak < t["rss_bytes"] and not res.get("whole_timed_out")
        out.append(_row(f"compile -o json peak RSS, {n:,}", f"< {t['rss_bytes'] / GIB:g} GB",
                        f"{peak / MIB:,.0f} MiB" if peak else "not measured", "-", ok,
                        "" if ok or not peak else f"+{(peak - t['rss_bytes']) / MIB:,.0f} MiB"))
    trace = res.get("trace")
    runs = f" (median of {len(trace['runs_s'])})" if trace and "runs_s" in trace else ""
    out.append(_time_row(f"trace, {n:,}{runs}", trace, t.get("trace_s")))
    out.append(_time_row(f"analyze (every proxy), {n:,}", res.get("analyze"), t.get("analyze_s")))
    return out


def startup_checks(startup: dict[str, Any], runs: int) -> list[dict[str, Any]]:
    if "skipped" in startup:
        return [_row("start-up", f"< {STARTUP_S:g} s", f"not run: {startup['skipped']}", "-", False)]
    return [_time_row(f"meshlens {name} (median of {runs})", r, STARTUP_S) for name, r in startup.items()]


def render(results: list[dict[str, Any]], startup: list[dict[str, Any]]) -> list[str]:
    """The target rows as a Markdown table (pasteable), then the other processes' CPU."""
    rows = [["target", "limit", "measured (wall)", "its CPU", "result"]]
    for r in [*startup, *(c for res in results for c in res.get("target_rows", []))]:
        mark = "-" if r["ok"] is None else ("MET" if r["ok"] else "MISS" + (f" {r['miss_by']}" if r["miss_by"] else ""))
        rows.append([r["what"], r["limit"], r["value"], r["cpu"], mark])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for res in results:
        if "other_cpu_s" in res:
            share = res["other_cpu_s"] / max(res["wall_s"], 1e-9)
            lines.append(f"{res['services']:,} services: other processes used {res['other_cpu_s']:.0f} "
                         f"CPU-s in {res['wall_s']:.0f} s ({share:.0%} of one core)"
                         + (": shared machine, wall times inflated; compare the CPU column" if share > 0.15
                            else ""))
    return lines


def profile_misses(size: int, mesh: str, res: dict[str, Any], asked: set[str], out_dir: str,
                   remaining: Callable[[], float]) -> list[str]:
    """Profile the commands whose target was missed (or that ``asked`` names) into ``out_dir``."""
    missed = {row["cmd"] for row in res.get("target_rows", []) if row["ok"] is False}
    files: list[str] = []
    jobs = {"compile": (compile_args(mesh), res.get("whole_s", 0.0)),
            **{k: (args(mesh), (res.get(k) or {}).get("wall_s", 0.0)) for k, (args, _, _) in COMMANDS.items()}}
    for key, (args, wall) in jobs.items():
        named = "compile-cmd" if key == "compile" else key  # "compile" is the in-process step
        if named not in asked and not ("misses" in asked and key in missed):
            continue
        if 3 * wall + 5 > remaining():
            files.append(f"{size}-{key}: skipped (a profile would not fit in the budget)")
            continue
        path = profile_command(args, os.path.join(out_dir, f"{size}-{key}"), remaining())
        files.append(path or f"{size}-{key}: profile did not finish")
    return files


def profile_startup(rows: list[dict[str, Any]], asked: set[str], out_dir: str) -> list[str]:
    files = []
    for args, row in zip(STARTUP, rows, strict=False):
        if "startup" in asked or ("misses" in asked and row["ok"] is False):
            path = importtime(list(args), os.path.join(out_dir, "startup-" + "-".join(args).strip("-")), 30)
            files.append(path or "startup: importtime did not finish")
    return files
