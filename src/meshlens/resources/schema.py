"""Check the ``spec`` of an Istio resource the way the API server's CRD schema does.

Layer: L2. Imports: source (and the standard library).

The schemas below are a hand-written transcription of Istio's CRDs (``istio-crds.gen.yaml``;
networking v1/v1beta1/v1alpha3 share one schema, security v1/v1beta1 too) in a small DSL:
``Obj`` (fixed fields, required fields, oneOf groups), ``Map`` (additionalProperties), ``List``,
``Str``, ``Int``, ``Num`` and ``Bool``, plus ``Rule`` for an ``x-kubernetes-validations`` (CEL)
rule. Sub-schemas that Istio repeats (traffic policy, string match, destination) are written once.

We mirror ``kubectl apply`` with server-side field validation ``Strict``:

- unknown fields are errors (ML0102); no schema here preserves unknown fields;
- a ``null`` for a field that is not ``nullable`` is pruned first, exactly as the API server
  does (``PruneNonNullableNullsWithoutDefaults``): it then counts as absent;
- integers accept ints and integral floats, never booleans; ``format: int32`` is range-checked
  (the API server lets it through, but istiod cannot decode it);
- enums are case-sensitive strings (no integer enum values: every Istio enum is ``type: string``);
- a oneOf group is violated when more than one member is set (ML0107);
- ``format: byte`` must be base64; ``x-kubernetes-list-type: map`` keys must be unique.

CEL rules implemented (ML0106), with the CRD's message:

- ``duration(self) >= duration('1ms')``: Go duration syntax and at least 1ms, on every field
  that carries it (timeouts, intervals, delays, ``maxAge``, warmup, ...).
- ``0 < self && self <= 65535``: ServiceEntry ``ports[].number``/``targetPort`` and
  WorkloadEntry ``ports`` values.
- ``self != "*"``: ServiceEntry ``hosts[]``.
- ServiceEntry ``ports``: no duplicate ``number``.
- ServiceEntry: only one of ``workloadSelector``/``endpoints``; CIDR ``addresses`` only with
  resolution NONE/STATIC; resolution NONE sets no endpoints; DNS_ROUND_ROBIN has at most one.
- WorkloadEntry (and ServiceEntry ``endpoints[]``): ``address`` or ``network`` required; a
  ``unix://`` address has no ports, is absolute or abstract (``/`` or ``@``) and is not a dir;
  ``ports`` keys are valid port names (under 63 characters, alphanumeric and ``-``).
- Label selectors (``workloadSelector.matchLabels`` of DestinationRule and PeerAuthentication):
  keys non-empty and without ``*``, values without ``*``; ``workloadSelector.labels`` values of
  Sidecar and ServiceEntry without ``*``.
- Sidecar ``ingress[].tls``: only one of ``credentialNames``/``tlsCertificates``, only one of
  ``credentialName``/``credentialNames``.
- PeerAuthentication: ``portLevelMtls`` keys are ports 1..65535; ``portLevelMtls`` needs a
  non-empty ``selector.matchLabels``.

CEL rules left out (see ``SKIPPED_CEL``): Sidecar ``ingress[].tls``'s third rule, which
repeats the first one's expression (``credentialNames`` + ``tlsCertificates``) under the message
"only one of credentialName or tlsCertificates"; checking it would report one mistake twice.
Fields the CRD leaves as plain strings stay plain strings (e.g. ``tcp.idleTimeout``,
``retryBudget.budgetInterval``, ``httpCookie.ttl``), and DestinationRule ``subsets[].labels``
has no key rules in the CRD, so none are checked here either.

Problems come back in document order (a node's own problems before its children's), at most
``MAX_PROBLEMS`` per resource; ``validate_spec`` never raises, whatever the input.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from meshlens.source import FieldPath

__all__ = [
    "KNOWN_KINDS",
    "MAX_PROBLEMS",
    "SKIPPED_CEL",
    "SPECS",
    "SPEC_REQUIRED",
    "Problem",
    "parse_go_duration",
    "render_field",
    "validate_spec",
]

#: A resource gets at most this many problems; the walk stops at the limit.
MAX_PROBLEMS = 100

MISSING, UNKNOWN, WRONG_TYPE, BAD_ENUM, INVALID, ONE_OF = (
    "ML0101", "ML0102", "ML0103", "ML0104", "ML0106", "ML0107",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    """One schema violation: where (from the resource root, so it starts with "spec"), the
    ML01xx code and a message."""

    path: FieldPath
    code: str
    message: str


# --- Go durations (CEL's duration() is Go's time.ParseDuration) ---------------------------------

_UNIT_NS = {
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}  # fmt: skip
_NS_LIMIT = 1 << 63


def parse_go_duration(text: str) -> int | None:
    """Parse a Go duration string into nanoseconds, or return None if Go would reject it.

    Example:
        >>> parse_go_duration("1h30m"), parse_go_duration(".5s"), parse_go_duration("-1.5us")
        (5400000000000, 500000000, -1500)
        >>> parse_go_duration("0"), parse_go_duration("10"), parse_go_duration("1d")
        (0, None, None)
    """
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total, i, n = 0, 0, len(s)
    while i < n:
        if not (s[i] == "." or "0" <= s[i] <= "9"):
            return None
        start, whole = i, 0
        while i < n and "0" <= s[i] <= "9":
            whole = whole * 10 + ord(s[i]) - 48
            if whole > _NS_LIMIT:
                return None
            i += 1
        pre, frac, scale, post = i != start, 0, 1.0, False
        if i < n and s[i] == ".":
            i, start, overflow = i + 1, i + 1, False
            while i < n and "0" <= s[i] <= "9":
                # Go's leadingFraction: digits past the precision limit are read and dropped.
                if not overflow:
                    nxt = frac * 10 + ord(s[i]) - 48
                    if frac > (_NS_LIMIT - 1) // 10 or nxt > _NS_LIMIT:
                        overflow = True
                    else:
                        frac, scale = nxt, scale * 10
                i += 1
            post = i != start
        if not pre and not post:
            return None
        start = i
        while i < n and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        unit = _UNIT_NS.get(s[start:i])
        if unit is None or whole > _NS_LIMIT // unit:
            return None
        whole *= unit
        if frac:
            whole += int(float(frac) * (float(unit) / scale))
        total += whole
        if whole > _NS_LIMIT or total > _NS_LIMIT:
            return None
    if neg:
        return -total
    return total if total < _NS_LIMIT else None


# --- CEL rules ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """An ``x-kubernetes-validations`` rule: its CEL text, its message and a Python check.

    ``check`` gets the node's value once its own type is right (a mapping gets string keys and
    its non-nullable nulls pruned) and returns True when the rule holds. A rule of the form
    ``self.all(key, ...)`` sets ``per_key``: ``check`` then gets each key of the mapping, so the
    problem can point at the key.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    per_key: bool = False


def _dur_ok(v: str) -> bool:
    ns = parse_go_duration(v)
    return ns is not None and ns >= 1_000_000


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    if isinstance(v, float):
        return int(v) if math.isfinite(v) and v.is_integer() else None
    return v


def _cel_int(text: str) -> int | None:
    # CEL int(string) is strconv.ParseInt(s, 10, 64): no spaces or underscores, unlike int().
    return int(text) if re.fullmatch(r"[+-]?[0-9]{1,19}", text) else None


def _port_numbers_unique(ports: list[Any]) -> bool:
    seen: set[int] = set()
    for port in ports:
        number = _int(port.get("number")) if isinstance(port, dict) else None
        if number is not None:
            if number in seen:
                return False
            seen.add(number)
    return True


def _count(obj: Mapping[str, Any], *keys: str) -> int:
    return sum(key in obj for key in keys)


def _resolution(obj: Mapping[str, Any], default: str) -> Any:
    return obj.get("resolution", default)


def _uds_ok(v: str) -> bool:
    return not v.startswith("unix://") or v[7:8] in ("/", "@")


def _uds_no_ports(obj: Mapping[str, Any]) -> bool:
    address = obj.get("address", "")
    return not (isinstance(address, str) and address.startswith("unix://") and "ports" in obj)


def _cidr_needs_static(obj: Mapping[str, Any]) -> bool:
    addresses, resolution = obj.get("addresses", []), _resolution(obj, "NONE")
    if not isinstance(addresses, list) or not isinstance(resolution, str):
        return True
    has_cidr = any(isinstance(a, str) and "/" in a for a in addresses)
    return not (has_cidr and resolution not in ("STATIC", "NONE"))


def _dns_rr_one_endpoint(obj: Mapping[str, Any]) -> bool:
    endpoints = obj.get("endpoints", [])
    if _resolution(obj, "") != "DNS_ROUND_ROBIN" or not isinstance(endpoints, list):
        return True
    return len(endpoints) <= 1


def _port_level_has_selector(obj: Mapping[str, Any]) -> bool:
    selector = obj.get("selector", {})
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if "portLevelMtls" not in obj or not isinstance(selector, dict):
        return True
    if labels is not None and not isinstance(labels, dict):
        return True  # a type error is reported at matchLabels itself
    return any(v is not None for v in (labels or {}).values())


_PORT_NAME = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?")

DURATION_1MS = Rule(
    "duration(self) >= duration('1ms')", "must be a valid duration greater than 1ms", _dur_ok
)
PORT_RANGE = Rule(
    "0 < self && self <= 65535", "port must be between 1-65535", lambda v: 0 < v <= 65535
)
NOT_WILDCARD_HOST = Rule('self != "*"', "hostname cannot be wildcard", lambda v: v != "*")
MATCH_KEY_NO_WILDCARD = Rule(
    'self.all(key, !key.contains("*"))',
    "wildcard not allowed in label key match",
    lambda k: "*" not in k,
    per_key=True,
)
MATCH_KEY_NOT_EMPTY = Rule(
    "self.all(key, key.size() != 0)", "key must not be empty", lambda k: k != "", per_key=True
)
MATCH_VALUE_NO_WILDCARD = Rule(
    '!self.contains("*")', "wildcard not allowed in label value match", lambda v: "*" not in v
)
SELECTOR_NO_WILDCARD = Rule(
    '!self.contains("*")', "wildcard is not supported in selector", lambda v: "*" not in v
)
UDS_ABSOLUTE = Rule(
    'self.startsWith("unix://") ? (self.substring(7, 8) == "/" || '
    'self.substring(7, 8) == "@") : true',
    "UDS must be an absolute path or abstract socket",
    _uds_ok,
)
UDS_NOT_DIR = Rule(
    'self.startsWith("unix://") ? !self.endsWith("/") : true',
    "UDS may not be a dir",
    lambda v: not (v.startswith("unix://") and v[-1] == "/"),
)
PORT_NAMES = Rule(
    'self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))',
    "port name must be valid",
    lambda k: len(k) < 63 and bool(_PORT_NAME.fullmatch(k)),
    per_key=True,
)
ADDRESS_REQUIRED = Rule(
    "has(self.address) || has(self.network)",
    "Address is required",
    lambda o: _count(o, "address", "network") > 0,
)
UDS_NO_PORTS = Rule(
    '(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true',
    "UDS may not include ports",
    _uds_no_ports,
)
UNIQUE_PORT_NUMBER = Rule(
    "self.all(l1, self.exists_one(l2, l1.number == l2.number))",
    "port number cannot be duplicated",
    _port_numbers_unique,
)
SELECTOR_XOR_ENDPOINTS = Rule(
    "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1",
    "only one of WorkloadSelector or Endpoints can be set",
    lambda o: _count(o, "workloadSelector", "endpoints") <= 1,
)
CIDR_NEEDS_STATIC = Rule(
    '!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && '
    '!((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))',
    "CIDR addresses are allowed only for NONE/STATIC resolution types",
    _cidr_needs_static,
)
NONE_NO_ENDPOINTS = Rule(
    '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true',
    "NONE mode cannot set endpoints",
    lambda o: _resolution(o, "NONE") != "NONE" or "endpoints" not in o,
)
DNS_RR_ONE_ENDPOINT = Rule(
    '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? '
    "((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true",
    "DNS_ROUND_ROBIN mode cannot have multiple endpoints",
    _dns_rr_one_endpoint,
)
TLS_NAMES_XOR_CERTS = Rule(
    "(has(self.tlsCertificates) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1",
    "only one of credentialNames or tlsCertificates can be set",
    lambda o: _count(o, "tlsCertificates", "credentialNames") <= 1,
)
TLS_NAME_XOR_NAMES = Rule(
    "(has(self.credentialName) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1",
    "only one of credentialName or credentialNames can be set",
    lambda o: _count(o, "credentialName", "credentialNames") <= 1,
)
PORT_KEYS = Rule(
    "self.all(key, 0 < int(key) && int(key) <= 65535)",
    "port must be between 1-65535",
    lambda k: 0 < (_cel_int(k) or 0) <= 65535,
    per_key=True,
)
PORT_LEVEL_NEEDS_SELECTOR = Rule(
    "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? "
    "self.selector.matchLabels : {}).size() > 0) : true",
    "portLevelMtls requires selector",
    _port_level_has_selector,
)

#: CRD rules deliberately not checked (see the module docstring).
SKIPPED_CEL: tuple[str, ...] = (
    "(has(self.credentialNames) ? 1 : 0) + (has(self.tlsCertificates) ? 1 : 0) <= 1",
)


# --- The DSL --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Node:
    """A schema node. ``required`` only matters for a field of an ``Obj``."""

    required: bool = False
    nullable: bool = False
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Str(Node):
    """``type: string``, with ``maxLength``, ``enum`` and ``format: byte``."""

    max_len: int | None = None
    enum: tuple[str, ...] = ()
    byte: bool = False  # OpenAPI "format: byte": base64


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Int(Node):
    """``type: integer``, with ``minimum``/``maximum`` and ``format: int32``."""

    minimum: int | None = None
    maximum: int | None = None
    int32: bool = False  # OpenAPI "format: int32"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Num(Node):
    """``type: number`` (Istio's doubles), with ``minimum``/``maximum``."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Bool(Node):
    """``type: boolean``."""


@dataclass(frozen=True, slots=True, eq=False)
class List(Node):
    """``type: array`` of ``item``."""

    item: Node
    min_items: int | None = field(default=None, kw_only=True)
    max_items: int | None = field(default=None, kw_only=True)
    map_keys: tuple[str, ...] = field(default=(), kw_only=True)  # x-kubernetes-list-type: map


@dataclass(frozen=True, slots=True, eq=False)
class Map(Node):
    """``type: object`` with ``additionalProperties: value``: free string keys."""

    value: Node
    min_props: int | None = field(default=None, kw_only=True)
    max_props: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True, eq=False)
class Obj(Node):
    """``type: object`` with ``properties``; any other key is an unknown field."""

    fields: Mapping[str, Node]
    one_of: tuple[tuple[str, ...], ...] = field(default=(), kw_only=True)


def req(node: Node) -> Node:
    """Return ``node`` marked as a required field."""
    return replace(node, required=True)


def Enum(*values: str, **kw: Any) -> Str:
    """A string that must be one of ``values`` (case-sensitive)."""
    return Str(enum=values, **kw)


def Duration(**kw: Any) -> Str:
    """A Go duration string of at least 1ms (the CRD's CEL rule)."""
    return Str(rules=(DURATION_1MS,), **kw)


def UInt32(**kw: Any) -> Int:
    """An integer in 0..4294967295 (a protobuf uint32 or UInt32Value)."""
    return Int(minimum=0, maximum=4294967295, **kw)


def Int32(**kw: Any) -> Int:
    """An integer with ``format: int32``."""
    return Int(int32=True, **kw)


def Port(**kw: Any) -> Int:
    """A uint32 that the CRD's CEL rule also limits to 1..65535."""
    return UInt32(rules=(PORT_RANGE,), **kw)


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

# DestinationRule
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

# VirtualService
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

# ServiceEntry and WorkloadEntry
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

# Sidecar
SIDECAR_PORT = Obj({"name": STR, "number": UINT32, "protocol": STR, "targetPort": UINT32})
CAPTURE_MODE = Enum("DEFAULT", "IPTABLES", "NONE")
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

# PeerAuthentication
MTLS = Obj({"mode": Enum("UNSET", "DISABLE", "PERMISSIVE", "STRICT")})
PEER_AUTHENTICATION = Obj({
    "mtls": MTLS, "portLevelMtls": Map(MTLS, min_props=1, rules=(PORT_KEYS,)),
    "selector": MATCH_SELECTOR,
}, rules=(PORT_LEVEL_NEEDS_SELECTOR,))  # fmt: skip

#: The ``spec`` schema of each kind.
SPECS: Mapping[str, Obj] = {
    "DestinationRule": DESTINATION_RULE,
    "VirtualService": VIRTUAL_SERVICE,
    "ServiceEntry": SERVICE_ENTRY,
    "WorkloadEntry": WORKLOAD_ENTRY,
    "Sidecar": SIDECAR,
    "PeerAuthentication": PEER_AUTHENTICATION,
}
KNOWN_KINDS: frozenset[str] = frozenset(SPECS)
#: Kinds whose CRD requires ``spec`` itself (the root schema lists it as required).
SPEC_REQUIRED: frozenset[str] = frozenset({"ServiceEntry", "WorkloadEntry"})


# --- The walk -------------------------------------------------------------------------------------


class _Full(Exception):
    """Raised inside the walk when MAX_PROBLEMS is reached."""


def _json_type(value: Any) -> str:
    for types, name in _TYPE_NAMES:
        if isinstance(value, types):
            return name
    return "null" if value is None else type(value).__name__


_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
    ((datetime.date, datetime.datetime), "string"), ((list, tuple), "array"), (dict, "object"),
    ((bytes, bytearray), "binary"),
)  # fmt: skip


def _text(value: Any) -> str:
    """Show a scalar in a message: strings quoted and cut short, huge ints elided."""
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 64 else value[:61] + "...", ensure_ascii=False)
    try:
        return str(value)
    except ValueError:  # an int beyond Python's int-to-str digit limit
        return "<huge integer>"


def _key(key: Any) -> str:
    """A mapping key as the API server sees it once kubectl has turned YAML into JSON."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    return _text(key)


def render_field(path: FieldPath) -> str:
    """Render a field path the way the API server writes it in messages.

    Example:
        >>> render_field(("spec", "http", 0, "match", 1, "headers", "x-user", "exact"))
        'spec.http[0].match[1].headers[x-user].exact'
        >>> render_field(("spec", "selector", "matchLabels", ""))
        'spec.selector.matchLabels[""]'
    """
    out = ""
    for part in path:
        if isinstance(part, int) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f"[{part}]" if part != "" else '[""]'
        else:
            out += f".{part}" if out else part
    return out


@dataclass(slots=True)
class _Walk:
    cel: bool
    problems: list[Problem] = field(default_factory=list)
    clean: set[tuple[int, int]] = field(default_factory=set)

    def emit(self, path: FieldPath, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))
        if len(self.problems) >= MAX_PROBLEMS:
            raise _Full

    def invalid(self, path: FieldPath, message: str) -> None:
        self.emit(path, INVALID, f"{render_field(path)}: {message}")

    def visit(self, node: Node, value: Any, path: FieldPath) -> None:
        if value is None and node.nullable:
            return
        expected, got = _EXPECTED[type(node)], _json_type(value)
        if not _type_ok(expected, got, value):
            self.emit(path, WRONG_TYPE, f"{render_field(path)}: expected {expected}, got {got}")
            return
        memo = (id(node), id(value))
        if memo in self.clean:
            return
        before = len(self.problems)
        self.visit_value(node, value, path)
        if len(self.problems) == before and isinstance(value, dict | list):
            # YAML aliases can share one subtree many times; a clean one is checked only once.
            self.clean.add(memo)

    def visit_value(self, node: Node, value: Any, path: FieldPath) -> None:
        if isinstance(value, datetime.date):
            value = str(value)  # a YAML timestamp reaches the API server as a JSON string
        if isinstance(node, Obj | Map):
            value = self.visit_mapping(node, value, path)
        elif isinstance(node, List):
            self.visit_list(node, value, path)
        else:
            self.check_scalar(node, value, path)
        if self.cel:
            self.check_rules(node.rules, value, path)
        if isinstance(node, Obj | Map):
            self.visit_children(node, value, path)
        elif isinstance(node, List):
            for index, item in enumerate(value):
                self.visit(node.item, item, (*path, index))

    def check_rules(self, rules: tuple[Rule, ...], value: Any, path: FieldPath) -> None:
        for rule in rules:
            if rule.per_key:
                continue  # checked key by key, just before each entry's value
            if not rule.check(value):
                shown = f" (got {_text(value)})" if isinstance(value, str | int) else ""
                self.invalid(path, rule.message + shown)

    def visit_mapping(
        self, node: Obj | Map, value: dict[Any, Any], path: FieldPath
    ) -> dict[str, Any]:
        """Check the mapping itself; return it with string keys and pruned nulls, for rules."""
        present: dict[str, Any] = {}
        for raw_key, item in value.items():
            key = _key(raw_key)
            child = node.fields.get(key) if isinstance(node, Obj) else node.value
            if item is not None or child is None or child.nullable:
                present[key] = item
        if isinstance(node, Map):
            size = len(present)
            if node.min_props is not None and size < node.min_props:
                self.invalid(path, f"must have at least {node.min_props} entries")
            if node.max_props is not None and size > node.max_props:
                self.invalid(path, f"must have at most {node.max_props} entries")
            return present
        for name, child in node.fields.items():
            if child.required and name not in present:
                self.emit((*path, name), MISSING, f"missing required field {_text(name)}")
        for group in node.one_of:
            chosen = [name for name in group if name in present]
            if len(chosen) > 1:
                names = ", ".join(_text(name) for name in group)
                self.emit(
                    path,
                    ONE_OF,
                    f"{render_field(path)}: only one of {names} may be set "
                    f"(got {', '.join(_text(name) for name in chosen)})",
                )
        return present

    def visit_children(self, node: Obj | Map, present: dict[str, Any], path: FieldPath) -> None:
        key_rules = [rule for rule in node.rules if rule.per_key] if self.cel else []
        for key, item in present.items():
            for rule in key_rules:
                if not rule.check(key):
                    self.invalid((*path, key), f"{rule.message} (key {_text(key)})")
            child = node.fields.get(key) if isinstance(node, Obj) else node.value
            if child is None:
                self.emit((*path, key), UNKNOWN, f"unknown field {_text(key)}")
            else:
                self.visit(child, item, (*path, key))

    def visit_list(self, node: List, value: list[Any], path: FieldPath) -> None:
        if node.min_items is not None and len(value) < node.min_items:
            self.invalid(path, f"must have at least {node.min_items} items")
        if node.max_items is not None and len(value) > node.max_items:
            self.invalid(path, f"must have at most {node.max_items} items")
        for index, key in _duplicate_map_keys(node.map_keys, value):
            self.invalid((*path, index), f"duplicate entry with {key}")

    def check_scalar(self, node: Node, value: Any, path: FieldPath) -> None:
        if isinstance(node, Str):
            if node.enum and value not in node.enum:
                allowed = ", ".join(_text(v) for v in node.enum)
                self.emit(
                    path,
                    BAD_ENUM,
                    f"{render_field(path)}: unsupported value "
                    f"{_text(value)}; supported values: {allowed}",
                )
            if node.max_len is not None and len(value) > node.max_len:
                self.invalid(path, f"may not be longer than {node.max_len} characters")
            if node.byte and not _is_base64(value):
                self.invalid(path, "must be base64-encoded bytes")
        elif isinstance(node, Int | Num):
            if isinstance(value, float) and not math.isfinite(value):
                self.invalid(path, "must be a finite number")
                return
            if node.minimum is not None and value < node.minimum:
                self.invalid(path, f"must be greater than or equal to {node.minimum}")
            if node.maximum is not None and value > node.maximum:
                self.invalid(path, f"must be less than or equal to {node.maximum}")
            if isinstance(node, Int) and node.int32 and not -(2**31) <= value < 2**31:
                self.invalid(path, "must fit in a 32-bit signed integer (format int32)")


def _type_ok(expected: str, got: str, value: Any) -> bool:
    if got == expected or (expected == "number" and got == "integer"):
        return True
    # An integral float is an integer to the API server (and to JSON Schema).
    return expected == "integer" and isinstance(value, float) and value.is_integer()


_EXPECTED: dict[type, str] = {
    Obj: "object",
    Map: "object",
    List: "array",
    Str: "string",
    Int: "integer",
    Num: "number",
    Bool: "boolean",
}


def _duplicate_map_keys(keys: tuple[str, ...], items: list[Any]) -> Iterator[tuple[int, str]]:
    """Yield (index, description) for entries that repeat an earlier entry's list-map key."""
    if not keys:
        return
    seen: set[tuple[Any, ...]] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        values = tuple(item.get(k) for k in keys)
        if not all(isinstance(v, str | int | float) for v in values):
            continue  # missing or ill-typed keys are reported on their own
        ident = tuple((type(v) is str, v) for v in values)
        if ident in seen:
            yield index, ", ".join(f"{k} {_text(v)}" for k, v in zip(keys, values, strict=True))
        seen.add(ident)


def _is_base64(text: str) -> bool:
    # Go's base64.StdEncoding (what "format: byte" uses): padding required, CR/LF ignored.
    try:
        base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def validate_spec(kind: str, spec: object, *, cel: bool = True) -> list[Problem]:
    """Check the ``spec`` of an Istio resource against its CRD schema.

    Args:
        kind: The resource kind, e.g. "DestinationRule". Kinds outside ``KNOWN_KINDS`` are not
            checked (the result is empty).
        spec: The value of ``spec`` as loaded from YAML; None means absent.
        cel: Also check the CRD's CEL (``x-kubernetes-validations``) rules.

    Returns:
        The problems in document order, at most ``MAX_PROBLEMS``; empty if the API server would
        accept the spec.

    Example:
        >>> [p.message for p in validate_spec("DestinationRule", {"host": 1, "subset": []})]
        ['spec.host: expected string, got integer', 'unknown field "subset"']
        >>> validate_spec("ServiceEntry", None)[0].path
        ('spec',)
    """
    node = SPECS.get(kind)
    if node is None:
        return []
    walk = _Walk(cel)
    try:
        if spec is None:
            if kind in SPEC_REQUIRED:
                walk.emit(("spec",), MISSING, 'missing required field "spec"')
        else:
            walk.visit(node, spec, ("spec",))
    except _Full:
        pass
    return walk.problems


# --- Kinds kept in their own modules (built from the nodes above, so imported last) --------------
from meshlens.resources.gateway_spec import GATEWAY  # noqa: E402

SPECS = {**SPECS, "Gateway": GATEWAY}
KNOWN_KINDS = frozenset(SPECS)
