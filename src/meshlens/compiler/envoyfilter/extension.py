"""EnvoyFilter EXTENSION_CONFIG patches (the ECDS resources) and BOOTSTRAP patches.

Layer: L4. Imports: compiler.envoyfilter.patches, diagnostics, xDS protos.

ECDS (``pilot/pkg/networking/core/envoyfilter/extension_configuration_patch.go``,
`InsertedExtensionConfigurations`, called by `BuildExtensionConfiguration`, "the ECDS output"):
istiod answers an ECDS request with a copy of every EXTENSION_CONFIG patch whose operation is
ADD and whose value's ``name`` is among the names the proxy asked for, in patch order; the
patch context is not looked at (``proxy.metadata``/``proxyVersion`` are, as for every patch).
Envoy asks for the names of the filters whose ``config_discovery`` is set: HTTP filters of
every HCM, network filters and listener filters of every listener. meshlens collects those names
from the compiled listeners and lists each resource in the config-dump section Envoy's
``FilterConfigProviderManager`` of that filter type registers (``ecds_filter_http``,
``ecds_filter_network``, ``ecds_filter_tcp_listener``). Envoy refuses an extension config whose
``typed_config`` type is not in the filter's ``type_urls`` (ML1305). Upstream (cluster) filters
and Istio's own ECDS (WasmPlugin, TrafficExtension) are not modelled.

BOOTSTRAP (``BuildXDSObjectFromStruct`` still decodes a ``Bootstrap`` value, the webhook accepts
it): nothing applies such a patch any more. istiod's ``BootstrapGenerator``
(``pilot/pkg/xds/bootstrapds.go``) served a patched bootstrap to pilot-agent only with the
experimental ``BOOTSTRAP_XDS_AGENT``; Istio removed both in 1.21 ("agent: remove BDS", release
note ``bds-removal.yaml``). pilot-agent renders the bootstrap from its template alone, so the
bootstrap stays as it is and each such patch is reported (ML1304).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler.envoyfilter.patches import Patch, clone
from meshlens.diagnostics import report

HTTP, NETWORK, LISTENER = "ecds_filter_http", "ecds_filter_network", "ecds_filter_tcp_listener"


@dataclass(frozen=True, slots=True)
class ExtensionConfig:
    """One ECDS resource (a ``TypedExtensionConfig``) and the config-dump sections listing it."""

    config: Any
    sections: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Request:
    section: str
    type_urls: tuple[str, ...]
    where: str


def _chains(lis: Any) -> list[tuple[str, Any]]:
    out = [(f"filter_chains[{i}]", fc) for i, fc in enumerate(lis.filter_chains)]
    if lis.HasField("default_filter_chain"):
        out.append(("default_filter_chain", lis.default_filter_chain))
    return out


def requested_names(listeners: list[Any]) -> dict[str, list[_Request]]:
    """The ECDS names Envoy subscribes to, with the filter type and where each is asked for."""
    found: dict[str, list[_Request]] = {}

    def ask(f: Any, section: str, where: str) -> None:
        if f.HasField("config_discovery"):
            cd = f.config_discovery
            found.setdefault(f.name, []).append(_Request(section, tuple(cd.type_urls), where))

    for lis in listeners:
        for i, lf in enumerate(lis.listener_filters):
            ask(lf, LISTENER, f"listener {lis.name} listener_filters[{i}]")
        for at, fc in _chains(lis):
            for j, f in enumerate(fc.filters):
                ask(f, NETWORK, f"listener {lis.name} {at}.filters[{j}]")
                if f.HasField("typed_config") and f.typed_config.Is(
                        hcm_pb2.HttpConnectionManager.DESCRIPTOR):
                    h = hcm_pb2.HttpConnectionManager()
                    f.typed_config.Unpack(h)
                    for k, hf in enumerate(h.http_filters):
                        ask(hf, HTTP, f"listener {lis.name} {at}.filters[{j}].http_filters[{k}]")
    return found


def apply_extension_configs(out: Any, patches: list[Patch]) -> None:
    """`InsertedExtensionConfigurations` for the names the compiled listeners ask for."""
    if not patches:
        return
    wanted = requested_names(out.listeners or [])
    for p in patches:
        if p.operation != "ADD" or p.value is None or p.value.name not in wanted:
            continue
        asks = wanted[p.value.name]
        config = clone(p)
        sections = tuple(sorted({a.section for a in asks}))
        out.extension_configs.append(ExtensionConfig(config, sections))
        origin = p.origin(f"ADD EXTENSION_CONFIG, asked for by {asks[0].where}")
        out.provenance.record("extension_config", config.name, "name", origin)
        for fd, _ in config.ListFields():
            out.provenance.record("extension_config", config.name, fd.name, origin)
        out.provenance.record("envoyfilter", p.key, f"configPatches[{p.index}]",
                              p.origin(f"applied to extension_config {config.name}"))
        type_url = config.typed_config.type_url
        refused: dict[tuple[str, ...], _Request] = {}
        for a in asks:  # one report per distinct type list (the first filter that asks)
            if a.type_urls and type_url not in a.type_urls:
                refused.setdefault(a.type_urls, a)
        for a in refused.values():
            out.diagnostics.append(report(
                "ML1305", doc=p.resource.doc, path=("spec", "configPatches", p.index),
                resource=p.resource.ref, index=p.index, name=config.name,
                type=type_url.rsplit("/", 1)[-1], where=a.where,
                accepted=", ".join(t.rsplit("/", 1)[-1] for t in a.type_urls)))


def note_bootstrap_patches(out: Any, patches: list[Patch]) -> None:
    """BOOTSTRAP patches: the bootstrap is left as pilot-agent renders it (ML1304 each)."""
    for p in patches:
        out.diagnostics.append(report("ML1304", doc=p.resource.doc,
                                      path=("spec", "configPatches", p.index),
                                      resource=p.resource.ref, index=p.index))
