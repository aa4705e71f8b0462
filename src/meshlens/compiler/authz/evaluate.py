"""Evaluate a filter chain's RBAC filters against one request, as Envoy would.

Layer: L4. Imports: xDS protos (pure: no model, no rendering).

Envoy's RBAC engine (``source/extensions/filters/common/rbac/engine_impl.cc``): the policies of
``rules`` are tried in name order (a ``std::map``); the first that matches is the effective
policy. ALLOW lets a request through only when some policy matches, DENY stops it when one
matches, LOG never stops it; ``shadow_rules`` are evaluated and only reported. Filters run in
chain order -- network RBAC filters first, then the HCM's HTTP RBAC filters -- and the first
denial ends the request: HTTP answers ``403 RBAC: access denied`` with response code details
``rbac_access_denied_matched_policy[NAME|none]``, a TCP connection is closed.

What a request carries here: the peer's URI SAN (``authenticated``: only over mTLS), the
downstream address (``direct_remote_ip``, ``remote_ip``: no XFF on a sidecar's inbound), the
local address and port (``destination_ip``/``destination_port``: the target port), and for
HTTP the headers with ``:method``, ``:path`` and ``:authority``, and the time (``now``) for
jwt_authn's ``exp``/``nbf``; the jwt_authn filter (:mod:`meshlens.compiler.authn.evaluate`)
runs where it sits in the chain and its payload is what ``metadata`` matchers read; ext_authz
(CUSTOM) decisions are made by the external service and are reported, not simulated.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2 as jwt_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as tcp_rbac_pb2
from envoy.extensions.path.match.uri_template.v3 import uri_template_match_pb2

from meshlens.compiler.authn.evaluate import JwtResult, run_jwt_authn

DENIED = "rbac_access_denied"
JWT_DENIED = "jwt_authn_access_denied"
HCM = "envoy.filters.network.http_connection_manager"
_ACTIONS = {rbac_pb2.RBAC.ALLOW: "ALLOW", rbac_pb2.RBAC.DENY: "DENY", rbac_pb2.RBAC.LOG: "LOG"}


@dataclass(slots=True)
class RbacRequest:
    """What Envoy's RBAC matchers see of one connection or request."""

    source_ip: str
    dest_ip: str
    dest_port: int
    principal: str = ""  # the peer certificate's URI SAN; "" without mTLS
    sni: str = ""
    headers: dict[str, str] | None = None  # lower-case names with :method/:path/:authority; None: TCP
    jwt_payload: dict[str, Any] | None = None  # set by the jwt_authn filter of the chain
    now: float | None = None  # seconds since the epoch, for jwt_authn's exp/nbf (None: unchecked)


@dataclass(slots=True)
class Step:
    """One RBAC filter's verdict: its provenance path, engine action and effective policy."""

    path: str  # e.g. filter_chains[3].filters[1].typed_config.http_filters[2]
    filter: str
    action: str
    policy: str | None  # effective policy of ``rules``; None: none matched
    shadow_policy: str | None = None
    shadow_action: str = ""
    enforced: bool = True  # ``rules`` present
    denies: bool = False


@dataclass(slots=True)
class Decision:
    """All RBAC steps of a chain, and the one that denied (if any)."""

    steps: list[Step] = field(default_factory=list)
    denied_by: Step | None = None
    ext_authz: list[str] = field(default_factory=list)  # ext_authz filters the request reaches
    jwt: JwtResult | None = None
    jwt_path: str = ""

    @property
    def allowed(self) -> bool:
        return self.denied_by is None and not (self.jwt is not None and self.jwt.status)

    def details(self) -> str:
        """Envoy's response code details for the denial."""
        step = self.denied_by
        if step is None:
            return ""
        return f"rbac_access_denied_matched_policy[{step.policy or 'none'}]"


def _string(m: Any, value: str | None) -> bool:
    if value is None:
        return False
    kind = m.WhichOneof("match_pattern")
    want = getattr(m, kind) if kind and kind != "safe_regex" else ""
    got = value.lower() if m.ignore_case else value
    want = want.lower() if m.ignore_case else want
    checks = {"exact": lambda: got == want, "prefix": lambda: got.startswith(want),
              "suffix": lambda: got.endswith(want), "contains": lambda: want in got,
              "safe_regex": lambda: re.fullmatch(m.safe_regex.regex, value) is not None}
    return kind in checks and checks[kind]()


def _header(hm: Any, headers: dict[str, str] | None) -> bool:
    if headers is None:
        return False  # the network RBAC filter has no headers
    value = headers.get(hm.name.lower())
    kind = hm.WhichOneof("header_match_specifier")
    if kind == "present_match":
        ok = (value is not None) == hm.present_match
    elif kind == "string_match":
        ok = _string(hm.string_match, value)
    else:
        ok = value is not None
    return ok != hm.invert_match


def _value(vm: Any, value: Any) -> bool:
    """``ValueMatcher``: string, list (one_of), or, presence."""
    kind = vm.WhichOneof("match_pattern")
    if kind == "string_match":
        return isinstance(value, str) and _string(vm.string_match, value)
    if kind == "list_match":
        return isinstance(value, list) and any(_value(vm.list_match.one_of, v) for v in value)
    if kind == "or_match":
        return any(_value(x, value) for x in vm.or_match.value_matchers)
    if kind == "present_match":
        return (value is not None) == vm.present_match
    if kind == "bool_match":
        return value is vm.bool_match
    return False


def _metadata(m: Any, req: RbacRequest) -> bool:
    """``MetadataMatcher`` over the dynamic metadata the chain wrote: the jwt_authn payload."""
    if m.filter != "envoy.filters.http.jwt_authn" or req.jwt_payload is None:
        return m.invert
    keys = [seg.key for seg in m.path]
    value: Any = {"payload": req.jwt_payload}
    for k in keys:
        value = value.get(k) if isinstance(value, dict) else None
    return _value(m.value, value) != m.invert


def _in_cidr(ip: str, cidr: Any) -> bool:
    try:
        net = ipaddress.ip_network(f"{cidr.address_prefix}/{cidr.prefix_len.value}", strict=False)
        return ipaddress.ip_address(ip) in net
    except ValueError:
        return False


def _path_only(headers: dict[str, str] | None) -> str | None:
    if headers is None or ":path" not in headers:
        return None
    return headers[":path"].split("?", 1)[0]


def _uri_template(cfg: Any, path: str | None) -> bool:
    """``envoy.path.match.uri_template``: ``*`` one segment, ``**`` any number of segments."""
    if path is None:
        return False
    t = uri_template_match_pb2.UriTemplateMatchConfig()
    cfg.typed_config.Unpack(t)
    parts = []
    for seg in re.split(r"(\*\*|\*)", t.path_template):
        parts.append({"**": ".*", "*": "[^/]*"}.get(seg, re.escape(seg)))
    return re.fullmatch("".join(parts), path) is not None


_LOGIC = {"and_rules": ("and", "rules"), "or_rules": ("or", "rules"), "not_rule": ("not", ""),
          "and_ids": ("and", "ids"), "or_ids": ("or", "ids"), "not_id": ("not", "")}


def _logic(node: Any, kind: str | None, recurse: Any) -> bool | None:
    """``any``, AND, OR and NOT of permissions or principals; None for a leaf matcher."""
    if kind == "any":
        return bool(node.any)
    op = _LOGIC.get(kind or "")
    if op is None:
        return None
    value = getattr(node, kind or "")
    if op[0] == "not":
        return not recurse(value)
    items = getattr(value, op[1])
    return all(map(recurse, items)) if op[0] == "and" else any(map(recurse, items))


def permission(p: rbac_pb2.Permission, req: RbacRequest) -> bool:
    """``Matcher::create(Permission)``."""
    kind = p.WhichOneof("rule")
    combined = _logic(p, kind, lambda x: permission(x, req))
    if combined is not None:
        return combined
    if kind == "header":
        return _header(p.header, req.headers)
    if kind == "url_path":
        return _string(p.url_path.path, _path_only(req.headers))
    if kind == "destination_ip":
        return _in_cidr(req.dest_ip, p.destination_ip)
    if kind == "destination_port":
        return req.dest_port == p.destination_port
    if kind == "requested_server_name":
        return _string(p.requested_server_name, req.sni)
    if kind == "uri_template":
        return _uri_template(p.uri_template, _path_only(req.headers))
    if kind == "metadata":
        return _metadata(p.metadata, req)
    return False  # matcher extensions


def principal(p: rbac_pb2.Principal, req: RbacRequest) -> bool:
    """``Matcher::create(Principal)``."""
    kind = p.WhichOneof("identifier")
    combined = _logic(p, kind, lambda x: principal(x, req))
    if combined is not None:
        return combined
    if kind == "authenticated":
        if not req.principal:
            return False  # AuthenticatedMatcher: no TLS connection, no match
        name = p.authenticated.principal_name
        return not name.WhichOneof("match_pattern") or _string(name, req.principal)
    if kind in ("direct_remote_ip", "remote_ip", "source_ip"):
        return _in_cidr(req.source_ip, getattr(p, kind))
    if kind == "header":
        return _header(p.header, req.headers)
    if kind == "url_path":
        return _string(p.url_path.path, _path_only(req.headers))
    if kind == "metadata":
        return _metadata(p.metadata, req)
    return False  # filter_state (waypoints only)


def _effective(rules: rbac_pb2.RBAC, req: RbacRequest) -> str | None:
    for name in sorted(rules.policies):
        pol = rules.policies[name]
        if any(permission(x, req) for x in pol.permissions) and \
                any(principal(x, req) for x in pol.principals):
            return name
    return None


def _step(path: str, name: str, cfg: Any, req: RbacRequest) -> Step:
    enforced = cfg.HasField("rules")
    action = _ACTIONS.get(cfg.rules.action, "?") if enforced else ""
    step = Step(path, name, action, _effective(cfg.rules, req) if enforced else None,
                enforced=enforced)
    if cfg.HasField("shadow_rules"):
        step.shadow_action = _ACTIONS.get(cfg.shadow_rules.action, "?")
        step.shadow_policy = _effective(cfg.shadow_rules, req)
    if enforced:
        step.denies = (action == "ALLOW" and step.policy is None) or (
            action == "DENY" and step.policy is not None)
    return step


def _visit(out: Decision, path: str, f: Any, cls: Any, req: RbacRequest) -> bool:
    """One network or HTTP filter: an RBAC filter of config type ``cls`` is evaluated (True when
    it denies), an ext_authz filter is noted."""
    if f.typed_config.Is(cls.DESCRIPTOR):
        cfg = cls()
        f.typed_config.Unpack(cfg)
        return _record(out, _step(path, f.name, cfg, req))
    if f.name.endswith("ext_authz"):
        out.ext_authz.append(f.name)
    return False


def evaluate_chain(chain: Any, index: int, req: RbacRequest) -> Decision:
    """Run the RBAC filters of filter chain ``index`` (the listener's ``filter_chains[index]``)."""
    out = Decision()
    for j, f in enumerate(chain.filters):
        path = f"filter_chains[{index}].filters[{j}]"
        if _visit(out, path, f, tcp_rbac_pb2.RBAC, req):
            return out
        if f.name == HCM and req.headers is not None:
            h = hcm_pb2.HttpConnectionManager()
            f.typed_config.Unpack(h)
            for k, hf in enumerate(h.http_filters):
                hpath = f"{path}.typed_config.http_filters[{k}]"
                if hf.typed_config.Is(jwt_pb2.JwtAuthentication.DESCRIPTOR):
                    cfg = jwt_pb2.JwtAuthentication()
                    hf.typed_config.Unpack(cfg)
                    out.jwt, out.jwt_path = run_jwt_authn(cfg, req.headers, now=req.now), hpath
                    if out.jwt.status:
                        return out
                    req.jwt_payload = out.jwt.payload
                elif _visit(out, hpath, hf, http_rbac_pb2.RBAC, req):
                    return out
    return out


def _record(out: Decision, step: Step) -> bool:
    out.steps.append(step)
    if step.denies:
        out.denied_by = step
    return step.denies


def provenance_key(step: Step, policy: str | None = None) -> str:
    """The provenance path of a policy of ``step`` (``record_provenance`` writes these)."""
    which = "rules" if step.enforced else "shadow_rules"
    return f"{step.path}.typed_config.{which}.policies.{policy or step.policy}"


@dataclass(slots=True)
class InboundVerdict:
    """What a trace shows of the server sidecar's authorization of one request."""

    denied: bool
    status: int | None
    reason: str
    origin: Any  # the Origin of the deciding policy rule (None: istiod default)
    detail: dict[str, Any]
    verdict: str = "ok"  # DENIED (RBAC) or JWT_DENIED (jwt_authn, 401)


def _origin(server: Any, key: str) -> Any:
    return server.provenance.of("listener", "virtualInbound").get(key)


def inbound_rbac(server: Any, chain: Any, index: int, client: Any, req: Any, *, dest_ip: str,
                 dest_port: int, mtls: bool) -> InboundVerdict | None:
    """The RBAC decision of the server's ``virtualInbound`` chain ``index`` for ``req``.

    Args:
        server: the server sidecar's CompileResult; client: the client's CompileResult.
        req: a ``simulate.Request`` (method, path, query, headers, authority, is_http).
        mtls: the connection is mutual TLS (the client's certificate is the peer principal).

    Returns:
        None when the chain has no RBAC filter.
    """
    from urllib.parse import urlencode

    headers = None
    if req.is_http:
        headers = dict(req.headers)
        headers.update({":method": req.method, ":authority": req.authority,
                        ":path": req.path + (f"?{urlencode(req.query)}" if req.query else "")})
    wl = client.proxy.workload
    td = client.mesh.mesh_config.trust_domain if client.mesh is not None else "cluster.local"
    principal_ = f"spiffe://{td}/ns/{wl.namespace}/sa/{wl.service_account or 'default'}" if mtls else ""
    rr = RbacRequest(client.proxy.ip, dest_ip, dest_port, principal_, "", headers,
                     now=getattr(req, "now", None))
    decision = evaluate_chain(chain, index, rr)
    if not decision.steps and not decision.ext_authz and decision.jwt is None:
        return None
    detail: dict[str, Any] = {
        "peer_principal": principal_ or None,
        "filters": [{"filter": s.filter, "action": s.action or None, "matched_policy": s.policy,
                     "shadow_action": s.shadow_action or None, "shadow_matched": s.shadow_policy,
                     "denies": s.denies} for s in decision.steps],
    }
    if decision.ext_authz:
        detail["ext_authz"] = "CUSTOM: the request also goes to the ext_authz provider (not simulated)"
    jwt = decision.jwt
    if jwt is not None:
        detail["jwt"] = {"provider": jwt.provider or None, "payload": jwt.payload,
                         "notes": jwt.notes or None}
        if jwt.status:
            origin = _origin(server, f"{decision.jwt_path}.typed_config.providers.{jwt.provider}")
            return InboundVerdict(True, jwt.status, f"{jwt.status} {jwt.reason}", origin, detail,
                                  JWT_DENIED)
    step = decision.denied_by
    if step is None:
        return InboundVerdict(False, None, "allowed by the server's RBAC filters", None, detail)
    if step.policy is not None:
        origin = _origin(server, provenance_key(step))
        why = f"DENY policy {step.policy} matches"
    else:
        names = sorted(_policies_of(chain, step))
        origin = _origin(server, provenance_key(step, names[0])) if names else None
        why = f"no ALLOW policy matches (the ALLOW policies: {', '.join(names)})"
    status = 403 if req.is_http else None
    what = "403 RBAC: access denied" if req.is_http else "the connection is closed"
    return InboundVerdict(True, status, f"{what} ({decision.details()}): {why}", origin, detail,
                          DENIED)


def _policies_of(chain: Any, step: Step) -> list[str]:
    """The policy names of the ``rules`` of the filter at ``step.path``."""
    parts = re.findall(r"\[(\d+)\]", step.path)
    f = chain.filters[int(parts[1])]
    cfg: Any
    if len(parts) > 2:
        h = hcm_pb2.HttpConnectionManager()
        f.typed_config.Unpack(h)
        cfg = http_rbac_pb2.RBAC()
        h.http_filters[int(parts[2])].typed_config.Unpack(cfg)
    else:
        cfg = tcp_rbac_pb2.RBAC()
        f.typed_config.Unpack(cfg)
    return list(cfg.rules.policies)
