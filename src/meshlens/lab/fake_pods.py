"""Fake workloads: one asyncio process answering HTTP/1.1 on every endpoint address of the lab.

Layer: L7 (lab). Imports: stdlib only (it runs as its own process:
``python -m meshlens.lab.fake_pods CONFIG.json``).

Each pod answers ``200`` with a JSON body naming itself (``pod``, ``namespace``, ``version``,
``port``) and the headers ``x-pod``, ``x-version``, ``x-port``. Its behaviour (set at start from
the scenario's ``workloads``, changed at run time through the control endpoint):

==============  ==========================================================================
``status``      the status code of every answer (default 200)
``latency_ms``  a fixed delay, or ``[min, max]`` for a uniform one; a request header
                ``x-delay-ms`` overrides it
``error_rate``  share of requests answered with ``error_status`` (default 503)
``reset``       close every connection with a TCP RST when a request arrives
``hang``        read requests, never answer
``down``        do not listen at all (connection refused)
==============  ==========================================================================

Like a real server (lab-notes §2): HTTP/1.1 keep-alive; anything that does not start like an
HTTP request (a TLS ClientHello, an HTTP/2 preface) gets ``400`` and the connection is closed, so
a client that speaks TLS to it fails with ``WRONG_VERSION_NUMBER`` rather than a timeout.

The process also stands in for kube-proxy: for each Service VIP (lab address) and port it
forwards TCP connections to one of the Service's endpoints, so traffic an Envoy passes through
to a VIP (``PassthroughCluster``) reaches a pod as it would in a cluster.

Control (on the Unix socket ``control_socket`` of the config, mode 0600, else on 127.0.0.1 at a
port written to the ready file): ``POST /__control`` with
``{"pods": ["name", ...] | "*", "set": {...behaviour...}}`` and ``GET /__stats`` (per pod:
requests and answers by status).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import signal
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

_METHOD_START = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
BEHAVIOUR_KEYS = frozenset({"status", "latency_ms", "error_rate", "error_status", "reset",
                            "hang", "down"})


@dataclass(slots=True)
class Pod:
    name: str
    namespace: str
    version: str
    behaviour: dict[str, Any] = field(default_factory=dict)
    #: (ip, requested port) -> bound port (differs when the pod sits behind a server sidecar)
    binds: dict[tuple[str, int], int] = field(default_factory=dict)
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def answer(self, headers: dict[str, str]) -> tuple[int | None, float]:
        """(status or None for reset/hang, delay seconds) for one request."""
        b = self.behaviour
        delay = 0.0
        lat = headers.get("x-delay-ms", b.get("latency_ms"))
        if lat is not None:
            try:
                if isinstance(lat, list | tuple):
                    delay = random.uniform(float(lat[0]), float(lat[1])) / 1000
                else:
                    delay = float(lat) / 1000
            except (TypeError, ValueError, IndexError):
                delay = 0.0
        if b.get("reset") or b.get("hang"):
            return None, delay
        status = int(b.get("status", 200))
        rate = float(b.get("error_rate", 0) or 0)
        if rate and random.random() < rate:
            status = int(b.get("error_status", 503))
        return status, delay


class _Http(asyncio.Protocol):
    """HTTP/1.1 server side of one connection (requests are answered in order)."""

    def __init__(self, pod: Pod | None, port: int, control: Control | None = None) -> None:
        self.pod, self.port, self.control = pod, port, control
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > 1 << 20:
            self._close_with(400)
            return
        self._drain()

    def _drain(self) -> None:
        while not self.busy and self.transport is not None and self.buf:
            if self.buf[0] not in _METHOD_START or self.buf.startswith(b"PRI * HTTP/2"):
                self._close_with(400)
                return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._close_with(400)
                return
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            body_end = end + 4 + length
            if headers.get("transfer-encoding", "").lower() == "chunked":
                term = self.buf.find(b"0\r\n\r\n", end + 4)
                if term < 0:
                    return
                body_end = term + 5
            if len(self.buf) < body_end:
                return
            body = self.buf[end + 4:body_end]
            self.buf = self.buf[body_end:]
            keep = headers.get("connection", "").lower() != "close" and parts[2] == "HTTP/1.1"
            self._handle(parts[0], parts[1], headers, body, keep)

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes,
                keep: bool) -> None:
        if self.control is not None:
            status, payload = self.control.handle(method, path, body)
            self._send(status, payload, {}, keep)
            return
        pod = self.pod
        assert pod is not None
        pod.requests += 1
        status, delay = pod.answer(headers)
        if status is None:
            if pod.behaviour.get("hang"):
                self.busy = True  # swallow everything that follows
                return
            pod.by_status[0] = pod.by_status.get(0, 0) + 1
            if delay:
                asyncio.get_running_loop().call_later(delay, self._reset)
                self.busy = True
            else:
                self._reset()
            return
        pod.by_status[status] = pod.by_status.get(status, 0) + 1
        payload = json.dumps({"pod": pod.name, "namespace": pod.namespace, "version": pod.version,
                              "port": self.port, "method": method, "path": path,
                              "status": status}).encode() + b"\n"
        extra = {"x-pod": pod.name, "x-version": pod.version, "x-port": str(self.port)}
        if delay:
            self.busy = True
            asyncio.get_running_loop().call_later(delay, self._later, status, payload, extra, keep)
        else:
            self._send(status, payload, extra, keep)

    def _later(self, status: int, payload: bytes, extra: dict[str, str], keep: bool) -> None:
        self.busy = False
        self._send(status, payload, extra, keep)
        self._drain()

    def _send(self, status: int, payload: bytes, extra: dict[str, str], keep: bool) -> None:
        if self.transport is None:
            return
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
                "content-type: application/json", f"content-length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in extra.items()]
        if not keep:
            head.append("connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        if not keep:
            self.transport.close()

    def _close_with(self, status: int) -> None:
        self._send(status, b"bad request\n", {}, False)
        self.buf = b""

    def _reset(self) -> None:
        t = self.transport
        if t is None:
            return
        sock = t.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()


class Control:
    """The control endpoint: change behaviours, read counters."""

    def __init__(self, pods: dict[str, Pod], farm: Farm) -> None:
        self.pods, self.farm = pods, farm

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path.startswith("/__stats"):
            data = {p.name: {"requests": p.requests,
                             "by_status": {str(k): v for k, v in sorted(p.by_status.items())},
                             "behaviour": p.behaviour,
                             "binds": [[ip, port, bound] for (ip, port), bound in p.binds.items()]}
                    for p in self.pods.values()}
            return 200, json.dumps(data).encode()
        if path.startswith("/__control") and method == "POST":
            try:
                req = json.loads(body or b"{}")
                names = list(self.pods) if req.get("pods", "*") == "*" else list(req["pods"])
                change = {k: v for k, v in dict(req.get("set", {})).items() if k in BEHAVIOUR_KEYS}
            except (ValueError, KeyError, TypeError) as exc:
                return 400, json.dumps({"error": str(exc)}).encode()
            for name in names:
                pod = self.pods.get(name)
                if pod is not None:
                    self.farm.schedule_update(pod, change, reset=bool(req.get("replace")))
            return 200, json.dumps({"changed": names}).encode()
        return 404, b"{}"


class Farm:
    """All pods of one lab and their listening sockets."""

    def __init__(self, pods: list[Pod]) -> None:
        self.pods = {p.name: p for p in pods}
        self.loop = asyncio.get_running_loop()

    async def bind_pod(self, pod: Pod) -> None:
        for (ip, port) in list(pod.binds):
            _require_loopback(ip)
            want = pod.binds[(ip, port)]
            srv = await self.loop.create_server(lambda p=pod, pt=port: _Http(p, pt), ip, want,
                                                reuse_address=True, backlog=1024)
            pod.servers.append(srv)
            pod.binds[(ip, port)] = srv.sockets[0].getsockname()[1]

    async def unbind_pod(self, pod: Pod) -> None:
        for srv in pod.servers:
            srv.close()
        pod.servers.clear()

    def schedule_update(self, pod: Pod, change: dict[str, Any], *, reset: bool) -> None:
        was_down = bool(pod.behaviour.get("down"))
        pod.behaviour = dict(change) if reset else {**pod.behaviour, **change}
        down = bool(pod.behaviour.get("down"))
        if down and not was_down:
            self.loop.create_task(self.unbind_pod(pod))
        elif was_down and not down:
            self.loop.create_task(self.bind_pod(pod))


def _require_loopback(ip: str) -> None:
    if ipaddress.ip_address(ip) not in ipaddress.ip_network("127.0.0.0/8"):
        raise SystemExit(f"fake pods bind only 127.0.0.0/8, not {ip}")


class _Forward(asyncio.Protocol):
    """kube-proxy's job for one connection to a VIP: splice it to a random endpoint."""

    def __init__(self, endpoints: list[tuple[str, int]]) -> None:
        self.endpoints = endpoints
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        ip, port = random.choice(self.endpoints)
        loop = asyncio.get_running_loop()
        try:
            peer, _ = await loop.create_connection(lambda: _Back(self), ip, port)
        except OSError:
            if self.transport is not None:
                self.transport.abort()
            return
        self.peer = peer  # type: ignore[assignment]
        for chunk in self.pending:
            peer.write(chunk)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            self.peer.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool | None:
        if self.peer is not None and self.peer.can_write_eof():
            self.peer.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()
        self.transport = None


class _Back(asyncio.Protocol):
    def __init__(self, front: _Forward) -> None:
        self.front = front

    def data_received(self, data: bytes) -> None:
        if self.front.transport is not None:
            self.front.transport.write(data)

    def eof_received(self) -> bool | None:
        t = self.front.transport
        if t is not None and t.can_write_eof():
            t.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.front.transport is not None:
            self.front.transport.close()


async def serve(config: dict[str, Any]) -> None:
    pods = []
    for spec in config["pods"]:
        pod = Pod(spec["name"], spec.get("namespace", ""), spec.get("version", ""),
                  dict(spec.get("behaviour", {})))
        for b in spec["binds"]:
            # "port" is what the pod's endpoint says; "bind" 0 asks for a free port (behind a
            # server sidecar, which owns the endpoint address itself).
            pod.binds[(b["ip"], int(b["port"]))] = int(b.get("bind", b["port"]))
        pods.append(pod)
    farm = Farm(pods)
    errors: list[str] = []
    warnings: list[str] = []
    for pod in pods:
        if pod.behaviour.get("down"):
            continue
        try:
            await farm.bind_pod(pod)
        except OSError as exc:
            errors.append(f"{pod.name}: cannot listen on {list(pod.binds)}: {exc}")
    for svc in config.get("services", []):
        _require_loopback(svc["ip"])
        eps = [(str(ip), int(port)) for ip, port in svc["endpoints"]]
        if not eps:
            continue  # kube-proxy rejects a Service without endpoints: connection refused
        try:
            await farm.loop.create_server(lambda e=eps: _Forward(e), svc["ip"], int(svc["port"]),
                                          reuse_address=True)
        except OSError as exc:  # e.g. a port below 1024 without root: passthrough only
            warnings.append(f"service {svc['ip']}:{svc['port']}: {exc}")
    control = Control(farm.pods, farm)
    if config.get("control_socket"):  # a Unix socket only its owner can reach
        where = str(config["control_socket"])
        await farm.loop.create_unix_server(lambda: _Http(None, 0, control), where)
        os.chmod(where, 0o600)
    else:
        host = config.get("control_host", "127.0.0.1")
        _require_loopback(host)
        ctrl = await farm.loop.create_server(lambda: _Http(None, 0, control), host, 0)
        where = f"{host}:{ctrl.sockets[0].getsockname()[1]}"
    ready = {"control": where, "errors": errors,
             "warnings": warnings,
             "binds": {p.name: [[ip, port, bound] for (ip, port), bound in p.binds.items()]
                       for p in pods}}
    tmp = config["ready_file"] + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(ready, f)
    os.replace(tmp, config["ready_file"])
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        farm.loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main() -> None:
    with open(sys.argv[1]) as f:
        config = json.load(f)
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
