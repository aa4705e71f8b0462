"""The build cache: what one run builds once and shares between the proxies it compiles.

Layer: L4. Imports: model, resources, source, compiler.options.

istiod's xDS cache (`pilot/pkg/model/typed_xds_cache.go`) keeps a cluster, an endpoint set or a
route configuration per *key* and serves it to every proxy whose key is equal. This module is
that cache for one run of meshlens (``analyze`` of every proxy, ``diff``/``drift`` over all
proxies, a lab with several sidecars, ``compile`` of several proxies): stages ask it, never
keep private caches of their own (style guide §9).

Keys are explicit frozen dataclasses, built from *content*, never object identity:

* :class:`SourceKey` — one input resource: its reference, where it is in the input (provenance
  points there) and a digest of its whole body. Two DestinationRule objects built from the same
  resource in two indexes (namespace-local and exported) have equal keys.
* :class:`RuleKey` — a merged DestinationRule (`ConsolidatedDestRule`): its host and the rules
  it was merged from, in order (`GetFrom`); the merge is a function of them.
* :class:`ProxyKey` — what a proxy contributes to its outbound clusters and endpoints
  (`clusterCache`: proxyType, locality, supportsIPv4 ...): router or sidecar, IPv6-only, its
  locality, and its labels only when a ``failoverPriority`` can read them.
* :class:`ClusterKey` — all outbound clusters of one service (`buildClusterKey`): the service,
  the RuleKey, the ProxyKey, the CompileOptions (istiod's flags) and the SNI-DNAT variant.
* :class:`EndpointKey` — one ClusterLoadAssignment (`EndpointBuilder` key): the cluster name,
  the service and port, the RuleKey, the ProxyKey and the options.
* :class:`RouteKey` — one sidecar RouteConfiguration (`route.Cache`): its name, the proxy's
  namespace, labels and IP family (the Sidecar scope, the rules it sees and the domains follow
  from them).

The MeshConfig and the registry are the same for every key: a cache is bound to one
:class:`~meshlens.model.Mesh` and starts empty when it is used with another.

Shared results are never mutated after they are inserted: a proxy that needs a variant (an
EnvoyFilter patch) copies first (see ``compile_proxy``). ``BuildCache(check=True)`` records the
serialized bytes of every shared message at insert and :meth:`BuildCache.verify` compares them
at the end of a run; the tests run multi-proxy builds with it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceKey:
    """One input resource by content: ``Kind ns/name``, its place in the input, a body digest."""

    ref: str
    where: tuple[str, int, int, int]  # file, line, column, document index
    body: str  # canonical JSON of the whole object


@dataclass(frozen=True, slots=True)
class RuleKey:
    """A merged DestinationRule by content (`ConsolidatedDestRule.GetFrom`).

    The merge (`mergeDestinationRule`) is a function of the rules merged, in order: which
    trafficPolicy wins, the subsets, the workloadSelector all follow from ``sources``.
    """

    host: str
    sources: tuple[SourceKey, ...]  # the rule named in metadata, then every rule merged, in order
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # hashed once: every cluster and endpoint key holds one, and they are looked up often
        object.__setattr__(self, "_hash", hash((self.host, self.sources)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class ProxyKey:
    """What the proxy itself contributes to outbound clusters and EDS (`clusterCache`)."""

    router: bool  # proxyType: gateways skip protocol sniffing and ORIGINAL_DST
    ipv6_only: bool  # supportsIPv4: dns_lookup_family, bind addresses
    locality: str  # `clusterCache.locality`: locality failover of inline endpoints
    labels: frozenset[tuple[str, str]] | None  # failoverPriority reads them; None when nothing does


@dataclass(frozen=True, slots=True)
class ClusterKey:
    """Every outbound cluster of one service, default and subsets, all ports."""

    service: tuple[str, str]  # hostname, namespace
    rule: RuleKey | None
    proxy: ProxyKey
    options: Any  # CompileOptions (frozen): istiod's feature flags
    sni_dnat: bool  # `buildOutboundSniDnatClusters` naming, no TLS


@dataclass(frozen=True, slots=True)
class EndpointKey:
    """One ClusterLoadAssignment (`EndpointBuilder`'s key)."""

    cluster: str
    service: tuple[str, str]
    port: int
    rule: RuleKey | None
    proxy: ProxyKey
    options: Any


@dataclass(frozen=True, slots=True)
class RouteKey:
    """One sidecar RouteConfiguration (istiod's `route.Cache`). Besides the name, what the
    proxy adds: its namespace (DNS domain, Sidecar scope, visible services and rules), its
    labels (Sidecar and DestinationRule workloadSelectors, VirtualService ``sourceLabels``) and
    its IP family (which VIPs become domains)."""

    name: str
    namespace: str
    labels: frozenset[tuple[str, str]]
    ipv6_only: bool


@dataclass(slots=True)
class _Entry:
    owner: Any  # the object the value was built for (checked on a hit: same key, same object)
    value: Any


@dataclass(slots=True)
class BuildCache:
    """One run's shared builds. Not thread-safe; one per run (or per process).

    Attributes:
        check: record the bytes of every shared message at insert, for :meth:`verify`.
        share: False builds everything anew on every request (the uncached reference the
            tests compare shared builds with).
        stats: hits and misses per section, e.g. ``{"clusters": [hits, misses]}``.
    """

    check: bool = False
    share: bool = True
    stats: dict[str, list[int]] = field(default_factory=dict)
    _mesh: Any = None
    _sections: dict[str, dict[Any, _Entry]] = field(default_factory=dict)
    _sources: dict[int, tuple[Any, SourceKey]] = field(default_factory=dict)
    _rules: dict[int, tuple[Any, RuleKey]] = field(default_factory=dict)
    _frozen: list[tuple[str, Any, bytes]] = field(default_factory=list)

    def bind(self, mesh: Any) -> None:
        """Use this cache for ``mesh``; a different mesh starts it afresh."""
        if self._mesh is not mesh:
            self._mesh = mesh
            self._sections.clear()
            self._sources.clear()
            self._rules.clear()
            self._frozen.clear()

    # --- keys ------------------------------------------------------------------------------

    def source_key(self, res: Any) -> SourceKey:
        hit = self._sources.get(id(res))
        if hit is not None and hit[0] is res:
            return hit[1]
        span = res.doc.span
        key = SourceKey(str(res.ref), (str(span.path), span.line, span.col, res.doc.index),
                        json.dumps(res.body, sort_keys=True, default=repr))
        self._sources[id(res)] = (res, key)
        return key

    def rule_key(self, rule: Any) -> RuleKey | None:
        """The content key of a ``ConsolidatedRule`` (equal for equal merges in any index)."""
        if rule is None:
            return None
        hit = self._rules.get(id(rule))
        if hit is not None and hit[0] is rule:
            return hit[1]
        sk = self.source_key
        key = RuleKey(rule.host, (sk(rule.resource),) + tuple(sk(r) for r in rule.sources))
        self._rules[id(rule)] = (rule, key)
        return key

    def proxy_key(self, proxy: Any, locality: str, rule: RuleKey | None,
                  labels: Callable[[], dict[str, str]]) -> ProxyKey:
        """``labels`` is called only when a failoverPriority (rule or MeshConfig) may read them."""
        wants = self.memo("mesh_failover_priority", None, lambda: "failoverPriority" in json.dumps(
            self._mesh.mesh_config.get("localityLbSetting") or {}, default=repr))
        if rule is not None and not wants:
            wants = any("failoverPriority" in s.body for s in rule.sources)
        return ProxyKey(proxy.is_router, self.ip_version(proxy.ip) == 6, locality,
                        frozenset(labels().items()) if wants else None)

    # --- shared builds ---------------------------------------------------------------------

    def shared(self, section: str, key: Any, owner: Any, build: Callable[[], Any],
               messages: Callable[[Any], list[Any]] | None = None) -> Any:
        """The value built for ``key`` (by ``build()`` on a miss). ``owner`` must be the same
        object on a hit (e.g. the Service: equal names from another mesh do not count).
        ``messages(value)`` lists the protobuf messages to freeze-check."""
        if not self.share:
            return build()
        table = self._sections.setdefault(section, {})
        count = self.stats.setdefault(section, [0, 0])
        entry = table.get(key)
        if entry is not None and entry.owner is owner:
            count[0] += 1
            return entry.value
        count[1] += 1
        value = build()
        table[key] = _Entry(owner, value)
        if self.check and messages is not None:
            for m in messages(value):
                self._frozen.append((section, m, m.SerializeToString(deterministic=True)))
        return value

    def memo(self, section: str, key: Any, build: Callable[[], Any]) -> Any:
        """A value derived from the mesh alone (or from ``key``), computed once per run."""
        if not self.share:
            return build()
        table = self._sections.setdefault(section, {})
        entry = table.get(key)
        if entry is None:
            entry = table[key] = _Entry(None, build())
        return entry.value

    def per_message(self, section: str, message: Any, build: Callable[[Any], Any]) -> Any:
        """``build(message)`` once per message object (kept alive here, so its id is not
        reused): for facts read back from shared clusters, e.g. the secret names they use."""
        if not self.share:
            return build(message)
        table = self._sections.setdefault(section, {})
        entry = table.get(id(message))
        if entry is None or entry.owner is not message:
            entry = table[id(message)] = _Entry(message, build(message))
        return entry.value

    def per_object(self, section: str, obj: Any, variant: Any, build: Callable[[], Any]) -> Any:
        """``build()`` once per (object, variant), the object kept alive here (its id is not
        reused): e.g. one endpoint's LbEndpoint, with and without the tlsMode label."""
        if not self.share:
            return build()
        table = self._sections.setdefault(section, {})
        entry = table.get((id(obj), variant))
        if entry is None or entry.owner is not obj:
            entry = table[(id(obj), variant)] = _Entry(obj, build())
        return entry.value

    def ip_version(self, address: str) -> int:
        """4 or 6 for an IP address, 0 for anything else (parsed once per address)."""
        table = self._sections.setdefault("ip", {})
        entry = table.get(address)
        if entry is None:
            try:
                v = ipaddress.ip_address(address).version
            except ValueError:
                v = 0
            entry = table[address] = _Entry(None, v)
        return entry.value  # type: ignore[no-any-return]

    def verify(self) -> list[str]:
        """Sections and names of shared messages that changed since they were inserted."""
        return [f"{section}: {getattr(m, 'name', '') or getattr(m, 'cluster_name', '')}"
                for section, m, raw in self._frozen
                if m.SerializeToString(deterministic=True) != raw]


__all__ = ["BuildCache", "ClusterKey", "EndpointKey", "ProxyKey", "RouteKey", "RuleKey", "SourceKey"]
