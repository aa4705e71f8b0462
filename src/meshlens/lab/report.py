"""What happened to a batch of requests: joined with Envoy's access log and admin stats.

Layer: L7 (lab). Imports: lab.loadgen (samples), stdlib.

The access log line of each request (Istio's text format, see
:data:`meshlens.lab.localize.ISTIO_TEXT_LOG_FORMAT`) gives the response flags, the upstream
cluster and host; the load generator's samples give the status seen by the client and the latency.
:func:`build_report` joins them (by ``x-request-id``, else by the PROXY source address) and counts
status x flags x upstream cluster x endpoint, and reads the circuit-breaker and outlier counters of
the clusters involved from ``/stats`` (cluster names go through :func:`re.escape`: Istio's names
contain ``|``, a regex alternation -- lab-notes §0).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlens.lab.loadgen import Sample

_LINE = re.compile(
    r'^\[(?P<start>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" (?P<code>\d+) '
    r'(?P<flags>\S+) (?P<details>\S+) (?P<termination>\S+) "(?P<failure>[^"]*)" (?P<rx>\d+) '
    r'(?P<tx>\d+) (?P<duration>\d+) (?P<upstream_time>\S+) "(?P<xff>[^"]*)" "(?P<agent>[^"]*)" '
    r'"(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" '
    r"(?P<cluster>\S+) (?P<upstream_local>\S+) (?P<downstream_local>\S+) "
    r"(?P<downstream_remote>\S+) (?P<sni>\S+) (?P<route>\S+)\s*$")

#: Per-cluster counters the report reads (suffixes after ``cluster.<stat name>.``).
CLUSTER_STATS = ("upstream_rq_total", "upstream_rq_pending_overflow", "upstream_cx_overflow",
                 "upstream_rq_retry", "upstream_rq_retry_overflow", "upstream_cx_none_healthy",
                 "upstream_cx_connect_fail", "upstream_rq_timeout", "upstream_cx_destroy_remote",
                 "ssl.connection_error", "ssl.fail_verify_san", "ssl.fail_verify_error")


def parse_line(line: str) -> dict[str, str] | None:
    """Parse one access log line in Istio's text format (``None`` for other lines).

    Example:
        >>> e = parse_line('[2026-01-01T00:00:00.000Z] "GET / HTTP/1.1" 503 UH no_healthy_upstream'
        ...     ' - "-" 0 19 0 - "-" "-" "r-1" "a" "-" outbound|80|v2|a.b.svc.cluster.local - '
        ...     '127.96.0.1:80 127.244.0.2:20001 - default')
        >>> e["code"], e["flags"], e["cluster"], e["request_id"]
        ('503', 'UH', 'outbound|80|v2|a.b.svc.cluster.local', 'r-1')
    """
    m = _LINE.match(line)
    return m.groupdict() if m else None


def read_log(path: Path, offset: int = 0) -> tuple[list[dict[str, str]], int]:
    """Entries appended to an access log since ``offset``; returns them and the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1  # leave a half-written last line for next time
    entries = [e for e in (parse_line(x) for x in data[:end].decode(errors="replace").splitlines())
               if e is not None]
    return entries, offset + end


@dataclass(slots=True)
class Row:
    """One joined request."""

    status: int
    flags: str
    cluster: str
    endpoint: str
    pod: str
    latency_ms: float
    details: str = ""
    failure: str = ""


@dataclass(slots=True)
class Report:
    """Counts and figures for one batch of requests."""

    requests: int = 0
    elapsed: float = 0.0
    rows: list[Row] = field(default_factory=list)
    unmatched: int = 0
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    nacks: list[dict[str, Any]] = field(default_factory=list)

    def counts(self, key: str) -> dict[str, int]:
        c: Counter[str] = Counter(str(getattr(r, key)) for r in self.rows)
        return dict(c.most_common())

    def share(self, key: str, value: str) -> float:
        if not self.rows:
            return 0.0
        if key == "flags":
            hits = sum(1 for r in self.rows if value == r.flags or value in r.flags.split(","))
        else:
            hits = sum(1 for r in self.rows if str(getattr(r, key)) == value)
        return hits / len(self.rows)

    def combos(self) -> list[dict[str, Any]]:
        c: Counter[tuple[int, str, str, str]] = Counter(
            (r.status, r.flags, r.cluster, r.endpoint) for r in self.rows)
        return [{"status": s, "flags": f, "cluster": cl, "endpoint": ep, "count": n}
                for (s, f, cl, ep), n in c.most_common()]

    def latency(self) -> dict[str, float]:
        values = sorted(r.latency_ms for r in self.rows)
        if not values:
            return {}

        def pct(p: float) -> float:
            return round(values[min(len(values) - 1, int(p * len(values)))], 2)

        return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": round(values[-1], 2)}

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "elapsed_s": round(self.elapsed, 3),
                "rps": round(self.requests / self.elapsed, 1) if self.elapsed else None,
                "status": self.counts("status"), "flags": self.counts("flags"),
                "clusters": self.counts("cluster"), "endpoints": self.counts("endpoint"),
                "pods": self.counts("pod"), "combinations": self.combos(),
                "latency_ms": self.latency(), "unmatched_log_lines": self.unmatched,
                "stats": self.stats, "nacks": self.nacks}


def build_report(samples: list[Sample], entries: list[dict[str, str]], *, elapsed: float = 0.0,
                 stats: dict[str, dict[str, int]] | None = None,
                 nacks: list[dict[str, Any]] | None = None) -> Report:
    """Join samples with access log entries and count."""
    by_id = {e["request_id"]: e for e in entries if e["request_id"] != "-"}
    by_src: dict[str, dict[str, str]] = {}
    for e in entries:
        if e["request_id"] == "-":
            by_src.setdefault(e["downstream_remote"], e)
    out = Report(requests=len(samples), elapsed=elapsed, stats=stats or {}, nacks=nacks or [])
    for s in samples:
        e = by_id.get(s.request_id) or by_src.get(s.source)
        if e is None:
            out.unmatched += 1
            out.rows.append(Row(s.status, "?", "?", "?", s.pod, s.latency * 1000, s.error))
            continue
        status = s.status or int(e["code"])
        out.rows.append(Row(status, e["flags"], e["cluster"], e["upstream_host"], s.pod,
                            s.latency * 1000, e["details"], e["failure"]))
    return out


def stats_filter(stat_names: list[str] | None) -> str:
    r"""The ``/stats?filter=`` regex for the report's counters of these clusters (None: all).

    Example:
        >>> stats_filter(["outbound|80||a;"]).startswith(r"^cluster\.(outbound\|80\|\|a;)\.(")
        True
    """
    names = ".*" if stat_names is None else "|".join(re.escape(n) for n in stat_names)
    suffixes = "|".join(re.escape(s) for s in CLUSTER_STATS)
    return rf"^cluster\.({names})\.({suffixes}|outlier_detection\..*)$"


def parse_stats(payload: dict[str, Any], stat_names: dict[str, str]) -> dict[str, dict[str, int]]:
    """``/stats?format=json`` -> cluster name -> counter -> value (stat name -> cluster name)."""
    out: dict[str, dict[str, int]] = {}
    for item in payload.get("stats", []):
        name, value = item.get("name", ""), item.get("value")
        if not isinstance(value, int) or not name.startswith("cluster."):
            continue
        rest = name[len("cluster."):]
        for stat_name, cluster in stat_names.items():
            if rest.startswith(stat_name + "."):
                out.setdefault(cluster, {})[rest[len(stat_name) + 1:]] = value
                break
    return out


def render_text(report: Report, *, title: str = "") -> str:
    """A plain-text rendering: the combination table, then figures and counters."""
    lines = [title] if title else []
    d = report.to_dict()
    rps = f", {d['rps']} req/s" if d["rps"] else ""
    lines.append(f"{report.requests} requests in {report.elapsed:.2f}s{rps}; "
                 f"latency ms {d['latency_ms']}")
    lines.append(f"{'count':>6}  {'status':>6}  {'flags':<10} {'upstream cluster':<58} endpoint")
    for c in d["combinations"]:
        lines.append(f"{c['count']:>6}  {c['status']:>6}  {c['flags']:<10} {c['cluster']:<58} "
                     f"{c['endpoint']}")
    if d["pods"] and set(d["pods"]) != {""}:
        lines.append("pods: " + ", ".join(f"{k or '-'} {v}" for k, v in d["pods"].items()))
    for cluster, counters in sorted(report.stats.items()):
        shown = {k: v for k, v in sorted(counters.items()) if v}
        if shown:
            lines.append(f"stats {cluster}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    for n in report.nacks:
        lines.append(f"NACK {n.get('type')} from {n.get('node')}: {n.get('error')}")
    if report.unmatched:
        lines.append(f"({report.unmatched} request(s) had no access log line)")
    return "\n".join(lines)
