"""The lab's HTTP/1.1 load generator: bounded, loopback only, keep-alive, N connections.

Layer: L7 (lab). Imports: lab.addressing, stdlib.

Each of ``concurrency`` workers holds one keep-alive connection to the lab's capture entry (the
client sidecar's virtualOutbound on 127.0.0.1). A new connection starts with a PROXY v1 header
naming the client pod's lab address as the source and the URL's lab address and port as the
original destination: the stand-in for iptables' REDIRECT (see :mod:`meshlens.lab.localize`).
Each request carries ``x-request-id: <run>-<n>``, so the report can join it with its access log
line; the PROXY source port is unique per connection, so a connection that got no HTTP answer
(TCP passthrough, reset) is joined by ``DOWNSTREAM_REMOTE_ADDRESS``.

Bounds: at most :data:`MAX_REQUESTS` requests and :data:`MAX_DURATION` seconds per run, a
per-request timeout, and every address checked to be in 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from meshlens.lab.addressing import require_loopback

MAX_REQUESTS = 2_000_000
MAX_DURATION = 600.0
MAX_CONCURRENCY = 1024
_src_ports = itertools.count(20_000)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send and what: the entry address, the PROXY header, the request line."""

    entry: tuple[str, int]
    host: str
    path: str = "/"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    proxy: tuple[str, str, int] | None = None  # (source lab IP, destination lab IP, port)


@dataclass(slots=True)
class Sample:
    """One request: HTTP status (0: no answer), seconds, ids to join with the access log."""

    request_id: str
    status: int
    latency: float
    source: str
    error: str = ""
    pod: str = ""


@dataclass(slots=True)
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.samples) / self.elapsed if self.elapsed > 0 else 0.0


class _Conn(asyncio.Protocol):
    """One keep-alive client connection; parses one response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self.head_end = -1
        self.need = -1
        self.status = 0
        self.headers = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(str(exc) if exc else "connection closed"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._parse()

    def _parse(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        if self.head_end < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head_end = end + 4
            head = bytes(self.buf[:end])
            try:
                self.status = int(head[9:12])
            except ValueError:
                self.waiter.set_exception(ConnectionError("bad status line"))
                return
            self.headers = head.lower()
            i = self.headers.find(b"content-length:")
            if i >= 0:
                j = self.headers.find(b"\r\n", i)
                self.need = int(self.headers[i + 15:j if j > 0 else None])
            elif b"transfer-encoding: chunked" in self.headers:
                self.need = -2
            else:
                self.need = 0 if self.status in (204, 304) else -3
        if self.need >= 0:
            total = self.head_end + self.need
            if len(self.buf) < total:
                return
        elif self.need == -2:
            term = self.buf.find(b"0\r\n\r\n", self.head_end)
            if term < 0:
                return
            total = term + 5
        else:
            return  # body until close; handled by connection_lost
        head = self.headers
        del self.buf[:total]
        self.head_end, self.need = -1, -1
        self.waiter.set_result((self.status, head))


async def run_load(target: Target, *, requests: int | None = None, duration: float | None = None,
                   concurrency: int = 1, timeout: float = 10.0, run_id: str = "ml",
                   progress: Callable[[int], None] | None = None) -> LoadResult:
    """Send requests until ``requests`` are done or ``duration`` seconds passed (both bounded).

    Args:
        target: the entry and the request.
        requests: how many (default 1 when no duration is given).
        duration: seconds to run.
        concurrency: connections (one request in flight on each).
        timeout: seconds for connect and for each answer.
        run_id: prefix of the ``x-request-id`` values.
        progress: called with the number of finished requests every ~0.2 s.
    """
    require_loopback(target.entry[0])
    if target.proxy is not None:
        require_loopback(target.proxy[0])
        require_loopback(target.proxy[1])
    if requests is None and duration is None:
        requests = 1
    total = min(requests, MAX_REQUESTS) if requests is not None else MAX_REQUESTS
    limit = min(duration, MAX_DURATION) if duration is not None else MAX_DURATION
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY, total))
    loop = asyncio.get_running_loop()
    out = LoadResult()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + limit
    prefix = f"{target.method} {target.path} HTTP/1.1\r\nhost: {target.host}\r\n"
    prefix += "".join(f"{k}: {v}\r\n" for k, v in target.headers)
    prefix_b = prefix.encode()

    async def connect() -> tuple[_Conn, str]:
        src_port = next(_src_ports) % 40_000 + 20_000
        transport, conn = await asyncio.wait_for(
            loop.create_connection(_Conn, target.entry[0], target.entry[1]), timeout)
        source = ""
        if target.proxy is not None:
            src, dst, port = target.proxy
            transport.write(f"PROXY TCP4 {src} {dst} {src_port} {port}\r\n".encode())
            source = f"{src}:{src_port}"
        return conn, source

    in_flight: dict[_Conn, float] = {}

    async def worker() -> None:
        conn: _Conn | None = None
        source = ""
        samples = out.samples
        now = time.perf_counter
        while True:
            n = next(counter)
            if n >= total or now() >= deadline:
                break
            rid = f"{run_id}-{n}"
            t0 = now()
            try:
                if conn is None or conn.closed:
                    conn, source = await connect()
                waiter = conn.waiter = loop.create_future()
                assert conn.transport is not None
                in_flight[conn] = t0
                conn.transport.write(prefix_b + b"x-request-id: " + rid.encode() + b"\r\n\r\n")
                status, head = await waiter
                del in_flight[conn]
                pod = ""
                i = head.find(b"x-pod: ")
                if i >= 0:
                    j = head.find(b"\r\n", i)
                    pod = head[i + 7:j if j > 0 else None].decode()
                samples.append(Sample(rid, status, now() - t0, source, pod=pod))
                if b"connection: close" in head:
                    conn.transport.close()
                    conn = None
            except (OSError, ConnectionError, TimeoutError) as exc:
                if conn is not None:
                    in_flight.pop(conn, None)
                samples.append(Sample(rid, 0, now() - t0, source,
                                      error=type(exc).__name__ + (f": {exc}" if str(exc) else "")))
                if conn is not None and conn.transport is not None:
                    conn.transport.abort()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def watchdog() -> None:
        # One timer for all connections instead of one per request (cheaper at 10k req/s).
        while True:
            await asyncio.sleep(min(0.25, timeout / 4))
            limit_t = time.perf_counter() - timeout
            for c, started in list(in_flight.items()):
                if started < limit_t and c.waiter is not None and not c.waiter.done():
                    c.waiter.set_exception(TimeoutError(f"no answer in {timeout}s"))

    async def report() -> None:
        while True:
            await asyncio.sleep(0.2)
            if progress is not None:
                progress(len(out.samples))

    reporter = asyncio.create_task(report()) if progress is not None else None
    dog = asyncio.create_task(watchdog())
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))),
                               limit + timeout + 5)
    finally:
        dog.cancel()
        if reporter is not None:
            reporter.cancel()
    out.elapsed = time.perf_counter() - start
    if progress is not None:
        progress(len(out.samples))
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m meshlens.lab.loadgen``: the load generator in a process of its own (benchmarks).

    Prints one JSON object: requests, seconds, requests/s, statuses.
    """
    import argparse
    import json
    from collections import Counter

    ap = argparse.ArgumentParser(description="meshlens lab load generator (loopback only)")
    ap.add_argument("entry", help="IP:PORT on 127.0.0.0/8")
    ap.add_argument("--host", required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("-H", "--header", action="append", default=[])
    ap.add_argument("--proxy", help="SRC_IP,DST_IP,PORT: send a PROXY v1 header first")
    ap.add_argument("-n", "--requests", type=int)
    ap.add_argument("-d", "--duration", type=float)
    ap.add_argument("-c", "--concurrency", type=int, default=1)
    args = ap.parse_args(argv)
    ip, _, port = args.entry.rpartition(":")
    headers = tuple((k.strip(), v.strip()) for k, _, v in (h.partition(":") for h in args.header))
    proxy = None
    if args.proxy:
        src, dst, dport = args.proxy.split(",")
        proxy = (src, dst, int(dport))
    target = Target((ip, int(port)), args.host, args.path, headers=headers, proxy=proxy)
    res = asyncio.run(run_load(target, requests=args.requests, duration=args.duration,
                               concurrency=args.concurrency))
    lat = sorted(s.latency * 1000 for s in res.samples) or [0.0]
    print(json.dumps({"requests": len(res.samples), "seconds": round(res.elapsed, 3),
                      "rps": round(res.rps, 1),
                      "status": dict(Counter(str(s.status) for s in res.samples)),
                      "p50_ms": round(lat[len(lat) // 2], 2),
                      "p99_ms": round(lat[int(len(lat) * 0.99)], 2)}))


if __name__ == "__main__":
    main()
