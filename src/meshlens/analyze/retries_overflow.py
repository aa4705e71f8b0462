"""Connection pool limits that overflow under retries (503 UO), and retries that multiply load.

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._routes, compiler.

Proven on compiled config: the retry policy of every route in the proxy's RDS that sends to a
cluster (Istio adds 2 retries to every route unless the VirtualService says otherwise) against
that cluster's circuit breakers. Envoy's circuit breakers are per client proxy, so the numbers
compare one request's attempts with one sidecar's limits.

ML1240 (Warning) is a limit smaller than one request's attempts: a couple of concurrent
requests overflow it, more so while failures are retried (each retry is a new request through
the same circuit breakers). max_connections counts together with the pending queue: with
HTTP/1.1 the requests that find no connection wait there, and istiod leaves it unbounded unless
http1MaxPendingRequests is set (Envoy overflows, 503 UO, only when that queue is full).
ML1241 is an Info load note (issue 15): with unbounded retries a request budget is filled only
when the upstream fails under a load of about limit / attempts concurrent requests, a capacity
question that a plain ``http2MaxRequests: 1000`` does not make a problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._compiled import MAX_U32, describe_clusters, outbound, value_at
from meshlens.analyze._routes import RouteRef, http_refs, resource_by_ref
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding

METADATA = Metadata(
    name="meshlens.RetryOverflowAnalyzer",
    description="Circuit breakers below one request's retry attempts, and unbounded retries",
    inputs=("DestinationRule", "VirtualService"),
    codes=("ML1240", "ML1241"),
    compiled=True,
)

DOCS = {
    "ML1240": CodeDoc(
        checks="On each sidecar's compiled RDS and CDS: the most retries a route to a cluster "
               "allows (Istio's default policy gives 2 when the VirtualService sets none) "
               "against the cluster's circuit breakers written by the user (max_connections, "
               "max_pending_requests, max_requests).",
        matters="A limit below the attempts of one request (1 + retries) is overflowed by a few "
                "concurrent requests, and sooner while failures are retried (each retry is a "
                "new request through the same limits): the requests over it fail with 503 UO "
                "(upstream overflow; the lab's C10 scenario measures it).",
        quiet="Limits at or above the attempts; routes with retries: {attempts: 0}; limits "
              "left at istiod's defaults (4294967295); maxConnections whose sum with "
              "http1MaxPendingRequests reaches the attempts (requests without a connection wait "
              "in the pending queue, unbounded unless http1MaxPendingRequests is set).",
        example="connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: "
                "1}}   # 3 attempts per request"),
    "ML1241": CodeDoc(
        checks="Clusters whose retries are unbounded (max_retries 4294967295, maxRetries unset) "
               "while the user set http2MaxRequests or http1MaxPendingRequests; reported only "
               "when no limit is already below one request's attempts (then ML1240).",
        matters="Info, a load note: when the upstream fails, each request is sent up to "
                "1 + retries times, so requests in flight grow that much; above about "
                "limit / attempts concurrent requests new requests get 503 UO. Whether that "
                "load happens is a capacity question, not a configuration error.",
        quiet="maxRetries set (bounded retries); no request limits; limits below "
              "the attempts (ML1240 instead).",
        example="connectionPool: {http: {http2MaxRequests: 1000}}   # with Istio's default 2 "
                "retries"),
}

LIMITS = (("max_requests", "http2MaxRequests"), ("max_pending_requests", "http1MaxPendingRequests"),
          ("max_connections", "maxConnections"))


def _retries_text(ref: RouteRef) -> str:
    n = ref.retries
    if ref.resource is None:
        return f"{n} retries on the default route: Istio's default retry policy"
    explicit = value_at(ref.resource, ref.path[:3] + ("retries",)) is not None \
        if len(ref.path) >= 3 else False
    how = "" if explicit else ": Istio's default retry policy"
    return f"{n} retries on {ref.rule}{how}"


def analyze(ctx: Context) -> Iterator[Finding]:
    hits: dict[tuple[Any, ...], dict[str, Any]] = {}
    for _, result in ctx.compiled():
        worst: dict[str, RouteRef] = {}
        for ref in http_refs(ctx, result):
            if ref.mirror or ref.retries <= 0:
                continue
            if ref.cluster not in worst or ref.retries > worst[ref.cluster].retries:
                worst[ref.cluster] = ref
        for bc in outbound(result):
            c = bc.cluster
            worst_ref = worst.get(c.name)
            if worst_ref is None or not c.circuit_breakers.thresholds:
                continue
            th = c.circuit_breakers.thresholds[0]
            fields = result.provenance.of("cluster", c.name)
            ref = worst_ref
            attempts = 1 + ref.retries
            user_limits = []
            overflowed = False
            for envoy, yaml_name in LIMITS:
                o = fields.get(f"circuit_breakers.thresholds[0].{envoy}")
                value = getattr(th, envoy).value
                if o is None or o.resource is None or value >= MAX_U32:
                    continue
                user_limits.append((envoy, yaml_name, value, o))
                # Requests beyond the connections wait in the pending queue (HTTP/1.1): the
                # connections overflow only together with it, and never while it is unbounded.
                room = value + th.max_pending_requests.value if envoy == "max_connections" \
                    else value
                if room < attempts:
                    overflowed = True
                    key: tuple[Any, ...] = ("ML1240", o.resource, o.field)
                    hit = hits.get(key)
                    if hit is None:  # the message's parts are rendered once per finding
                        hit = hits[key] = {"origin": o, "clusters": [], "args": {
                            "limit": f"{envoy} ({yaml_name})", "value": value,
                            "attempts": attempts, "retries": _retries_text(ref),
                            "field": yaml_name}}
                    hit["clusters"].append(c.name)
            retries_origin = fields.get("circuit_breakers.thresholds[0].max_retries")
            unbounded = th.max_retries.value >= MAX_U32 and (
                retries_origin is None or retries_origin.resource is None)
            limits = [u for u in user_limits if u[0] != "max_connections"]
            if unbounded and limits and not overflowed:
                envoy, yaml_name, value, o = limits[0]
                key = ("ML1241", o.resource, o.field)
                hit = hits.get(key)
                if hit is None:
                    hit = hits[key] = {"origin": o, "clusters": [], "args": {
                        "limit": f"{envoy} ({yaml_name})", "value": value, "attempts": attempts,
                        "retries": _retries_text(ref), "field": yaml_name,
                        "concurrent": -(-value // attempts)}}
                hit["clusters"].append(c.name)
    for (code, _, _), hit in hits.items():
        o = hit["origin"]
        args = dict(hit["args"])
        yaml_name = args.pop("field")
        yield finding(code, resource_by_ref(ctx, o.resource), o.field, span=o.span,
                      cluster=describe_clusters(hit["clusters"]), fix={"field": yaml_name},
                      **args)
