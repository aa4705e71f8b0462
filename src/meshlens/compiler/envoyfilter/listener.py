"""EnvoyFilter patches on listeners, listener filters, filter chains, network and HTTP filters.

Layer: L4. Imports: compiler.envoyfilter.{patches,merge}, xDS protos.

``pilot/pkg/networking/core/envoyfilter/listener_patch.go``: `patchListeners` (per listener, then
ADD listeners unless ``skipAdds``; a context-ANY ADD only in SIDECAR_OUTBOUND), `patchListener`
(REMOVE, MERGE), `patchListenerFilters`, `patchFilterChains` / `patchFilterChain` (REMOVE,
MERGE with the transport socket rule, ADD), `patchNetworkFilters` / `patchNetworkFilter` (ADD,
INSERT_FIRST/BEFORE/AFTER, REPLACE, REMOVE, MERGE of ``typed_config``), `patchHTTPFilters` /
`mergeHTTPFilter` inside every HCM, and the matchers `listenerMatch` (on ``virtualInbound`` and
``virtualOutbound`` a ``portNumber`` does not select the listener...), `filterChainMatch` (...but
the chain whose ``destination_port`` is that number: the target port on inbound),
`listenerFilterMatch`, `networkFilterMatch`, `httpFilterMatch`. INSERT_BEFORE/AFTER without a
filter to match insert first/last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler.envoyfilter.merge import merge_any
from meshlens.compiler.envoyfilter.patches import Patch, clone, is_merge, merge_value, replace_items

HCM = "envoy.filters.network.http_connection_manager"
VIRTUAL = ("virtualInbound", "virtualOutbound")
Applied = list[tuple[Patch, str]]


def listener_match(lis: Any, p: Patch) -> bool:
    """`listenerMatch`."""
    m = p.sub("listener")
    if m is None:
        return True
    if m.get("name") and m["name"] != lis.name:
        return False
    if p.apply_to != "LISTENER" and lis.name in VIRTUAL:
        return True
    port = int(m.get("portNumber") or 0)
    return not (port and lis.address.socket_address.port_value != port)


def chain_match(lis: Any, fc: Any, p: Patch) -> bool:
    """`filterChainMatch`."""
    m = p.sub("listener")
    if m is None:
        return True
    fcm = fc.filter_chain_match
    port = int(m.get("portNumber") or 0)
    if lis.name in VIRTUAL and port > 0 and fcm.destination_port.value != port:
        return False
    match = p.sub("listener", "filterChain")
    if match is None:
        return True
    if match.get("name") and match["name"] != fc.name:
        return False
    if match.get("sni") and match["sni"] not in fcm.server_names:
        return False
    if match.get("transportProtocol") and fcm.transport_protocol != match["transportProtocol"]:
        return False
    if match.get("applicationProtocols"):
        if any(x not in fcm.application_protocols for x in str(match["applicationProtocols"]).split(",")):
            return False
    dport = int(match.get("destinationPort") or 0)
    return not (dport > 0 and (not fcm.HasField("destination_port") or fcm.destination_port.value != dport))


def _filter_name(p: Patch) -> str | None:
    f = p.sub("listener", "filterChain", "filter")
    return None if f is None else str(f.get("name") or "")


def _sub_filter_name(p: Patch) -> str | None:
    f = p.sub("listener", "filterChain", "filter", "subFilter")
    return None if f is None or _filter_name(p) is None else str(f.get("name") or "")


def _listener_filter_name(p: Patch) -> str | None:
    m = p.sub("listener")
    return str(m["listenerFilter"]) if m is not None and m.get("listenerFilter") else None


def _relative(items: Any, p: Patch, has_match: bool, matches: Callable[[Any], bool],
              applied: Applied, where: str) -> None:
    """ADD, INSERT_FIRST/BEFORE/AFTER, REPLACE and REMOVE on a repeated field of messages
    (`insertBeforeFunc`, `insertAfterFunc`, `replaceFunc`, ``FilterInPlace``)."""
    op = p.operation
    current = list(items)
    first = next((i for i, e in enumerate(current) if matches(e)), None)
    at: int | None = None  # where the patch value lands
    if op == "ADD" or (op == "INSERT_AFTER" and not has_match):
        at = len(current)
    elif op == "INSERT_FIRST" or (op == "INSERT_BEFORE" and not has_match):
        at = 0
    elif op in ("INSERT_AFTER", "INSERT_BEFORE") and first is not None:
        at = first + 1 if op == "INSERT_AFTER" else first
    new = None
    if at is not None:
        new = current[:at] + [clone(p)] + current[at:]
    elif op == "REPLACE" and has_match and first is not None:
        at = first
        new = current[:first] + [clone(p)] + current[first + 1:]
    elif op == "REMOVE" and has_match:
        kept = [e for e in current if not matches(e)]
        if len(kept) != len(current):
            new = kept
    if new is None:
        return
    replace_items(items, new)
    applied.append((p, where if at is None else f"{where}[{at}]"))


def _merge_typed(target: Any, p: Patch) -> bool:
    """MERGE of a filter's ``typed_config`` (and name) with `MergeAnyWithAny`."""
    if not target.HasField("typed_config"):
        return False
    user = p.value
    if user.HasField("typed_config"):
        try:
            target.typed_config.CopyFrom(merge_any(target.typed_config, user.typed_config))
        except ValueError:
            pass
    if user.name:
        target.name = user.name
    return True


def _on_chain(p: Patch, ctx: str, lis: Any, fc: Any) -> bool:
    """The patch's context, listener and filter chain match this chain."""
    return p.context_matches(ctx) and listener_match(lis, p) and chain_match(lis, fc, p)


def _merge_matching(target: Any, candidates: list[Patch], applied: Applied, where: str) -> None:
    """`mergeNetworkFilter` / `mergeHTTPFilter`: every MERGE patch among the candidates, in order."""
    for p in candidates:
        if p.operation == "MERGE" and _merge_typed(target, p):
            applied.append((p, where))


def _http_filters(ctx: str, patches: dict[str, list[Patch]], lis: Any, fc: Any, f: Any,
                  applied: Applied, where: str) -> None:
    """`patchHTTPFilters` and `mergeHTTPFilter`."""
    h = hcm_pb2.HttpConnectionManager()
    if not f.typed_config.Unpack(h):
        return
    before = h.SerializeToString(deterministic=True)
    mine = [p for p in patches.get("HTTP_FILTER", [])
            if _on_chain(p, ctx, lis, fc) and _filter_name(p) in (None, f.name)]
    for p in mine:
        sub = _sub_filter_name(p)
        _relative(h.http_filters, p, sub is not None, lambda e, s=sub: s is None or e.name == s,
                  applied, f"{where}.typed_config.http_filters")
    for k, hf in enumerate(h.http_filters):
        _merge_matching(hf, [p for p in mine if _sub_filter_name(p) in (None, hf.name)], applied,
                        f"{where}.typed_config.http_filters[{k}]")
    if h.SerializeToString(deterministic=True) != before:
        f.typed_config.Pack(h)


def _network_filters(ctx: str, patches: dict[str, list[Patch]], lis: Any, fc: Any,
                     applied: Applied, where: str) -> None:
    """`patchNetworkFilters` and `patchNetworkFilter`."""
    mine = [p for p in patches.get("NETWORK_FILTER", []) if _on_chain(p, ctx, lis, fc)]
    for p in mine:
        name = _filter_name(p)
        _relative(fc.filters, p, name is not None, lambda e, n=name: n is None or e.name == n,
                  applied, f"{where}.filters")
    for j, f in enumerate(fc.filters):
        _merge_matching(f, [p for p in mine if _filter_name(p) in (None, f.name)], applied,
                        f"{where}.filters[{j}]")
        if f.name == HCM:
            _http_filters(ctx, patches, lis, fc, f, applied, f"{where}.filters[{j}]")


def _chain(ctx: str, patches: dict[str, list[Patch]], lis: Any, fc: Any, applied: Applied,
           where: str) -> bool:
    """`patchFilterChain`: False when a REMOVE matched."""
    for p in patches.get("FILTER_CHAIN", []):
        if not (p.context_matches(ctx) and listener_match(lis, p) and chain_match(lis, fc, p)):
            continue
        if p.operation == "REMOVE":
            applied.append((p, where))
            return False
        if is_merge(p.operation):
            ts = p.value.transport_socket if p.value.HasField("transport_socket") else None
            if ts is not None and fc.HasField("transport_socket") and fc.transport_socket.name == ts.name:
                try:
                    fc.transport_socket.typed_config.CopyFrom(
                        merge_any(fc.transport_socket.typed_config, ts.typed_config))
                except ValueError:
                    continue
            else:
                merge_value(p, fc)
            applied.append((p, where))
    _network_filters(ctx, patches, lis, fc, applied, where)
    return True


def _listener_filters(ctx: str, patches: list[Patch], lis: Any, applied: Applied) -> None:
    """`patchListenerFilters`."""
    for p in patches:
        if not (p.context_matches(ctx) and listener_match(lis, p)):
            continue
        name = _listener_filter_name(p)
        if p.operation == "MERGE":
            # mergeListenerFilter merges into every listener filter of the value's type (the
            # listenerFilter name only has to be given) and keeps their names.
            if name is None or not p.value.HasField("typed_config"):
                continue
            for i, lf in enumerate(lis.listener_filters):
                if lf.HasField("typed_config"):
                    try:
                        lf.typed_config.CopyFrom(merge_any(lf.typed_config, p.value.typed_config))
                    except ValueError:
                        continue
                    applied.append((p, f"listener_filters[{i}]"))
            continue
        _relative(lis.listener_filters, p, name is not None,
                  lambda e, n=name: n is None or e.name == n, applied, "listener_filters")


def patch_listener(ctx: str, patches: dict[str, list[Patch]], lis: Any, applied: Applied) -> bool:
    """`patchListener`: False when the listener is removed."""
    for p in patches.get("LISTENER", []):
        if not (p.context_matches(ctx) and listener_match(lis, p)):
            continue
        if p.operation == "REMOVE":
            applied.append((p, ""))
            return False
        if is_merge(p.operation):
            merge_value(p, lis)
            applied.append((p, ""))
    _listener_filters(ctx, patches.get("LISTENER_FILTER", []), lis, applied)
    kept = []
    for i, fc in enumerate(lis.filter_chains):
        if fc.filters and _chain(ctx, patches, lis, fc, applied, f"filter_chains[{i}]"):
            kept.append(fc)  # a chain without filters (or REMOVEd) is dropped
    if lis.HasField("default_filter_chain") and lis.default_filter_chain.filters:
        if not _chain(ctx, patches, lis, lis.default_filter_chain, applied, "default_filter_chain"):
            lis.ClearField("default_filter_chain")
    for p in patches.get("FILTER_CHAIN", []):
        if p.operation == "ADD" and p.context_matches(ctx) and listener_match(lis, p):
            kept.append(clone(p))
            applied.append((p, f"filter_chains[{len(kept) - 1}]"))
    if len(kept) != len(lis.filter_chains) or any(a is not b for a, b in zip(kept, lis.filter_chains)):
        replace_items(lis.filter_chains, kept)
    return True


def patch_listeners(ctx: str, patches: dict[str, list[Patch]], listeners: list[Any], *,
                    skip_adds: bool, applied: dict[str, Applied]) -> list[Any]:
    """`ApplyListenerPatches`: ``applied`` gets, per listener name, the patches that changed it."""
    out = []
    for lis in listeners:
        done: Applied = []
        keep = patch_listener(ctx, patches, lis, done)
        applied.setdefault(lis.name, []).extend(done)
        if keep:
            out.append(lis)
    if not skip_adds:
        for p in patches.get("LISTENER", []):
            if p.operation != "ADD" or not p.context_matches(ctx):
                continue
            if p.context == "ANY" and ctx not in ("SIDECAR_OUTBOUND", "GATEWAY"):
                continue
            new = clone(p)
            out.append(new)
            applied.setdefault(new.name, []).append((p, ""))
    return out
