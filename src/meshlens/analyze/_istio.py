"""Shared helpers of the analyzers that mirror istioctl's (`pkg/config/analysis/analyzers/util`).

Layer: L6. Imports: resources, analyze.core.

These reproduce istioctl's own lookups, which are simpler than istiod's (and sometimes differ
from them on purpose, e.g. a dotted short host is never expanded), so the mirrored analyzers
report exactly what istioctl reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from meshlens.analyze.core import Context, as_dict, iter_dicts
from meshlens.resources import Resource
from meshlens.source import FieldPath

EXPORT_ALL = "*"
EXPORT_LOCAL = "."
DOMAIN = "svc.cluster.local"
_FQDN = re.compile(r"^(.+)\.(.+)\.svc\.cluster\.local$")


def full_name(res: Resource) -> str:
    """``resource.FullName.String()``: ``ns/name``, or ``name`` without a namespace."""
    return f"{res.namespace}/{res.name}" if res.namespace else res.name


def to_fqdn(namespace: str, host: str) -> str:
    """`ConvertHostToFQDN`: only a dot-less, non-wildcard name gets ``.NS.svc.cluster.local``.

    Example:
        >>> to_fqdn("default", "reviews"), to_fqdn("default", "reviews.default")
        ('reviews.default.svc.cluster.local', 'reviews.default')
    """
    if not host.startswith("*") and "." not in host:
        return f"{host}.{namespace}.{DOMAIN}"
    return host


def name_from_host(namespace: str, host: str) -> tuple[str, str]:
    """`GetResourceNameFromHost`: (namespace, name) of ``NAME.NS.svc.cluster.local`` (greedy
    regex), else (the given namespace, host verbatim).

    Example:
        >>> name_from_host("x", "a.b.c.svc.cluster.local"), name_from_host("x", "reviews.default")
        (('c', 'a.b'), ('x', 'reviews.default'))
    """
    m = _FQDN.match(host)
    if m:
        return m.group(2), m.group(1)
    return namespace, host


@dataclass(slots=True)
class Entry:
    """What istioctl's service map keeps per host: a ServiceEntry, or a Service as one."""

    ports: list[int]
    selector: dict[str, str] = field(default_factory=dict)
    resource: Resource | None = None


def _export_to(spec: dict[str, Any]) -> list[str]:
    v = spec.get("exportTo")
    return [str(x) for x in v] if isinstance(v, list) else []


def service_entry_hosts(ctx: Context) -> dict[tuple[str, str], Entry]:
    """`InitServiceEntryHostMap`: (scope, FQDN) → entry, for ServiceEntries and Services."""
    def build() -> dict[tuple[str, str], Entry]:
        out: dict[tuple[str, str], Entry] = {}
        for r in ctx.of_kind("ServiceEntry"):
            spec = r.spec
            ports = [int(p["number"]) for p in iter_dicts(spec.get("ports"))
                     if isinstance(p.get("number"), int)]
            entry = Entry(ports, {str(k): str(v) for k, v in as_dict(
                as_dict(spec.get("workloadSelector")).get("labels")).items()}, r)
            export = _export_to(spec)
            for h in spec.get("hosts") or []:
                h = str(h)
                if not export:
                    out[(EXPORT_ALL, to_fqdn(r.namespace, h))] = entry
                    continue
                for ns in export:
                    if ns == EXPORT_ALL:
                        out[(EXPORT_ALL, to_fqdn(r.namespace, h))] = entry
                        break
                    scope = r.namespace if ns == EXPORT_LOCAL else ns
                    out[(scope, to_fqdn(r.namespace, h))] = entry
        for r in ctx.of_kind("Service"):
            ports = [int(p["port"]) for p in iter_dicts(r.spec.get("ports"))
                     if isinstance(p.get("port"), int)]
            entry = Entry(ports, {}, r)
            anno = r.annotations.get("networking.istio.io/exportTo", "")
            scopes = [EXPORT_ALL] if not anno else [
                r.namespace if s.strip() == EXPORT_LOCAL else s.strip() for s in anno.split(",")]
            for scope in scopes:
                out[(scope, to_fqdn(r.namespace, r.name))] = entry
        return out

    result: dict[tuple[str, str], Entry] = ctx.memo("istio.service_entry_hosts", build)
    return result


def destination_host(source_ns: str, export_to: list[str], host: str,
                     entries: dict[tuple[str, str], Entry]) -> Entry | None:
    """`GetDestinationHost`: ``*`` scope, then the source namespace (or exportTo), then wildcard
    ServiceEntry hosts visible to ``*`` or the source namespace, by suffix."""
    found = entries.get((EXPORT_ALL, to_fqdn(source_ns, host)))
    if found is not None:
        return found
    scopes = [source_ns] if not export_to else [source_ns if e == EXPORT_LOCAL else e
                                                for e in export_to]
    for scope in scopes:
        found = entries.get((scope, to_fqdn(source_ns, host)))
        if found is not None:
            return found
    bare = host[1:] if host.startswith("*") else host
    for (scope, se_host), entry in entries.items():
        if not se_host.startswith("*"):
            continue
        if scope not in (EXPORT_ALL, source_ns):
            continue
        if bare.endswith(se_host[1:]):
            return entry
    return None


@dataclass(frozen=True, slots=True)
class Destination:
    """`AnnotatedDestination`: a destination and where it is in the VirtualService."""

    rule: str  # "tcp" | "tls" | "http" | "http.mirror" | "http.mirrors"
    index: int
    dest_index: int
    destination: dict[str, Any]
    path: FieldPath  # YAML path of the destination's host field

    @property
    def host(self) -> str:
        h = self.destination.get("host")
        return str(h) if h is not None else ""

    @property
    def subset(self) -> str:
        s = self.destination.get("subset")
        return str(s) if s is not None else ""

    @property
    def port(self) -> int | None:
        p = as_dict(self.destination.get("port")).get("number")
        return p if isinstance(p, int) else None


def route_destinations(vs: Resource) -> Iterator[Destination]:
    """`getRouteDestinations`: tcp, then tls, then http route destinations."""
    for section in ("tcp", "tls", "http"):
        rules = vs.spec.get(section)
        if not isinstance(rules, list):
            continue
        for i, rule in enumerate(rules):
            routes = as_dict(rule).get("route")
            if not isinstance(routes, list):
                continue
            for j, rd in enumerate(routes):
                dest = as_dict(as_dict(rd).get("destination"))
                yield Destination(section, i, j, dest, ("spec", section, i, "route", j,
                                                        "destination", "host"))


def mirror_destinations(vs: Resource) -> Iterator[Destination]:
    """`getHTTPMirrorDestinations`: ``http[].mirror`` and ``http[].mirrors[].destination``."""
    rules = vs.spec.get("http")
    if not isinstance(rules, list):
        return
    for i, rule in enumerate(rules):
        rule = as_dict(rule)
        if isinstance(rule.get("mirror"), dict):
            yield Destination("http.mirror", i, 0, rule["mirror"], ("spec", "http", i, "mirror",
                                                                      "host"))
        mirrors = rule.get("mirrors")
        if isinstance(mirrors, list):
            for j, m in enumerate(mirrors):
                dest = as_dict(as_dict(m).get("destination"))
                yield Destination("http.mirrors", i, j, dest, ("spec", "http", i, "mirrors", j,
                                                               "destination", "host"))


def is_control_plane(res: Resource) -> bool:
    """`IsIstioControlPlane`: an ``istio`` label, or ``release: istio``."""
    return "istio" in res.labels or res.labels.get("release") == "istio"


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A Kubernetes equality selector (an empty selector matches everything)."""
    return all(labels.get(k) == v for k, v in selector.items())


class LabelIndex:
    """Items (pods, workloads) by (namespace, label, value): selecting is not a scan of all.

    ``select`` returns what a scan with :func:`labels_match` would, in the same order.

    Example:
        >>> idx = LabelIndex([("a", {"app": "x"}), ("a", {"app": "y"}), ("b", {"app": "x"})])
        >>> idx.select("a", {"app": "x"}), idx.select("a", {}), idx.select("c", {"app": "x"})
        ([0], [0, 1], [])
    """

    def __init__(self, items: list[tuple[str, dict[str, str]]]) -> None:
        self.labels = [labels for _, labels in items]
        self.by_ns: dict[str, list[int]] = {}
        self.by_label: dict[tuple[str, str, Any], list[int]] = {}
        for i, (ns, labels) in enumerate(items):
            self.by_ns.setdefault(ns, []).append(i)
            for k, v in labels.items():
                self.by_label.setdefault((ns, k, v), []).append(i)

    def select(self, namespace: str, selector: dict[str, str]) -> list[int]:
        """Indices of the items of ``namespace`` whose labels ``selector`` matches, in order."""
        if not selector:
            return list(self.by_ns.get(namespace, ()))
        smallest: list[int] | None = None
        for k, v in selector.items():
            found = self.by_label.get((namespace, k, v))
            if found is None:
                return []
            if smallest is None or len(found) < len(smallest):
                smallest = found
        assert smallest is not None
        return [i for i in smallest if labels_match(selector, self.labels[i])]


class SelectorIndex:
    """Non-empty selectors by one of their (namespace, label, value) pairs: which select a pod.

    ``matching`` returns what a scan with :func:`labels_match` over the selectors would, in
    the same order.

    Example:
        >>> idx = SelectorIndex([("a", {"app": "x"}), ("a", {"app": "x", "v": "1"})])
        >>> idx.matching("a", {"app": "x"}), idx.matching("a", {"app": "x", "v": "1"})
        ([0], [0, 1])
    """

    def __init__(self, items: list[tuple[str, dict[str, str]]]) -> None:
        self.selectors = [sel for _, sel in items]
        self.by_pair: dict[tuple[str, str, Any], list[int]] = {}
        for i, (ns, sel) in enumerate(items):
            if sel:
                k, v = next(iter(sel.items()))
                self.by_pair.setdefault((ns, k, v), []).append(i)

    def matching(self, namespace: str, labels: dict[str, str]) -> list[int]:
        """Indices of the non-empty selectors of ``namespace`` that match ``labels``, in order."""
        found: set[int] = set()
        for k, v in labels.items():
            for i in self.by_pair.get((namespace, k, v), ()):
                if labels_match(self.selectors[i], labels):
                    found.add(i)
        return sorted(found)


def workload_index(ctx: Context) -> LabelIndex:
    """The registry's workloads as a :class:`LabelIndex` (built once per run)."""
    index: LabelIndex = ctx.memo("istio.workload_index", lambda: LabelIndex(
        [(w.namespace, w.labels) for w in ctx.mesh.registry.workloads]))
    return index
