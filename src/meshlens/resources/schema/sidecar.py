"""The ``spec`` schema of Sidecar.

Layer: L2 (package meshlens.resources.schema).
"""

from __future__ import annotations

from meshlens.resources.schema.common import (
    CONNECTION_POOL, DESTINATION, LABEL_SELECTOR, SERVER_TLS, STR, STRS, UINT32,
)
from meshlens.resources.schema.dsl import Enum, List, Obj, req

SIDECAR_PORT = Obj({"name": STR, "number": UINT32, "protocol": STR, "targetPort": UINT32})
CAPTURE_MODE = Enum("DEFAULT", "IPTABLES", "NONE")
SIDECAR = Obj({
    "egress": List(Obj({"bind": STR, "captureMode": CAPTURE_MODE, "hosts": req(STRS),
                        "port": SIDECAR_PORT})),
    "inboundConnectionPool": CONNECTION_POOL,
    "ingress": List(Obj({"bind": STR, "captureMode": CAPTURE_MODE,
                         "connectionPool": CONNECTION_POOL, "defaultEndpoint": STR,
                         "port": req(SIDECAR_PORT), "tls": SERVER_TLS})),
    "outboundTrafficPolicy": Obj({"egressProxy": DESTINATION,
                                  "mode": Enum("REGISTRY_ONLY", "ALLOW_ANY")}),
    "workloadSelector": LABEL_SELECTOR,
})  # fmt: skip
