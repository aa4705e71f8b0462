"""Locality load balancing: ``localityLbSetting`` (validateLocalityLbSetting) and
``zoneAwareLbSetting``, with istiod's locality overlap rules (agent.validateLocalities).

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

from typing import Any

from meshlens.resources.webhook.core import Collector, as_int, as_list, as_obj, as_str
from meshlens.source import FieldPath

_TOPOLOGY = (
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
)
_LOCALITY_FAILOVER = (
    "locality lb failover settings must specify different regions",
    "locality lb failover only specify region",
    "locality lb failover region should not contain '*' wildcard",
)
_ZONE_AWARE_FAILOVER = (
    "zone aware lb failover settings must specify different regions",
    "zone aware lb failover only specifies region; zone and subzone failover are "
    "handled automatically",
    "zone aware lb failover region should not contain '*' wildcard",
)


def validate_locality(
    v: Collector, path: FieldPath, lb: dict[str, Any] | None, od: dict[str, Any] | None
) -> None:
    if lb is None:
        return
    distribute, failover = as_list(lb.get("distribute")), as_list(lb.get("failover"))
    priority = [as_str(p) for p in as_list(lb.get("failoverPriority"))]
    if distribute and failover:
        v.err(path, "can not simultaneously specify 'distribute' and 'failover'")
        return
    if failover and priority:
        for label in priority:
            if label in _TOPOLOGY:
                v.err(
                    path + ("failoverPriority",),
                    "can not simultaneously set 'failover' and "
                    f"topology label '{label}' in 'failover_priority'",
                )
                return
    sources = []
    for i, rule in enumerate(distribute):
        rule = as_obj(rule) or {}
        sources.append(as_str(rule.get("from")))
        to = as_obj(rule.get("to")) or {}
        total = 0
        for loc, weight in to.items():
            w = as_int(weight)
            if w <= 0 or w > 100:
                v.err(
                    path + ("distribute", i, "to", loc), "locality weight must be in range [1, 100]"
                )
                return
            total += w
        if total != 100:
            v.err(path + ("distribute", i, "to"), f"total locality weight {total} != 100")
            return
        v.err(path + ("distribute", i, "to"), _validate_localities(list(to)))
    v.err(path + ("distribute",), _validate_localities(sources))
    _validate_failover(v, path, failover, priority, od, _LOCALITY_FAILOVER)


def _validate_failover(
    v: Collector, path: FieldPath, failover: list[Any], priority: list[str],
    od: dict[str, Any] | None, messages: tuple[str, str, str],
) -> None:
    """The failover rules: an outlier detection policy, then different regions, no ``/``
    (region only) and no ``*`` in each ``from``/``to``; ``messages`` word the last three."""
    if (failover or priority) and od is None:
        v.warn(path, "outlier detection policy must be provided for failover")
    same, slash, star = messages
    for i, rule in enumerate(failover):
        rule = as_obj(rule) or {}
        src, dst = as_str(rule.get("from")), as_str(rule.get("to"))
        if src == dst:
            v.err(path + ("failover", i), same)
        if "/" in src or "/" in dst:
            v.err(path + ("failover", i), slash)
        if "*" in src or "*" in dst:
            v.err(path + ("failover", i), star)


def validate_zone_aware(
    v: Collector, path: FieldPath, lb: dict[str, Any] | None, od: dict[str, Any] | None
) -> None:
    if lb is None:
        return
    failover = as_list(lb.get("failover"))
    priority = [as_str(p) for p in as_list(lb.get("failoverPriority"))]
    for label in priority:
        if label in _TOPOLOGY:
            v.err(
                path + ("failoverPriority",),
                f"'failover_priority' for zone aware lb must not use topology label '{label}'; "
                "region- and zone-level routing are handled automatically",
            )
    _validate_failover(v, path, failover, priority, od, _ZONE_AWARE_FAILOVER)


def _validate_localities(localities: list[str]) -> str | None:
    """agent.validateLocalities: no empty segments, one trailing ``*`` at most, no overlaps.

    istiod walks ``distribute[].to`` in Go map order (random); meshlens walks it in file order.
    """
    seen: dict[str, dict[str, set[str]]] = {}
    for loc in localities:
        stars = loc.count("*")
        if stars and (stars > 1 or not loc.endswith("*")):
            return f"locality {loc} wildcard '*' number can not exceed 1 and must be in the end"
        if "*" in seen:
            return f"locality {loc} overlap with previous specified ones"
        items = loc.split("/", 2)
        if any(item == "" for item in items):
            return f"locality {loc} must not contain empty region/zone/subzone info"
        region = items[0]
        overlap = f"locality {loc} overlap with previous specified ones"
        if len(items) == 1:
            if region in seen:
                return overlap
            seen[region] = {"*": {"*"}}
        elif len(items) == 2:
            zones = seen.get(region)
            if zones is not None:
                if "*" in zones or items[1] in zones:
                    return overlap
                zones[items[1]] = {"*"}
            else:
                seen[region] = {items[1]: {"*"}}
        else:
            zone, sub = items[1], items[2]
            zones = seen.get(region)
            if zones is not None:
                if "*" in zones:
                    return overlap
                if zone in zones:
                    if "*" in zones[zone] or sub in zones[zone]:
                        return overlap
                    zones[zone].add(sub)
                else:
                    zones[zone] = {sub}
            else:
                seen[region] = {zone: {sub}}
    return None
