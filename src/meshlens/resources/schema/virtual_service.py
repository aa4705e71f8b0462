"""The ``spec`` schema of VirtualService.

Layer: L2 (package meshlens.resources.schema).
"""

from __future__ import annotations

from meshlens.resources.schema.common import (
    BOOL, DESTINATION, DURATION, INT32, NULL_BOOL, PERCENT, STR, STRING_MATCH, STRS, STR_MAP,
    UINT32,
)
from meshlens.resources.schema.dsl import Enum, List, Map, Obj, Str, UInt32, req

HEADER_OPS = Obj({"add": STR_MAP, "remove": STRS, "set": STR_MAP})
HEADERS = Obj({"request": HEADER_OPS, "response": HEADER_OPS})
ROUTE_DESTINATION = Obj({"destination": req(DESTINATION), "weight": INT32})
HTTP_MATCH = Obj({
    "authority": STRING_MATCH, "gateways": STRS, "headers": Map(STRING_MATCH),
    "ignoreUriCase": BOOL, "method": STRING_MATCH, "name": STR, "port": UINT32,
    "queryParams": Map(STRING_MATCH), "scheme": STRING_MATCH, "sourceLabels": STR_MAP,
    "sourceNamespace": STR, "statPrefix": STR, "uri": STRING_MATCH,
    "withoutHeaders": Map(STRING_MATCH),
})  # fmt: skip
HTTP_ROUTE = Obj({
    "corsPolicy": Obj({
        "allowCredentials": NULL_BOOL, "allowHeaders": STRS, "allowMethods": STRS,
        "allowOrigin": STRS, "allowOrigins": List(STRING_MATCH), "exposeHeaders": STRS,
        "maxAge": DURATION, "unmatchedPreflights": Enum("UNSPECIFIED", "FORWARD", "IGNORE")}),
    "delegate": Obj({"name": STR, "namespace": STR}),
    "directResponse": Obj({
        "body": Obj({"bytes": Str(byte=True), "string": STR}, one_of=(("string", "bytes"),)),
        "status": req(UINT32)}),
    "fault": Obj({
        "abort": Obj({"grpcStatus": STR, "http2Error": STR, "httpStatus": INT32,
                      "percentage": PERCENT},
                     one_of=(("httpStatus", "grpcStatus", "http2Error"),)),
        "delay": Obj({"exponentialDelay": DURATION, "fixedDelay": DURATION, "percent": INT32,
                      "percentage": PERCENT}, one_of=(("fixedDelay", "exponentialDelay"),))}),
    "headers": HEADERS, "match": List(HTTP_MATCH), "mirror": DESTINATION,
    "mirrorPercent": UInt32(nullable=True), "mirrorPercentage": PERCENT,
    "mirror_percent": UInt32(nullable=True),
    "mirrors": List(Obj({"destination": req(DESTINATION), "percentage": PERCENT})),
    "name": STR,
    "redirect": Obj({
        "authority": STR, "derivePort": Enum("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"),
        "port": UINT32, "prefixRewrite": STR, "redirectCode": UINT32, "scheme": STR, "uri": STR,
    }, one_of=(("port", "derivePort"),)),
    "retries": Obj({
        "attempts": INT32, "backoff": DURATION, "perTryTimeout": DURATION,
        "retryIgnorePreviousHosts": NULL_BOOL, "retryOn": STR, "retryRemoteLocalities": NULL_BOOL}),
    "rewrite": Obj({"authority": STR, "uri": STR,
                    "uriRegexRewrite": Obj({"match": STR, "rewrite": STR})}),
    "route": List(Obj({"destination": req(DESTINATION), "headers": HEADERS, "weight": INT32})),
    "timeout": DURATION,
})  # fmt: skip
_L4_MATCH = {
    "destinationSubnets": STRS,
    "gateways": STRS,
    "port": UINT32,
    "sourceLabels": STR_MAP,
    "sourceNamespace": STR,
}
VIRTUAL_SERVICE = Obj({
    "exportTo": STRS, "gateways": STRS, "hosts": STRS, "http": List(HTTP_ROUTE),
    "tcp": List(Obj({"match": List(Obj({**_L4_MATCH, "sourceSubnet": STR})),
                     "route": List(ROUTE_DESTINATION)})),
    "tls": List(Obj({"match": req(List(Obj({**_L4_MATCH, "sniHosts": req(STRS)}))),
                     "route": List(ROUTE_DESTINATION)})),
})  # fmt: skip
