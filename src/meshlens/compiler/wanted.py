"""A part of one proxy's config: what a targeted compile builds (``compile_proxy(only=...)``).

Layer: L4. Imports: compiler.names.

A request visits one listener, one route configuration, a few clusters and their endpoints;
``meshlens trace`` compiles those and nothing else. Each key names whole resources exactly as the
full compile builds them, so a targeted result holds, for every key it covers, the very
listeners, routes, clusters and assignments (and their provenance) of the full result:

* ``ports``: every listener bound to one of these ports (address or additional address);
* ``listeners``: the listeners of these names (``virtualOutbound``, ``virtualInbound``);
* ``every_listener``: all listeners;
* ``routes``: the route configurations of these names;
* ``clusters``: the clusters of these names, and their ClusterLoadAssignments (EDS
  ``service_name`` is the cluster's name).

Nothing outside the keys is built: no bootstrap, no secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshlens.compiler.names import parse_cluster_name

#: listeners a named lookup asks for that the per-port outbound builder never makes
VIRTUAL_LISTENERS = frozenset({"virtualOutbound", "virtualInbound"})


@dataclass(frozen=True, slots=True)
class Wanted:
    """Which resources of one proxy to compile (see the module docstring)."""

    ports: frozenset[int] = frozenset()
    listeners: frozenset[str] = frozenset()
    every_listener: bool = False
    routes: frozenset[str] = frozenset()
    clusters: frozenset[str] = frozenset()

    def __or__(self, other: Wanted) -> Wanted:
        return Wanted(self.ports | other.ports, self.listeners | other.listeners,
                      self.every_listener or other.every_listener, self.routes | other.routes,
                      self.clusters | other.clusters)

    def __sub__(self, other: Wanted) -> Wanted:
        """What of ``self`` is not covered by ``other``."""
        every = self.every_listener and not other.every_listener
        return Wanted(frozenset() if other.every_listener else self.ports - other.ports,
                      frozenset() if other.every_listener else self.listeners - other.listeners,
                      every, self.routes - other.routes, self.clusters - other.clusters)

    def __bool__(self) -> bool:
        return bool(self.ports or self.listeners or self.every_listener or self.routes or self.clusters)

    def wants_listeners(self) -> bool:
        return bool(self.ports or self.listeners or self.every_listener)

    def outbound_ports(self) -> frozenset[int] | None:
        """The ports whose per-port outbound listeners must be built; None: all of them."""
        if self.every_listener or self.listeners - VIRTUAL_LISTENERS:
            return None
        return self.ports

    def wants_listener(self, listener: Any) -> bool:
        return self.every_listener or listener.name in self.listeners or \
            any(p in self.ports for p in bound_ports(listener))

    def hosts(self) -> frozenset[str]:
        """The service hosts of the wanted clusters (only their services' clusters are built)."""
        keys = (parse_cluster_name(n) for n in self.clusters)
        return frozenset(k.host for k in keys if k is not None)


def bound_ports(listener: Any) -> list[int]:
    """The ports a listener is bound to: its address and its additional addresses."""
    out = []
    if listener.address.HasField("socket_address"):
        out.append(listener.address.socket_address.port_value)
    out.extend(extra.address.socket_address.port_value for extra in listener.additional_addresses)
    return out


def targetable(mesh: Any) -> bool:
    """Whether a targeted compile equals the full one on its keys. Not with EnvoyFilters: a
    patch may add, remove or rewrite any resource, so their proxies are compiled whole."""
    return not any(r.kind == "EnvoyFilter" for r in mesh.resources)


__all__ = ["Wanted", "bound_ports", "targetable"]
