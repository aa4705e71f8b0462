"""AuthorizationPolicies → RBAC (and ext_authz) filters, as istiod's authz builder makes them.

Layer: L4. Imports: compiler.authz.{model,extauthz,policies}, compiler.provenance, xDS protos.

Mirrors ``pilot/pkg/security/authz/builder/builder.go``: `New` (nil when no policy applies),
`build` (one ``RBAC`` of enforced rules and one of dry-run rules per action; a policy without
rules is the never-matching `rbacPolicyMatchNever`; rule names ``ns[NS]-policy[NAME]-rule[I]``
from `policyName`), `buildHTTP`/`buildTCP` (the local builder emits AUDIT, DENY, ALLOW filters in
that order; dry-run rules go to ``shadow_rules`` with the ``istio_dry_run_allow_``/``_deny_``
stat prefix; CUSTOM emits, per provider sorted by name, an RBAC filter whose ``shadow_rules``
tag matching requests and the provider's ext_authz filter, or a DENY filter when the provider is
broken or several providers are used without PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as tcp_rbac_pb2

from meshlens.compiler import provenance as prov
from meshlens.compiler.authz import extauthz as ext
from meshlens.compiler.authz import model as am
from meshlens.compiler.authz.policies import Selected, TrustDomainBundle
from meshlens.compiler.provenance import Origin

HTTP_RBAC = "envoy.filters.http.rbac"
HTTP_EXT_AUTHZ = "envoy.filters.http.ext_authz"
TCP_RBAC = "envoy.filters.network.rbac"
TCP_EXT_AUTHZ = "envoy.filters.network.ext_authz"
TCP_STAT_PREFIX = "tcp."
DRY_RUN = "istio.io/dry-run"
_ACTIONS = {"AUDIT": rbac_pb2.RBAC.LOG, "DENY": rbac_pb2.RBAC.DENY, "ALLOW": rbac_pb2.RBAC.ALLOW}
_MODEL_ACTION = {"AUDIT": am.LOG, "DENY": am.DENY, "ALLOW": am.ALLOW, "CUSTOM": am.DENY}


@dataclass(slots=True)
class BuiltFilter:
    """One filter with the policy rule behind each RBAC policy name, and what was left out."""

    name: str
    config: Any
    origins: dict[str, Origin] = field(default_factory=dict)  # RBAC policy name → rule
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Rules:
    """`builtRule`."""

    rules: rbac_pb2.RBAC | None
    shadow: rbac_pb2.RBAC | None
    provider_rules: dict[str, rbac_pb2.RBAC] = field(default_factory=dict)
    provider_shadow: dict[str, rbac_pb2.RBAC] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def is_dry_run(res: Any) -> bool:
    """`isDryRun`: ``istio.io/dry-run`` parsed with Go's ``strconv.ParseBool`` (bad → false)."""
    return res.annotations.get(DRY_RUN, "") in ("1", "t", "T", "TRUE", "true", "True")


def policy_name(namespace: str, name: str, rule: int, provider: str = "",
                custom: bool = False) -> str:
    """`policyName`."""
    prefix = ""
    if custom:
        prefix = f"{ext.EXT_AUTHZ_PREFIX}-{provider}-" if provider else f"{ext.EXT_AUTHZ_PREFIX}-"
    return f"{prefix}ns[{namespace}]-policy[{name}]-rule[{rule}]"


class AuthzBuilder:
    """`Builder` for one proxy: ``custom`` selects the CUSTOM builder (`IsCustomBuilder`)."""

    def __init__(self, selected: Selected, bundle: TrustDomainBundle, *, custom: bool,
                 providers: dict[str, ext.ExtAuthz] | None = None, mesh_doc: Any = None,
                 use_authenticated: bool = True, multiple_providers: bool = False) -> None:
        self.selected = selected
        self.bundle = bundle
        self.custom = custom
        self.providers = providers or {}
        self.mesh_doc = mesh_doc
        self.use_authenticated = use_authenticated
        self.multiple_providers = multiple_providers

    def active(self) -> bool:
        """`New` returns nil when no policy of its kind applies."""
        return bool(self.selected.custom) if self.custom else self.selected.any_local()

    # -- build -------------------------------------------------------------------------------
    def _build(self, policies: list[Any], action: str, for_tcp: bool) -> _Rules | None:
        """`build`."""
        if not policies:
            return None
        rbac_action = rbac_pb2.RBAC.DENY if self.custom else _ACTIONS[action]
        enforce = rbac_pb2.RBAC(action=rbac_action)
        shadow = rbac_pb2.RBAC(action=rbac_action)
        out = _Rules(None, None)
        has_enforce = has_dry = False
        chain = "TCP" if for_tcp else "HTTP"
        for res in policies:
            provider = ""
            if self.custom:
                p = res.spec.get("provider")
                provider = str(p.get("name") or "") if isinstance(p, dict) else ""
                if provider not in out.provider_rules:
                    out.provider_rules[provider] = rbac_pb2.RBAC(action=rbac_action)
                    out.provider_shadow[provider] = rbac_pb2.RBAC(action=rbac_action)
                current = (out.provider_shadow if is_dry_run(res) else out.provider_rules)[provider]
            elif is_dry_run(res):
                current, has_dry = shadow, True
            else:
                current, has_enforce = enforce, True
            rules = res.spec.get("rules") or []
            for i, rule in enumerate(rules):
                name = policy_name(res.namespace, res.name, i, provider, self.custom)
                origin = prov.from_resource(res, ("spec", "rules", i), "AuthorizationPolicy",
                                            f"{action} rule {i}" + (" (dry-run)" if is_dry_run(res) else ""))
                if not isinstance(rule, dict):
                    out.notes.append(f"skipped nil rule {name}")
                    continue
                try:
                    m = am.new_model(rule, ("spec", "rules", i))
                except am.GenError as exc:
                    out.notes.append(f"skipped invalid rule {name}: {exc}")
                    continue
                am.migrate_trust_domain(m, self.bundle)
                try:
                    generated = am.generate(m, for_tcp=for_tcp, use_authenticated=self.use_authenticated,
                                            action=_MODEL_ACTION[action], namespace=res.namespace)
                except am.GenError as exc:
                    out.notes.append(f"skipped rule {name} on {chain} filter chain: {exc}")
                    continue
                current.policies[name].CopyFrom(generated)
                out.origins[name] = origin
            if not rules:
                name = policy_name(res.namespace, res.name, 0, provider, self.custom)
                current.policies[name].CopyFrom(am.match_never())
                out.origins[name] = prov.from_resource(
                    res, ("spec",), "AuthorizationPolicy",
                    f"{action} policy without rules" + (": denies every request" if action == "ALLOW" else ""))
        out.rules = enforce if has_enforce else None
        out.shadow = shadow if has_dry else None
        return out

    # -- HTTP / TCP --------------------------------------------------------------------------
    def _local(self, for_tcp: bool) -> list[BuiltFilter]:
        filters: list[BuiltFilter] = []
        for action, policies in (("AUDIT", self.selected.audit), ("DENY", self.selected.deny),
                                 ("ALLOW", self.selected.allow)):
            built = self._build(policies, action, for_tcp)
            if built is None:
                continue
            cfg: Any = tcp_rbac_pb2.RBAC(stat_prefix=TCP_STAT_PREFIX) if for_tcp else http_rbac_pb2.RBAC()
            if built.rules is not None:
                cfg.rules.CopyFrom(built.rules)
            if built.shadow is not None:
                cfg.shadow_rules.CopyFrom(built.shadow)
            cfg.shadow_rules_stat_prefix = _shadow_prefix(built.shadow)
            filters.append(BuiltFilter(TCP_RBAC if for_tcp else HTTP_RBAC, cfg, built.origins,
                                       built.notes))
        return filters

    def _custom(self, for_tcp: bool) -> list[BuiltFilter]:
        built = self._build(self.selected.custom, "CUSTOM", for_tcp)
        if built is None:
            return []
        rbac_name, ext_name = (TCP_RBAC, TCP_EXT_AUTHZ) if for_tcp else (HTTP_RBAC, HTTP_EXT_AUTHZ)
        providers = sorted(set(built.provider_rules) | set(built.provider_shadow))
        out: list[BuiltFilter] = []

        def deny(provider: str, why: str) -> None:
            cfg: Any = tcp_rbac_pb2.RBAC(stat_prefix=TCP_STAT_PREFIX) if for_tcp else http_rbac_pb2.RBAC()
            cfg.rules.action = rbac_pb2.RBAC.DENY
            origins = {}
            for key, pol in built.provider_rules[provider].policies.items():
                cfg.rules.policies[key + ext.BAD_CUSTOM_SUFFIX].CopyFrom(pol)
                origins[key + ext.BAD_CUSTOM_SUFFIX] = built.origins[key]
            out.append(BuiltFilter(rbac_name, cfg, origins, [*built.notes, why]))

        if len(providers) > 1 and not self.multiple_providers:
            for p in providers:
                deny(p, "multiple CUSTOM authorization providers per workload requires "
                        "PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS feature flag, found "
                        f"{len(providers)} providers: {providers}")
            return out
        for p in providers:
            found = self.providers.get(p)
            if found is None or found.errors:
                why = (f'available providers are {sorted(self.providers)} but found "{p}"'
                       if found is None else f"found errors in provider {p}: {'; '.join(found.errors)}")
                deny(p, f"failed to process CUSTOM action for provider {p}, will generate deny "
                        f"configs: {why}")
                continue
            authz = found.tcp if for_tcp else found.http
            if authz is None:
                continue  # an HTTP provider on a TCP chain: ignored
            cfg = tcp_rbac_pb2.RBAC(stat_prefix=TCP_STAT_PREFIX) if for_tcp else http_rbac_pb2.RBAC()
            cfg.shadow_rules.CopyFrom(built.provider_rules[p])
            cfg.shadow_rules_stat_prefix = ext.SHADOW_PREFIX
            if built.provider_shadow[p].policies:
                cfg.rules.CopyFrom(built.provider_shadow[p])
            ea = type(authz)()
            ea.CopyFrom(authz)
            ea.filter_enabled_metadata.CopyFrom(ext.filter_matcher(rbac_name, p))
            origin = Origin("mesh config", None, ("extensionProviders", found.index), self.mesh_doc,
                            f"CUSTOM provider {p}")
            out.append(BuiltFilter(rbac_name, cfg, built.origins, built.notes))
            out.append(BuiltFilter(ext_name, ea, {p: origin}))
        return out

    def build_http(self) -> list[BuiltFilter]:
        """`BuildHTTP`."""
        if not self.active():
            return []
        return self._custom(False) if self.custom else self._local(False)

    def build_tcp(self) -> list[BuiltFilter]:
        """`BuildTCP`."""
        if not self.active():
            return []
        return self._custom(True) if self.custom else self._local(True)


def _shadow_prefix(rules: rbac_pb2.RBAC | None) -> str:
    """`shadowRuleStatPrefix`: Go's getter on a nil RBAC gives action ALLOW, so a filter without
    dry-run rules still carries the ``istio_dry_run_allow_`` prefix."""
    if rules is None or rules.action == rbac_pb2.RBAC.ALLOW:
        return "istio_dry_run_allow_"
    if rules.action == rbac_pb2.RBAC.DENY:
        return "istio_dry_run_deny_"
    return ""
