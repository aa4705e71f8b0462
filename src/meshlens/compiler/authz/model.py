"""One AuthorizationPolicy rule → one RBAC ``Policy`` (permissions × principals).

Layer: L4. Imports: compiler.authz.matchers, xDS protos.

Mirrors ``pilot/pkg/security/authz/model``: `New` turns a rule's ``from``/``to``/``when`` into
lists of conditions (``to`` operations and ``from`` sources are put in front, ``when``
conditions after), `MigrateTrustDomain` rewrites principals and trust domains for the mesh's
trust domain aliases, and `Generate` ANDs the conditions of each list, ORs the values of one
condition and NOTs the ``notValues``. A value a generator cannot translate is an error: for an
ALLOW rule the rule is dropped (`checkError`), for DENY/AUDIT/CUSTOM the condition is dropped,
which widens the rule. On TCP chains every HTTP-only condition (hosts, methods, paths, request
principals, headers, JWT claims) is such an error (``"%q is HTTP only"``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import address_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2
from envoy.type.matcher.v3 import filter_state_pb2, value_pb2

from meshlens.compiler.authz import matchers as m

ALLOW, DENY, LOG = "ALLOW", "DENY", "LOG"
SPIFFE = "spiffe://"
PEER_PRINCIPAL_STATE = "io.istio.peer_principal"


class GenError(Exception):
    """A value the generator cannot translate (``"%q is HTTP only"``, a bad CIDR, ...)."""


def cidr(value: str) -> address_pb2.CidrRange:
    """`util.AddrStrToCidrRange`: ``1.2.3.4`` is a /32, ``a.b.c.d/n`` keeps its address."""
    addr, _, plen = value.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
        length = int(plen) if plen else ip.max_prefixlen
        if plen and (not plen.isdigit() or length > ip.max_prefixlen):
            raise ValueError(value)
    except ValueError as exc:
        raise GenError(f"invalid IP address {value}") from exc
    out = address_pb2.CidrRange(address_prefix=str(ip))
    out.prefix_len.value = length
    return out


def _authenticated(sm: Any, use_authenticated: bool) -> rbac_pb2.Principal:
    """`principalAuthenticated`: sidecars match the mTLS peer certificate's URI SAN."""
    if use_authenticated:
        return rbac_pb2.Principal(authenticated=rbac_pb2.Principal.Authenticated(principal_name=sm))
    return rbac_pb2.Principal(filter_state=filter_state_pb2.FilterStateMatcher(
        key=PEER_PRINCIPAL_STATE, string_match=sm))


def _http_only(key: str, for_tcp: bool) -> None:
    if for_tcp:
        raise GenError(f'"{key}" is HTTP only')


def _permission(key: str, value: str, for_tcp: bool) -> rbac_pb2.Permission:
    """The ``permission`` method of each generator in ``generator.go``."""
    if key == "destination.ip":
        return rbac_pb2.Permission(destination_ip=cidr(value))
    if key == "destination.port":
        if not value.isdigit() or int(value) > 65535:
            raise GenError(f"invalid port {value}")
        return rbac_pb2.Permission(destination_port=int(value))
    if key == "connection.sni":
        return rbac_pb2.Permission(requested_server_name=m.string(value))
    if key == ":authority":
        _http_only(key, for_tcp)
        return rbac_pb2.Permission(header=m.host(key, value))
    if key == ":method":
        _http_only(key, for_tcp)
        return rbac_pb2.Permission(header=m.header(key, value))
    if key == "path-matcher":
        _http_only(key, for_tcp)
        if m.contains_path_template(value):
            out = rbac_pb2.Permission()
            out.uri_template.name = "uri-template"
            out.uri_template.typed_config.Pack(uri_template_match_pb2.UriTemplateMatchConfig(
                path_template=m.path_template(value)))
            return out
        return rbac_pb2.Permission(url_path=m.path(value))
    raise GenError("unimplemented")


def _envoy_filter_permission(key: str, values: list[str]) -> rbac_pb2.Permission:
    """`envoyFilterGenerator`: ``experimental.envoy.filters.FILTER[KEY]`` matches dynamic metadata."""
    head, sep, rest = key.removeprefix("experimental.").removesuffix("]").partition("[")
    if not sep:
        raise GenError(f"invalid key: {key}")
    vms = []
    for v in values:
        if v.startswith("[") and v.endswith("]"):
            vm = value_pb2.ValueMatcher()
            vm.list_match.one_of.string_match.CopyFrom(m.string(v.strip("[]")))
        else:
            vm = value_pb2.ValueMatcher(string_match=m.string(v))
        vms.append(vm)
    return rbac_pb2.Permission(metadata=m.metadata_value(head, rest, m.or_values(vms)))


def _principal(key: str, value: str, for_tcp: bool, use_auth: bool, ns: str) -> rbac_pb2.Principal:
    """The ``principal`` method of each generator in ``generator.go``."""
    if key == "source.ip":
        return rbac_pb2.Principal(direct_remote_ip=cidr(value))
    if key == "remote.ip":
        return rbac_pb2.Principal(remote_ip=cidr(value))
    if key == "source.namespace":
        parts = [m.go_quote_meta(p) for p in value.split("*")]
        return _authenticated(m.regex(f".*/ns/{'.*'.join(parts)}/.*"), use_auth)
    if key == "source.serviceAccount":
        sa_ns, sep, sa = value.partition("/")
        if not sep:
            sa_ns, sa = ns, value
        return _authenticated(m.regex(
            f"spiffe://.+/ns/{m.go_quote_meta(sa_ns)}/(.+/|)sa/{m.go_quote_meta(sa)}(/.+)?"), use_auth)
    if key == "source.trustDomain":
        if value == "*":
            sm = m.prefix(SPIFFE)
        elif "*" not in value:
            sm = m.prefix(f"{SPIFFE}{value}/")
        else:
            a, _, b = value.partition("*")
            sm = m.regex(f"spiffe://{m.go_quote_meta(a)}[^/]*{m.go_quote_meta(b)}/.*")
        return _authenticated(sm, use_auth)
    if key == "source.principal":
        return _authenticated(m.string_with_prefix(value, SPIFFE), use_auth)
    if key.startswith("request.headers"):
        _http_only(key, for_tcp)
        name = key.removeprefix("request.headers")
        if not (name.startswith("[") and name.endswith("]")):
            raise GenError(f"expecting format [<NAME>], but found {name}")
        return rbac_pb2.Principal(header=m.header(name[1:-1], value))
    raise GenError("unimplemented")


def _request_principals(key: str, values: list[str], for_tcp: bool) -> rbac_pb2.Principal | None:
    """`requestPrincipalGenerator.extendedPrincipal`: ``ISS/SUB`` against the JWT payload."""
    _http_only(key, for_tcp)
    any_ = m.regex(".+")
    ors = []
    for value in values:
        idx = value.rfind("/")
        found = idx >= 0
        iss, sub = (value[:idx], value[idx + 1:]) if found else (value, "")
        if value == "*":
            mi, ms = any_, any_
        elif value.startswith("*"):
            if found:
                mi = any_ if iss == "*" else m.suffix(iss[1:])
                ms = m.exact(sub)
            else:
                mi, ms = any_, m.suffix(value[1:])
        elif value.endswith("*"):
            if found:
                mi = m.exact(iss)
                ms = any_ if sub == "*" else m.prefix(sub[:-1])
            else:
                mi, ms = m.prefix(value[:-1]), any_
        else:
            mi, ms = m.exact(iss), m.exact(sub)
        p = rbac_pb2.Principal()
        p.and_ids.ids.add(metadata=m.jwt_claim("iss", mi))
        p.and_ids.ids.add(metadata=m.jwt_claim("sub", ms))
        ors.append(p)
    if len(ors) == 1:
        return ors[0]
    if ors:
        out = rbac_pb2.Principal()
        out.or_ids.ids.extend(ors)
        return out
    return None


def nested_claims(text: str) -> list[str]:
    """`extractNameInNestedBrackets`: ``[a][b]`` → ``["a", "b"]``."""
    claims: list[str] = []
    begin = 0
    while begin < len(text):
        end = -1
        if text[begin] == "[":
            for i in range(begin + 1, len(text)):
                if text[i] == "[":
                    break
                if text[i] == "]":
                    end = i
                    break
        if end == -1:
            if not (text.startswith("[") and text.endswith("]")):
                raise GenError(f"expecting format [<NAME>], but found {text}")
            return [text[1:-1]]
        claims.append(text[begin + 1:end])
        begin = end + 1
    return claims


def _extended_principal(key: str, values: list[str], for_tcp: bool) -> rbac_pb2.Principal | None:
    if key == "request.auth.principal":
        return _request_principals(key, values, for_tcp)
    _http_only(key, for_tcp)
    if key == "request.auth.audiences":
        return rbac_pb2.Principal(metadata=m.jwt_claims(["aud"], m.string_or(values)))
    if key == "request.auth.presenter":
        return rbac_pb2.Principal(metadata=m.jwt_claims(["azp"], m.string_or(values)))
    claims = nested_claims(key.removeprefix("request.auth.claims"))
    return rbac_pb2.Principal(metadata=m.jwt_claims(claims, m.string_or(values)))


EXTENDED = ("request.auth.principal", "request.auth.audiences", "request.auth.presenter")
PERMISSION_KEYS = ("destination.ip", "destination.port", "connection.sni")
PRINCIPAL_KEYS = ("source.ip", "remote.ip", "source.namespace", "source.trustDomain",
                  "source.serviceAccount", "source.principal")


@dataclass(slots=True)
class Cond:
    """`rule`: one key with its values and notValues; ``path`` is where it was written."""

    key: str
    values: list[str]
    not_values: list[str]
    extended: bool = False
    path: tuple[str | int, ...] = ()


@dataclass(slots=True)
class Model:
    """`Model`: one condition list per ``to`` (permissions) and per ``from`` (principals)."""

    permissions: list[list[Cond]] = field(default_factory=list)
    principals: list[list[Cond]] = field(default_factory=list)


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def _add(lst: list[Cond], key: str, values: Any, not_values: Any, *, front: bool,
         extended: bool = False, path: tuple[str | int, ...] = ()) -> None:
    vs, ns = _strs(values), _strs(not_values)
    if not vs and not ns:
        return
    c = Cond(key, vs, ns, extended, path)
    if front:
        lst.insert(0, c)
    else:
        lst.append(c)


def new_model(rule: dict[str, Any], base_path: tuple[str | int, ...] = ()) -> Model:
    """`New`: raises GenError for an unknown ``when`` key."""
    perm: list[Cond] = []
    prin: list[Cond] = []
    for j, when in enumerate(rule.get("when") or []):
        if not isinstance(when, dict):
            continue
        k = str(when.get("key", ""))
        args = (when.get("values"), when.get("notValues"))
        wp = base_path + ("when", j)
        if k in PERMISSION_KEYS:
            _add(perm, k, *args, front=False, path=wp)
        elif k.startswith("experimental.envoy.filters."):
            _add(perm, k, *args, front=False, extended=True, path=wp)
        elif k in PRINCIPAL_KEYS or k.startswith("request.headers"):
            _add(prin, k, *args, front=False, path=wp)
        elif k in EXTENDED or k.startswith("request.auth.claims"):
            _add(prin, k, *args, front=False, extended=True, path=wp)
        else:
            raise GenError(f"unknown attribute {k}")
    out = Model()
    for j, frm in enumerate(rule.get("from") or []):
        merged = list(prin)
        s = frm.get("source") if isinstance(frm, dict) else None
        sp = base_path + ("from", j, "source")
        if isinstance(s, dict):
            for key, yes, no, ext in (
                    ("source.ip", "ipBlocks", "notIpBlocks", False),
                    ("remote.ip", "remoteIpBlocks", "notRemoteIpBlocks", False),
                    ("source.namespace", "namespaces", "notNamespaces", False),
                    ("source.trustDomain", "trustDomains", "notTrustDomains", False),
                    ("source.serviceAccount", "serviceAccounts", "notServiceAccounts", False),
                    ("request.auth.principal", "requestPrincipals", "notRequestPrincipals", True),
                    ("source.principal", "principals", "notPrincipals", False)):
                _add(merged, key, s.get(yes), s.get(no), front=True, extended=ext, path=sp + (yes,))
        out.principals.append(merged)
    if not rule.get("from"):
        out.principals.append(prin)
    for j, to in enumerate(rule.get("to") or []):
        merged = list(perm)
        o = to.get("operation") if isinstance(to, dict) else None
        op = base_path + ("to", j, "operation")
        if isinstance(o, dict):
            for key, yes, no in (("destination.port", "ports", "notPorts"),
                                 ("path-matcher", "paths", "notPaths"),
                                 (":method", "methods", "notMethods"),
                                 (":authority", "hosts", "notHosts")):
                _add(merged, key, o.get(yes), o.get(no), front=True, path=op + (yes,))
        out.permissions.append(merged)
    if not rule.get("to"):
        out.permissions.append(perm)
    return out


def migrate_trust_domain(model: Model, bundle: Any) -> None:
    """`MigrateTrustDomain` (conditions shared between ``from`` entries are rewritten once per
    entry, as in istiod, which rewrites them through a shared pointer)."""
    for lst in model.principals:
        for c in lst:
            if c.key == "source.principal":
                c.values = bundle.replace_aliases(c.values) if c.values else c.values
                c.not_values = bundle.replace_aliases(c.not_values) if c.not_values else c.not_values
            elif c.key == "source.trustDomain":
                c.values = bundle.expand_aliases(c.values) if c.values else c.values
                c.not_values = bundle.expand_aliases(c.not_values) if c.not_values else c.not_values


def _check(action: str, exc: GenError) -> None:
    """`checkError`: only ALLOW rules fail on an untranslatable value."""
    if action == ALLOW:
        raise exc


def _negatable(c: Cond, one: Any, many: Any, or_of: Any, not_of: Any, action: str) -> list[Any]:
    """`rule.permission` / `rule.principal`: the values ORed, the notValues ORed and NOTed; an
    extended generator takes the whole list at once."""
    out: list[Any] = []
    for values, negate in ((c.values, False), (c.not_values, True)):
        if not values:
            continue
        p = None
        if c.extended:
            try:
                p = many(values)
            except GenError as exc:
                _check(action, exc)
        else:
            ors = []
            for v in values:
                try:
                    ors.append(one(v))
                except GenError as exc:
                    _check(action, exc)
            p = or_of(ors) if ors else None
        if p is not None:
            out.append(not_of(p) if negate else p)
    return out


def _perm_or(ps: list[rbac_pb2.Permission]) -> rbac_pb2.Permission:
    out = rbac_pb2.Permission()
    out.or_rules.rules.extend(ps)
    return out


def _prin_or(ps: list[rbac_pb2.Principal]) -> rbac_pb2.Principal:
    out = rbac_pb2.Principal()
    out.or_ids.ids.extend(ps)
    return out


def _cond_permissions(c: Cond, for_tcp: bool, action: str) -> list[rbac_pb2.Permission]:
    return _negatable(c, lambda v: _permission(c.key, v, for_tcp),
                      lambda vs: _envoy_filter_permission(c.key, vs), _perm_or,
                      lambda p: rbac_pb2.Permission(not_rule=p), action)


def _cond_principals(c: Cond, for_tcp: bool, use_auth: bool, action: str,
                     ns: str) -> list[rbac_pb2.Principal]:
    return _negatable(c, lambda v: _principal(c.key, v, for_tcp, use_auth, ns),
                      lambda vs: _extended_principal(c.key, vs, for_tcp), _prin_or,
                      lambda p: rbac_pb2.Principal(not_id=p), action)


def generate(model: Model, *, for_tcp: bool, use_authenticated: bool, action: str,
             namespace: str) -> rbac_pb2.Policy:
    """`Generate`: raises GenError when an ALLOW rule cannot be built (the rule is dropped)."""
    policy = rbac_pb2.Policy()
    for lst in model.permissions:
        ands = [p for c in lst for p in _cond_permissions(c, for_tcp, action)]
        perm = policy.permissions.add()
        perm.and_rules.rules.extend(ands or [rbac_pb2.Permission(any=True)])
    for lst in model.principals:
        ands_p = [p for c in lst
                  for p in _cond_principals(c, for_tcp, use_authenticated, action, namespace)]
        prin = policy.principals.add()
        prin.and_ids.ids.extend(ands_p or [rbac_pb2.Principal(any=True)])
    if not policy.permissions:
        raise GenError("must have at least 1 permission")
    if not policy.principals:
        raise GenError("must have at least 1 principal")
    return policy


def match_never() -> rbac_pb2.Policy:
    """`rbacPolicyMatchNever`: the policy of an ALLOW/AUDIT policy without rules."""
    p = rbac_pb2.Policy()
    p.permissions.add().not_rule.any = True
    p.principals.add().not_id.any = True
    return p
