"""Gateway proxies in router mode (`core/gateway.go`): listeners, routes and clusters.

Layer: L4. Imports: compiler.*, model.gateways.

Selected by the proxy type (:attr:`meshlens.model.proxy.Proxy.type` ``router``); the Gateways
that apply and their merged servers come from :mod:`meshlens.model.gateways`.
"""

from meshlens.compiler.gateway.clusters import build_gateway_clusters
from meshlens.compiler.gateway.listeners import build_gateway_listeners
from meshlens.compiler.gateway.routes import build_gateway_route_configs

__all__ = ["build_gateway_clusters", "build_gateway_listeners", "build_gateway_route_configs"]
