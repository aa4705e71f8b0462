"""Time ``meshlens diff`` on two versions of the generated mesh (bench/gen.py).

The new version changes one VirtualService's weights (90/10 → 50/50), the kind of change a pull
request makes. Each measurement is a fresh ``meshlens diff`` process; CPU time of the process
and wall time are reported, with the other processes' CPU use during the run (a busy machine
shows). Run by hand: ``.venv/bin/python bench/diff_bench.py [--services 1000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def _cpu_total() -> float:
    with open("/proc/stat") as fh:
        parts = [float(x) for x in fh.readline().split()[1:]]
    return sum(parts) - parts[3] - parts[4]  # busy jiffies (not idle, not iowait)


def _run(args: list[str]) -> tuple[float, float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, t0 = _cpu_total(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "meshlens", "diff", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    others = max(0.0, (_cpu_total() - busy0) / os.sysconf("SC_CLK_TCK") - cpu)
    if proc.returncode not in (0, 1):
        raise SystemExit(proc.stderr)
    return wall, cpu, others, proc.stdout.splitlines()[1] if proc.stdout else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshlens-diff-bench-") as tmp:
        mesh = Path(tmp) / "mesh"
        subprocess.run([sys.executable, str(HERE / "gen.py"), "--services", str(args.services),
                        "--out", str(mesh)], check=True, capture_output=True)
        docs = list(yaml.safe_load_all((mesh / "04-virtualservices.yaml").read_text()))
        for rule in docs[0]["spec"].get("http", []) + docs[0]["spec"].get("tcp", []):
            if len(rule.get("route", [])) == 2:
                rule["route"][0]["weight"], rule["route"][1]["weight"] = 50, 50
                break
        new = Path(tmp) / "vs-new.yaml"
        new.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        common = [x for p in sorted(mesh.iterdir()) if "virtualservices" not in p.name for x in ("-f", str(p))]
        sides = ["--old", str(mesh / "04-virtualservices.yaml"), "--new", str(new)]
        runs = [("one proxy (deploy/client.bench), no findings delta", ["--proxy", "deploy/client.bench", "--no-risk"]),
                ("every proxy, no findings delta", ["--no-risk"]),
                ("every proxy, with the findings delta", [])]
        print(f"| services | what | wall | CPU (this process) | other processes' CPU | result |")
        print("|---|---|---|---|---|---|")
        for title, extra in runs:
            wall, cpu, others, line = _run(common + sides + extra)
            print(f"| {args.services:,} | {title} | {wall:.1f} s | {cpu:.1f} s | {others:.1f} s | {line} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
