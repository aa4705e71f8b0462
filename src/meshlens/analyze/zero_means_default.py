"""Values a user wrote that istiod cannot express: a zero that means "default" (the seed: subset
v2's ``maxRetries: 0`` leaves max_retries at 4294967295, i.e. unlimited), and the deprecated
``consecutiveErrors`` that istiod does not compile at all.

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._routes, compiler.

Proven on compiled config: the compiler records such values as quirks in the cluster's
provenance; the Envoy value reported is read from the compiled cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshlens.analyze._compiled import MAX_U32, describe_clusters, first_time, outbound
from meshlens.analyze._routes import resource_by_ref
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding
from meshlens.compiler.provenance import Origin
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.ZeroMeansDefaultAnalyzer",
    description="Zeros that istiod turns into defaults, and fields it ignores",
    inputs=("DestinationRule",),
    codes=("ML1220", "ML1221"),
    compiled=True,
    supersedes=("ML0402",),  # the webhook's consecutiveErrors warning, said in Envoy terms
)

DOCS = {
    "ML1220": CodeDoc(
        checks="On compiled clusters, values the compiler recorded as not expressible: a 0 in "
               "connectionPool (maxConnections, http1MaxPendingRequests, http2MaxRequests, "
               "maxRetries, ...) or outlierDetection.maxEjectionPercent, which istiod treats as "
               "unset.",
        matters="0 does not mean none: the Envoy value is the default (4294967295, i.e. "
                "unlimited, or Envoy's 10% ejection); maxRetries 0 leaves retries unlimited and "
                "can add 503 UO under load.",
        quiet="Positive values; the field omitted.",
        example="subsets:\n- name: v2\n  trafficPolicy: {connectionPool: {http: {maxRetries: "
                "0}}}"),
    "ML1221": CodeDoc(
        checks="outlierDetection.consecutiveErrors (deprecated) (IST0133).",
        matters="istiod does not compile it at all: the cluster ejects after Envoy's default 5 "
                "consecutive 5xx, whatever was written.",
        quiet="consecutive5xxErrors or consecutiveGatewayErrors used instead.",
        example="outlierDetection: {consecutiveErrors: 2}"),
}

_MEANING = {
    "maxRetries": ("retries are unlimited: when the upstream fails, every request is retried "
                   "(Istio's default is 2 attempts per route) and nothing caps the retries in "
                   "flight, so retries multiply the load on a struggling upstream",
                   "To turn retries off set retries.attempts: 0 on the VirtualService route; to "
                   "cap retries in flight set maxRetries to a positive number (Envoy's own "
                   "default is 3)."),
    "maxConnections": ("connections to each endpoint are unlimited",
                       "Use a positive maxConnections (0 does not mean \"no connections\")."),
    "http1MaxPendingRequests": ("queued requests are unlimited",
                                "Use a positive http1MaxPendingRequests."),
    "http2MaxRequests": ("requests in flight are unlimited", "Use a positive http2MaxRequests."),
    "maxEjectionPercent": ("ejection is not turned off: up to 10% of the endpoints can be "
                           "ejected (none with fewer than 10 endpoints)",
                           "To turn ejection off remove outlierDetection; otherwise set the "
                           "percentage you want (at least 100/endpoints)."),
}


def _overflow(c: Any) -> str:
    """The first finite request limit of the cluster (what unlimited retries can fill)."""
    if not c.circuit_breakers.thresholds:
        return ""
    th = c.circuit_breakers.thresholds[0]
    for name in ("max_requests", "max_pending_requests"):
        value = getattr(th, name).value
        if value < MAX_U32:
            return f"{name} {value}"
    return ""


def _span_key(o: Origin) -> tuple[Any, FieldPath]:
    return (o.resource, o.field)


def analyze(ctx: Context) -> Iterator[Finding]:
    hits: dict[tuple[Any, ...], dict[str, Any]] = {}
    seen: set[tuple[int, ...]] = set()  # a shared cluster gives the same hits in every proxy
    for _, result in ctx.compiled():
        for bc in outbound(result):
            c = bc.cluster
            fields = result.provenance.of("cluster", c.name)
            if not fields or not first_time(seen, c, fields):
                continue
            for path, origin in fields.items():
                if "cannot be expressed" in origin.note and origin.field:
                    key_name = str(origin.field[-1])
                    if path.startswith("circuit_breakers.thresholds[0]."):
                        envoy_field = path
                        th = c.circuit_breakers.thresholds[0]
                        value: Any = getattr(th, path.rsplit(".", 1)[1]).value
                    elif path == "outlier_detection.max_ejection_percent":
                        envoy_field = path
                        value = "unset (Envoy's default 10%)"
                    else:
                        continue
                    hit = hits.setdefault(("ML1220",) + _span_key(origin), {
                        "origin": origin, "clusters": [], "field": key_name,
                        "envoy_field": envoy_field, "value": value, "overflow": ""})
                    if key_name == "maxRetries" and not hit["overflow"]:
                        hit["overflow"] = _overflow(c)
                elif path == "outlier_detection.consecutive_errors_ignored":
                    hit = hits.setdefault(("ML1221",) + _span_key(origin),
                                          {"origin": origin, "clusters": []})
                else:
                    continue
                if c.name not in hit["clusters"]:
                    hit["clusters"].append(c.name)
    for key, hit in hits.items():
        where: Origin = hit["origin"]
        res = resource_by_ref(ctx, where.resource)
        span = where.span
        clusters = describe_clusters(hit["clusters"])
        if key[0] == "ML1221":
            yield finding("ML1221", res, where.field, span=span, clusters=clusters)
            continue
        meaning, fix = _MEANING.get(hit["field"], ("the Envoy default applies", "Use a positive "
                                                   "value, or remove the field."))
        flag = ""
        if hit["overflow"]:
            meaning += (f", and under failure load retries can fill {hit['overflow']}: new "
                        "requests fail with 503 UO")
            flag = "UO"
        yield finding("ML1220", res, where.field, span=span, field=hit["field"],
                      envoy_field=hit["envoy_field"], clusters=clusters, value=hit["value"],
                      meaning=meaning, flag=flag, fix={"fix": fix})
