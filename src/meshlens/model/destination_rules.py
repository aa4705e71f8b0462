"""DestinationRule indexing, merging and lookup, as istiod's PushContext does it.

Layer: L3. Imports: resources, model.policy.

`push_context.go:setDestinationRules`, `destination_rule.go:mergeDestinationRule`,
`push_context.go:destinationRule`, `config.go:MostSpecificHostMatch`, `sidecar.go:DestinationRule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


from meshlens.model.policy import DEST, SUBSET, TrafficPolicyRef
from meshlens.resources import Resource


@dataclass(frozen=True, slots=True)
class Subset:
    name: str
    labels: dict[str, str]
    policy: TrafficPolicyRef | None
    resource: Resource
    index: int  # position in the resource's spec.subsets


@dataclass(slots=True)
class ConsolidatedRule:
    """One or more DestinationRules merged for one host string (`ConsolidatedDestRule`)."""

    host: str
    resource: Resource  # the first (oldest) rule: its name is reported in cluster metadata
    policy: TrafficPolicyRef | None
    subsets: list[Subset]
    export_to: frozenset[str]
    selector: dict[str, str] | None
    sources: list[Resource] = field(default_factory=list)
    duplicate_subsets: list[tuple[Resource, str]] = field(default_factory=list)
    _by_name: dict[str, Subset] = field(default_factory=dict, repr=False, compare=False)

    def subset(self, name: str) -> Subset | None:
        """The first subset called ``name`` (a dict: a rule with 10,000 subsets is looked up
        once per cluster, and a scan made that quadratic). Subsets are only ever appended, so
        the index catches up when the list has grown."""
        if len(self._by_name) != len(self.subsets):
            self._by_name = {}
            for s in self.subsets:
                self._by_name.setdefault(s.name, s)
        return self._by_name.get(name)


def resolve_short_name(host: str, namespace: str, suffix: str = "cluster.local") -> str:
    """`ResolveShortnameToFQDN`: a host without a dot gets the *rule's* namespace.

    Example:
        >>> resolve_short_name("reviews", "default"), resolve_short_name("reviews.prod", "x")
        ('reviews.default.svc.cluster.local', 'reviews.prod')
    """
    if host == "*" or "." in host or ":" in host:
        return host
    return f"{host}.{namespace}.svc.{suffix}"


def _convert(res: Resource) -> ConsolidatedRule:
    spec = res.spec
    host = resolve_short_name(str(spec.get("host", "")), res.namespace)
    tp = spec.get("trafficPolicy")
    subsets = []
    for i, s in enumerate(spec.get("subsets") or []):
        if not isinstance(s, dict):
            continue
        stp = s.get("trafficPolicy")
        subsets.append(Subset(
            str(s.get("name", "")), {str(k): str(v) for k, v in (s.get("labels") or {}).items()},
            TrafficPolicyRef(stp, res, ("spec", "subsets", i, "trafficPolicy"), SUBSET)
            if isinstance(stp, dict) else None, res, i))
    sel = spec.get("workloadSelector")
    selector = {str(k): str(v) for k, v in (sel.get("matchLabels") or {}).items()} \
        if isinstance(sel, dict) else None
    export = frozenset({"."}) if selector is not None else frozenset(
        str(e) for e in spec.get("exportTo") or [])
    return ConsolidatedRule(
        host, res, TrafficPolicyRef(tp, res, ("spec", "trafficPolicy"), DEST)
        if isinstance(tp, dict) else None, subsets, export, selector, [res])


@dataclass(slots=True)
class _HostIndex:
    specific: dict[str, list[ConsolidatedRule]] = field(default_factory=dict)
    wildcard: dict[str, list[ConsolidatedRule]] = field(default_factory=dict)

    def merge(self, res: Resource, export_to: frozenset[str]) -> None:
        incoming = _convert(res)
        incoming.export_to = export_to
        table = self.wildcard if incoming.host.startswith("*") else self.specific
        existing = table.get(incoming.host)
        if existing is None:
            table[incoming.host] = [incoming]
            return
        append = True
        for i, m in enumerate(existing):
            if export_to == m.export_to:
                append = False
            elif m.export_to and export_to >= m.export_to:
                append = True
            else:
                append = True
                continue
            both_none = incoming.selector is None and m.selector is None
            both_sel = incoming.selector is not None and m.selector is not None
            if both_sel and incoming.selector != m.selector:
                append = True
                continue
            if both_none or (both_sel and incoming.selector == m.selector):
                append = False
            merged = ConsolidatedRule(m.host, m.resource, m.policy, list(m.subsets), m.export_to,
                                      m.selector, m.sources + [res], list(m.duplicate_subsets))
            names = {s.name for s in merged.subsets}
            for s in incoming.subsets:
                if s.name in names:
                    merged.duplicate_subsets.append((res, s.name))
                else:
                    merged.subsets.append(s)
            if merged.policy is None and incoming.policy is not None:
                merged.policy = incoming.policy  # first rule with a policy wins, as a whole
            existing[i] = merged
        if append:
            existing.append(incoming)

    def most_specific(self, hostname: str) -> list[ConsolidatedRule] | None:
        if hostname.startswith("*"):
            if hostname in self.wildcard:
                return self.wildcard[hostname]
            candidates = [h for h in self.wildcard if h == "*" or hostname[1:].endswith(h[1:])]
        else:
            if hostname in self.specific:
                return self.specific[hostname]
            candidates = [h for h in self.wildcard if h == "*" or hostname.endswith(h[1:])]
        if not candidates:
            return None
        best = max(candidates, key=lambda h: (len(h) if h != "*" else -1, h))
        return self.wildcard[best]


@dataclass(slots=True)
class DestinationRuleIndex:
    root_namespace: str
    namespace_local: dict[str, _HostIndex] = field(default_factory=dict)
    exported: dict[str, _HostIndex] = field(default_factory=dict)
    root_local: _HostIndex = field(default_factory=_HostIndex)

    @classmethod
    def build(cls, rules: list[Resource], *, root_namespace: str,
              default_export: list[str]) -> DestinationRuleIndex:
        idx = cls(root_namespace)
        ordered = sorted(rules, key=lambda r: (0 if isinstance(r.spec.get("workloadSelector"), dict)
                                               else 1, r.creation, r.doc.index, r.name, r.namespace))
        for res in ordered:
            has_sel = isinstance(res.spec.get("workloadSelector"), dict)
            export = frozenset({"."}) if has_sel else frozenset(
                str(e) for e in res.spec.get("exportTo") or [])
            ns = res.namespace
            if not export or export & {"*", ".", ns}:
                idx.namespace_local.setdefault(ns, _HostIndex()).merge(res, export)
            private = (not export and "." in default_export) or (
                len(export) == 1 and next(iter(export)) in (".", ns))
            if not private:
                idx.exported.setdefault(ns, _HostIndex()).merge(res, export)
            elif ns == root_namespace:
                idx.root_local.merge(res, export)
        return idx

    def lookup(self, proxy_ns: str, hostname: str, service_ns: str) -> list[ConsolidatedRule]:
        """`PushContext.destinationRule`: proxy namespace → service namespace → root namespace."""
        if proxy_ns != self.root_namespace:
            local = self.namespace_local.get(proxy_ns)
            found = local.most_specific(hostname) if local else None
        else:
            found = self.root_local.most_specific(hostname)
        if found:
            return found

        def exported_from(ns: str) -> list[ConsolidatedRule]:
            index = self.exported.get(ns)
            rules = index.most_specific(hostname) if index else None
            return [r for r in rules or [] if not r.export_to or "*" in r.export_to
                    or proxy_ns in r.export_to]

        return exported_from(service_ns) or exported_from(self.root_namespace)


def choose(rules: list[ConsolidatedRule], *, outbound: bool, proxy_ns: str,
           proxy_labels: dict[str, str]) -> ConsolidatedRule | None:
    """`SidecarScope.DestinationRule`: the first matching selector rule, else the last catch-all."""
    catch_all = None
    for r in rules:
        if r.selector is None:
            catch_all = r
        if outbound and r.resource.namespace == proxy_ns and r.selector is not None \
                and all(proxy_labels.get(k) == v for k, v in r.selector.items()):
            return r
    return catch_all


def subset_labels(rule: ConsolidatedRule | None, name: str) -> dict[str, str] | None:
    if rule is None or not name:
        return None
    s = rule.subset(name)
    return s.labels if s and s.labels else None


