"""Running a meshlens command as a user does, one fresh process, and measuring it.

Used by bench/run.py and bench/targets.py. Each figure is of the process as a whole (interpreter
start-up, imports, teardown): wall time, its own CPU time (user + system, from ``os.wait4``, so
it does not count other processes on a shared machine) and its peak RSS.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def meshlens_exe() -> str:
    """The ``meshlens`` console script of this interpreter's environment ('' if none)."""
    exe = os.path.join(os.path.dirname(sys.executable), "meshlens")
    if os.path.exists(exe):
        return exe
    return shutil.which("meshlens") or ""


def run_command(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Wall, CPU and peak RSS of one process running ``cmd``, stdout to /dev/null."""
    scale = 1 if sys.platform == "darwin" else 1024
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null, stderr=err, cwd=ROOT)
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    out = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * scale,
           "returncode": proc.returncode, "stderr_tail": stderr[-2000:], "command": show(cmd)}
    if timed_out:
        out["timed_out"] = True
    return out


def median_run(cmd: list[str], runs: int, timeout: float) -> dict[str, Any]:
    """``runs`` runs of ``cmd``: the median wall and CPU time, and every wall time."""
    done = [run_command(cmd, timeout) for _ in range(runs)]
    out = dict(done[len(done) // 2])
    out["wall_s"] = statistics.median(r["wall_s"] for r in done)
    out["cpu_s"] = statistics.median(r["cpu_s"] for r in done)
    out["runs_s"] = [round(r["wall_s"], 4) for r in done]
    out["returncode"] = next((r["returncode"] for r in done if r["returncode"] != 0), 0)
    return out


_PROFILED_MAIN = """
import cProfile, sys
dest, sys.argv = sys.argv[1], ["meshlens", *sys.argv[2:]]
def command():
    from meshlens.cli import main
    main()
profile = cProfile.Profile()
try:
    profile.runcall(command)
except SystemExit:
    pass
finally:
    profile.dump_stats(dest)
"""


def profile_command(args: list[str], dest: str, timeout: float, top: int = 30) -> str | None:
    """Run ``python -m meshlens ARGS`` under cProfile; write ``DEST.prof`` and ``DEST.txt``
    (top functions by cumulative and by own time). Returns the text file's path."""
    import io
    import pstats

    os.makedirs(os.path.dirname(dest), exist_ok=True)
    # Not `python -m cProfile -m meshlens`: the process entry point leaves with os._exit (no
    # teardown), before cProfile could write its file. main() is the same command without that.
    cmd = [sys.executable, "-c", _PROFILED_MAIN, dest + ".prof", *args]
    run = run_command(cmd, timeout)
    if run.get("timed_out") or not os.path.exists(dest + ".prof"):
        return None
    buf = io.StringIO()
    buf.write(f"# {show(cmd)}\n# wall {run['wall_s']:.2f} s under cProfile\n")
    stats = pstats.Stats(dest + ".prof", stream=buf)
    buf.write("-- by cumulative time --\n")
    stats.sort_stats("cumulative").print_stats(top)
    buf.write("-- by own time (tottime) --\n")
    stats.sort_stats("tottime").print_stats(top)
    with open(dest + ".txt", "w", encoding="utf-8") as fh:
        fh.write(buf.getvalue())
    return dest + ".txt"


def importtime(args: list[str], dest: str, timeout: float) -> str | None:
    """``python -X importtime -m meshlens ARGS``: each import's own and cumulative time, the
    slowest first, in ``DEST.importtime.txt``."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    cmd = [sys.executable, "-X", "importtime", "-m", "meshlens", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None
    rows = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:") and "|" in ln]

    def cumulative(line: str) -> int:
        try:
            return int(line.split("|")[1])
        except ValueError:
            return -1
    path = dest + ".importtime.txt"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# {show(cmd)}\n# import time: self [us] | cumulative | package (slowest first)\n")
        fh.write("\n".join(sorted(rows, key=cumulative, reverse=True)) + "\n")
    return path


def show(cmd: list[str]) -> str:
    return " ".join("'<pipeline code>'" if "\n" in c else c for c in cmd) + " > /dev/null"
