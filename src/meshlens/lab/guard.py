"""The lab's belt: nothing outside loopback is ever pushed to, or started in, a lab Envoy.

Layer: L7 (lab). Imports: lab.addressing, lab.protos, errors, xDS protos.

The localization (:mod:`meshlens.lab.localize`) maps every address of the mesh into
127.0.0.0/8; this module does not trust it. Before any snapshot is pushed and before any Envoy
starts, :func:`check_loopback_only` walks every message of the config -- clusters (including
``upstream_bind_config``), endpoints, listeners, routes, secrets and the bootstrap (admin,
``xds-grpc``, ``cluster_manager``) -- and refuses unless each ``SocketAddress`` is in
127.0.0.0/8 or ``::1``. Names (a hostname left in a socket address) are refused too: the lab
never asks DNS. Unix sockets (``pipe``) and Envoy internal addresses are local by nature.

One exception, stated here so a reader can check it: a listener that does not bind
(``bind_to_port: false``, Istio's ``0.0.0.0_80``) carries its address only as the key the
``virtualOutbound`` hand-off matches on; its address may be the unspecified ``0.0.0.0`` or
``::`` (never any other non-loopback address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from meshlens.errors import LabError
from meshlens.lab.addressing import is_loopback, parse_ip
from meshlens.lab.protos import clone, walk


class NotLoopback(LabError):
    """The config would make a lab Envoy bind or connect outside loopback."""


def _describe(msg: Any, kind: str) -> str:
    name = getattr(msg, "cluster_name", "") if kind == "endpoints" else getattr(msg, "name", "")
    return f"{kind} {name}".strip()


def offending_addresses(messages: Iterable[tuple[str, Message]]) -> list[str]:
    """``where: address`` for each socket address outside loopback (empty: all good)."""
    bad: list[str] = []
    for kind, msg in messages:
        where = _describe(msg, kind)
        if kind == "listener" and msg.HasField("bind_to_port") and \
                not msg.bind_to_port.value:  # type: ignore[attr-defined]
            msg = clone(msg)
            for addr in [msg.address, *(a.address for a in msg.additional_addresses)]:  # type: ignore[attr-defined]
                if addr.HasField("socket_address"):
                    ip = parse_ip(addr.socket_address.address)
                    if ip is not None and ip.is_unspecified:
                        addr.ClearField("socket_address")

        def visit(m: Message, where: str = where) -> None:
            if m.DESCRIPTOR.full_name != "envoy.config.core.v3.SocketAddress":
                return
            address = m.address  # type: ignore[attr-defined]
            if not is_loopback(address):
                bad.append(f"{where}: {address or '(empty)'}")

        walk(msg, visit)
    return bad


def check_loopback_only(*, clusters: Iterable[Message] = (), endpoints: Iterable[Message] = (),
                        listeners: Iterable[Message] = (), routes: Iterable[Message] = (),
                        secrets: Iterable[Message] = (),
                        bootstrap: Mapping[str, Any] | Message | None = None,
                        node: str = "") -> None:
    """Raise :class:`NotLoopback` unless every socket address is in 127.0.0.0/8 or ``::1``.

    Args:
        bootstrap: a bootstrap message or its proto3 JSON dict.
        node: which Envoy, for the message.
    """
    items: list[tuple[str, Message]] = []
    for kind, msgs in (("cluster", clusters), ("endpoints", endpoints), ("listener", listeners),
                       ("route", routes), ("secret", secrets)):
        items += [(kind, m) for m in msgs]
    if bootstrap is not None:
        if not isinstance(bootstrap, Message):
            bootstrap = json_format.ParseDict(dict(bootstrap), bootstrap_pb2.Bootstrap())
        items.append(("bootstrap", bootstrap))
    bad = offending_addresses(items)
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise NotLoopback(f"refusing to push to {node or 'the lab Envoy'}: the lab only binds or "
                          f"targets 127.0.0.0/8 and ::1, but the localized config has {shown}")
