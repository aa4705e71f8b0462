"""The fix catalogue: for each analyze code, the Envoy response flag it leads to and a fix.

Layer: L6. Imports: stdlib only.

The message templates live in :data:`meshlens.diagnostics.CODES`; this table adds what a finding
carries besides its message (the seed's flags: NC no cluster, UH no healthy upstream, UF upstream
connection failure, UC upstream connection termination, UO upstream overflow, NR no route).
Templates are filled with the same arguments as the message (plus any the analyzer adds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fix:
    flag: str
    template: str


FIXES: dict[str, Fix] = {
    "ML1001": Fix("", "This is a meshlens bug; please report it with the input that caused it."),
    "ML1002": Fix("", "Use the replacement field; the deprecated one may be ignored."),
    "ML1101": Fix("NC", "{hint}"),
    "ML1102": Fix("NC", "Add destination.port.number (one of {ports}) to this destination."),
    "ML1103": Fix("NC", "Define subset {subset} in the DestinationRule for {host} (in the "
                        "VirtualService's namespace, or use the host's full name), or route to an "
                        "existing subset."),
    "ML1104": Fix("", "Give this gateway route the subset too, or drop the subsets from the mesh "
                      "VirtualService if they are not needed."),
    "ML1105": Fix("", "Merge the VirtualServices for {host} into one: a sidecar applies only one "
                      "of them (the first in import order, usually the oldest: {winner}) and "
                      "drops the routes of the others."),
    "ML1106": Fix("", "Reorder the rules (a rule without match must be last) or remove this one."),
    "ML1107": Fix("", "Remove the duplicate match or make it more specific than the earlier one."),
    "ML1108": Fix("", "Reference the Kubernetes Gateway through an HTTPRoute, not its generated "
                      "Istio Gateway."),
    "ML1111": Fix("", "Set tls.caCertificates (or credentialName with a workloadSelector) so the "
                      "server certificate is verified."),
    "ML1112": Fix("", "Set caCertificates in portLevelSettings tls (port {port})."),
    "ML1113": Fix("", "Fix spec.host: it must name a Service (NAME.NAMESPACE.svc.cluster.local) or "
                      "a ServiceEntry host."),
    "ML1114": Fix("UH", "Make the subset labels match the pod labels of the service's workloads."),
    "ML1121": Fix("", "Fix workloadSelector.labels so they match pods in namespace {ns}."),
    "ML1122": Fix("", "Make the workload selectors disjoint: one Sidecar per pod."),
    "ML1123": Fix("", "Keep a single Sidecar without workloadSelector in namespace {ns}."),
    "ML1124": Fix("", "Remove the policy, or move the workload out of ambient mode."),
    "ML1131": Fix("", "Name the port <protocol>[-suffix] (http, http2, grpc, tcp, tls, ...) or set "
                      "appProtocol, so the sidecar does not have to sniff the protocol."),
    "ML1132": Fix("", "Name the port with a protocol prefix other than plain tcp (e.g. tcp-db, "
                      "http, tls)."),
    "ML1133": Fix("", "Use one protocol per port number across the services selecting {name}."),
    "ML1134": Fix("", "Map targetPort {target} from a single service port."),
    "ML1135": Fix("", "Run the application with another UID; 1337 is the sidecar's and its "
                      "traffic bypasses the sidecar."),
    "ML1141": Fix("", "Add spec.addresses (or enable DNS auto-allocation): a TCP ServiceEntry "
                      "without an address shares the 0.0.0.0:PORT listener with every other."),
    "ML1142": Fix("", "Use the same protocol for {host}:{port} in every ServiceEntry."),
    "ML1151": Fix("", "kubectl label namespace {ns} istio-injection=enabled"),
    "ML1181": Fix("", "{hint}"),
    "ML1182": Fix("", "Add port {port} (or a port whose targetPort is {port}) to the gateway's "
                      "Service, or listen on a port the Service exposes."),
    "ML1183": Fix("", "Fix Secret {ns}/{secret}: it needs tls.crt and tls.key (or cert and key) "
                      "with a valid, unexpired PEM certificate; Envoy rejects TLS on this server "
                      "until then."),
    "ML1184": Fix("", "Give the servers distinct hosts (or binds), or merge them into one Gateway: "
                      "for a host on one port and workload only the first server takes effect."),
    "ML1185": Fix("", "Use one Gateway (one server per host) for the certificate, or a distinct "
                      "certificate per Gateway."),
    "ML1187": Fix("", "See `meshlens status`: fix what the reason names (a parentRef, a listener's "
                      "allowedRoutes or hostname, a backendRef or its ReferenceGrant, a certificate)."),
    "ML1186": Fix("", "Add the host to a server of {gateway}, or change the VirtualService "
                        "hosts: requests for these hosts get 404 NR at the gateway."),
    "ML1152": Fix("", "Restart the pod so the injector adds istio-proxy."),
    "ML1153": Fix("", "Keep only one of {labels}."),
    "ML1201": Fix("NC", "{fix}"),
    "ML1202": Fix("UH", "{fix}"),
    "ML1203": Fix("UH", "{fix}"),
    "ML1204": Fix("", "Route to subset {subset} from a VirtualService, or move its trafficPolicy "
                      "to the destination level."),
    "ML1205": Fix("", "Route to subset {subset} from a VirtualService, or remove it."),
    "ML1210": Fix("", "Repeat {lost} in {target} (a port-level entry inherits nothing from the "
                      "level above), or remove the port-level {block} if it is not needed."),
    "ML1211": Fix("", "Repeat {lost} in {target}: a subset block replaces the inherited block "
                      "as a whole (no field-level merge)."),
    "ML1212": Fix("", "Set portLevelSettings[{index}].port.number to the Service port"
                      "{target_hint}, "
                      "not the targetPort."),
    "ML1220": Fix("", "{fix}"),
    "ML1221": Fix("", "Replace consecutiveErrors with consecutive5xxErrors (or "
                      "consecutiveGatewayErrors)."),
    "ML1230": Fix("", "Raise maxEjectionPercent to at least {needed}% (one endpoint of {n}), or "
                      "remove outlierDetection if ejection is not wanted."),
    "ML1231": Fix("UH", "Lower maxEjectionPercent below 100%, or set minHealthPercent (e.g. 50) so "
                        "Envoy routes to all endpoints in panic instead of failing."),
    "ML1240": Fix("UO", "Raise {field} to at least {attempts} (and to the concurrency you expect), "
                        "or lower retries.attempts on the routes to this service."),
    "ML1241": Fix("UO", "If the service must absorb failures at that concurrency, set "
                        "connectionPool.http.maxRetries to a fraction of {field} (or use "
                        "trafficPolicy.retryBudget), or lower retries.attempts."),
    "ML1250": Fix("UC", "{fix}"),
    "ML1251": Fix("UF", "{fix}"),
    "ML1252": Fix("UC", "Add a workloadSelector to the DestinationRule, or use caCertificates/"
                        "clientCertificate file paths mounted into the sidecar."),
    "ML1253": Fix("", "Remove {fields} from the ISTIO_MUTUAL settings, or use mode MUTUAL with "
                      "your own certificates."),
    "ML1260": Fix("", "Remove h2UpgradePolicy, or remove useClientProtocol if the upgrade is "
                      "wanted."),
    "ML1261": Fix("", "{fix}"),
    "ML1270": Fix("", "Merge the trafficPolicy of {names} into {first} (the oldest); DRs for one "
                      "host merge their subsets only."),
    "ML1271": Fix("", "Rename or remove the duplicate subset {subset}."),
    "ML1280": Fix("", "Name the port tcp-{proto_name} (or set appProtocol: tcp) so it is declared "
                      "TCP and not sniffed."),
    "ML1281": Fix("", "Remove appProtocol or set it to the protocol the port speaks (http, http2, "
                      "grpc, tcp, tls, ...)."),
    "ML1290": Fix("UH", "Name the container port {target} (ports[].name) in the pod template, "
                        "or give the targetPort as a number."),
    "ML1213": Fix("", "Repeat loadBalancer in {target} if the algorithm matters."),
    "ML1206": Fix("", "Nothing breaks for requests to {host}'s own ports. Giving the "
                      "destination a port.number also points this port-80 copy at an existing "
                      "cluster."),
    "ML1160": Fix("", "Fix the selector so it matches the labels of a pod in the mesh, or delete "
                      "the policy."),
    "ML1161": Fix("", "Create namespace {ns}, or fix the name in the policy's sources."),
    "ML1171": Fix("", "{where}: set spec.priority, or use INSERT_FIRST/ADD."),
    "ML1172": Fix("", "{where}: use REPLACE only with applyTo HTTP_FILTER or NETWORK_FILTER."),
    "ML1173": Fix("", "{where}: use VIRTUAL_HOST with ADD, or MERGE into the route configuration."),
    "ML1174": Fix("", "{where}: remove routes with a VIRTUAL_HOST patch instead."),
    "ML1175": Fix("", "{where}: set spec.priority, or use INSERT_FIRST/ADD."),
    "ML1300": Fix("", "Give the ALLOW policy the rules that should be allowed (or delete it); "
                      "scope a DENY rule with from/to/when."),
    "ML1301": Fix("", "Add a rule for the TCP port (ports, principals, namespaces, ipBlocks), or "
                      "select only HTTP workloads."),
    "ML1302": Fix("", "Enable mTLS (PeerAuthentication PERMISSIVE or STRICT) for the workload, "
                      "or match on ipBlocks instead of identities."),
    "ML1303": Fix("", "Fix the match (context, listener portNumber = target port on inbound, "
                      "filter names, cluster service/port) or remove the patch."),
    "ML1304": Fix("", "Set the value through the pod's ProxyConfig (proxy.istio.io/config) or a "
                      "custom bootstrap template, and remove the patch."),
    "ML1305": Fix("", "Give the extension config a typed_config of a type the filter lists in "
                      "config_discovery.type_urls, or add its type there."),
    "ML1162": Fix("", "Apply a RequestAuthentication selecting pod {pod} (in istio-system or its "
                      "namespace) so the gateway validates the JWT and sets the claims."),
}
