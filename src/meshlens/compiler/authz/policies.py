"""Which AuthorizationPolicies apply to a sidecar, and the mesh's trust domain bundle.

Layer: L4. Imports: resources (types), xDS-free.

`model.GetAuthorizationPolicies` (policies by namespace, oldest first: `sortConfigByCreationTime`,
``Resource.order``),
`AuthorizationPolicies.ListAuthorizationPolicies` (root namespace, then the workload's
namespace; split by action; attachment by :func:`meshlens.compiler.attach.selects`), and ``pilot/pkg/security/trustdomain`` (`Bundle`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.compiler.attach import selects

ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")


@dataclass(slots=True)
class Selected:
    """`AuthorizationPoliciesResult`: the policies of each action, in istiod's order."""

    custom: list[Any] = field(default_factory=list)
    deny: list[Any] = field(default_factory=list)
    allow: list[Any] = field(default_factory=list)
    audit: list[Any] = field(default_factory=list)

    def any_local(self) -> bool:
        return bool(self.deny or self.allow or self.audit)


def select_policies(resources: list[Any], namespace: str, labels: dict[str, str],
                    root_namespace: str) -> Selected:
    """`ListAuthorizationPolicies(PolicyMatcherForProxy(proxy).WithRootNamespace(...))`."""
    out = Selected()
    policies = sorted((r for r in resources if r.kind == "AuthorizationPolicy"), key=lambda r: r.order)
    for ns in dict.fromkeys((root_namespace, namespace)):
        for res in policies:
            if res.namespace != ns or not selects(res, namespace, labels):
                continue
            action = res.spec.get("action") or "ALLOW"
            if action in ACTIONS:
                getattr(out, action.lower()).append(res)
    return out


def _prefix_match(a: str, pattern: str) -> bool:
    return pattern.endswith("*") and a.startswith(pattern[:-1])


def _suffix_match(a: str, pattern: str) -> bool:
    return pattern.startswith("*") and a.endswith(pattern[1:])


@dataclass(frozen=True, slots=True)
class TrustDomainBundle:
    """`trustdomain.Bundle`: the mesh trust domain followed by its aliases."""

    domains: tuple[str, ...]

    @classmethod
    def of(cls, mesh_config: Any) -> TrustDomainBundle:
        """`NewBundle(mesh.TrustDomain, mesh.TrustDomainAliases)`."""
        aliases = mesh_config.get("trustDomainAliases")
        return cls((mesh_config.trust_domain, *[str(a) for a in aliases or []]))

    def _matches(self, td: str) -> bool:
        """`stringMatch`."""
        return any(td == s or s == "*" or _prefix_match(td, s) or _prefix_match(s, td)
                   or _suffix_match(td, s) or _suffix_match(s, td) for s in self.domains)

    def replace_aliases(self, principals: list[str]) -> list[str]:
        """`ReplaceTrustDomainAliases`: ``TD/ns/N/sa/S`` for each trust domain and alias."""
        out: list[str] = []
        for p in principals:
            parts = p.split("/")
            if len(parts) != 5 or parts[0] == "*":
                out.append(p)
                continue
            td = parts[0]
            if not (self._matches(td) or td == "cluster.local"):
                out.append(p)
                continue
            for_aliases: list[str] = []
            for d in self.domains:
                new = p if _suffix_match(d, td) else "/".join([d, *parts[1:]])
                if new not in for_aliases:
                    for_aliases.append(new)
            out.extend(for_aliases)
        return out

    def expand_aliases(self, values: list[str]) -> list[str]:
        """`ExpandTrustDomainAliases`."""
        out: list[str] = []
        for v in values:
            out.extend(self.domains if v in self.domains else [v])
        return list(dict.fromkeys(out))
