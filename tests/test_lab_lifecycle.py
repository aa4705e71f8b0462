"""The lab's life: up (foreground and --detach), status, send, down; signals; nothing left behind.

Issue 11 (lab state), issue 12 items 3, 6 and 7, issue 14 ("the lab runs any pod").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, "MESHLENS_LAB_STATE_DIR": str(state), "PYTHONPATH": str(ROOT / "src")}


def _meshlens(state: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], env=_env(state),
                          capture_output=True, text=True, timeout=timeout)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    # a zombie is dead too (its parent, the lab, has not reaped it yet)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_dead(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not all(_dead(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if not _dead(p)]}"
        time.sleep(0.05)


def _processes_mentioning(text: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def test_detach_status_send_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = _meshlens(state, "lab", "up", "--detach", "-f", str(SEED), "deploy/client.mesh-demo")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "lab " in up.stdout and "send traffic:" in up.stdout and "running in the background" \
        in up.stdout
    try:
        status = _meshlens(state, "lab", "status", "-o", "json")
        assert status.returncode == 0, status.stderr
        [lab] = json.loads(status.stdout)
        assert lab["up"] and lab["proxy"] == "deploy/client.mesh-demo"
        assert lab["namespace"] == "mesh-demo"
        lab_dir = Path(lab["dir"])
        assert lab_dir.parent == state and (lab_dir.stat().st_mode & 0o777) == 0o700
        data = json.loads((lab_dir / "state.json").read_text())
        assert (os.stat(lab_dir / "state.json").st_mode & 0o777) == 0o600
        pids = [e["pid"] for e in data["envoys"].values()] + [data["pid"]]
        # issue 12 item 11: what hands out keys or controls processes is a Unix socket, 0600
        sockets = [Path(e["admin"]) for e in data["envoys"].values()]
        sockets += [lab_dir / "ads.sock", lab_dir / "ctl.sock"]
        for sock in sockets:
            assert sock.is_socket() and sock.parent == lab_dir, sock
            assert (sock.stat().st_mode & 0o777) == 0o600, sock
        assert all(a.startswith("/") for a in lab["envoys"].values())
        # the request count is --requests/-c; -n is the namespace, as in every other command
        for _ in range(2):
            send = _meshlens(state, "lab", "send", "http://llm-server.mesh-demo/", "-H",
                             "x-canary: v2", "-c", "10", "--concurrency", "3", "-n", "mesh-demo",
                             "-o", "json")
            assert send.returncode == 0, send.stderr
            report = json.loads(send.stdout)
            cluster = "outbound|80|v2|llm-server.mesh-demo.svc.cluster.local"
            assert report["clusters"] == {cluster: 10} and report["status"] == {"200": 10}
            # counters are per send: the second send does not add up the first one's
            assert report["stats"][cluster]["upstream_rq_total"] == 10
        other = _meshlens(state, "lab", "send", "http://llm-server.mesh-demo/", "-n", "elsewhere")
        assert other.returncode == 1 and "no lab in namespace elsewhere is up" in other.stderr
        down = _meshlens(state, "lab", "down")
        assert down.returncode == 0, down.stderr
        assert f"lab {lab['id']} stopped" in down.stdout
        _wait_dead(pids)
        assert list(state.iterdir()) == []  # no folder, no key, no state file left
    finally:
        _meshlens(state, "lab", "down")
    after = _meshlens(state, "lab", "status")
    assert after.returncode == 1 and "no lab is up" in after.stdout
    send = _meshlens(state, "lab", "send", "http://llm-server.mesh-demo/")
    assert send.returncode == 1 and "no lab is up" in send.stderr


def test_foreground_up_ends_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = subprocess.Popen([sys.executable, "-m", "meshlens", "lab", "up", "-f", str(SEED),
                           "deploy/client.mesh-demo"], env=_env(state), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        data: dict = {}
        while data.get("status") != "up":
            assert up.poll() is None, up.communicate()
            assert time.monotonic() < deadline, "lab up did not become ready"
            time.sleep(0.05)
            for f in state.glob("lab-*/state.json"):
                try:
                    data = json.loads(f.read_text())
                except ValueError:
                    pass
        pids = [e["pid"] for e in data["envoys"].values()]
    finally:
        up.send_signal(signal.SIGTERM)
        out, errs = up.communicate(timeout=20)
    assert up.returncode == 143, errs
    assert errs.strip().splitlines()[-1] == "terminated (SIGTERM)" and "Traceback" not in errs
    assert "admin unix:" in out
    _wait_dead(pids)
    assert list(state.iterdir()) == []


def _big_mesh(path: Path, services: int = 400) -> Path:
    docs = ["apiVersion: v1\nkind: Namespace\nmetadata: {name: big, labels: {istio-injection: "
            "enabled}}",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: client, namespace: big}\n"
            "spec:\n  selector: {matchLabels: {app: client}}\n  template:\n    metadata: "
            "{labels: {app: client}}\n    spec: {containers: [{name: c, image: curl}]}"]
    for i in range(services):
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: big}}\n"
                    f"spec:\n  selector: {{app: s{i}}}\n  ports: [{{name: http, port: 80, "
                    f"targetPort: 8080}}]")
        docs.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: s{i}, namespace: "
                    f"big}}\nspec:\n  selector: {{matchLabels: {{app: s{i}}}}}\n  template:\n"
                    f"    metadata: {{labels: {{app: s{i}}}}}\n    spec: {{containers: [{{name: "
                    f"a, image: x, ports: [{{containerPort: 8080}}]}}]}}")
    path.write_text("\n---\n".join(docs) + "\n")
    return path


def _importing(pid: int, timeout: float = 10) -> None:
    """Wait until ``pid`` is importing meshlens' dependencies (PyYAML's C module is mapped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "_yaml" in Path(f"/proc/{pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.002)
    raise AssertionError("the command never got to its imports")


@pytest.mark.parametrize(("sig", "delay", "code", "line"), [
    (signal.SIGINT, None, 130, "interrupted (Ctrl-C)"),   # while Python imports meshlens
    (signal.SIGINT, 0.6, 130, "interrupted (Ctrl-C)"),    # while loading / compiling
    (signal.SIGTERM, 1.2, 143, "terminated (SIGTERM)"),   # compiling or starting the lab
])
def test_signals_at_any_moment_exit_cleanly(tmp_path: Path, sig: int, delay: float | None,
                                            code: int, line: str) -> None:
    """Issue 12 item 6: a signal before asyncio's handlers exist is not ignored, no traceback."""
    state = tmp_path / "state"
    mesh = _big_mesh(tmp_path / "big.yaml")
    up = subprocess.Popen([sys.executable, "-m", "meshlens", "lab", "up", "-f", str(mesh),
                           "deploy/client.big", "--sidecars", "none"], env=_env(state),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if delay is None:
        _importing(up.pid)
    else:
        time.sleep(delay)
    t0 = time.monotonic()
    up.send_signal(sig)
    _out, errs = up.communicate(timeout=30)
    assert up.returncode == code, errs
    assert time.monotonic() - t0 < 10
    assert errs.strip().splitlines() == [line], errs
    _wait_dead(_processes_mentioning(str(state)))
    assert not list(state.glob("lab-*")) if state.exists() else True


def test_compile_is_interruptible_too(tmp_path: Path) -> None:
    # large enough that the signal at 0.8 s lands while loading or compiling (600 services
    # compile in ~0.7 s since the serializer streams and the process skips its teardown)
    mesh = _big_mesh(tmp_path / "big.yaml", services=3000)
    p = subprocess.Popen([sys.executable, "-m", "meshlens", "compile", "-f", str(mesh),
                          "deploy/client.big"], env=_env(tmp_path), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
    p.send_signal(signal.SIGTERM)
    _out, errs = p.communicate(timeout=30)
    assert p.returncode == 143 and errs.strip() == "terminated (SIGTERM)", errs


def _wait_up(state: Path, proc: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "lab up ended early"
        assert time.monotonic() < deadline, "lab up did not become ready"
        for f in state.glob("lab-*/state.json"):
            try:
                data = json.loads(f.read_text())
            except ValueError:
                continue
            if data.get("status") == "up":
                return data
        time.sleep(0.05)


def test_watch_prints_rejected_edits_as_errors(tmp_path: Path) -> None:
    state = tmp_path / "state"
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text(SEED.read_text())
    errs_path = tmp_path / "stderr.txt"
    with open(errs_path, "w") as errs:
        up = subprocess.Popen([sys.executable, "-m", "meshlens", "lab", "up", "--watch", "-f",
                               str(mesh), "deploy/client.mesh-demo"], env=_env(state),
                              stdout=subprocess.DEVNULL, stderr=errs, text=True)
        try:
            _wait_up(state, up)
            mesh.write_text(SEED.read_text() + "\n---\nkind: [broken\n")
            deadline = time.monotonic() + 15
            while "error: not pushed:" not in errs_path.read_text():
                assert time.monotonic() < deadline, errs_path.read_text()
                time.sleep(0.1)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(20)
    lines = errs_path.read_text().splitlines()
    assert any(ln.startswith("error: not pushed: ") and "mesh.yaml:" in ln for ln in lines)
    assert up.returncode == 130 and lines[-1] == "interrupted (Ctrl-C)"
