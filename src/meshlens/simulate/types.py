"""The request a trace follows, the layers it passes and the verdict (trace's data model).

Layer: L5. Imports: compiler.provenance, source.

The JSON shape of ``Trace.to_dict()`` is a contract: `schemas/trace.schema.json` describes it and
tests validate every trace against it; keys are only ever added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from meshlens.compiler.provenance import Origin
from meshlens.source import render_path

#: verdicts: ``ok``, a response flag, ``BlackHole`` or ``NXDOMAIN``
OK, NR, NC, UH, UF, UC, BLACK = "ok", "NR", "NC", "UH", "UF", "UC", "BlackHole"
FI, DI, UT, URX, DPE, NXDOMAIN = "FI", "DI", "UT", "URX", "DPE", "NXDOMAIN"
PEERS = ("plaintext", "tls", "mtls")

#: Envoy's order when it prints several flags (`ResponseFlagUtils`: the flag enum's order;
#: the lab measured ``UF,URX``)
_FLAG_ORDER = ["LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE",
               "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF",
               "DO", "DR"]


def sort_flags(flags: set[str] | list[str]) -> list[str]:
    return sorted(set(flags), key=lambda f: (_FLAG_ORDER.index(f) if f in _FLAG_ORDER else 99, f))


def parse_seconds(text: str) -> float:
    """``250ms``, ``1.5s``, ``2m`` or a bare number of seconds.

    Example:
        >>> parse_seconds("250ms"), parse_seconds("2s"), parse_seconds("1m"), parse_seconds("0.5")
        (0.25, 2.0, 60.0, 0.5)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*", text)
    if m is None:
        raise ValueError(f"bad duration {text!r}: use e.g. 250ms, 2s, 1m")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


@dataclass(slots=True)
class Request:
    """One request: ``http://host[:port]/path`` (or https), ``tcp://host:port`` or ``tls://host:port``.

    The what-if fields describe the upstream (``upstream_status``, ``upstream_delay`` seconds,
    ``upstream_reset``); ``inbound`` asks about a connection arriving at the proxy's own inbound
    side from a peer speaking ``peer`` (plaintext, tls or mtls).
    """

    scheme: str
    host: str
    port: int
    path: str = "/"
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    inbound: bool = False
    peer: str = "plaintext"
    sni: str | None = None
    alpn: list[str] | None = None
    http2: bool = False
    upstream_status: int | None = None
    upstream_delay: float = 0.0
    upstream_reset: bool = False
    now: float | None = None  # the time of the request (epoch seconds): JWT exp/nbf; None: unchecked

    @classmethod
    def parse(cls, url: str, *, headers: list[str] | None = None, method: str = "GET",
              **options: Any) -> Request:
        """Parse a URL and ``name: value`` header strings.

        Example:
            >>> r = Request.parse("http://reviews:9080/r/1?u=2", headers=["x-user: jason"])
            >>> (r.host, r.port, r.path, r.headers["x-user"], r.query)
            ('reviews', 9080, '/r/1', 'jason', {'u': '2'})
        """
        parts = urlsplit(url if "://" in url else f"http://{url}")
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "tcp", "tls"):
            raise ValueError(f"unsupported scheme {scheme!r}: use http://, https://, tcp:// or tls://")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        default = {"http": 80, "https": 443}.get(scheme)
        port = parts.port or default
        if port is None:
            raise ValueError(f"{scheme}:// needs a port, e.g. {scheme}://{parts.hostname}:5432")
        hdrs: dict[str, str] = {}
        for h in headers or []:
            name, sep, value = h.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"header {h!r} is not 'name: value'")
            hdrs[name.strip().lower()] = value.strip()
        if options.get("peer", "plaintext") not in PEERS:
            raise ValueError(f"--peer must be one of {', '.join(PEERS)}")
        return cls(scheme, parts.hostname, port, parts.path or "/", method.upper(), hdrs,
                   dict(parse_qsl(parts.query)), **options)

    @property
    def is_http(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def tls(self) -> bool:
        """The app itself speaks TLS (https://, tls://) or an inbound peer does."""
        return self.scheme in ("https", "tls") or (self.inbound and self.peer != "plaintext")

    @property
    def authority(self) -> str:
        return self.headers.get("host") or (self.host if self.port in (80, 443) and self.is_http
                                            else f"{self.host}:{self.port}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scheme": self.scheme, "host": self.host, "port": self.port,
                               "path": self.path, "method": self.method, "headers": self.headers}
        if self.inbound:
            out["inbound"] = True
            out["peer"] = self.peer
        for key in ("sni", "alpn", "upstream_status"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.http2:
            out["http2"] = True
        if self.upstream_delay:
            out["upstream_delay"] = self.upstream_delay
        if self.upstream_reset:
            out["upstream_reset"] = True
        return out


@dataclass(slots=True)
class Layer:
    layer: str  # capture | dns | listener | route | fault | cluster | endpoint | upstream | inbound
    name: str
    port: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    note: str = ""


@dataclass(slots=True)
class Outcome:
    """One possible result of a request whose fate is probabilistic (fault percentages)."""

    probability: float
    verdict: str
    status: int | None
    flags: list[str]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"probability": round(self.probability, 6), "verdict": self.verdict,
                "status": self.status, "flags": self.flags, "reason": self.reason}


@dataclass(slots=True)
class Trace:
    request: Request
    layers: list[Layer] = field(default_factory=list)
    clusters: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = OK
    reason: str = ""
    fix: dict[str, Any] | None = None
    status: int | None = None
    flags: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    attempts: int | None = None
    fixes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request.to_dict(),
            "layers": [{"layer": x.layer, "name": x.name, "port": x.port, "ok": x.ok,
                        "note": x.note, "detail": x.detail} for x in self.layers],
            "clusters": self.clusters, "endpoints": self.endpoints, "verdict": self.verdict,
            "status": self.status, "flags": self.flags, "reason": self.reason, "fix": self.fix,
            "fixes": self.fixes, "outcomes": [o.to_dict() for o in self.outcomes],
            "attempts": self.attempts,
        }

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    def fail(self, verdict: str, reason: str, origin: Origin | list[Origin] | None = None,
             status: int | None = None, flags: list[str] | None = None) -> Trace:
        """Record a non-ok verdict; ``origin`` (one or several) names what to fix."""
        self.verdict, self.reason, self.status = verdict, reason, status
        self.flags = sort_flags(flags if flags is not None else
                                ([verdict] if verdict not in (BLACK, NXDOMAIN) else []))
        if self.layers:
            self.layers[-1].ok = False
        origins = [o for o in (origin if isinstance(origin, list) else [origin]) if o is not None]
        if origins:
            self.fixes = [origin_dict(o) for o in origins]
            self.fix = self.fixes[0]
        return self


def origin_dict(o: Origin) -> dict[str, Any]:
    span = o.span
    return {"rule": o.rule, "resource": str(o.resource) if o.resource else None,
            "yaml_path": render_path(o.field) if o.field else None,
            "file": span.path if span else None, "line": span.line if span else None,
            "column": span.col if span else None, "note": o.note or None}
