"""Fake workloads: real HTTP/1.1 servers on loopback with per-pod behaviour and a control port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
A, B, C = "127.211.0.1", "127.211.0.2", "127.211.0.3"


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[dict[str, str]]:
    ready = tmp_path / "ready"
    config = {"ready_file": str(ready), "pods": [
        {"name": "a", "namespace": "ns", "version": "v1", "binds": [{"ip": A, "port": 18080}]},
        {"name": "b", "version": "v2", "behaviour": {"status": 503},
         "binds": [{"ip": B, "port": 18080}]},
        {"name": "c", "behaviour": {"down": True}, "binds": [{"ip": C, "port": 18080}]},
    ], "services": [{"ip": "127.211.9.9", "port": 18080, "endpoints": [[A, 18080]]}]}
    path = tmp_path / "pods.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "meshlens.lab.fake_pods", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield json.loads(ready.read_text())
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stderr:
            proc.stderr.close()


def _get(ip: str, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://{ip}:18080{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return exc.code, dict(exc.headers), body


def test_answers_with_identity_and_keeps_alive(pods: dict[str, str]) -> None:
    status, headers, body = _get(A, "/hello")
    assert status == 200
    assert headers["x-pod"] == "a" and headers["x-version"] == "v1" and headers["x-port"] == "18080"
    assert json.loads(body)["pod"] == "a"
    with socket.create_connection((A, 18080), timeout=5) as s:  # two requests, one connection
        s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            chunk = s.recv(65536)
            assert chunk
            data += chunk


def test_behaviours_status_delay_down_and_kube_proxy(pods: dict[str, str]) -> None:
    assert _get(B)[0] == 503
    t0 = time.perf_counter()
    assert _get(A, headers={"x-delay-ms": "150"})[0] == 200
    assert time.perf_counter() - t0 >= 0.14
    with pytest.raises(OSError):
        socket.create_connection((C, 18080), timeout=2).close()
    assert json.loads(_get("127.211.9.9")[2])["pod"] == "a"  # VIP -> endpoint


def test_tls_client_hello_gets_400_and_close(pods: dict[str, str]) -> None:
    with socket.create_connection((A, 18080), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
        data = s.recv(4096)
        assert data.startswith(b"HTTP/1.1 400")
        assert s.recv(4096) in (b"",)  # closed


def test_control_endpoint_changes_behaviour(pods: dict[str, str]) -> None:
    control = pods["control"]
    body = json.dumps({"pods": ["a"], "set": {"reset": True}}).encode()
    urllib.request.urlopen(urllib.request.Request(f"http://{control}/__control", data=body),
                           timeout=5).close()
    with socket.create_connection((A, 18080), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            if not s.recv(4096):
                raise ConnectionResetError
    body = json.dumps({"pods": "*", "set": {"down": True}}).encode()
    urllib.request.urlopen(urllib.request.Request(f"http://{control}/__control", data=body),
                           timeout=5).close()
    time.sleep(0.1)
    with pytest.raises(OSError):
        socket.create_connection((A, 18080), timeout=2).close()
    with urllib.request.urlopen(f"http://{control}/__stats", timeout=5) as r:
        stats = json.loads(r.read())
    assert stats["a"]["requests"] >= 1 and stats["b"]["behaviour"]["down"] is True
