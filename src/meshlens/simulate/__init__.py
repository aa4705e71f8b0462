"""Send one request through compiled config the way Envoy would (trace's verdicts).

Layer: L5. Imports: compiler, model (through CompileResult), xDS protos.

Modules, in the order a request meets them:

- `types`: the request, layers, outcomes and the trace (its JSON is a contract);
- `dns`: the pod's resolver (search path, NXDOMAIN, Istio's DNS proxy) and iptables capture;
- `listener`: listener selection by address and port, filter-chain matching;
- `http`: virtual host and route matching, and what a route does (rewrites, redirects,
  direct responses, header operations, mirrors, faults, retries, timeouts);
- `upstream`: clusters, endpoints, and the router's retries and timeouts;
- `inbound`: a sidecar's ``virtualInbound``: peer TLS/mTLS, chains, PeerAuthentication;
- `core`: `simulate()`, which walks them and decides the verdict.

Every resource is looked up by key through the CompileResult (``listeners_on(port)``,
``listener(name)``, ``route(name)``, ``cluster(name)``, ``assignment(name)``), never by scanning
its lists: a targeted result (``compile_proxy(only=Wanted())``, what ``meshlens trace`` uses)
compiles each piece when first asked for, and the trace is the same as on the full compile.
"""

from __future__ import annotations

from meshlens.simulate.core import simulate
from meshlens.simulate.dns import Resolution, lookup, resolve
from meshlens.simulate.http import route_matches, select_virtual_host
from meshlens.simulate.listener import Conn, match_filter_chain
from meshlens.simulate.types import (BLACK, DI, DPE, FI, NC, NR, NXDOMAIN, OK, PEERS, UC, UF, UH, URX, UT,
                                     Layer, Outcome, Request, Trace, origin_dict, parse_seconds)

__all__ = ["BLACK", "DI", "DPE", "FI", "NC", "NR", "NXDOMAIN", "OK", "PEERS", "UC", "UF", "UH", "URX", "UT",
           "Conn", "Layer", "Outcome", "Request", "Resolution", "Trace", "lookup", "match_filter_chain",
           "origin_dict", "parse_seconds", "resolve", "route_matches", "select_virtual_host", "simulate"]
