"""The ``spec`` schema of PeerAuthentication (security.istio.io).

Layer: L2 (package meshlens.resources.schema).
"""

from __future__ import annotations

from meshlens.resources.schema.cel import PORT_KEYS, PORT_LEVEL_NEEDS_SELECTOR
from meshlens.resources.schema.common import MATCH_SELECTOR
from meshlens.resources.schema.dsl import Enum, Map, Obj

MTLS = Obj({"mode": Enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT")})
PEER_AUTHENTICATION = Obj({
    "mtls": MTLS, "portLevelMtls": Map(MTLS, min_props=1, rules=(PORT_KEYS,)),
    "selector": MATCH_SELECTOR,
}, rules=(PORT_LEVEL_NEEDS_SELECTOR,))  # fmt: skip
