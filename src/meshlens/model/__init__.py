"""The model istiod's pilot builds before generating config: services, endpoints, workloads,
policies indexed per host, and what one proxy can see.

Layer: L3. Imports: resources, source, diagnostics, durations.

It has no render, emit or compile methods (the sqlglot ``Expr.sql()`` lesson).
"""

from meshlens.model.build import Mesh, build_mesh
from meshlens.model.proxy import Proxy, resolve_proxy

__all__ = ["Mesh", "Proxy", "build_mesh", "resolve_proxy"]
