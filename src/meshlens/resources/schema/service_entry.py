"""The ``spec`` schema of ServiceEntry and WorkloadEntry (a ServiceEntry endpoint is a
WorkloadEntry).

Layer: L2 (package meshlens.resources.schema).
"""

from __future__ import annotations

from meshlens.resources.schema.cel import (
    ADDRESS_REQUIRED, CIDR_NEEDS_STATIC, DNS_RR_ONE_ENDPOINT, NONE_NO_ENDPOINTS, NOT_WILDCARD_HOST,
    PORT_NAMES, SELECTOR_XOR_ENDPOINTS, UDS_ABSOLUTE, UDS_NOT_DIR, UDS_NO_PORTS,
    UNIQUE_PORT_NUMBER,
)
from meshlens.resources.schema.common import LABEL_SELECTOR, STR, STRS, UINT32
from meshlens.resources.schema.dsl import Enum, List, Map, Obj, Port, Str, req

WORKLOAD_ENTRY = Obj({
    "address": Str(max_len=256, rules=(UDS_ABSOLUTE, UDS_NOT_DIR)),
    "labels": Map(STR, max_props=256), "locality": Str(max_len=2048),
    "network": Str(max_len=2048), "ports": Map(Port(), max_props=128, rules=(PORT_NAMES,)),
    "serviceAccount": Str(max_len=253), "weight": UINT32,
}, rules=(ADDRESS_REQUIRED, UDS_NO_PORTS))  # fmt: skip
SERVICE_ENTRY = Obj({
    "addresses": List(Str(max_len=64), max_items=256),
    "endpoints": List(WORKLOAD_ENTRY, max_items=4096), "exportTo": STRS,
    "hosts": req(List(Str(rules=(NOT_WILDCARD_HOST,)), min_items=1, max_items=256)),
    "location": Enum("MESH_EXTERNAL", "MESH_INTERNAL"),
    "ports": List(Obj({"name": req(Str(max_len=256)), "number": req(Port()),
                       "protocol": Str(max_len=256), "targetPort": Port()}),
                  max_items=256, map_keys=("name",), rules=(UNIQUE_PORT_NUMBER,)),
    "resolution": Enum("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"),
    "subjectAltNames": STRS, "workloadSelector": LABEL_SELECTOR,
}, rules=(SELECTOR_XOR_ENDPOINTS, CIDR_NEEDS_STATIC, NONE_NO_ENDPOINTS,
          DNS_RR_ONE_ENDPOINT))  # fmt: skip
