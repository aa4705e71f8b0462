"""String, header, path and metadata matchers as istiod's authz builder writes them.

Layer: L4. Imports: xDS protos.

Mirrors ``pilot/pkg/security/authz/matcher`` (``StringMatcher``, ``HeaderMatcher``,
``HostMatcher``, ``PathMatcher``, ``PathTemplateMatcher``, ``MetadataListValueMatcher``, ...) and
the JWT claim helpers of ``pilot/pkg/security/authz/model/util.go``.
"""

from __future__ import annotations

import re

from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.type.matcher.v3 import metadata_pb2, path_pb2, regex_pb2, string_pb2, value_pb2

#: ``filters.EnvoyJwtFilterName`` / ``EnvoyJwtFilterPayload``
JWT_FILTER = "envoy.filters.http.jwt_authn"
JWT_PAYLOAD = "payload"


def go_quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: escape ``\\.+*?()|[]{}^$`` only."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def regex(pattern: str) -> string_pb2.StringMatcher:
    """`StringMatcherRegex`."""
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=pattern))


def prefix(value: str, ignore_case: bool = False) -> string_pb2.StringMatcher:
    """`StringMatcherPrefix`."""
    return string_pb2.StringMatcher(prefix=value, ignore_case=ignore_case)


def suffix(value: str, ignore_case: bool = False) -> string_pb2.StringMatcher:
    """`StringMatcherSuffix`."""
    return string_pb2.StringMatcher(suffix=value, ignore_case=ignore_case)


def exact(value: str, ignore_case: bool = False) -> string_pb2.StringMatcher:
    """`StringMatcherExact`."""
    return string_pb2.StringMatcher(exact=value, ignore_case=ignore_case)


def string_with_prefix(value: str, pre: str = "") -> string_pb2.StringMatcher:
    """`StringMatcherWithPrefix`: ``*`` is any non-empty value, ``*x`` a suffix, ``x*`` a prefix.

    Example:
        >>> string_with_prefix("*.a", "spiffe://").safe_regex.regex
        'spiffe://.*\\\\.a'
        >>> string_with_prefix("ns/*").prefix
        'ns/'
    """
    if value == "*":
        return regex(".+")
    if value.startswith("*"):
        if not pre:
            return suffix(value[1:])
        return regex(pre + ".*" + go_quote_meta(value[1:]))
    if value.endswith("*"):
        return prefix(pre + value[:-1])
    return exact(pre + value)


def string(value: str) -> string_pb2.StringMatcher:
    """`StringMatcher`."""
    return string_with_prefix(value, "")


def or_values(matchers: list[value_pb2.ValueMatcher]) -> value_pb2.ValueMatcher:
    """`OrMatcher`: one matcher stays itself."""
    if len(matchers) == 1:
        return matchers[0]
    out = value_pb2.ValueMatcher()
    out.or_match.value_matchers.extend(matchers)
    return out


def string_or(values: list[str]) -> value_pb2.ValueMatcher:
    """`StringOrMatcher`."""
    return or_values([value_pb2.ValueMatcher(string_match=string(v)) for v in values])


def _header(name: str, value: str, ignore_case: bool) -> rc_pb2.HeaderMatcher:
    if value == "*":
        return rc_pb2.HeaderMatcher(name=name, present_match=True)
    if value.startswith("*"):
        return rc_pb2.HeaderMatcher(name=name, string_match=suffix(value[1:], ignore_case))
    if value.endswith("*"):
        return rc_pb2.HeaderMatcher(name=name, string_match=prefix(value[:-1], ignore_case))
    return rc_pb2.HeaderMatcher(name=name, string_match=exact(value, ignore_case))


def header(name: str, value: str) -> rc_pb2.HeaderMatcher:
    """`HeaderMatcher` (case-sensitive values)."""
    return _header(name, value, False)


def host(name: str, value: str) -> rc_pb2.HeaderMatcher:
    """`HostMatcher`: as `HeaderMatcher`, but ignoring case."""
    return _header(name, value, True)


def path(value: str) -> path_pb2.PathMatcher:
    """`PathMatcher`."""
    return path_pb2.PathMatcher(path=string(value))


def path_template(value: str) -> str:
    """`PathTemplateMatcher` / `sanitizePathTemplate`: ``{*}`` → ``*``, ``{**}`` → ``**``."""
    return value.replace("{**}", "**").replace("{*}", "*")


def contains_path_template(value: str) -> bool:
    """`security.ContainsPathTemplate`."""
    return "{*}" in value or "{**}" in value


def metadata_value(filter_name: str, key: str,
                   value: value_pb2.ValueMatcher) -> metadata_pb2.MetadataMatcher:
    """`MetadataValueMatcher`: one path segment."""
    out = metadata_pb2.MetadataMatcher(filter=filter_name, value=value)
    out.path.add(key=key)
    return out


def metadata_list_value(filter_name: str, keys: list[str], value: value_pb2.ValueMatcher,
                        extended_jwt: bool) -> metadata_pb2.MetadataMatcher:
    """`MetadataListValueMatcher`: the value is one element of a list (or, for JWT claims, the
    claim itself as well)."""
    out = metadata_pb2.MetadataMatcher(filter=filter_name)
    for k in keys:
        out.path.add(key=k)
    listed = value_pb2.ValueMatcher()
    listed.list_match.one_of.CopyFrom(value)
    if extended_jwt:
        out.value.or_match.value_matchers.extend([listed, value])
    else:
        out.value.CopyFrom(listed)
    return out


def jwt_claim(claim: str, m: string_pb2.StringMatcher) -> metadata_pb2.MetadataMatcher:
    """`MetadataStringMatcherForJWTClaim`."""
    out = metadata_pb2.MetadataMatcher(filter=JWT_FILTER)
    out.path.add(key=JWT_PAYLOAD)
    out.path.add(key=claim)
    out.value.string_match.CopyFrom(m)
    return out


def jwt_claims(claims: list[str], value: value_pb2.ValueMatcher) -> metadata_pb2.MetadataMatcher:
    """`MetadataListValueMatcherForJWTClaims`."""
    return metadata_list_value(JWT_FILTER, [JWT_PAYLOAD, *claims], value, True)
