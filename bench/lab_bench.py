#!/usr/bin/env python3
"""meshlens lab benchmark: start-to-ready, push-to-ACK, and the load generator against wrk.

Usage:
    .venv/bin/python bench/lab_bench.py                 # everything (~1 min)
    .venv/bin/python bench/lab_bench.py --json          # + machine-readable figures on stdout
    .venv/bin/python bench/lab_bench.py --skip-wrk --changes 50 --seconds 3

Figures (targets of issue 7 in brackets):

1. **start to ready** [< 3 s] for the seed example (client sidecar + 3 server sidecars + fake
   pods + ADS): in-process ``Lab(...).start()`` from compile to every Envoy LIVE with every type
   ACKed; and the whole ``meshlens lab up`` command, from spawning the interpreter to its state
   file (imports included). Median and max of ``--runs``.
2. **push-to-ACK** [< 50 ms] over ``--changes`` edits of the manifest file (the route weights
   flip between 90/10 and 80/20): ``push`` is the snapshot handed to the ADS server until Envoy's
   ACK; ``file->ACK`` adds reading and compiling the file and localizing (what ``lab up --watch``
   does after it notices the change; its polling interval, 0.2 s, is not included).
3. **requests/s** [>= 70 % of wrk] through the same client Envoy: the built-in load generator
   and ``wrk`` (Debian package) on the lab-only direct entry of listener ``0.0.0.0_80`` (same
   filter chains; wrk cannot write the PROXY header of the capture entry), ``--seconds`` each,
   ``--connections`` connections, header ``x-canary: v2`` (client -> mTLS -> server sidecar ->
   app). The load generator through the capture entry (PROXY header) is shown too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from meshlens.lab.loadgen import Target, run_load  # noqa: E402
from meshlens.lab.runner import Lab  # noqa: E402
from meshlens.pipeline import load  # noqa: E402

SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"
PROXY = "deploy/client.mesh-demo"


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2),
            "min": round(min(values), 2), "n": len(values)}


async def start_to_ready(runs: int) -> dict[str, object]:
    inproc = []
    for _ in range(runs):
        t0 = time.perf_counter()
        lab = Lab(load([str(SEED)]), PROXY)
        try:
            await lab.start()
            inproc.append(time.perf_counter() - t0)
        finally:
            await lab.close()
    whole = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "MESHLENS_LAB_STATE_DIR": tmp,
                   "PYTHONPATH": str(ROOT / "src")}
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "meshlens", "lab", "up", "-f",
                                     str(SEED), PROXY], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            state = Path(tmp) / "state.json"
            try:
                deadline = time.monotonic() + 30
                while not state.exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
                whole.append(time.perf_counter() - t0)
            finally:
                proc.terminate()
                proc.wait(20)
    return {"in_process_s": _stats(inproc), "lab_up_command_s": _stats(whole)}


async def push_to_ack(changes: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llm-server.yaml"
        text = SEED.read_text()
        path.write_text(text)
        push, total, compile_ms = [], [], []
        async with Lab(load([str(path)]), PROXY) as lab:
            for i in range(changes):
                a, b = (80, 20) if i % 2 == 0 else (90, 10)
                path.write_text(text.replace("weight: 90", f"weight: {a}")
                                .replace("weight: 10", f"weight: {b}"))
                t0 = time.perf_counter()
                result = await lab.apply(load([str(path)]))
                t1 = time.perf_counter()
                assert result["changed"] == ["RDS"] and not result["nacks"], result
                push.append(result["push_to_ack_ms"])
                compile_ms.append(result["compile_ms"])
                # file read + compile + localize + push + ACK
                total.append((t1 - t0) * 1000)
    return {"push_to_ack_ms": _stats(push), "file_to_ack_ms": _stats(total),
            "compile_ms": _stats(compile_ms)}


def _wrk(entry: tuple[str, int], seconds: float, connections: int) -> dict[str, object]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"error": "wrk is not installed (apt-get install wrk)"}
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
                          "-H", "Host: llm-server.mesh-demo", "-H", "x-canary: v2",
                          f"http://{entry[0]}:{entry[1]}/"], capture_output=True, text=True,
                         timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    p50 = re.search(r"50%\s+(\S+)", out.stdout)
    p99 = re.search(r"99%\s+(\S+)", out.stdout)
    return {"rps": float(m.group(1)) if m else None, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50": p50.group(1) if p50 else None, "p99": p99.group(1) if p99 else None}


def _loadgen_process(entry: str, seconds: float, connections: int,
                     proxy: str | None) -> dict[str, object]:
    cmd = [sys.executable, "-m", "meshlens.lab.loadgen", entry, "--host", "llm-server.mesh-demo",
           "-H", "x-canary: v2", "-d", str(seconds), "-c", str(connections)]
    if proxy:
        cmd += ["--proxy", proxy]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, env=env)
    if res.returncode != 0:
        return {"error": res.stderr[-500:]}
    return json.loads(res.stdout)


async def throughput(seconds: float, connections: int, skip_wrk: bool) -> dict[str, object]:
    async with Lab(load([str(SEED)]), PROXY, direct_entries=True) as lab:
        assert lab.handle is not None
        direct = lab.direct["0.0.0.0_80"]
        headers = (("x-canary", "v2"),)
        warm = Target(direct, "llm-server.mesh-demo", headers=headers)
        await run_load(warm, requests=2000, concurrency=connections)
        out: dict[str, object] = {"connections": connections, "seconds": seconds,
                                  "direct_entry": f"{direct[0]}:{direct[1]}"}
        if not skip_wrk:
            out["wrk"] = await asyncio.to_thread(_wrk, direct, seconds, connections)
        # in a process of its own, like wrk (and like `meshlens lab send`)
        out["loadgen_direct"] = await asyncio.to_thread(
            _loadgen_process, f"{direct[0]}:{direct[1]}", seconds, connections, None)
        res = await run_load(Target(direct, "llm-server.mesh-demo", headers=headers),
                             duration=seconds, concurrency=connections)
        out["loadgen_direct_in_lab_process"] = {"rps": round(res.rps, 1)}
        capture = lab.handle.target("http://llm-server.mesh-demo/", ["x-canary: v2"])
        assert capture.proxy is not None
        out["loadgen_capture"] = await asyncio.to_thread(
            _loadgen_process, f"{capture.entry[0]}:{capture.entry[1]}", seconds, connections,
            ",".join(map(str, capture.proxy)))
        wrk = out.get("wrk")
        if isinstance(wrk, dict) and wrk.get("rps"):
            out["loadgen_vs_wrk"] = round(out["loadgen_direct"]["rps"] / wrk["rps"], 3)  # type: ignore[index]
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--skip-wrk", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = {
        "start_to_ready": await start_to_ready(args.runs),
        "push_to_ack": await push_to_ack(args.changes),
        "throughput": await throughput(args.seconds, args.connections, args.skip_wrk),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    s = results["start_to_ready"]
    print(f"start to ready (seed, 4 Envoys): in-process {s['in_process_s']} s; "
          f"`meshlens lab up` {s['lab_up_command_s']} s   [target < 3 s]")
    p = results["push_to_ack"]
    print(f"push-to-ACK over {args.changes} changes: {p['push_to_ack_ms']} ms; "
          f"file->ACK {p['file_to_ack_ms']} ms   [target < 50 ms]")
    t = results["throughput"]
    print(f"requests/s, {t['connections']} connections, {t['seconds']} s each: wrk {t.get('wrk')}; "
          f"loadgen direct {t['loadgen_direct']}; loadgen via capture {t['loadgen_capture']}; "
          f"ratio {t.get('loadgen_vs_wrk')}   [target >= 0.7]")


if __name__ == "__main__":
    asyncio.run(main())
