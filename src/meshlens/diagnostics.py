"""Diagnostics: the one code catalogue and the one text format.

Layer: L1. Imports: source.

Every problem meshlens finds in user input is a :class:`Diagnostic` with a stable code from
:data:`CODES`. The text format is mypy's and the issue's::

    manifests/dr.yaml:14:7: error: unknown field "maxConection" [ML0102] (DestinationRule ns/name)

Codes are never reused. ``istio`` names the IST code of the istioctl analyzer with the same check.
"""

from __future__ import annotations

import enum
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


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    level: Level
    template: str
    istio: str = ""
    title: str = ""


def _c(code: str, level: Level, template: str, istio: str = "", title: str = "") -> Code:
    return Code(code, level, template, istio, title)


E, W, I = Level.ERROR, Level.WARNING, Level.INFO

#: The catalogue. Messages are templates filled with ``str.format`` keyword arguments.
CODES: dict[str, Code] = {
    c.code: c
    for c in (
        # ML00xx: reading input
        _c("ML0001", E, "{message}", title="file cannot be parsed"),
        _c("ML0002", E, "cannot read {path}: {reason}", title="file cannot be read"),
        _c("ML0003", I, "skipped {kind} {name}: kind not used by meshlens", title="kind skipped"),
        _c("ML0004", E, "document is not a Kubernetes object: {reason}", title="not an object"),
        _c("ML0005", E, "input limit exceeded: {message}", title="input too large"),
        _c("ML0006", W, "duplicate key {key!r}: the last value wins", title="duplicate YAML key"),
        # ML01xx: structure of a resource (as the API server's schema check)
        _c("ML0101", E, "{kind} {name}: missing required field {field}", title="missing field"),
        _c("ML0102", E, "unknown field {field!r}", title="unknown field"),
        _c("ML0103", E, "{field}: expected {expected}, got {got}", title="wrong type"),
        _c("ML0104", E, "{field}: unsupported value {value!r}; supported values: {allowed}",
           title="bad enum value"),
        _c("ML0105", E, "duplicate {kind} {ns}/{name}: the first one (at {first}) is kept",
           title="duplicate resource"),
        _c("ML0106", E, "{field}: {message}", title="invalid value"),
        _c("ML0107", E, "{field}: only one of {fields} may be set", title="oneof violated"),
        # ML02xx: the proxy
        _c("ML0201", E, "proxy {proxy!r} not found: {reason}", title="proxy not found"),
        # ML03xx: model building
        _c("ML0301", W, "Service {name}: targetPort {port!r} is not a port of pod {pod}; "
           "the endpoint is left out", title="named targetPort unresolved"),
        _c("ML0302", I, "{message}", title="model note"),
        # ML04xx: istiod's validating webhook (meshlens.resources.webhook) and YAML hazards. The
        # message after the field is the webhook's own wording; an error leaves the resource out,
        # a warning (what kubectl prints as "Warning:") keeps it.
        _c("ML0401", E, "{field}: {message}", title="rejected by istiod's validating webhook"),
        _c("ML0402", W, "{field}: {message}", title="istiod's validating webhook warns"),
        _c("ML0403", W, "{field}: {explanation}",
           title="a number or boolean read the YAML 1.1 way (as kubectl reads it)"),
        _c("ML0404", W, "{message} (rejected at admission; kept because admission is off)",
           title="admission error with admission off"),
        # ML1xxx: meshlens analyze (analyzers in meshlens.analyze). ML10xx-ML11xx mirror istioctl
        # analyze: same check, same message text, same level, with its IST code. ML12xx are
        # meshlens's own checks; most are proven from the compiled xDS.
        _c("ML1001", E, "Internal error: {error}", istio="IST0001", title="analyzer failed"),
        _c("ML1002", W, "Deprecated: {what}", istio="IST0002", title="deprecated field"),
        _c("ML1101", E, "Referenced {what} not found: {value}", istio="IST0101",
           title="VirtualService destination host not found"),
        _c("ML1102", E, "This VirtualService routes to a service {host} that exposes multiple ports "
           "{ports}. Specifying a port in the destination is required to disambiguate.",
           istio="IST0112", title="destination port required"),
        _c("ML1103", E, "Referenced {what} not found: {value}", istio="IST0101",
           title="VirtualService subset not defined by a DestinationRule"),
        _c("ML1104", W, "Subset in virtual service {subset_vs} has no effect on ingress gateway {vs} "
           "requests", istio="IST0140", title="subset ignored by gateway route"),
        _c("ML1105", E, "The VirtualServices {names} associated with mesh gateway define the same "
           "host {host} which can lead to undefined behavior. This can be fixed by merging the "
           "conflicting VirtualServices into a single resource.", istio="IST0109",
           title="several VirtualServices for one host"),
        _c("ML1106", W, "VirtualService rule {rule} not used ({reason}).", istio="IST0130",
           title="unreachable route rule"),
        _c("ML1107", I, "VirtualService rule {rule} match {match} is not used (duplicate/overlapping "
           "match in rule {dup}).", istio="IST0131", title="ineffective match"),
        _c("ML1108", W, "Gateway reference in VirtualService {vs} is to an implementation-generated "
           "internal Gateway: {gateway}.", istio="IST0165", title="internal gateway referenced"),
        _c("ML1111", W, "DestinationRule {name} in namespace {ns} has TLS mode set to {mode} but no "
           "caCertificates are set to validate server identity for host: {host}", istio="IST0128",
           title="server certificate not verified"),
        _c("ML1112", W, "DestinationRule {name} in namespace {ns} has TLS mode set to {mode} but no "
           "caCertificates are set to validate server identity for host: {host} at port {port}",
           istio="IST0129", title="server certificate not verified (port level)"),
        _c("ML1113", W, "The host {host} defined in the DestinationRule does not match any services "
           "in the mesh.", istio="IST0174", title="DestinationRule host unknown"),
        _c("ML1114", E, "The Subset {subset} defined in the DestinationRule does not select any "
           "pods. Which may lead to 503 UH (NoHealthyUpstream).", istio="IST0173",
           title="subset selects no pod"),
        _c("ML1121", E, "Referenced {what} not found: {value}", istio="IST0101",
           title="Sidecar selector matches no pod"),
        _c("ML1122", E, "The Sidecars {names} in namespace {ns} select the same workload pod {pod}, "
           "which can lead to undefined behavior.", istio="IST0110",
           title="Sidecars select the same pod"),
        _c("ML1123", E, "The Sidecars {names} in namespace {ns} have no workload selector, which can "
           "lead to undefined behavior.", istio="IST0111", title="several namespace-wide Sidecars"),
        _c("ML1124", W, "The policy has no impact: {reason}.", istio="IST0167",
           title="policy without effect"),
        _c("ML1131", I, "Port name {name} (port: {port}, targetPort: {target}) doesn't follow the "
           "naming convention of Istio port.", istio="IST0118", title="port protocol not declared"),
        _c("ML1132", W, "Port name for ExternalName service is invalid. Proxy may prevent tcp named "
           "ports and unmatched traffic for ports serving TCP protocol from being forwarded "
           "correctly", istio="IST0150", title="ExternalName port name"),
        _c("ML1133", W, "This deployment {name} is associated with multiple services using port "
           "{port} but different protocols: {services}", istio="IST0116",
           title="one port, several protocols"),
        _c("ML1134", W, "This deployment {name} is associated with multiple services {services} "
           "using targetPort {target} but different ports: {ports}.", istio="IST0137",
           title="one targetPort, several ports"),
        _c("ML1135", W, "User ID (UID) 1337 is reserved for the sidecar proxy.", istio="IST0144",
           title="application runs as UID 1337"),
        _c("ML1141", W, "ServiceEntry addresses are required for this protocol.", istio="IST0134",
           title="ServiceEntry needs addresses"),
        _c("ML1142", W, "Multiple ServiceEntries ({names}) define the same host {host} and port "
           "{port} with conflicting protocols ({protocols}).", istio="IST0177",
           title="ServiceEntry protocol conflict"),
        _c("ML1151", I, "The namespace is not enabled for Istio injection. Run 'kubectl label "
           "namespace {ns} istio-injection=enabled' to enable it, or 'kubectl label namespace {ns} "
           "istio-injection=disabled' to explicitly mark it as not needing injection.",
           istio="IST0102", title="namespace not injected"),
        _c("ML1152", W, "The pod {pod} is missing the Istio proxy. This can often be resolved by "
           "restarting or redeploying the workload.", istio="IST0103", title="pod without sidecar"),
        _c("ML1153", W, "The namespace has more than one type of injection labels {labels}, which "
           "may lead to undefined behavior. Make sure only one injection label exists.",
           istio="IST0123", title="several injection labels"),
        # gateways (istioctl's gateway analyzers and virtualservice.GatewayAnalyzer)
        _c("ML1161", E, "Referenced {what} not found: {value}", istio="IST0101",
           title="gateway reference not found"),
        _c("ML1162", W, "The gateway is listening on a target port (port {port}) that is not "
           "defined in the Service associated with its workload instances (Pod selector "
           "{selector}). If you need to access the gateway port through the gateway Service, it "
           "will not be available.", istio="IST0162", title="gateway port not on its Service"),
        _c("ML1163", E, "The credential referenced by the Gateway {name} in namespace {ns} is "
           "invalid, which can cause the traffic not to work as expected.", istio="IST0161",
           title="invalid gateway credential"),
        _c("ML1164", E, "Conflict with gateways {gateways} (workload selector {selector}, port "
           "{port}, hosts {hosts}).", istio="IST0145", title="conflicting gateways"),
        _c("ML1165", W, "Duplicate certificate in multiple gateways {gateways} may cause 404s if "
           "clients re-use HTTP2 connections.", istio="IST0138",
           title="certificate shared by gateways"),
        _c("ML1166", W, "one or more host {hosts} defined in VirtualService {vs} not found in "
           "Gateway {gateway}.", istio="IST0132", title="VirtualService host not in its Gateway"),
        _c("ML1167", W, "{where}: condition {type} is {status} ({reason}): {detail}",
           title="Gateway API status condition not healthy"),
        _c("ML1201", E, "{dest} has no cluster {cluster} on {proxies}: {reason}; Envoy answers "
           "503 NC (NoClusterFound)", title="route to a cluster the proxy does not have"),
        _c("ML1202", E, "{clusters} empty: {reason}; a request routed to subset {subset} fails "
           "with 503 UH (no healthy upstream)",
           title="subset cluster without endpoints"),
        _c("ML1203", W, "{clusters} empty: {reason}; a request to {host}:{port} fails with 503 UH "
           "(no healthy upstream)",
           title="service without endpoints"),
        _c("ML1204", W, "subset {subset} is not used by any VirtualService route: its "
           "trafficPolicy ({blocks}) never applies; traffic to {host} goes to the service's "
           "default cluster", title="unused subset with a traffic policy"),
        _c("ML1205", I, "subset {subset} is not used by any VirtualService route: no traffic "
           "reaches its cluster(s)", title="unused subset"),
        _c("ML1210", W, "{entry} for port {port} {how}, so {lost} {verb} not inherited on "
           "{clusters}: {consequence}",
           title="port-level settings drop inherited settings"),
        _c("ML1211", W, "{entry} {how}, so {lost} {verb} not inherited on {clusters}: "
           "{consequence}",
           title="subset settings drop inherited settings"),
        _c("ML1212", W, "portLevelSettings[{index}] is for port {port}, which is not a port of "
           "{service} (ports: {ports}){hint}: the entry never matches and the destination-level "
           "policy applies", title="port-level settings for a port the service does not have"),
        _c("ML1220", W, "{field}: 0 cannot be expressed: it means \"default\" to istiod, so "
           "{envoy_field} on {clusters} is {value}: {meaning}",
           title="a zero that means default"),
        _c("ML1221", W, "outlier detection consecutive errors is deprecated, use "
           "consecutiveGatewayErrors or consecutive5xxErrors instead: istiod does not compile "
           "consecutiveErrors at all, so {clusters} eject after Envoy's default 5 consecutive 5xx "
           "(consecutive_5xx unset)", istio="IST0133", title="deprecated consecutiveErrors"),
        _c("ML1230", W, "outlier detection on {cluster} can never eject an endpoint: it has {n} "
           "endpoints and max_ejection_percent {pct}% ({why}); a failing endpoint keeps "
           "receiving its share of requests and its 5xx/UF reach clients",
           title="outlier detection that never ejects"),
        _c("ML1231", W, "outlier detection on {cluster} can eject all {n} endpoints "
           "(max_ejection_percent {pct}%) and healthy_panic_threshold is {panic}% "
           "(minHealthPercent {mhp}): after {n} consecutive failures every request fails with "
           "503 UH until base_ejection_time passes", title="outlier detection that can eject all"),
        _c("ML1240", W, "circuit breaker {limit} on {cluster} is {value}, fewer than the {attempts} "
           "attempts one request may take ({retries}): a single failing request and its retries "
           "fill it, and concurrent requests fail with 503 UO (upstream overflow)",
           title="connection pool limit below the retry attempts"),
        _c("ML1241", W, "retries to {cluster} are unbounded (max_retries 4294967295) while "
           "{limit} is {value}: when the upstream fails, each request is sent up to {attempts} "
           "times ({retries}) and retries alone can fill {limit}, so new requests fail with "
           "503 UO (upstream overflow)", title="retries that multiply load"),
        _c("ML1250", E, "cluster {cluster} sends {what} to {endpoints}, whose PeerAuthentication "
           "is STRICT on port {port}: the server sidecar accepts only Istio mTLS there (no filter "
           "chain matches: server-side NR) and closes the connection: 503 UC/UF",
           title="plaintext toward STRICT mTLS"),
        _c("ML1251", E, "cluster {cluster} sends Istio mTLS ({why}) to the pods of {endpoints}, "
           "which {server}: the TLS handshake fails: 503 UF (upstream connection failure)",
           title="ISTIO_MUTUAL toward a plaintext server"),
        _c("ML1252", W, "tls.credentialName {credential} without workloadSelector is only read by "
           "gateways: sidecars send plaintext on {clusters} (mode {mode} is not applied)",
           title="credentialName on a sidecar DestinationRule"),
        _c("ML1253", W, "tls mode ISTIO_MUTUAL ignores {fields}: istiod uses the workload's Istio "
           "certificate and root CA", title="ISTIO_MUTUAL with other TLS fields"),
        _c("ML1260", W, "useClientProtocol: true makes h2UpgradePolicy: {policy} ineffective: "
           "{clusters} use the downstream protocol (use_downstream_protocol_config)",
           title="useClientProtocol with h2UpgradePolicy"),
        _c("ML1261", W, "h2UpgradePolicy: UPGRADE has no effect on {clusters}: {why}",
           title="h2 upgrade that does nothing"),
        _c("ML1270", W, "{count} DestinationRules for host {host} are merged for {where} ({names}): "
           "only the oldest trafficPolicy ({first}) applies, this one's trafficPolicy is ignored",
           title="several DestinationRules for one host"),
        _c("ML1271", W, "subset {subset} of host {host} is already defined by {first}: this "
           "definition is ignored", title="duplicate subset"),
        _c("ML1280", W, "port {port} of {service} is not declared ({why}), so the sidecar sniffs "
           "its protocol, but it looks like {proto}, a server-first protocol: the client waits "
           "for the server's greeting while the sidecar waits for client bytes, and the "
           "connection hangs", title="server-first protocol on a sniffed port"),
        _c("ML1281", W, "appProtocol {app} overrides port name {name} on port {port} of {service}: "
           "{result}", title="appProtocol overrides the port name"),
        _c("ML1290", W, "targetPort {target} of port {port} is not a containerPort of the selected "
           "pods of {workloads} (they declare {declared}): if nothing listens there, connections "
           "to the endpoints are refused: 503 UF (upstream connection failure)",
           title="targetPort not declared by the pods"),
    )
}


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
