"""Outlier detection that can never eject (Envoy's default max_ejection_percent 10% with fewer
than 10 endpoints), and its opposite: ejection of every endpoint of a small service with panic
routing off (the seed: "maxEjectionPercent: 100 on a 2-endpoint service ... 503 UH").

Layer: L6. Imports: analyze.core, analyze._compiled, analyze._routes.

Proven on compiled config: the cluster's ``outlier_detection``, its panic threshold and its
endpoints. Envoy ejects a host only while (ejected + 1) / hosts <= max_ejection_percent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from meshlens.analyze._compiled import (assignment, cla_index, describe_clusters, first_time,
                                        hosts, outbound)
from meshlens.analyze._routes import resource_by_ref
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding
from meshlens.compiler import CompileResult
from meshlens.compiler.clusters import BuiltCluster
from meshlens.resources import Resource
from meshlens.source import FieldPath

METADATA = Metadata(
    name="meshlens.OutlierEjectionAnalyzer",
    description="Outlier detection that never ejects, or that can eject every endpoint",
    inputs=("DestinationRule", "Service"),
    codes=("ML1230", "ML1231"),
    compiled=True,
)

DOCS = {
    "ML1230": CodeDoc(
        checks="On compiled clusters with outlier_detection: the number of endpoints n against "
               "max_ejection_percent (Envoy's default 10% when maxEjectionPercent is unset). "
               "Envoy ejects a host only while (ejected + 1) / n <= max_ejection_percent, and "
               "Istio does not set always_eject_one_host.",
        matters="With n * percent < 100 not even one endpoint can be ejected: a failing endpoint "
                "keeps its share of requests and its 5xx/UF reach clients (measured on the real "
                "Envoy by the lab: the default 10% never ejects on 2 endpoints).",
        quiet="maxEjectionPercent high enough for one endpoint (e.g. 50 with 2 endpoints); 10 "
              "or more endpoints; a single endpoint; no outlierDetection.",
        example="outlierDetection: {consecutive5xxErrors: 3, interval: 10s}   # 2 endpoints, "
                "10% default"),
    "ML1231": CodeDoc(
        checks="On compiled clusters: max_ejection_percent 100 with healthy_panic_threshold 0 "
               "(minHealthPercent 0 or unset, istiod's default).",
        matters="n consecutive failures eject every endpoint and, without panic routing, every "
                "request fails with 503 UH until base_ejection_time passes.",
        quiet="maxEjectionPercent below 100; minHealthPercent above 0 (panic routing sends to "
              "all endpoints instead).",
        example="outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100}"),
}


def _block(ctx: Context, result: CompileResult,
           bc: BuiltCluster) -> tuple[Resource | None, FieldPath]:
    """Where the cluster's outlierDetection was written (the DR block, or MeshConfig)."""
    fields = result.provenance.of("cluster", bc.cluster.name)
    for path in ("outlier_detection.max_ejection_percent", "outlier_detection.consecutive_5xx",
                 "outlier_detection.interval", "common_lb_config.healthy_panic_threshold"):
        o = fields.get(path)
        if o is None or "outlierDetection" not in o.field:
            continue
        cut = o.field[:o.field.index("outlierDetection") + 1]
        res = resource_by_ref(ctx, o.resource)
        if res is not None:
            return res, cut
    svc = bc.service  # from MeshConfig defaultTrafficPolicy: report it on the service
    return (svc.resource if svc else None), ()


def analyze(ctx: Context) -> Iterator[Finding]:
    hits: dict[tuple[Any, ...], dict[str, Any]] = {}
    seen: set[tuple[int, ...]] = set()  # a shared cluster gives the same hits in every proxy
    for _, result in ctx.compiled():
        index = cla_index(result)
        for bc in outbound(result):
            c = bc.cluster
            if not c.HasField("outlier_detection"):
                continue
            if not first_time(seen, c, bc.rule, assignment(result, c, index)):
                continue
            got = hosts(result, c, index)
            if not got:
                continue
            n = len(got)
            od = c.outlier_detection
            pct = od.max_ejection_percent.value if od.HasField("max_ejection_percent") else 10
            panic = c.common_lb_config.healthy_panic_threshold.value \
                if c.common_lb_config.HasField("healthy_panic_threshold") else 50.0
            res, path = _block(ctx, result, bc)
            if res is None:
                continue
            if n >= 2 and n * pct < 100:
                why = (f"ejecting one of {n} would be {100 / n:.0f}% > {pct}%"
                       + ("" if od.HasField("max_ejection_percent") else
                          ", and 10% is Envoy's default because maxEjectionPercent is unset"))
                code, args = "ML1230", {"n": n, "pct": pct, "why": why}
                fix: dict[str, Any] = {"needed": math.ceil(100 / n)}
            elif pct >= 100 and panic == 0:
                code, args = "ML1231", {"n": n, "pct": pct, "panic": f"{panic:g}",
                                        "mhp": "0 or unset"}
                fix = {}
            else:
                continue
            hit = hits.setdefault((code, res.ref, path, n, pct), {
                "res": res, "path": path, "args": args, "fix": fix, "clusters": []})
            if c.name not in hit["clusters"]:
                hit["clusters"].append(c.name)
    for (code, *_), hit in hits.items():
        yield finding(code, hit["res"], hit["path"], cluster=describe_clusters(hit["clusters"]),
                      fix=hit["fix"], **hit["args"])
