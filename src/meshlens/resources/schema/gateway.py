"""The ``spec`` schema of Istio's ``Gateway`` (networking.istio.io v1, v1beta1, v1alpha3).

Layer: L2 (package meshlens.resources.schema).

Written from the Gateway CRD (``tests/conformance/crds``): ``servers[]`` with a required
``port`` (``number``, ``protocol``, ``name`` required; ``targetPort``) and ``hosts``, an optional
``bind``, ``name``, ``defaultEndpoint`` and the same ``ServerTLSSettings`` as a Sidecar ingress (its
third CEL rule repeats the first one and is left out, as for the Sidecar: see SKIPPED_CEL).
"""

from __future__ import annotations

from meshlens.resources.schema.common import SERVER_TLS, STR, STR_MAP, STRS, UINT32
from meshlens.resources.schema.dsl import List, Obj, req

GATEWAY_PORT = Obj({"name": req(STR), "number": req(UINT32), "protocol": req(STR),
                    "targetPort": UINT32})
GATEWAY = Obj({
    "selector": STR_MAP,
    "servers": List(Obj({"bind": STR, "defaultEndpoint": STR, "hosts": req(STRS), "name": STR,
                         "port": req(GATEWAY_PORT), "tls": SERVER_TLS})),
})  # fmt: skip
