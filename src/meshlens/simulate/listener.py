"""Listener and filter-chain selection, as Envoy's connection handler and FilterChainManager do.

Layer: L5. Imports: xDS protos.

A connection redirected to ``virtualOutbound`` (``use_original_dst``) is handed to the listener
whose address is exactly its original destination ``IP:port``, else to the wildcard
``0.0.0.0:port`` (``[::]:port``) listener, else it stays (`ConnectionHandlerImpl::
getBalancedHandlerByAddress`). Istio relies on this: a request to ``IP:15006`` lands on
``virtualInbound`` and its ``virtualInbound-blackhole`` chain (`TestLoop`). Filter chains are
matched on destination port, destination IP (longest prefix), server name, transport protocol
and application protocols, each "most specific wins"; two chains left equal is ambiguous.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

WILDCARDS = ("0.0.0.0", "::")
HTTP_INSPECTOR = "envoy.filters.listener.http_inspector"
TLS_INSPECTOR = "envoy.filters.listener.tls_inspector"


@dataclass(slots=True)
class Conn:
    """What a connection looks like to a listener's filter-chain match."""

    dst_ip: str | None
    dst_port: int
    transport: str = "raw_buffer"
    alpn: list[str] = field(default_factory=list)
    sni: str = ""


def _addresses(listener: Any) -> list[tuple[str, int]]:
    out = []
    sa = listener.address.socket_address
    if listener.address.HasField("socket_address"):
        out.append((sa.address, sa.port_value))
    for extra in listener.additional_addresses:
        esa = extra.address.socket_address
        out.append((esa.address, esa.port_value))
    return out


def listener_for(listeners: list[Any], ip: str | None, port: int) -> tuple[Any | None, str]:
    """The listener bound to ``ip:port`` exactly, else the wildcard one on ``port``."""
    exact = wild = None
    for lst in listeners:
        for addr, p in _addresses(lst):
            if p != port:
                continue
            if ip is not None and addr == ip and exact is None:
                exact = lst
            elif addr in WILDCARDS and wild is None:
                wild = lst
    if exact is not None:
        return exact, f"bound to {ip}:{port}"
    if wild is not None:
        return wild, f"bound to 0.0.0.0:{port}"
    return None, ""


def _prefix_len(fcm: Any, ip: str | None) -> int | None:
    """-1 when no prefix_ranges, the longest matching prefix, or None for no match."""
    if not fcm.prefix_ranges:
        return -1
    if ip is None:
        return None
    addr = ipaddress.ip_address(ip)
    best = None
    for pr in fcm.prefix_ranges:
        try:
            net = ipaddress.ip_network(f"{pr.address_prefix}/{pr.prefix_len.value}", strict=False)
        except ValueError:
            continue
        if addr.version == net.version and addr in net and (best is None or net.prefixlen > best):
            best = net.prefixlen
    return best


def _sni_match(names: list[str], sni: str) -> int | None:
    if not names:
        return 0
    if not sni:
        return None
    if sni in names:
        return 3
    for n in names:
        if n.startswith("*.") and sni.endswith(n[1:]):
            return 2
    return None


def _keep_best(scored: list[tuple[int | None, int, Any]]) -> list[tuple[int, Any]]:
    scored = [s for s in scored if s[0] is not None]
    if not scored:
        return []
    best = max(s[0] for s in scored)  # type: ignore[type-var]
    return [(i, c) for p, i, c in scored if p == best]


def candidate_chains(listener: Any, conn: Conn) -> list[tuple[int, Any]]:
    """Envoy's FilterChainManager: the chains left after every criterion (ideally one)."""
    chains = list(enumerate(listener.filter_chains))
    # 1. destination port: exact beats unset
    exact = [(i, c) for i, c in chains if c.filter_chain_match.HasField("destination_port")
             and c.filter_chain_match.destination_port.value == conn.dst_port]
    chains = exact or [(i, c) for i, c in chains if not c.filter_chain_match.HasField("destination_port")]
    # 2. destination IP: longest prefix
    chains = _keep_best([(_prefix_len(c.filter_chain_match, conn.dst_ip), i, c) for i, c in chains])
    # 3. server names
    chains = _keep_best([(_sni_match(list(c.filter_chain_match.server_names), conn.sni), i, c)
                         for i, c in chains])
    # 4. transport protocol: exact beats unset
    tp = [(i, c) for i, c in chains if c.filter_chain_match.transport_protocol == conn.transport]
    chains = tp or [(i, c) for i, c in chains if not c.filter_chain_match.transport_protocol]
    # 5. application protocols: any overlap beats unset
    ap = [(i, c) for i, c in chains if set(c.filter_chain_match.application_protocols) & set(conn.alpn)]
    return ap or [(i, c) for i, c in chains if not c.filter_chain_match.application_protocols]


def match_filter_chain(listener: Any, conn: Conn) -> tuple[Any | None, str, int]:
    """The chain Envoy picks: (chain, name, index); index -1 is the default chain, -2 none."""
    chains = candidate_chains(listener, conn)
    if chains:
        i, c = chains[0]
        return c, c.name or f"filter_chains[{i}]", i
    if listener.HasField("default_filter_chain"):
        d = listener.default_filter_chain
        return d, d.name or "default_filter_chain", -1
    return None, "", -2


def listener_filter_runs(listener: Any, name: str, port: int) -> bool:
    """Whether listener filter ``name`` inspects a connection to ``port``."""
    for lf in listener.listener_filters:
        if lf.name != name:
            continue
        if not lf.HasField("filter_disabled"):
            return True
        return not _predicate(lf.filter_disabled, port)
    return False


def _predicate(p: Any, port: int) -> bool:
    kind = p.WhichOneof("rule")
    if kind == "destination_port_range":
        return bool(p.destination_port_range.start <= port < p.destination_port_range.end)
    if kind == "or_match":
        return any(_predicate(r, port) for r in p.or_match.rules)
    if kind == "and_match":
        return all(_predicate(r, port) for r in p.and_match.rules)
    if kind == "not_match":
        return not _predicate(p.not_match, port)
    return kind == "any_match"


def network_filter(chain: Any, cls: Any) -> Any | None:
    for f in chain.filters:
        if f.typed_config.Is(cls.DESCRIPTOR):
            msg = cls()
            f.typed_config.Unpack(msg)
            return msg
    return None


def client_conn(listener: Any, ip: str | None, port: int, *, tls: bool, sni: str, alpn: list[str],
                http: bool, http2: bool) -> Conn:
    """What the listener filters learn: the TLS inspector reads SNI and ALPN from a ClientHello,
    the HTTP inspector reads ``http/1.1`` or ``h2c`` from plaintext HTTP."""
    conn = Conn(ip, port)
    if tls:
        if listener_filter_runs(listener, TLS_INSPECTOR, port):
            conn.transport, conn.sni, conn.alpn = "tls", sni, list(alpn)
    elif http and listener_filter_runs(listener, HTTP_INSPECTOR, port):
        conn.alpn = ["h2c" if http2 else "http/1.1"]
    return conn
