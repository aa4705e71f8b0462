"""Diagnostics: the one code catalogue and the one text format.

Layer: L1. Imports: source.

Every problem meshlens finds in user input is a :class:`Diagnostic` with a stable code from
:data:`CODES`. The text format is mypy's and the issue's::

    manifests/dr.yaml:14:7: error: unknown field "maxConection" [ML0102] (DestinationRule ns/name)

Codes are never reused. ``istio`` names the IST code of the istioctl analyzer with the same check.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from meshlens.source import FieldPath, RawDocument, ResourceRef, SourceSpan, render_path


class Level(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    """One catalogue entry: the code, its level, its message template, the istioctl analyzer
    code with the same check (if any) and a short title."""

    code: str
    level: Level
    template: str
    istio: str = ""
    title: str = ""


#: The catalogue as a table (Istio keeps its own in msg/messages.yaml). An entry is a line
#: ``CODE LEVEL IST-CODE TITLE`` (``-`` when no istioctl analyzer has the check) and then the
#: message template on indented lines, joined with single spaces; ``#`` lines are comments.
#: Templates are filled with ``str.format`` keyword arguments. Append new codes in their range.
_CATALOGUE = """
# ML00xx: reading input
ML0001 error   -       file cannot be parsed
    {message}
ML0002 error   -       file cannot be read
    cannot read {path}: {reason}
ML0003 info    -       kind skipped
    skipped {kind} {name}: kind not used by meshlens
ML0004 error   -       not an object
    document is not a Kubernetes object: {reason}
ML0005 error   -       input too large
    input limit exceeded: {message}
ML0006 warning -       duplicate YAML key
    duplicate key {key!r}: the last value wins
ML0007 info    -       file skipped
    skipped {file}: {reason}
# ML01xx: structure of a resource (as the API server's schema check)
ML0101 error   -       missing field
    {kind} {name}: missing required field {field}
ML0102 error   -       unknown field
    unknown field {field!r}
ML0103 error   -       wrong type
    {field}: expected {expected}, got {got}
ML0104 error   -       bad enum value
    {field}: unsupported value {value!r}; supported values: {allowed}
ML0105 error   -       duplicate resource
    duplicate {kind} {ns}/{name}: the first one (at {first}) is kept
ML0106 error   -       invalid value
    {field}: {message}
ML0107 error   -       oneof violated
    {field}: only one of {fields} may be set
# ML02xx: the proxy
ML0201 error   -       proxy not found
    proxy {proxy!r} not found: {reason}
# ML03xx: model building
ML0301 warning -       named targetPort unresolved
    Service {name}: targetPort {port!r} is not a port of pod {pod}; the endpoint is left out
ML0302 info    -       model note
    {message}
ML0303 warning -       same object twice
    {kind} {ref} is given twice: the one at {last} wins over the one at {first} (the last one
    `kubectl apply` leaves)
ML0304 info    -       injection assumed
    namespaces without a Namespace object, assumed labelled for sidecar injection: {namespaces}
    (--assume-injection=false turns this off)
ML0305 warning -       live state istiod would not use
    {message}
ML0306 warning -       feature flag
    istiod flag {name}={value}: {message}
# ML04xx: istiod's validating webhook (meshlens.resources.webhook) and YAML hazards. The
# message after the field is the webhook's own wording; an error leaves the resource out,
# a warning (what kubectl prints as "Warning:") keeps it.
ML0401 error   -       rejected by istiod's validating webhook
    {field}: {message}
ML0402 warning -       istiod's validating webhook warns
    {field}: {message}
ML0403 warning -       a number or boolean read the YAML 1.1 way (as kubectl reads it)
    {field}: {explanation}
ML0404 warning -       admission error with admission off
    {message} (rejected at admission; kept because admission is off)
# ML05xx: the MeshConfig (--mesh-config, or the istio ConfigMap's mesh key)
ML0501 warning -       MeshConfig not applied
    the MeshConfig in {source} has errors, so it is not applied: istiod rejects such a
    MeshConfig ("invalid mesh config, using last known state") and keeps its defaults, and
    meshlens compiles with those defaults too
ML0502 warning -       unknown MeshConfig field
    {field}: unknown MeshConfig field; istiod ignores it
# ML1xxx: meshlens analyze (analyzers in meshlens.analyze). ML10xx-ML11xx mirror istioctl
# analyze: same check, same message text, same level, with its IST code. ML12xx are
# meshlens's own checks; most are proven from the compiled xDS.
ML1001 error   IST0001 analyzer failed
    Internal error: {error}
ML1002 warning IST0002 deprecated field
    Deprecated: {what}
ML1101 error   IST0101 VirtualService destination host not found
    Referenced {what} not found: {value}
ML1102 error   IST0112 destination port required
    This VirtualService routes to a service {host} that exposes multiple ports {ports}.
    Specifying a port in the destination is required to disambiguate.
ML1103 error   IST0101 VirtualService subset not defined by a DestinationRule
    Referenced {what} not found: {value}
ML1104 warning IST0140 subset ignored by gateway route
    Subset in virtual service {subset_vs} has no effect on ingress gateway {vs} requests
ML1105 error   IST0109 several VirtualServices for one host
    The VirtualServices {names} associated with mesh gateway define the same host {host} which
    can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices
    into a single resource.
ML1106 warning IST0130 unreachable route rule
    VirtualService rule {rule} not used ({reason}).
ML1107 info    IST0131 ineffective match
    VirtualService rule {rule} match {match} is not used (duplicate/overlapping match in rule
    {dup}).
ML1108 warning IST0165 internal gateway referenced
    Gateway reference in VirtualService {vs} is to an implementation-generated internal Gateway:
    {gateway}.
ML1111 warning IST0128 server certificate not verified
    DestinationRule {name} in namespace {ns} has TLS mode set to {mode} but no caCertificates
    are set to validate server identity for host: {host}
ML1112 warning IST0129 server certificate not verified (port level)
    DestinationRule {name} in namespace {ns} has TLS mode set to {mode} but no caCertificates
    are set to validate server identity for host: {host} at port {port}
ML1113 warning IST0174 DestinationRule host unknown
    The host {host} defined in the DestinationRule does not match any services in the mesh.
ML1114 error   IST0173 subset selects no pod
    The Subset {subset} defined in the DestinationRule does not select any pods. Which may lead
    to 503 UH (NoHealthyUpstream).
ML1121 error   IST0101 Sidecar selector matches no pod
    Referenced {what} not found: {value}
ML1122 error   IST0110 Sidecars select the same pod
    The Sidecars {names} in namespace {ns} select the same workload pod {pod}, which can lead to
    undefined behavior.
ML1123 error   IST0111 several namespace-wide Sidecars
    The Sidecars {names} in namespace {ns} have no workload selector, which can lead to
    undefined behavior.
ML1124 warning IST0167 policy without effect
    The policy has no impact: {reason}.
ML1131 info    IST0118 port protocol not declared
    Port name {name} (port: {port}, targetPort: {target}) doesn't follow the naming convention
    of Istio port.
ML1132 warning IST0150 ExternalName port name
    Port name for ExternalName service is invalid. Proxy may prevent tcp named ports and
    unmatched traffic for ports serving TCP protocol from being forwarded correctly
ML1133 warning IST0116 one port, several protocols
    This deployment {name} is associated with multiple services using port {port} but different
    protocols: {services}
ML1134 warning IST0137 one targetPort, several ports
    This deployment {name} is associated with multiple services {services} using targetPort
    {target} but different ports: {ports}.
ML1135 warning IST0144 application runs as UID 1337
    User ID (UID) 1337 is reserved for the sidecar proxy.
ML1141 warning IST0134 ServiceEntry needs addresses
    ServiceEntry addresses are required for this protocol.
ML1142 warning IST0177 ServiceEntry protocol conflict
    Multiple ServiceEntries ({names}) define the same host {host} and port {port} with
    conflicting protocols ({protocols}).
ML1151 info    IST0102 namespace not injected
    The namespace is not enabled for Istio injection. Run 'kubectl label namespace {ns}
    istio-injection=enabled' to enable it, or 'kubectl label namespace {ns}
    istio-injection=disabled' to explicitly mark it as not needing injection.
ML1152 warning IST0103 pod without sidecar
    The pod {pod} is missing the Istio proxy. This can often be resolved by restarting or
    redeploying the workload.
ML1153 warning IST0123 several injection labels
    The namespace has more than one type of injection labels {labels}, which may lead to
    undefined behavior. Make sure only one injection label exists.
# gateways (istioctl's gateway analyzers, virtualservice.GatewayAnalyzer, Gateway API status)
ML1181 error   IST0101 gateway reference not found
    Referenced {what} not found: {value}
ML1182 warning IST0162 gateway port not on its Service
    The gateway is listening on a target port (port {port}) that is not defined in the Service
    associated with its workload instances (Pod selector {selector}). If you need to access the
    gateway port through the gateway Service, it will not be available.
ML1183 error   IST0161 invalid gateway credential
    The credential referenced by the Gateway {name} in namespace {ns} is invalid, which can cause
    the traffic not to work as expected.
ML1184 error   IST0145 conflicting gateways
    Conflict with gateways {gateways} (workload selector {selector}, port {port}, hosts {hosts}).
ML1185 warning IST0138 certificate shared by gateways
    Duplicate certificate in multiple gateways {gateways} may cause 404s if clients re-use HTTP2
    connections.
ML1186 warning IST0132 VirtualService host not in its Gateway
    one or more host {hosts} defined in VirtualService {vs} not found in Gateway {gateway}.
ML1187 warning -       Gateway API status condition not healthy
    {where}: condition {type} is {status} ({reason}): {detail}
ML1201 error   -       route to a cluster the proxy does not have
    {dest} has no cluster {cluster} on {proxies}: {reason}; Envoy answers 503 NC
    (NoClusterFound)
ML1202 error   -       subset cluster without endpoints
    {clusters} empty: {reason}; a request routed to subset {subset} fails with 503 UH (no
    healthy upstream)
ML1203 warning -       service without endpoints
    {clusters} empty: {reason}; a request to {host}:{port} fails with 503 UH (no healthy
    upstream)
ML1204 warning -       unused subset with a traffic policy
    subset {subset} is not used by any VirtualService route: its trafficPolicy ({blocks}) never
    applies; traffic to {host} goes to the service's default cluster
ML1205 info    -       unused subset
    subset {subset} is not used by any VirtualService route: no traffic reaches its cluster(s)
ML1206 info    -       route copied to port 80 by istiod's workaround
    {cluster} does not exist, but only istiod's port-80 workaround routes there: {host} has no
    port 80 (ports: {ports}), yet istiod copies this VirtualService's routes into route table 80
    of {proxies} (because another service has an HTTP port 80) and a destination without a port
    becomes port 80 there; only a request to {host}:80, a port the Service does not have,
    reaches this route
ML1210 warning -       port-level settings drop inherited settings
    {entry} for port {port} {how}, so {lost} {verb} not inherited on {clusters}: {consequence}
ML1211 warning -       subset settings drop inherited settings
    {entry} {how}, so {lost} {verb} not inherited on {clusters}: {consequence}
ML1213 info    -       port-level or subset settings drop only the balancing algorithm
    {entry} {how}, so {lost} {verb} not inherited on {clusters}: {consequence}; only the
    load-balancing algorithm differs, no request fails because of it
ML1212 warning -       port-level settings for a port the service does not have
    portLevelSettings[{index}] is for port {port}, which is not a port of {service} (ports:
    {ports}){hint}: the entry never matches and the destination-level policy applies
ML1220 warning -       a zero that means default
    {field}: 0 cannot be expressed: it means "default" to istiod, so {envoy_field} on {clusters}
    is {value}: {meaning}
ML1221 warning IST0133 deprecated consecutiveErrors
    outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or
    consecutive5xxErrors instead: istiod does not compile consecutiveErrors at all, so
    {clusters} eject after Envoy's default 5 consecutive 5xx (consecutive_5xx unset)
ML1230 warning -       outlier detection that never ejects
    outlier detection on {cluster} can never eject an endpoint: it has {n} endpoints and
    max_ejection_percent {pct}% ({why}); a failing endpoint keeps receiving its share of
    requests and its 5xx/UF reach clients
ML1231 warning -       outlier detection that can eject all
    outlier detection on {cluster} can eject all {n} endpoints (max_ejection_percent {pct}%) and
    healthy_panic_threshold is {panic}% (minHealthPercent {mhp}): after {n} consecutive failures
    every request fails with 503 UH until base_ejection_time passes
ML1240 warning -       connection pool limit below the retry attempts
    circuit breaker {limit} on {cluster} is {value}, fewer than the {attempts} attempts one
    request may take ({retries}): a few concurrent requests already overflow it, and more
    when failures are retried (each retry is a new request through the same limits); the
    requests over the limit fail with 503 UO (upstream overflow)
ML1241 info    -       retries that multiply load
    retries to {cluster} are unbounded (max_retries 4294967295) while {limit} is {value}: a load
    note, not a configuration error: when the upstream fails, each request is sent up to
    {attempts} times ({retries}), so the requests in flight grow up to {attempts}-fold; a load
    of more than about {concurrent} concurrent requests then fills {limit} and new requests fail
    with 503 UO (upstream overflow)
ML1250 error   -       plaintext toward STRICT mTLS
    cluster {cluster} sends {what} to {endpoints}, whose PeerAuthentication is STRICT on port
    {port}: the server sidecar accepts only Istio mTLS there (no filter chain matches:
    server-side NR) and closes the connection: 503 UC/UF
ML1251 error   -       ISTIO_MUTUAL toward a plaintext server
    cluster {cluster} sends Istio mTLS ({why}) to the pods of {endpoints}, which {server}: the
    TLS handshake fails: 503 UF (upstream connection failure)
ML1252 warning -       credentialName on a sidecar DestinationRule
    tls.credentialName {credential} without workloadSelector is only read by gateways: sidecars
    send plaintext on {clusters} (mode {mode} is not applied)
ML1253 warning -       ISTIO_MUTUAL with other TLS fields
    tls mode ISTIO_MUTUAL ignores {fields}: istiod uses the workload's Istio certificate and
    root CA
ML1260 warning -       useClientProtocol with h2UpgradePolicy
    useClientProtocol: true makes h2UpgradePolicy: {policy} ineffective: {clusters} use the
    downstream protocol (use_downstream_protocol_config)
ML1261 warning -       h2 upgrade that does nothing
    h2UpgradePolicy: UPGRADE has no effect on {clusters}: {why}
ML1270 warning -       several DestinationRules for one host
    {count} DestinationRules for host {host} are merged for {where} ({names}): only the oldest
    trafficPolicy ({first}) applies, this one's trafficPolicy is ignored
ML1271 warning -       duplicate subset
    subset {subset} of host {host} is already defined by {first}: this definition is ignored
ML1280 warning -       server-first protocol on a sniffed port
    port {port} of {service} is not declared ({why}), so the sidecar sniffs its protocol, but it
    looks like {proto}, a server-first protocol: the client waits for the server's greeting
    while the sidecar waits for client bytes, and the connection hangs
ML1281 warning -       appProtocol overrides the port name
    appProtocol {app} overrides port name {name} on port {port} of {service}: {result}
ML1290 warning -       named targetPort that no container defines
    targetPort {target} of port {port} names no containerPort of the selected pods of
    {workloads} (their ports: {declared}): Kubernetes leaves those pods out of the Service's
    endpoints, so requests to port {port} are not sent to them (503 UH when no pod is left)
# AuthorizationPolicy, RequestAuthentication, EnvoyFilter (istioctl mirrors, then ours)
ML1160 warning IST0127 AuthorizationPolicy selects no workload
    No matching workloads for this resource with the following labels: {labels}
ML1161 error   IST0101 AuthorizationPolicy namespace not found
    Referenced {what} not found: {value}
ML1162 error   IST0149 JWT claim route without RequestAuthentication
    The virtual service uses the JWT claim based routing (key: {key}) but found no request
    authentication for the gateway ({gateway}) pod ({pod}). The request authentication must
    first be applied for the gateway pods to validate the JWT token and make the claims
    available for routing.
ML1171 warning IST0151 EnvoyFilter relative operation without priority
    This EnvoyFilter does not have a priority and has a relative patch operation set which can
    cause the EnvoyFilter not to be applied. Using the INSERT_FIRST of ADD option or setting the
    priority may help in ensuring the EnvoyFilter is applied correctly.
ML1172 error   IST0152 EnvoyFilter REPLACE on the wrong target
    The REPLACE operation is only valid for HTTP_FILTER and NETWORK_FILTER.
ML1173 error   IST0153 EnvoyFilter ADD ignored
    The ADD operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or HTTP_ROUTE.
ML1174 error   IST0154 EnvoyFilter REMOVE ignored
    The REMOVE operation will be ignored when applyTo is set to ROUTE_CONFIGURATION, or
    HTTP_ROUTE.
ML1175 warning IST0155 EnvoyFilter relative operation with proxyVersion
    This EnvoyFilter does not have a priority and has a relative patch operation (NSTERT_BEFORE/AFTER,
    REPLACE, MERGE, DELETE) and proxyVersion set which can cause the EnvoyFilter not to be
    applied during an upgrade. Using the INSERT_FIRST or ADD option or setting the priority may
    help in ensuring the EnvoyFilter is applied correctly.
ML1300 warning -       AuthorizationPolicy denies all traffic
    this policy denies every request to {workloads}: an ALLOW policy without rules matches
    nothing, and a DENY rule {{}} matches everything
ML1301 warning -       ALLOW rules dropped on a TCP port
    every connection to {workloads} is denied: each ALLOW rule uses HTTP-only fields (methods,
    paths, hosts, requestPrincipals, headers, JWT claims), which istiod drops on TCP chains
ML1302 warning -       identity rule without mTLS
    rules[{rule}] needs the peer's mTLS identity, but PeerAuthentication disables mTLS for
    {workloads}: the rule never matches
ML1303 warning -       EnvoyFilter patch matches nothing
    configPatches[{index}] changes nothing on any sidecar this EnvoyFilter selects (its match
    finds no object)
ML1304 warning -       EnvoyFilter BOOTSTRAP patch not applied
    configPatches[{index}] patches the bootstrap, which neither istiod nor pilot-agent applies
    since Istio 1.21 (bootstrap discovery was removed): the bootstrap is unchanged
ML1305 error   -       ECDS extension config of a type the filter refuses
    configPatches[{index}] provides extension config {name} as {type}, but {where} accepts only
    {accepted}: Envoy rejects the ECDS update and the filter gets no config
"""


def _parse_catalogue(text: str) -> dict[str, Code]:
    """Read :data:`_CATALOGUE` into codes (an entry's template lines are joined with spaces)."""
    heads: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("    "):
            heads[-1].append(line.strip())
        elif line.strip() and not line.startswith("#"):
            code, level, istio, title = line.split(None, 3)
            heads.append([code, level, "" if istio == "-" else istio, title])
    return {
        code: Code(code=code, level=Level(level), template=" ".join(template), istio=istio,
                   title=title)
        for code, level, istio, title, *template in heads
    }


#: The catalogue: code → :class:`Code`.
CODES: dict[str, Code] = _parse_catalogue(_CATALOGUE)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about the input, always tied to a place.

    Build it with :func:`report` so the span is taken from the resource and field path.
    """

    code: str
    span: SourceSpan | None
    message: str
    resource: ResourceRef | None = None
    path: FieldPath = ()
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every message, however built, shows what a terminal would hide (see :func:`visible`).
        object.__setattr__(self, "message", visible(self.message))

    @property
    def level(self) -> Level:
        return CODES[self.code].level

    def format(self) -> str:
        where = f"{self.span}: " if self.span else ""
        tail = f" ({self.resource})" if self.resource else ""
        return f"{where}{self.level.value}: {self.message} [{self.code}]{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "level": self.level.value,
            "message": self.message,
            "resource": str(self.resource) if self.resource else None,
            "file": self.span.path if self.span else None,
            "line": self.span.line if self.span else None,
            "column": self.span.col if self.span else None,
            "field": render_path(self.path) if self.path else None,
        }


#: Letters of other scripts that look like Latin ones (the common cases of Unicode's
#: confusables.txt); characters whose compatibility form (NFKC) is ASCII are found as well.
_LOOKALIKES = dict(zip(
    "аеіјкорсухѕһԁԛԝӏүАВЕЅІЈКМНОРСТХУҮ" "αεικνορυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧı",
    "aeijkopcyxshdqwlyABESIJKMHOPCTXYY" "aeikvopuxABEZHIKMNOPTYXi",
    strict=True))
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def _looks_like(ch: str) -> str | None:
    """What a visible non-ASCII character passes for, or None."""
    if ord(ch) < 0x80:
        return None
    plain = _LOOKALIKES.get(ch) or unicodedata.normalize("NFKC", ch)
    return plain if plain != ch and plain.isascii() and plain.isalnum() else None


def _about(ch: str) -> str | None:
    """``U+0435 CYRILLIC SMALL LETTER IE, which looks like 'e'`` (or "is invisible")."""
    if ch.isprintable():
        plain = _looks_like(ch)
        what = f"looks like {plain!r}" if plain else None
    elif ord(ch) >= 0x80:
        what = "looks like a space" if unicodedata.category(ch) == "Zs" else "is invisible"
    else:
        what = None  # an ASCII control character: its escape says enough
    if what is None:
        return None
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}, which {what}"


def visible(text: str) -> str:
    """Show what a terminal would hide or disguise: invisible characters are escaped (Go/Python
    style, ``\\u200b``), and a note names them and any letter that passes for a Latin one.

    The note is added once (calling ``visible`` again changes nothing).

    Example:
        >>> print(visible("subset name is invalid: v1\u200b"))
        subset name is invalid: v1\\u200b (contains U+200B ZERO WIDTH SPACE, which is invisible)
        >>> print(visible("domain name r\u0435views"))
        domain name r\u0435views (contains U+0435 CYRILLIC SMALL LETTER IE, which looks like 'e')
    """
    if text.isascii() and text.isprintable():
        return text
    notes = [n for n in dict.fromkeys(_about(ch) for ch in text)
             if n is not None and n.split(",")[0] not in text]
    shown = "".join(ch if ch.isprintable() else _escape(ch) for ch in text)
    if not notes:
        return shown
    more = f", and {len(notes) - 3} more" if len(notes) > 3 else ""
    return f"{shown} (contains {', and '.join(notes[:3])}{more})"


def report(
    code: str,
    *,
    doc: RawDocument | None = None,
    path: FieldPath = (),
    resource: ResourceRef | None = None,
    span: SourceSpan | None = None,
    **args: Any,
) -> Diagnostic:
    """Build a diagnostic from the catalogue; the span comes from ``doc`` and ``path``."""
    entry = CODES[code]
    if span is None and doc is not None:
        span = doc.locate(path)
    return Diagnostic(code, span, entry.template.format(**args), resource, path, dict(args))


def sort_key(d: Diagnostic) -> tuple[Any, ...]:
    s = d.span
    return (s.path if s else "", s.line if s else 0, s.col if s else 0, d.code, d.message)
