"""What sending traffic through a running lab needs: the entry, the address map, the access log
and the client sidecar's admin -- rebuilt from the state file by ``meshlens lab send``.

Layer: L7 (lab). Imports: compiler, simulate, lab.addressing, lab.loadgen, lab.localhttp,
lab.report.

A send is joined with the client sidecar's access log (by request id, or by the PROXY source
address for a connection without an answer) and with its admin counters, which are reported as
the increase during the send.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshlens.compiler import CompileResult
from meshlens.errors import UsageError
from meshlens.lab.addressing import Addressing
from meshlens.lab.loadgen import Target, run_load
from meshlens.lab.localhttp import request
from meshlens.lab.report import Report, build_report, parse_stats, read_log, stats_filter
from meshlens.simulate import Request, resolve


@dataclass(slots=True)
class LabHandle:
    """What sending traffic through a running lab needs."""

    result: CompileResult
    addressing: Addressing
    entry: tuple[str, int]
    client_ip: str
    access_log: Path
    admin: str
    #: a gateway (router) under test: its listener port → the lab address that listener binds
    gateway_entries: dict[int, tuple[str, int]] | None = None

    def target(self, url: str, headers: Iterable[str] = ()) -> Target:
        """The load generator's target for ``url`` as the client pod would call it.

        For a gateway, the request goes straight to the listener the gateway Service's port
        leads to (no capture, no PROXY header), with the URL's host as Host.
        """
        req = Request.parse(url, headers=list(headers))
        if not req.is_http:
            raise UsageError("the lab sends HTTP/1.1 (http://...)")
        if self.gateway_entries is not None:
            from meshlens.simulate_gateway import listener_port

            lport, _ = listener_port(self.result, req.port)
            if lport not in self.gateway_entries:
                raise UsageError(f"the gateway has no listener on port {lport} (listeners on "
                                 f"{sorted(self.gateway_entries)})")
            extra = tuple((k, v) for k, v in req.headers.items() if k not in ("host",))
            return Target(self.gateway_entries[lport], req.headers.get("host") or req.authority,
                          req.path, req.method, extra, None)
        real, _how, _svc = resolve(self.result, req.host)
        lab = self.addressing.ip(real) if real else self.addressing.name(req.host)
        extra = tuple((k, v) for k, v in req.headers.items() if k not in ("host",))
        query = "&".join(f"{k}={v}" for k, v in req.query.items())
        return Target(self.entry, req.authority, req.path + (f"?{query}" if query else ""),
                      req.method, extra, (self.client_ip, lab, req.port))

    async def send(self, url: str, headers: Iterable[str] = (), *, requests: int | None = None,
                   duration: float | None = None, concurrency: int = 1, timeout: float = 10.0,
                   progress: Callable[[int], None] | None = None,
                   nacks: list[dict[str, Any]] | None = None) -> Report:
        """Send, then join with the access log (waits for its flush) and read the counters.

        The report's counters are this send's: the difference from just before it (gauges,
        ``*_active``, are shown as they are now)."""
        target = self.target(url, headers)
        offset = self.access_log.stat().st_size if self.access_log.exists() else 0
        before = await asyncio.to_thread(self.counters)
        run_id = f"ml{os.getpid()}x{time.monotonic_ns() % 10**9}"
        load = await run_load(target, requests=requests, duration=duration,
                              concurrency=concurrency, timeout=timeout, run_id=run_id,
                              progress=progress)
        entries: list[dict[str, str]] = []
        # An answered request is found by its id; one without an answer (TCP passthrough, reset)
        # may only have a connection line, found by the PROXY source address.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            new, offset = read_log(self.access_log, offset)
            entries += new
            ids = {e["request_id"] for e in entries}
            sources = {e["downstream_remote"] for e in entries if e["request_id"] == "-"}
            if all(s.request_id in ids or (s.status == 0 and s.source in sources)
                   for s in load.samples):
                break
            await asyncio.sleep(0.05)
        clusters = sorted({e["cluster"] for e in entries if e["cluster"] != "-"})
        stats = await asyncio.to_thread(self.cluster_stats, clusters, since=before)
        return build_report(load.samples, entries, elapsed=load.elapsed, stats=stats, nacks=nacks)

    def stat_names(self, clusters: Iterable[str]) -> dict[str, str]:
        by_name = {c.name: c for c in self.result.clusters}
        out = {}
        for name in clusters:
            c = by_name.get(name)
            out[(c.alt_stat_name if c is not None and c.alt_stat_name else name)] = name
        return out

    def _admin_stats(self, names: list[str] | None) -> dict[str, Any]:
        import urllib.parse

        query = urllib.parse.urlencode({"format": "json", "filter": stats_filter(names)})
        payload: dict[str, Any] = json.loads(request(self.admin, f"/stats?{query}"))
        return payload

    def counters(self) -> dict[str, int]:
        """The report's counters of every cluster of the client sidecar, by stat name."""
        return {s["name"]: s["value"] for s in self._admin_stats(None).get("stats", [])
                if isinstance(s.get("value"), int)}

    def cluster_stats(self, clusters: Iterable[str], *,
                      since: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
        """Circuit-breaker, retry and outlier counters of these clusters (client sidecar);
        with ``since`` (from :meth:`counters`), the increase since then."""
        names = self.stat_names(clusters)
        if not names:
            return {}
        payload = self._admin_stats(list(names))
        if since is not None:
            for s in payload.get("stats", []):
                name, value = s.get("name", ""), s.get("value")
                if isinstance(value, int) and not name.endswith("_active"):
                    s["value"] = value - since.get(name, 0)
        return parse_stats(payload, names)

    def to_state(self) -> dict[str, Any]:
        return {"entry": list(self.entry), "client_ip": self.client_ip,
                "addressing": self.addressing.to_dict(), "access_log": str(self.access_log),
                "admin": self.admin,
                "gateway_entries": ({str(k): list(v) for k, v in self.gateway_entries.items()}
                                    if self.gateway_entries is not None else None)}
