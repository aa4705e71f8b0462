"""``meshlens lab``: run the compiled sidecar on a real Envoy with fake workloads.

Layer: L8. Imports: lab, pipeline, cli.common.

Thin: argument parsing, printing and exit codes; the work is in :mod:`meshlens.lab`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from meshlens.cli.common import Files, MeshConfigOpt, err, fail

lab_app = typer.Typer(no_args_is_help=True, help="Run the compiled sidecar on a real Envoy with "
                      "fake workloads, send traffic, see the real response flags.")

OutputOpt = Annotated[str, typer.Option("-o", "--output", help="text or json")]


def _state_path() -> Path:
    from meshlens.lab.runner import STATE_DIR

    return STATE_DIR / "state.json"


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _run(coro: Any) -> Any:
    """Run ``coro``; Ctrl-C or SIGTERM cancels it, so every ``finally`` (ending the lab's
    processes, removing its directory) runs inside the event loop, never from a signal handler."""

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await coro

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        err.print("lab stopped", markup=False)
        raise typer.Exit(130) from None


# -- up -------------------------------------------------------------------------------------------


@lab_app.command("up")
def up_cmd(
    proxy: Annotated[str, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]")],
    filename: Files = [],  # noqa: B006 - typer reads the default
    mesh_config: MeshConfigOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Recompile on file changes and push.")] = False,
    sidecars: Annotated[str, typer.Option("--sidecars", help="auto (server sidecars for injected "
                                          "endpoints) or none")] = "auto",
) -> None:
    """Start the lab and stay up (Ctrl-C ends everything); `lab send` talks to it."""
    from meshlens.pipeline import load

    if not filename:
        fail("no input: give manifests with -f FILE")
    loaded = load(filename, mesh_config=mesh_config)
    if loaded.errors:
        fail("; ".join(str(e) for e in loaded.errors))
    try:
        _run(_up(loaded, proxy, filename, mesh_config, watch, sidecars))
    except typer.Exit:
        pass  # stopped with Ctrl-C / SIGTERM: a normal end for `lab up`


async def _up(loaded: Any, proxy: str, files: list[str], mesh_config: str | None, watch: bool,
              sidecars: str) -> None:
    from meshlens.lab.localize import summarize
    from meshlens.lab.runner import STATE_DIR, Lab
    from meshlens.pipeline import load

    state = _state_path()
    if state.exists():
        try:
            pid = json.loads(state.read_text()).get("pid")
            if pid and pid != os.getpid() and _alive(int(pid)):
                fail(f"a lab is already up (pid {pid}); stop it first")
        except ValueError:
            pass
    async with Lab(loaded, proxy, sidecars=sidecars) as lab:
        d = lab.describe()
        assert lab.handle is not None
        _print(f"lab up for {proxy} in {lab.timings['ready']:.2f}s (dir {d['dir']})")
        for name, e in d["envoys"].items():
            _print(f"  envoy {name}: admin {e['admin']}  access log {e['access_log']}")
        _print(f"  capture entry (virtualOutbound): {d['entry']}  (PROXY v1 header = original "
               "destination)")
        _print(f"  fake pods control: {d['fake_pods']['control']}/__stats")
        _print("localization (rule, changes, example):")
        for rule, n, example in summarize(lab.changes()):
            _print(f"  {rule:<11} {n:>4}  {example}")
        _print("addresses: " + ", ".join(f"{k} -> {v}" for k, v in
                                         {**d["addresses"]["ips"], **d["addresses"]["names"]}.items()))
        for n in lab.nack_dicts():
            _print(f"NACK {n['type']} from {n['node']}: {n['error']}")
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        payload = {"pid": os.getpid(), "files": [str(Path(f).resolve()) if f != "-" else f
                                                 for f in files],
                   "mesh_config": mesh_config, "proxy": proxy, **lab.handle.to_state(),
                   "nacks": lab.nack_dicts(), "describe": d}
        state.write_text(json.dumps(payload))
        _print(f"send traffic: meshlens lab send http://HOST[:PORT]/PATH   (state {state})")
        try:
            mtimes = _mtimes(files)
            while True:
                await asyncio.sleep(0.2)
                lab.children.check()
                if not watch:
                    continue
                now = _mtimes(files)
                if now == mtimes:
                    continue
                mtimes = now
                new = load(files, mesh_config=mesh_config)
                if new.errors:
                    _print("not pushed: " + "; ".join(str(e) for e in new.errors))
                    continue
                push = await lab.apply(new)
                _print(f"pushed {','.join(push['changed']) or 'nothing (no change)'}: compile "
                       f"{push['compile_ms']} ms, push-to-{'NACK' if push['nacks'] else 'ACK'} "
                       f"{push['push_to_ack_ms']} ms")
                for n in push["nacks"]:
                    _print(f"NACK {n['type']}: {n['error']}")
                payload["nacks"] = lab.nack_dicts()
                state.write_text(json.dumps(payload))
        finally:
            state.unlink(missing_ok=True)


def _mtimes(files: list[str]) -> list[float]:
    out = []
    for f in files:
        p = Path(f)
        paths = sorted(p.rglob("*.y*ml")) if p.is_dir() else [p]
        out += [q.stat().st_mtime_ns if q.exists() else 0 for q in paths]
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


# -- send -----------------------------------------------------------------------------------------


@lab_app.command("send")
def send_cmd(
    url: Annotated[str, typer.Argument(help="http://host[:port]/path as the client pod calls it")],
    header: Annotated[list[str], typer.Option("-H", "--header", help="'name: value'; repeatable")] = [],  # noqa: B006
    requests: Annotated[int | None, typer.Option("-n", "--requests", help="how many")] = None,
    concurrency: Annotated[int, typer.Option("-c", "--concurrency")] = 1,
    duration: Annotated[float | None, typer.Option("--duration", help="seconds")] = None,
    output: OutputOpt = "text",
) -> None:
    """Send traffic through the running lab (`lab up`) and report flags, clusters, endpoints."""
    from meshlens.lab.addressing import Addressing
    from meshlens.lab.report import render_text
    from meshlens.lab.runner import LabHandle
    from meshlens.pipeline import compile_for, load

    state = _state_path()
    if not state.exists():
        fail("no lab is up: start one with `meshlens lab up -f FILE PROXY`")
    data = json.loads(state.read_text())
    if not _alive(int(data["pid"])):
        fail(f"the lab (pid {data['pid']}) is gone; start it again")
    loaded = load(data["files"], mesh_config=data.get("mesh_config"))
    handle = LabHandle(compile_for(loaded, data["proxy"]), Addressing.from_dict(data["addressing"]),
                       (data["entry"][0], int(data["entry"][1])), data["client_ip"],
                       Path(data["access_log"]), data["admin"],
                       {int(k): (v[0], int(v[1])) for k, v in data["gateway_entries"].items()}
                       if data.get("gateway_entries") else None)
    total = requests if requests is not None else (None if duration else 1)
    show = output == "text" and sys.stderr.isatty() and ((total or 0) >= 500 or duration)

    def progress(done: int) -> None:
        if show:
            of = f"/{total}" if total else ""
            err.print(f"\r{done}{of} requests", end="", markup=False)

    try:
        report = asyncio.run(handle.send(url, header, requests=total, duration=duration,
                                         concurrency=concurrency, progress=progress,
                                         nacks=data.get("nacks")))
    except ValueError as exc:
        fail(str(exc))
    if show:
        err.print("", markup=False)
    if output == "json":
        _print(json.dumps(report.to_dict(), indent=2))
    else:
        _print(render_text(report, title=f"{url} via {data['proxy']}"))


# -- run / verify-seed ------------------------------------------------------------------------------


@lab_app.command("run")
def run_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML", exists=True, dir_okay=False)],
    output: OutputOpt = "text",
) -> None:
    """Start a lab for SCENARIO, run its steps, check expectations, stop (exit 1 if any fails)."""
    from meshlens.lab.scenario import Scenario, render_result, run_scenario

    sc = Scenario.load(scenario)
    t0 = time.perf_counter()
    res = _run(run_scenario(sc, progress=lambda s: err.print(s, markup=False)
                                   if output == "text" else None))
    if output == "json":
        _print(json.dumps({**res.to_dict(), "seconds": round(time.perf_counter() - t0, 2)},
                          indent=2))
    else:
        _print(render_result(res))
        for rule, n, example in res.localization:
            _print(f"  localization {rule:<11} {n:>4}  {example}")
    raise typer.Exit(0 if res.ok else 1)


@lab_app.command("verify-seed")
def verify_seed_cmd(
    directory: Annotated[Path, typer.Option("--dir", help="scenarios folder")] = Path("scenarios"),
    output: OutputOpt = "text",
) -> None:
    """Run the seed's claims (scenarios with a claim:) and print its table with a measured column."""
    from meshlens.lab.seed import render_table, verify_seed

    if not directory.is_dir():
        fail(f"{directory} is not a folder of scenarios (run from the repository root or --dir)")
    rows = _run(verify_seed(directory, progress=lambda s: err.print(s, markup=False)
                                   if output == "text" else None))
    if output == "json":
        _print(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False))
    else:
        _print(render_table(rows))
    raise typer.Exit(0 if rows and all(r.ok for r in rows) else 1)
