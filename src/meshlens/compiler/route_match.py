"""VirtualService match blocks → Envoy ``RouteMatch`` (`core/route/route.go`).

Layer: L4. Imports: durations, xDS protos.

`TranslateRouteMatch`, `util.ConvertToEnvoyMatch`, `translateMetadataMatch`, `IsCatchAllRoute`,
and the percentage helpers (`translatePercentToFractionalPercent`).
"""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc_pb2
from envoy.type.matcher.v3 import metadata_pb2, string_pb2
from envoy.type.v3 import percent_pb2

from meshlens import durations

Route = rc_pb2.Route
JWT_FILTER = "envoy.filters.http.jwt_authn"
JWT_CLAIMS = "@request.auth.claims"


def _set_duration(msg: Any, value: Any) -> None:
    nanos = durations.parse_duration(value) or 0
    msg.seconds, msg.nanos = durations.split(nanos)


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def string_matcher(sm: Any) -> string_pb2.StringMatcher | None:
    """`util.ConvertToEnvoyMatch` (None for a StringMatch without a type)."""
    sm = _dict(sm)
    if "exact" in sm:
        return string_pb2.StringMatcher(exact=str(sm["exact"]))
    if "prefix" in sm:
        return string_pb2.StringMatcher(prefix=str(sm["prefix"]))
    if "regex" in sm:
        out = string_pb2.StringMatcher()
        out.safe_regex.regex = str(sm["regex"])
        return out
    return None


def _present_match(sm: Any) -> bool:
    """`canBeConvertedToPresentMatch`: no match type, or regex ``*``."""
    sm = _dict(sm)
    if not any(k in sm for k in ("exact", "prefix", "regex")):
        return True
    return "regex" in sm and sm["regex"] == "*"


def _header_matcher(name: str, sm: Any) -> rc_pb2.HeaderMatcher:
    out = rc_pb2.HeaderMatcher(name=name)
    if _present_match(sm):
        out.present_match = True
        return out
    em = string_matcher(sm)
    if em is not None:
        out.string_match.CopyFrom(em)
    return out


def _routing_claims(name: str) -> list[str] | None:
    """`jwt.ToRoutingClaim`."""
    if not name.lower().startswith(JWT_CLAIMS):
        return None
    rest = name[len(JWT_CLAIMS):]
    if rest.startswith(".") and len(rest) > 1:
        return rest[1:].split(".")
    if rest.startswith("[") and rest.endswith("]") and len(rest) > 2:
        return rest[1:-1].split("][")
    return None


def _metadata_matcher(name: str, sm: Any) -> metadata_pb2.MetadataMatcher | None:
    """`translateMetadataMatch` → `MetadataListMatcher(jwt_authn, [payload, claims...], extended)`."""
    claims = _routing_claims(name)
    if claims is None:
        return None
    out = metadata_pb2.MetadataMatcher(filter=JWT_FILTER)
    for key in ["payload", *claims]:
        out.path.add().key = key
    em = string_matcher(sm)
    or_match = out.value.or_match
    lm = or_match.value_matchers.add().list_match.one_of
    plain = or_match.value_matchers.add()
    if em is not None:
        lm.string_match.CopyFrom(em)
        plain.string_match.CopyFrom(em)
    else:
        lm.string_match.SetInParent()
        plain.string_match.SetInParent()
    return out


def _fraction_percent(value: Any) -> percent_pb2.FractionalPercent:
    """`translatePercentToFractionalPercent`: value × 10000 per million."""
    v = float(_dict(value).get("value") or 0)
    return percent_pb2.FractionalPercent(numerator=int(v * 10000),
                                         denominator=percent_pb2.FractionalPercent.MILLION)


def _int_percent(value: Any) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(numerator=int(value or 0),
                                         denominator=percent_pb2.FractionalPercent.HUNDRED)


def _fraction_positive(value: Any) -> bool:
    return float(_dict(value).get("value") or 0) > 0


# --- match --------------------------------------------------------------------------------------

def translate_route_match(match: dict[str, Any] | None, *, separated_prefix: bool = False) -> rc_pb2.RouteMatch:
    """`TranslateRouteMatch`; ``separated_prefix``: Ingress/Gateway API semantics, where a prefix
    other than ``/`` matches whole path segments (``path_separated_prefix``, trailing ``/`` cut)."""
    out = rc_pb2.RouteMatch(prefix="/")
    if match is None:
        return out
    headers: list[rc_pb2.HeaderMatcher] = []
    for name, sm in _dict(match.get("headers")).items():
        mm = _metadata_matcher(str(name), sm)
        if mm is not None:
            out.dynamic_metadata.append(mm)
        else:
            headers.append(_header_matcher(str(name), sm))
    for name, sm in _dict(match.get("withoutHeaders")).items():
        mm = _metadata_matcher(str(name), sm)
        if mm is not None:
            mm.invert = True
            out.dynamic_metadata.append(mm)
        else:
            hm = _header_matcher(str(name), sm)
            hm.invert_match = True
            if not _present_match(sm):
                hm.treat_missing_header_as_empty = True
            headers.append(hm)
    headers.sort(key=lambda h: h.name)  # stable, like sort.Slice on distinct map keys
    out.headers.extend(headers)
    uri = match.get("uri")
    if isinstance(uri, dict):
        if "exact" in uri:
            out.path = str(uri["exact"])
        elif "prefix" in uri:
            if separated_prefix and str(uri["prefix"]) != "/":
                out.path_separated_prefix = str(uri["prefix"]).rstrip("/")
            else:
                out.prefix = str(uri["prefix"])
        elif "regex" in uri:
            out.safe_regex.regex = str(uri["regex"])
    out.case_sensitive.value = not bool(match.get("ignoreUriCase"))
    for key, header in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if match.get(key) is not None:
            out.headers.append(_header_matcher(header, match[key]))
    # Go map order; sorted by name for determinism (spec §3.7.3).
    for name, sm in sorted(_dict(match.get("queryParams")).items()):
        qp = out.query_parameters.add(name=str(name))
        if _present_match(sm):
            qp.present_match = True
        else:
            em = string_matcher(sm)
            if em is not None:
                qp.string_match.CopyFrom(em)
    return out


def is_catch_all(r: Route) -> bool:
    """`IsCatchAllRoute`."""
    m = r.match
    which = m.WhichOneof("path_specifier")
    catch = ((which == "prefix" and m.prefix == "/")
             or (which == "path_separated_prefix" and m.path_separated_prefix == "/")
             or (which == "safe_regex" and m.safe_regex.regex == ".*"))
    return catch and not m.headers and not m.query_parameters and not m.dynamic_metadata
