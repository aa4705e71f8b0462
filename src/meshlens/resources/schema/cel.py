"""The CRDs' CEL rules (``x-kubernetes-validations``): the ``Rule`` type and every rule meshlens
checks, each with the CRD's CEL text, its message and a Python check.

Layer: L2 (package meshlens.resources.schema). Imports: the standard library.

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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshlens.resources.schema.goduration import parse_go_duration


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
def _at_most_one(a: str, b: str, message: str) -> Rule:
    """The CRDs' "only one of a or b" rule, in their CEL spelling."""
    cel = f"(has(self.{a}) ? 1 : 0) + (has(self.{b}) ? 1 : 0) <= 1"
    return Rule(cel, message, lambda o: _count(o, a, b) <= 1)


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
SELECTOR_XOR_ENDPOINTS = _at_most_one(
    "workloadSelector", "endpoints", "only one of WorkloadSelector or Endpoints can be set"
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
TLS_NAMES_XOR_CERTS = _at_most_one(
    "tlsCertificates", "credentialNames",
    "only one of credentialNames or tlsCertificates can be set",
)
TLS_NAME_XOR_NAMES = _at_most_one(
    "credentialName", "credentialNames", "only one of credentialName or credentialNames can be set"
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
