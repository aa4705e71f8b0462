"""Names and hosts: DNS labels and domains (with wildcards), label keys and values, subset and
gateway names, and istiod's host matching (``agent.ValidateFQDN``, ``ValidateWildcardDomain``,
``labels.Instance.Validate``, ``host.Name.Matches``/``SubsetOf``).

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshlens.resources.webhook.core import Collector, as_str, quote
from meshlens.source import FieldPath

LABEL = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
QUALIFIED = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
TAG_VALUE = re.compile("(?:" + QUALIFIED + ")?")
_DNS1123_LABEL = re.compile(LABEL)
_WILDCARD_LABEL = re.compile(r"\*|(?:\*|\*-)?" + LABEL)
_TAG_KEY = re.compile(r"(" + LABEL + r"(?:\." + LABEL + r")*/)?(" + QUALIFIED + ")")


def is_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def _dns1123_preconditions(name: str) -> str | None:
    if len(name) > 255:
        return f"domain name {quote(name)} too long (max 255)"
    if not name:
        return "empty domain name not allowed"
    return None


def _dns1123_labels(domain: str) -> str | None:
    parts = domain.split(".")
    tld = parts[-1]
    if re.fullmatch(r"[+-]?[0-9]+", tld):
        return (
            f"domain name {quote(domain)} invalid (top level domain {quote(tld)} cannot be "
            "all-numeric)"
        )
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None
        if not is_label(label):
            return f"domain name {quote(domain)} invalid (label {quote(label)} invalid)"
    return None


def validate_fqdn(fqdn: str) -> str | None:
    """agent.ValidateFQDN.

    Example:
        >>> validate_fqdn("reviews.default.svc.cluster.local") is None, validate_fqdn("a|b")
        (True, 'domain name "a|b" invalid (label "a|b" invalid)')
    """
    return _dns1123_preconditions(fqdn) or _dns1123_labels(fqdn)


def validate_wildcard_domain(domain: str) -> str | None:
    """agent.ValidateWildcardDomain: an FQDN whose first label may be a wildcard.

    Example:
        >>> validate_wildcard_domain("*.example.com") is None
        True
        >>> validate_wildcard_domain("reviews:9080")
        'domain name "reviews:9080" invalid (label "reviews:9080" invalid)'
    """
    bad = _dns1123_preconditions(domain)
    if bad:
        return bad
    first, dot, rest = domain.partition(".")
    if len(first) > 63 or not _WILDCARD_LABEL.fullmatch(first):
        return f"domain name {quote(domain)} invalid (label {quote(first)} invalid)"
    return _dns1123_labels(rest) if dot else None


def validate_labels(labels: Mapping[str, Any]) -> list[str]:
    """labels.Instance.Validate: Kubernetes-style keys, values without spaces or ``*``."""
    errors = []
    for key, value in labels.items():
        key, value = str(key), value if isinstance(value, str) else ""
        m = _TAG_KEY.fullmatch(key)
        if m is None:
            errors.append(f"invalid tag key: {quote(key)}")
        elif m.group(1) and len(m.group(1)) - 1 > 253:
            errors.append(f"invalid tag key: {quote(key)} (DNS prefix is too long)")
        elif len(m.group(2)) > 63:
            errors.append(f"invalid tag key: {quote(key)} (name is too long)")
        if not TAG_VALUE.fullmatch(value):
            errors.append(f"invalid tag value: {quote(value)}")
    return errors


def validate_subset_name(name: str) -> str | None:
    if not name:
        return "subset name cannot be empty"
    if not is_label(name):
        return f"subset name is invalid: {name}"
    return None


def validate_gateway_names(v: Collector, path: FieldPath, names: list[Any]) -> None:
    for i, entry in enumerate(names):
        name = as_str(entry)
        ns, slash, gw = name.partition("/")
        if not slash:
            if "." in name:
                parts = name.split(".")
                v.warn(
                    path + (i,),
                    f"using legacy gatewayName format {quote(name)}; prefer the "
                    f"<namespace>/<name> format: {quote(parts[1] + '/' + parts[0])}",
                )
            v.err(path + (i,), validate_fqdn(name))
            return  # istiod stops at the first name without a namespace
        if not ns or not gw:
            v.err(path + (i,), "config namespace and gateway name cannot be empty")
        if not is_label(ns):
            v.err(path + (i,), f"invalid value for namespace: {quote(ns)}")
        if not is_label(gw):
            v.err(path + (i,), f"invalid value for gateway name: {quote(gw)}")


def host_matches(a: str, b: str) -> bool:
    """host.Name.Matches: equal, or one wildcard covers the other."""
    aw, bw = a.startswith("*"), b.startswith("*")
    if aw and bw:
        return b[1:].endswith(a[1:]) if len(a) < len(b) else a[1:].endswith(b[1:])
    if aw:
        return b.endswith(a[1:])
    if bw:
        return a.endswith(b[1:])
    return a == b


def host_subset_of(a: str, b: str) -> bool:
    """host.Name.SubsetOf."""
    aw, bw = a.startswith("*"), b.startswith("*")
    if aw:
        return bw and len(a) >= len(b) and a[1:].endswith(b[1:])
    if bw:
        return a.endswith(b[1:])
    return a == b


def gateway_domain_error(domain: str, *, sni: bool) -> str | None:
    """ValidateWildcardDomainForVirtualServiceBoundToGateway (``outbound_.PORT_._.HOST`` SNIs)."""
    bad = _dns1123_preconditions(domain)
    if bad:
        return bad
    if sni and domain.startswith("outbound_"):
        parts = domain.split("_")
        fmt = "outbound_.<port>_._.<hostname>"
        if len(parts) < 4:
            return f"domain name {domain} invalid, should follow '{fmt}' format"
        direction, port, host = parts[0], parts[1].strip("."), parts[3].strip(".")
        if direction != "outbound":
            return f"domain name {quote(domain)} invalid (label {quote(direction)} invalid)"
        if not re.search(r"[0-9]", port):
            return (
                f"domain name {quote(domain)} invalid (label {quote(port)} invalid). should follow "
                f"{fmt} format"
            )
        if not re.search(r"[a-zA-Z]", host):
            return (
                f"domain name {quote(domain)} invalid (label {quote(host)} invalid). should follow "
                f"{fmt} format"
            )
        return None
    return validate_wildcard_domain(domain)
