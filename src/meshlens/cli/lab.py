"""``meshlens lab``: run the compiled sidecar on a real Envoy with fake workloads.

Layer: L8. Imports: lab, pipeline, cli.common.

Thin: argument parsing, printing and exit codes; the work is in :mod:`meshlens.lab`. Signals:
Ctrl-C and SIGTERM raise :class:`meshlens.interrupts.Interrupted` wherever the command is (the
lab's ``async with`` ends its children and removes its folder on the way out); the entry point
prints one line and exits 130/143.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from meshlens import interrupts
from meshlens.cli.common import Files, MeshConfigOpt, Namespace, err, fail

lab_app = typer.Typer(no_args_is_help=True, help="Run the compiled sidecar on a real Envoy with "
                      "fake workloads, send traffic, see the real response flags.")

OutputOpt = Annotated[str, typer.Option("-o", "--output", help="text or json")]
LabOpt = Annotated[str | None, typer.Option("--lab", help="Which lab (its id, from `lab status`) "
                                            "when several are up.")]
#: `lab up --detach` waits this long for the lab to be ready.
DETACH_TIMEOUT_S = 60.0
_READY_LINE = "send traffic:"


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# -- up -------------------------------------------------------------------------------------------


@lab_app.command("up")
def up_cmd(
    proxy: Annotated[str, typer.Argument(help="POD[.NAMESPACE] or deploy/NAME[.NAMESPACE]")],
    filename: Files = [],  # noqa: B006 - typer reads the default
    namespace: Namespace = None,
    mesh_config: MeshConfigOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Recompile on file changes and push.")] = False,
    sidecars: Annotated[str, typer.Option("--sidecars", help="auto (server sidecars for injected "
                                          "endpoints) or none")] = "auto",
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Start in the background, return "
                                         "when ready; `lab down` stops it.")] = False,
) -> None:
    """Start the lab and stay up (Ctrl-C ends everything); `lab send` talks to it."""
    from meshlens.pipeline import load

    if not filename:
        fail("no input: give manifests with -f FILE")
    if detach:
        _detach(sys.argv[1:])
        return
    loaded = load(filename, mesh_config=mesh_config)
    if loaded.errors:
        fail("; ".join(str(e) for e in loaded.errors))
    interrupts.run(_up(loaded, proxy, namespace, filename, mesh_config, watch, sidecars))


async def _up(loaded: Any, proxy: str, namespace: str | None, files: list[str],
              mesh_config: str | None, watch: bool, sidecars: str) -> None:
    from meshlens.lab.localize import summarize
    from meshlens.lab.runner import Lab
    from meshlens.lab.statedir import process_start
    from meshlens.pipeline import load

    async with Lab(loaded, proxy, sidecars=sidecars, namespace=namespace) as lab:
        d = lab.describe()
        assert lab.handle is not None and lab.result is not None
        _print(f"lab {lab.dir.name.removeprefix('lab-')} up for {proxy} in "
               f"{lab.timings['ready']:.2f}s (dir {d['dir']})")
        for name, e in d["envoys"].items():
            _print(f"  envoy {name}: admin {e['admin']}  node {e['node']}  access log "
                   f"{e['access_log']}")
        _print(f"  capture entry (virtualOutbound): {d['entry']}  (PROXY v1 header = original "
               "destination)")
        _print(f"  fake pods control: {d['fake_pods']['control']}")
        _print("  (admin and control are Unix sockets only you can open: curl --unix-socket "
               "PATH http://lab/stats)")
        _print("localization (rule, changes, example):")
        for rule, n, example in summarize(lab.changes()):
            _print(f"  {rule:<11} {n:>4}  {example}")
        _print("addresses: " + ", ".join(f"{k} -> {v}" for k, v in
                                         {**d["addresses"]["ips"], **d["addresses"]["names"]}.items()))
        envoys = {name: {"pid": e.child.proc.pid, "start": process_start(e.child.proc.pid),
                         "admin": e.admin, "node": lab.node_ids[name],
                         "access_log": str(e.access_log)} for name, e in lab.envoys.items()}
        payload = {"status": "up", "proxy": proxy, "namespace": lab.result.proxy.namespace,
                   "namespace_option": namespace,
                   "files": [str(Path(f).resolve()) if f != "-" else f for f in files],
                   "mesh_config": mesh_config, **lab.handle.to_state(), "envoys": envoys,
                   "nacks": lab.nack_dicts(), "describe": d, "started": time.time()}
        state = lab.write_state(payload)
        _print(f"{_READY_LINE} meshlens lab send http://HOST[:PORT]/PATH   (state {state})")
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
            with interrupts.raising():
                new = load(files, mesh_config=mesh_config)
            if new.errors:
                for e in new.errors:
                    err.print(f"error: not pushed: {e}", markup=False)
                continue
            try:
                push = await lab.apply(new)
            except Exception as exc:  # e.g. the proxy is gone from the new manifests
                err.print(f"error: not pushed: {exc}", markup=False)
                continue
            _print(f"pushed {','.join(push['changed']) or 'nothing (no change)'}: compile "
                   f"{push['compile_ms']} ms, push-to-{'NACK' if push['nacks'] else 'ACK'} "
                   f"{push['push_to_ack_ms']} ms")
            for n in push["nacks"]:
                err.print(f"error: Envoy rejected the edit: NACK {n['type']} from envoy "
                          f"{n['node']}: {n['error']}", markup=False)
            payload["nacks"] = lab.nack_dicts()
            lab.write_state(payload)


def _mtimes(files: list[str]) -> list[float]:
    out = []
    for f in files:
        p = Path(f)
        paths = sorted(p.rglob("*.y*ml")) if p.is_dir() else [p]
        out += [q.stat().st_mtime_ns if q.exists() else 0 for q in paths]
    return out


def _detach(args: list[str]) -> None:
    """Run the same `lab up` in the background and return once it is ready (or failed)."""
    import tempfile

    from meshlens.lab.statedir import runtime_root

    argv = [a for a in args if a not in ("--detach", "-d")]
    fd, log = tempfile.mkstemp(prefix="detach-", suffix=".log", dir=runtime_root())
    try:
        child = subprocess.Popen([sys.executable, "-m", "meshlens", *argv], stdout=fd,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = time.monotonic() + DETACH_TIMEOUT_S
        text = ""
        while True:
            text = Path(log).read_text(errors="replace")
            if any(line.startswith(_READY_LINE) for line in text.splitlines()):
                break
            code = child.poll()
            if code is not None:
                sys.stdout.write(text)
                fail(f"the lab did not start (exit {code})", 1)
            if time.monotonic() > deadline:
                child.terminate()
                sys.stdout.write(text)
                fail(f"the lab was not ready after {DETACH_TIMEOUT_S:.0f}s; stopped it", 1)
            time.sleep(0.05)
        sys.stdout.write(text)
        _print(f"running in the background (pid {child.pid}); stop it with `meshlens lab down`")
    finally:
        os.close(fd)
        Path(log).unlink(missing_ok=True)  # the lab keeps writing to the open, unlinked file


# -- status / down --------------------------------------------------------------------------------


def _labs() -> list[Any]:
    from meshlens.lab.statedir import find_labs

    return find_labs()


def _pick(lab_id: str | None, namespace: str | None) -> Any:
    """The one live lab meant (by --lab and -n), or a clear error."""
    labs = [x for x in _labs() if (lab_id is None or x.id == lab_id) and
            (namespace is None or x.state.get("namespace") == namespace)]
    live = [x for x in labs if x.live]
    if not live:
        dead = [x for x in labs if x.problem and "starting" not in x.problem]
        if dead:
            fail(f"{dead[0].problem}: the lab {dead[0].id} is not running; start it again "
                 "(`meshlens lab up`)", 1)
        which = f" {lab_id}" if lab_id else (f" in namespace {namespace}" if namespace else "")
        fail(f"no lab{which} is up: start one with `meshlens lab up -f FILE PROXY`", 1)
    if len(live) > 1:
        fail(f"{len(live)} labs are up ({', '.join(x.id for x in live)}): choose one with --lab ID")
    return live[0]


@lab_app.command("status")
def status_cmd(output: OutputOpt = "text") -> None:
    """List the labs of this user: id, proxy, pid, Envoys' admin addresses (exit 1 if none is up)."""
    labs = _labs()
    rows = [{"id": x.id, "up": x.live, "problem": x.problem, "pid": x.pid,
             "proxy": x.state.get("proxy"), "namespace": x.state.get("namespace"),
             "dir": str(x.dir), "entry": x.state.get("entry"),
             "envoys": {n: e.get("admin") for n, e in (x.state.get("envoys") or {}).items()
                        if isinstance(e, dict)},
             "nacks": len(x.state.get("nacks") or []),
             "uptime_s": round(time.time() - x.state["started"], 1)
             if isinstance(x.state.get("started"), (int, float)) else None} for x in labs]
    if output == "json":
        _print(json.dumps(rows, indent=2))
    elif not rows:
        _print("no lab is up")
    else:
        for r in rows:
            state = "up" if r["up"] else f"not running ({r['problem']})"
            _print(f"lab {r['id']}: {state}; proxy {r['proxy']}; pid {r['pid']}; "
                   f"uptime {r['uptime_s']}s; NACKs {r['nacks']}; dir {r['dir']}")
            for name, admin in r["envoys"].items():
                _print(f"  envoy {name}: admin {'unix:' if str(admin).startswith('/') else ''}"
                       f"{admin}")
    raise typer.Exit(0 if any(r["up"] for r in rows) else 1)


@lab_app.command("down")
def down_cmd(lab: LabOpt = None, namespace: Namespace = None,
             timeout: Annotated[float, typer.Option("--timeout", help="seconds")] = 20.0) -> None:
    """Stop a lab started with `lab up --detach` (or in another terminal); remove its folder."""
    import shutil

    for dead in [x for x in _labs() if not x.live and "starting" not in x.problem]:
        shutil.rmtree(dead.dir, ignore_errors=True)
        _print(f"removed the folder of lab {dead.id} ({dead.problem})")
    target = _pick(lab, namespace)
    os.kill(target.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while target.dir.exists():
        if time.monotonic() > deadline:
            fail(f"lab {target.id} (pid {target.pid}) did not stop within {timeout:.0f}s", 1)
        time.sleep(0.05)
    _print(f"lab {target.id} stopped")


# -- send -----------------------------------------------------------------------------------------


@lab_app.command("send")
def send_cmd(
    url: Annotated[str, typer.Argument(help="http://host[:port]/path as the client pod calls it")],
    header: Annotated[list[str], typer.Option("-H", "--header", help="'name: value'; repeatable")] = [],  # noqa: B006
    requests: Annotated[int | None, typer.Option("--requests", "-c", min=1,
                                                 help="how many requests")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1,
                                             help="connections in parallel")] = 1,
    duration: Annotated[float | None, typer.Option("--duration", help="seconds")] = None,
    namespace: Annotated[str | None, typer.Option(
        "-n", "--namespace", help="Namespace of the lab's PROXY (picks the lab).")] = None,
    lab: LabOpt = None,
    output: OutputOpt = "text",
) -> None:
    """Send traffic through the running lab (`lab up`) and report flags, clusters, endpoints.

    Counters in the report are this send's own (the increase during it)."""
    from meshlens.lab.addressing import Addressing
    from meshlens.lab.report import render_text
    from meshlens.lab.handle import LabHandle
    from meshlens.pipeline import compile_for, load

    info = _pick(lab, namespace)
    data = info.state
    loaded = load([str(f) for f in data.get("files") or []],
                  mesh_config=data.get("mesh_config") if isinstance(data.get("mesh_config"), str)
                  else None)
    try:
        handle = LabHandle(compile_for(loaded, str(data["proxy"]),
                                       namespace=data.get("namespace_option")),
                           Addressing.from_dict(data["addressing"]),
                           (data["entry"][0], int(data["entry"][1])), str(data["client_ip"]),
                           Path(data["access_log"]), data["envoys"]["client"]["admin"],
                           {int(k): (v[0], int(v[1])) for k, v in data["gateway_entries"].items()}
                           if data.get("gateway_entries") else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        fail(f"the state file of lab {info.id} is malformed ({exc}); stop it with `meshlens lab "
             "down`")
    total = requests if requests is not None else (None if duration else 1)
    show = output == "text" and sys.stderr.isatty() and ((total or 0) >= 500 or duration)

    def progress(done: int) -> None:
        if show:
            of = f"/{total}" if total else ""
            err.print(f"\r{done}{of} requests", end="", markup=False)

    try:
        report = interrupts.run(handle.send(url, header, requests=total, duration=duration,
                                         concurrency=concurrency, progress=progress,
                                         nacks=data.get("nacks")))
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"the lab {info.id} stopped answering ({exc}); see `meshlens lab status`", 1)
    if show:
        err.print("", markup=False)
    if output == "json":
        _print(json.dumps(report.to_dict(), indent=2))
    else:
        _print(render_text(report, title=f"{url} via {data['proxy']} (lab {info.id})"))


# -- run / verify-seed ------------------------------------------------------------------------------


@lab_app.command("run")
def run_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML (relative paths in it are "
                                             "resolved against its folder)")],
    output: OutputOpt = "text",
) -> None:
    """Start a lab for SCENARIO, run its steps, check expectations, stop (exit 1 if any fails)."""
    from meshlens.lab.scenario import Scenario, render_result, run_scenario
    from meshlens.lab.scenario_schema import ScenarioError

    try:
        sc = Scenario.load(scenario)
    except ScenarioError as exc:
        for e in exc.errors:
            err.print(str(e), markup=False)
        raise typer.Exit(2) from None
    t0 = time.perf_counter()
    res = interrupts.run(run_scenario(sc, progress=lambda s: err.print(s, markup=False)
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
    rows = interrupts.run(verify_seed(directory, progress=lambda s: err.print(s, markup=False)
                                   if output == "text" else None))
    if output == "json":
        _print(json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False))
    else:
        _print(render_table(rows))
    raise typer.Exit(0 if rows and all(r.ok for r in rows) else 1)
