"""The ``spec`` schema of DestinationRule (with its traffic policy).

Layer: L2 (package meshlens.resources.schema).
"""

from __future__ import annotations

from meshlens.resources.schema.common import (
    BOOL, CONNECTION_POOL, DURATION, INT32, MATCH_SELECTOR, NULL_BOOL, PORT_SELECTOR, STR, STRS,
    STR_MAP, UINT, UINT32,
)
from meshlens.resources.schema.dsl import Enum, Int, List, Map, Num, Obj, UInt32, req

LOCALITY_FAILOVER = List(Obj({"from": STR, "to": STR}))
LOAD_BALANCER = Obj({
    "consistentHash": Obj({
        "httpCookie": Obj({
            "attributes": List(Obj({"name": req(STR), "value": STR})),
            "name": req(STR), "path": STR, "ttl": STR}),
        "httpHeaderName": STR, "httpQueryParameterName": STR,
        "maglev": Obj({"tableSize": UINT}), "minimumRingSize": UINT,
        "ringHash": Obj({"minimumRingSize": UINT}), "useSourceIp": BOOL,
    }, one_of=(("httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName"),
               ("ringHash", "maglev"))),
    "localityLbSetting": Obj({
        "distribute": List(Obj({"from": STR, "to": Map(UINT32)})),
        "enabled": NULL_BOOL, "failover": LOCALITY_FAILOVER, "failoverPriority": STRS}),
    "simple": Enum("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN",
                   "LEAST_REQUEST"),
    "warmup": Obj({
        "aggression": Num(minimum=0, nullable=True), "duration": req(DURATION),
        "minimumPercent": Num(minimum=0, maximum=100, nullable=True)}),
    "warmupDurationSecs": DURATION,
    "zoneAwareLbSetting": Obj({
        "enabled": NULL_BOOL, "failover": LOCALITY_FAILOVER, "failoverPriority": STRS,
        "minClusterSize": Int(minimum=1, nullable=True)}),
}, one_of=(("simple", "consistentHash"),))  # fmt: skip
OUTLIER_DETECTION = Obj({
    "baseEjectionTime": DURATION, "consecutive5xxErrors": UInt32(nullable=True),
    "consecutiveErrors": INT32, "consecutiveGatewayErrors": UInt32(nullable=True),
    "consecutiveLocalOriginFailures": UInt32(nullable=True), "interval": DURATION,
    "maxEjectionPercent": INT32, "minHealthPercent": INT32,
    "outlierDetectionHttpErrorCodes": List(Int(minimum=100, maximum=599)),
    "splitExternalLocalOriginErrors": BOOL,
})  # fmt: skip
CLIENT_TLS = Obj({
    "caCertificates": STR, "caCrl": STR, "clientCertificate": STR, "credentialName": STR,
    "insecureSkipVerify": NULL_BOOL, "mode": Enum("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"),
    "privateKey": STR, "sni": STR, "subjectAltNames": STRS,
})  # fmt: skip
_POLICY_CORE = {
    "connectionPool": CONNECTION_POOL,
    "loadBalancer": LOAD_BALANCER,
    "outlierDetection": OUTLIER_DETECTION,
    "tls": CLIENT_TLS,
}
TRAFFIC_POLICY = Obj({
    **_POLICY_CORE,
    "portLevelSettings": List(Obj({**_POLICY_CORE, "port": PORT_SELECTOR}), max_items=4096),
    "proxyProtocol": Obj({"version": Enum("V1", "V2")}),
    "retryBudget": Obj({"budgetInterval": STR, "minRetryConcurrency": UINT32,
                        "percent": Num(minimum=0, maximum=100, nullable=True)}),
    "tunnel": Obj({"protocol": STR, "targetHost": req(STR), "targetPort": req(UINT32)}),
})  # fmt: skip
DESTINATION_RULE = Obj({
    "exportTo": STRS, "host": req(STR),
    "subsets": List(Obj({"labels": STR_MAP, "name": req(STR), "trafficPolicy": TRAFFIC_POLICY})),
    "trafficPolicy": TRAFFIC_POLICY, "workloadSelector": MATCH_SELECTOR,
})  # fmt: skip
