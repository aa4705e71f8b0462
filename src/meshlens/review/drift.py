"""``meshlens drift``: where a live sidecar's config differs from what the manifests say.

Layer: L7 (review). Imports: compiler, dump, review.xds.

The live side is a real sidecar's ``/config_dump`` (with or without ``?include_eds``, plus
optionally ``/clusters?format=json`` for endpoint health); the expected side is the compiled
proxy (or a second dump, as ``istioctl proxy-status`` compares istiod's view with Envoy's).
Only the dynamic resources istiod pushes take part; what is volatile (version_info,
last_updated, nonces, the order of resources and of virtual hosts and endpoints, where Envoy's
order carries no meaning) is left out, as ``istioctl/pkg/util/configdump``'s
``GetDynamic*Dump(stripVersions=true)`` leaves it out.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from meshlens.compiler import CompileResult
from meshlens.review.xds import (TYPE_TITLES, TYPES, Key, ResourceChange, diff_resources, materialize,
                                 provenance_for)

#: Why a resource can exist on one side only.
WHY_ONLY_LIVE = ("an EnvoyFilter or another config source not in the manifests, another istiod "
                 "version, or a stale push")
WHY_ONLY_EXPECTED = "not pushed yet, or rejected by the proxy (a NACK: see istiod's and the proxy's logs)"


#: What Envoy writes into a dumped ClusterLoadAssignment that istiod never sends: its default
#: overprovisioning factor and an empty per-endpoint health check config.
ENVOY_EDS_DEFAULTS = {"policy": {"overprovisioning_factor": 140}}


def _eds_clusters(resources: dict[Key, dict[str, Any]]) -> set[str] | None:
    names = {n for (t, n), v in resources.items() if t == "cluster" and v.get("type") == "EDS"}
    return names if any(t == "cluster" for t, _ in resources) else None


def normalize(resources: dict[Key, dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Drop what carries no meaning: the order of virtual hosts and endpoints, the load
    assignments Envoy shows for clusters that are not EDS (it synthesizes one for every static
    or original-destination cluster), and the defaults Envoy writes into dumped assignments."""
    out = {}
    eds = _eds_clusters(resources)
    for key, value in resources.items():
        if key[0] == "endpoint":
            if eds is not None and key[1] not in eds:
                continue
            value = {k: v for k, v in value.items() if ENVOY_EDS_DEFAULTS.get(k) != v}
        if key[0] == "route" and isinstance(value.get("virtual_hosts"), list):
            value = dict(value, virtual_hosts=sorted(value["virtual_hosts"], key=lambda v: str(v.get("name"))))
        if key[0] == "endpoint" and isinstance(value.get("endpoints"), list):
            eps = []
            for loc in value["endpoints"]:
                if isinstance(loc, dict) and isinstance(loc.get("lb_endpoints"), list):
                    loc = dict(loc, lb_endpoints=sorted((_strip_hc(lb) for lb in loc["lb_endpoints"]),
                                                        key=_address_key))
                eps.append(loc)
            value = dict(value, endpoints=eps)
        out[key] = value
    return out


def _strip_hc(lb: Any) -> Any:
    ep = lb.get("endpoint") if isinstance(lb, dict) else None
    if isinstance(ep, dict) and ep.get("health_check_config") == {}:
        return dict(lb, endpoint={k: v for k, v in ep.items() if k != "health_check_config"})
    return lb


def _address_key(lb: Any) -> str:
    try:
        sa = lb["endpoint"]["address"]["socket_address"]
        return f"{sa.get('address')}:{sa.get('port_value')}"
    except (KeyError, TypeError):
        return json.dumps(lb, sort_keys=True)


@dataclass(slots=True)
class DriftReport:
    changes: list[ResourceChange]
    counts: dict[str, dict[str, int]]
    expected: CompileResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": {TYPE_TITLES[t].lower(): self.counts[t] for t in TYPES},
            "drift": not self.clean,
            "differences": [self._change(c) for c in self.changes],
            "notes": self.notes,
        }

    def _change(self, c: ResourceChange) -> dict[str, Any]:
        kind = {"added": "only_live", "removed": "only_expected", "changed": "value_differs"}[c.status]
        out: dict[str, Any] = {"type": c.type, "name": c.name, "class": kind}
        if c.status == "added":
            out["why"] = WHY_ONLY_LIVE
        elif c.status == "removed":
            out["why"] = WHY_ONLY_EXPECTED
            out["origin"] = provenance_for(self.expected, c.type, c.name, "")
        out["fields"] = [{"path": f.path, "expected": f.old, "live": f.new,
                          "origin": provenance_for(self.expected, c.type, c.name, f.path)}
                         for f in c.fields]
        return out


def compare(expected: dict[Key, dict[str, Any]], live: dict[Key, dict[str, Any]], *,
            result: CompileResult | None = None, types: tuple[str, ...] = TYPES) -> DriftReport:
    """Classify every difference: only live, only expected, value differs."""
    exp = {k: v for k, v in normalize(materialize(expected)).items() if k[0] in types}
    liv = {k: v for k, v in normalize(materialize(live)).items() if k[0] in types}
    changes = diff_resources(exp, liv)
    counts = {t: {"match": 0, "only_live": 0, "only_expected": 0, "value_differs": 0} for t in TYPES}
    changed = {(c.type, c.name): c.status for c in changes}
    for key in set(exp) | set(liv):
        status = changed.get(key)
        counts[key[0]][{"added": "only_live", "removed": "only_expected", "changed": "value_differs",
                        None: "match"}[status]] += 1
    notes = [f"{TYPE_TITLES[t]}: not compared (not in the live dump)" for t in TYPES if t not in types]
    return DriftReport(changes, counts, result, notes)


def endpoints_from_clusters(clusters: Any) -> dict[Key, dict[str, Any]]:
    """EDS-like values from ``/clusters?format=json``, for a dump taken without ``include_eds``.

    Only what both sides have is kept: the endpoint addresses and their EDS health.
    """
    out: dict[Key, dict[str, Any]] = {}
    for cs in clusters.cluster_statuses:
        hosts = []
        for h in cs.host_statuses:
            sa = h.address.socket_address
            health = h.health_status.eds_health_status
            hosts.append({"address": f"{sa.address}:{sa.port_value}", "health": int(health)})
        out[("endpoint", cs.name)] = {"hosts": sorted(hosts, key=lambda x: x["address"])}
    return out


def endpoint_hosts(resources: dict[Key, dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The same reduced view of EDS assignments (address and health of every endpoint)."""
    from envoy.config.core.v3 import health_check_pb2

    out = {}
    for (t, name), cla in materialize(resources).items():
        if t != "endpoint":
            continue
        hosts = []
        for loc in cla.get("endpoints", []):
            for lb in loc.get("lb_endpoints", []):
                status = lb.get("health_status", "UNKNOWN")
                hosts.append({"address": _address_key(lb),
                              "health": health_check_pb2.HealthStatus.Value(status)
                              if isinstance(status, str) else int(status)})
        out[(t, name)] = {"hosts": sorted(hosts, key=lambda x: x["address"])}
    return out


# --- istioctl proxy-status style ---------------------------------------------------------------

def _section_text(resources: dict[Key, dict[str, Any]], t: str) -> list[str]:
    items = [v for (tt, _), v in sorted(resources.items()) if tt == t]
    return json.dumps(items, indent=4, sort_keys=True).splitlines(keepends=True)


def proxy_status_text(istiod: dict[Key, dict[str, Any]], envoy: dict[Key, dict[str, Any]], *,
                      rds_loaded: str = "", context: int = 7) -> str:
    """``Clusters Match`` / ``Clusters Don't Match`` + unified diff, per istioctl's comparator
    (``istioctl/pkg/writer/compare``: ClusterDiff, ListenerDiff, RouteDiff)."""
    a, b = normalize(materialize(istiod)), normalize(materialize(envoy))
    out = []
    for t, title in (("cluster", "Clusters"), ("listener", "Listeners"), ("route", "Routes")):
        diff = "".join(difflib.unified_diff(_section_text(a, t), _section_text(b, t),
                                            f"Istiod {title}", f"Envoy {title}", n=context))
        suffix = f" (RDS last loaded at {rds_loaded})" if t == "route" and rds_loaded else ""
        if diff:
            out.append(f"{title} Don't Match{suffix}\n{diff}\n")
        else:
            out.append(f"{title} Match{suffix}\n")
    return "".join(out)


def rds_last_loaded(dump: Any) -> str:
    """The newest ``last_updated`` of the dynamic route configurations, RFC 1123 in UTC."""
    if dump.routes is None:
        return ""
    stamps = [r.last_updated.ToDatetime() for r in dump.routes.dynamic_route_configs
              if r.HasField("last_updated")]
    return max(stamps).strftime("%a, %d %b %Y %H:%M:%S UTC") if stamps else ""
