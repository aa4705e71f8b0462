"""Authorization filters for a sidecar's inbound chains (istiod's authz plugin).

Layer: L4. Imports: compiler.authz.*, compiler.filters, model (types).

``pilot/pkg/networking/plugin/authz/authorization.go`` (`NewBuilder`) builds two builders per
proxy: the local one (ALLOW/DENY/AUDIT) and the CUSTOM one, each from the policies
`ListAuthorizationPolicies` selects, with the mesh trust domain bundle and ``useFilterState``
false (a sidecar matches the peer certificate: ``authenticated``). `buildHTTPConnectionManager`
puts, after metadata exchange, the CUSTOM filters, then authn (jwt_authn, istio_authn), then the
local RBAC filters; `buildCompleteNetworkFilters` puts on TCP chains, after metadata exchange,
the CUSTOM network filters, then the local network RBAC filters, before tcp_proxy. The
jwt_authn filter of RequestAuthentication (:mod:`meshlens.compiler.authn`) is built here too. HTTP filters
are never built for outbound (`Builder.BuildHTTP` returns nil for SidecarOutbound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2 as lc_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler import filters as flt
from meshlens.compiler.authn import JWT_FILTER, BuiltJwt, build_jwt_filter
from meshlens.compiler.authz.builder import AuthzBuilder, BuiltFilter
from meshlens.compiler.authz.extauthz import process_providers
from meshlens.compiler.authz.policies import TrustDomainBundle, select_policies

__all__ = ["AuthzFilters", "BuiltFilter", "build_authz", "record_provenance"]


@dataclass(slots=True)
class AuthzFilters:
    """The filters istiod's two authz builders make for one proxy, built once."""

    custom_http: list[BuiltFilter] = field(default_factory=list)
    local_http: list[BuiltFilter] = field(default_factory=list)
    custom_tcp: list[BuiltFilter] = field(default_factory=list)
    local_tcp: list[BuiltFilter] = field(default_factory=list)
    jwt: BuiltJwt | None = None  # RequestAuthentication (compiler.authn), between the two

    def authn_filters(self) -> list[hcm_pb2.HttpFilter]:
        """`authnBuilder.BuildHTTP`: jwt_authn, between the CUSTOM and the local filters."""
        return [] if self.jwt is None else [flt.http_filter(JWT_FILTER, self.jwt.config)]

    def http_filters(self, built: list[BuiltFilter]) -> list[hcm_pb2.HttpFilter]:
        return [flt.http_filter(b.name, b.config) for b in built]

    def tcp_filters(self) -> list[lc_pb2.Filter]:
        """CUSTOM, then local: `buildCompleteNetworkFilters`."""
        return [flt.network_filter(b.name, b.config) for b in self.custom_tcp + self.local_tcp]

    def by_config(self) -> list[BuiltFilter]:
        return self.custom_http + self.local_http + self.custom_tcp + self.local_tcp


def build_authz(mesh: Any, proxy: Any) -> AuthzFilters:
    """Both builders for ``proxy`` (a sidecar), HTTP and TCP filters.

    Args:
        mesh: the ``Mesh`` (its AuthorizationPolicies, MeshConfig and registry).
        proxy: the sidecar's ``Proxy``.
    """
    mc = mesh.mesh_config
    selected = select_policies(mesh.resources, proxy.namespace, proxy.labels, mc.root_namespace)
    bundle = TrustDomainBundle.of(mc)
    local = AuthzBuilder(selected, bundle, custom=False)
    out = AuthzFilters(local_http=local.build_http(), local_tcp=local.build_tcp(),
                       jwt=build_jwt_filter(mesh, proxy))
    if selected.custom:
        custom = AuthzBuilder(selected, bundle, custom=True,
                              providers=process_providers(mc, mesh.registry), mesh_doc=mc.doc)
        out.custom_http, out.custom_tcp = custom.build_http(), custom.build_tcp()
    return out


def _record(built: Any, path: str, bf: BuiltFilter) -> None:
    for name, origin in bf.origins.items():
        if bf.name == JWT_FILTER:
            built.set(f"{path}.typed_config.providers.{name}", origin)
            continue
        key = "rules" if name in _policy_names(bf.config, "rules") else "shadow_rules"
        if bf.name.endswith("ext_authz"):
            built.set(path, origin)
        else:
            built.set(f"{path}.typed_config.{key}.policies.{name}", origin)


def _policy_names(cfg: Any, which: str) -> set[str]:
    return set(getattr(cfg, which).policies) if cfg.HasField(which) else set()


def record_provenance(built: Any, index: int, fc: lc_pb2.FilterChain, authz: AuthzFilters) -> None:
    """Record, on a listener's ``Built``, the policy rule behind every RBAC policy of the authz
    filters of chain ``index`` (matched by configuration, as the filters were built once)."""
    configs = [(bf.config.SerializeToString(deterministic=True), bf) for bf in authz.by_config()]
    if authz.jwt is not None:
        configs.append((authz.jwt.config.SerializeToString(deterministic=True),
                        BuiltFilter(JWT_FILTER, authz.jwt.config, authz.jwt.origins)))
    if not configs:
        return
    for j, f in enumerate(fc.filters):
        path = f"filter_chains[{index}].filters[{j}]"
        if f.name == flt.HCM:
            h = hcm_pb2.HttpConnectionManager()
            f.typed_config.Unpack(h)
            for k, hf in enumerate(h.http_filters):
                _match(built, f"{path}.typed_config.http_filters[{k}]", hf.typed_config, configs)
        else:
            _match(built, path, f.typed_config, configs)


def _match(built: Any, path: str, any_cfg: Any, configs: list[tuple[bytes, BuiltFilter]]) -> None:
    for raw, bf in configs:
        if any_cfg.Is(bf.config.DESCRIPTOR):
            msg = type(bf.config)()
            any_cfg.Unpack(msg)
            if msg.SerializeToString(deterministic=True) == raw:
                _record(built, path, bf)
                return
