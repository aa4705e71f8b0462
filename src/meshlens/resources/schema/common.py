"""Atoms and sub-schemas several kinds share: strings, integers, durations, string matches,
destinations, label selectors, connection pools and server TLS settings.

Layer: L2 (package meshlens.resources.schema).
"""

from __future__ import annotations

from meshlens.resources.schema.cel import (
    MATCH_KEY_NOT_EMPTY, MATCH_KEY_NO_WILDCARD, MATCH_VALUE_NO_WILDCARD, SELECTOR_NO_WILDCARD,
    TLS_NAMES_XOR_CERTS, TLS_NAME_XOR_NAMES,
)
from meshlens.resources.schema.dsl import (
    Bool, Duration, Enum, Int, Int32, List, Map, Num, Obj, Str, UInt32, req,
)

STR, BOOL, UINT, INT32, UINT32 = Str(), Bool(), Int(minimum=0), Int32(), UInt32()
DURATION = Duration()
STRS, STR_MAP, NULL_BOOL, PERCENT = List(STR), Map(STR), Bool(nullable=True), Obj({"value": Num()})
PORT_SELECTOR = Obj({"number": UINT32})
STRING_MATCH = Obj(
    {"exact": STR, "prefix": STR, "regex": STR}, one_of=(("exact", "prefix", "regex"),)
)
DESTINATION = Obj({"host": req(STR), "port": PORT_SELECTOR, "subset": STR})
MATCH_SELECTOR = Obj(
    {
        "matchLabels": Map(
            Str(max_len=63, rules=(MATCH_VALUE_NO_WILDCARD,)),
            max_props=4096,
            rules=(MATCH_KEY_NO_WILDCARD, MATCH_KEY_NOT_EMPTY),
        )
    }
)
LABEL_SELECTOR = Obj({"labels": Map(Str(max_len=63, rules=(SELECTOR_NO_WILDCARD,)), max_props=256)})

CONNECTION_POOL = Obj({
    "http": Obj({
        "h2UpgradePolicy": Enum("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"),
        "http1MaxPendingRequests": INT32,
        "http2KeepAlive": Obj({"interval": DURATION, "timeout": DURATION}),
        "http2MaxRequests": INT32, "idleTimeout": DURATION, "maxConcurrentStreams": INT32,
        "maxRequestsPerConnection": INT32, "maxRetries": INT32, "useClientProtocol": BOOL}),
    "tcp": Obj({
        "connectTimeout": DURATION, "idleTimeout": STR, "maxConnectionDuration": DURATION,
        "maxConnections": INT32,
        "tcpKeepalive": Obj({"interval": DURATION, "probes": UINT32, "time": DURATION})}),
})  # fmt: skip
TLS_VERSION = Enum("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")
SERVER_TLS = Obj({
    "caCertCredentialName": STR, "caCertificates": STR, "caCrl": STR, "cipherSuites": STRS,
    "credentialName": STR, "credentialNames": List(STR, min_items=1, max_items=2),
    "httpsRedirect": BOOL, "insecureSkipVerify": NULL_BOOL, "maxProtocolVersion": TLS_VERSION,
    "minProtocolVersion": TLS_VERSION,
    "mode": Enum("PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL",
                 "OPTIONAL_MUTUAL"),
    "privateKey": STR, "serverCertificate": STR, "subjectAltNames": STRS,
    "tlsCertificates": List(Obj({"caCertificates": STR, "privateKey": STR,
                                 "serverCertificate": STR}), min_items=1, max_items=2),
    "verifyCertificateHash": STRS, "verifyCertificateSpki": STRS,
}, rules=(TLS_NAMES_XOR_CERTS, TLS_NAME_XOR_NAMES))  # fmt: skip
