"""Property tests over the loader, the model and the compiler: never an exception.

Three generators:

* :func:`meshes` builds VALID meshes that reach every compiler path: Services (every protocol
  prefix) backed by Deployments, DestinationRules with connection pools, outlier detection, every
  load balancer, every TLS mode, port-level settings and subsets, VirtualServices with http (match,
  weights, retries, faults, mirrors, rewrites, redirects, direct responses), tcp and tls routes,
  ServiceEntries of every resolution, a Sidecar and PeerAuthentications. They must load without a
  single error (so this is also a false-positive check of the schema and webhook checks), compile
  for the client, and the result must satisfy Envoy-level invariants.
* :func:`mutations` damages a valid manifest the way editors and templating do (lines dropped,
  repeated, swapped or re-indented, stray characters, aliases); the pipeline must answer with a
  result or diagnostics, and every load error must point at a line.
* arbitrary text and YAML values (see also tests/test_loader.py).

``make test`` runs the "default" profile (a few hundred examples, well under a minute);
``make test-long`` sets HYPOTHESIS_PROFILE=long for thousands.
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshlens.compiler.names import cluster_name, parse_cluster_name
from meshlens.emit import to_dict
from meshlens.errors import UsageError
from meshlens.pipeline import compile_for, load_string

# The same two profiles as tests/test_loader.py (hypothesis profiles are global); the example
# counts of this module's tests come from EXAMPLES below, per profile.
settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)

#: examples per test and profile (the README's evidence table quotes these)
EXAMPLES = {
    "default": {"valid": 300, "mutated": 300, "text": 400},
    "long": {"valid": 5000, "mutated": 5000, "text": 10000},
}[PROFILE]
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

NS = "mesh-prop"
U32 = 2**32 - 1

# --- building blocks ------------------------------------------------------------------------------

DURATIONS = st.sampled_from(["1ms", "10ms", "250ms", "1s", "5s", "30s", "1m", "1m30s", "2h"])
COUNTS = st.one_of(st.integers(0, 10), st.sampled_from([100, 1024, 2**31 - 1]))
PERCENT = st.integers(0, 100)
PROTOCOLS = ["http", "http2", "grpc", "grpc-web", "tcp", "tls", "https", "mongo", "redis", "mysql"]
PORTS = [80, 443, 3306, 5432, 6379, 8080, 9080, 27017]


def meta(name: str, ns: str = NS, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": ns, **extra}


def optional(draw: Any, strategy: Any) -> Any:
    return draw(strategy) if draw(st.booleans()) else None


def compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@st.composite
def connection_pool(draw: Any) -> dict[str, Any]:
    tcp = compact(
        {
            "maxConnections": optional(draw, COUNTS),
            "connectTimeout": optional(draw, DURATIONS),
            "maxConnectionDuration": optional(draw, DURATIONS),
            "idleTimeout": optional(draw, st.sampled_from(["0s", "1s", "1h"])),
            "tcpKeepalive": optional(
                draw,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "time": DURATIONS,
                        "interval": DURATIONS,
                        "probes": st.integers(0, 9),
                    },
                ),
            ),
        }
    )
    upgrade = draw(st.sampled_from(["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE", None]))
    http = compact(
        {
            "http1MaxPendingRequests": optional(draw, COUNTS),
            "http2MaxRequests": optional(draw, COUNTS),
            "maxRequestsPerConnection": optional(draw, COUNTS),
            "maxRetries": optional(draw, COUNTS),
            "idleTimeout": optional(draw, DURATIONS),
            "h2UpgradePolicy": upgrade,
            "useClientProtocol": None if upgrade == "UPGRADE" else optional(draw, st.booleans()),
            "maxConcurrentStreams": optional(draw, COUNTS),
            "http2KeepAlive": optional(
                draw, st.fixed_dictionaries({"interval": DURATIONS, "timeout": DURATIONS})
            ),
        }
    )
    pool = compact({"tcp": tcp or None, "http": http or None})
    return pool or {"tcp": {"maxConnections": 1}}


@st.composite
def outlier_detection(draw: Any) -> dict[str, Any]:
    od = compact(
        {
            "consecutive5xxErrors": optional(draw, st.one_of(st.integers(0, 10), st.just(U32))),
            "consecutiveGatewayErrors": optional(draw, st.integers(0, 10)),
            "interval": optional(draw, DURATIONS),
            "baseEjectionTime": optional(draw, DURATIONS),
            "maxEjectionPercent": optional(draw, PERCENT),
            "minHealthPercent": optional(draw, PERCENT),
        }
    )
    if draw(st.booleans()):
        od.update(
            splitExternalLocalOriginErrors=True,
            consecutiveLocalOriginFailures=draw(st.integers(0, 5)),
        )
    return od


@st.composite
def load_balancer(draw: Any, with_od: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(["simple", "hash", "locality", "warmup"]))
    if kind == "simple":
        return {
            "simple": draw(
                st.sampled_from(
                    [
                        "UNSPECIFIED",
                        "LEAST_CONN",
                        "RANDOM",
                        "PASSTHROUGH",
                        "ROUND_ROBIN",
                        "LEAST_REQUEST",
                    ]
                )
            )
        }
    if kind == "hash":
        key = draw(
            st.sampled_from(
                [
                    {"httpHeaderName": "x-user"},
                    {"useSourceIp": True},
                    {"httpQueryParameterName": "id"},
                    {"httpCookie": {"name": "session", "ttl": "0s"}},
                    {
                        "httpCookie": {
                            "name": "s",
                            "path": "/",
                            "ttl": "10s",
                            "attributes": [{"name": "SameSite", "value": "Strict"}],
                        }
                    },
                ]
            )
        )
        algo = draw(
            st.sampled_from(
                [{}, {"ringHash": {"minimumRingSize": 1024}}, {"maglev": {"tableSize": 65537}}]
            )
        )
        return {"consistentHash": {**key, **algo}}
    if kind == "locality":
        if with_od and draw(st.booleans()):
            return {
                "localityLbSetting": {
                    "enabled": True,
                    "failover": [{"from": "us-east", "to": "us-west"}],
                }
            }
        return {
            "localityLbSetting": {
                "distribute": [{"from": "us-east/*", "to": {"us-east/*": 80, "us-west/*": 20}}]
            }
        }
    return {
        "simple": "ROUND_ROBIN",
        "warmup": compact(
            {
                "duration": draw(DURATIONS),
                "minimumPercent": optional(draw, PERCENT),
                "aggression": optional(draw, st.sampled_from([0.5, 1, 2.5])),
            }
        ),
    }


TLS = st.sampled_from(
    [
        {"mode": "DISABLE"},
        {"mode": "ISTIO_MUTUAL"},
        {"mode": "ISTIO_MUTUAL", "sni": "custom.example.com", "subjectAltNames": ["spiffe://x/y"]},
        {"mode": "SIMPLE"},
        {"mode": "SIMPLE", "sni": "api.example.com", "caCertificates": "/etc/certs/ca.pem"},
        {"mode": "SIMPLE", "insecureSkipVerify": True},
        {"mode": "MUTUAL", "clientCertificate": "/c.pem", "privateKey": "/k.pem"},
        {"mode": "MUTUAL", "credentialName": "client-cert"},
    ]
)


@st.composite
def traffic_policy(draw: Any, ports: list[int], *, top: bool = True) -> dict[str, Any]:
    od = optional(draw, outlier_detection())
    policy = compact(
        {
            "connectionPool": optional(draw, connection_pool()),
            "outlierDetection": od,
            "loadBalancer": optional(draw, load_balancer(od is not None)),
            "tls": optional(draw, TLS),
        }
    )
    if top and ports and draw(st.booleans()):
        entries = []
        for port in draw(
            st.lists(st.sampled_from(ports + [1234]), min_size=1, max_size=2, unique=True)
        ):
            entry = compact(
                {"connectionPool": optional(draw, connection_pool()), "tls": optional(draw, TLS)}
            ) or {"tls": {"mode": "DISABLE"}}
            entries.append({"port": {"number": port}, **entry})
        policy["portLevelSettings"] = entries
    if top and draw(st.integers(0, 5)) == 0:
        policy["proxyProtocol"] = {"version": draw(st.sampled_from(["V1", "V2"]))}
    return policy or {"tls": {"mode": "ISTIO_MUTUAL"}}


# --- whole objects --------------------------------------------------------------------------------


@st.composite
def services(draw: Any) -> list[tuple[str, list[tuple[str, int, int]], list[str]]]:
    """(name, [(port name, port, targetPort)], versions)."""
    out = []
    for name in draw(
        st.lists(
            st.sampled_from(["reviews", "ratings", "web", "db", "cache"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    ):
        numbers = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=2, unique=True))
        ports = []
        for number in numbers:
            proto = draw(st.sampled_from(PROTOCOLS + ["", "unnamed"]))
            pname = (
                (f"{proto}-{number}" if proto else f"port-{number}")
                if len(numbers) > 1 or proto != "unnamed"
                else ""
            )
            ports.append(
                (pname.replace("unnamed", "p"), number, draw(st.sampled_from([8080, 9000, number])))
            )
        versions = draw(
            st.lists(st.sampled_from(["v1", "v2", "v3"]), min_size=1, max_size=2, unique=True)
        )
        out.append((name, ports, versions))
    return out


def service_docs(
    name: str, ports: list[tuple[str, int, int]], versions: list[str]
) -> list[dict[str, Any]]:
    svc_ports = [compact({"name": p or None, "port": n, "targetPort": t}) for p, n, t in ports]
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(name),
            "spec": {"selector": {"app": name}, "ports": svc_ports},
        }
    ]
    for v in versions:
        labels = {"app": name, "version": v}
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta(f"{name}-{v}"),
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "image": "app:1",
                                    "ports": [
                                        {"containerPort": t} for t in {t for _, _, t in ports}
                                    ],
                                }
                            ]
                        },
                    },
                },
            }
        )
    return docs


@st.composite
def destination_rule(draw: Any, i: int, host: str, ports: list[int]) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": host}
    if draw(st.booleans()):
        spec["trafficPolicy"] = draw(traffic_policy(ports))
    subsets = []
    for v in draw(st.lists(st.sampled_from(["v1", "v2", "v3"]), max_size=3, unique=True)):
        subset: dict[str, Any] = {"name": v, "labels": {"version": v}}
        if draw(st.booleans()):
            subset["trafficPolicy"] = draw(traffic_policy(ports, top=draw(st.booleans())))
        subsets.append(subset)
    if subsets:
        spec["subsets"] = subsets
    if draw(st.integers(0, 4)) == 0:
        spec["exportTo"] = draw(st.sampled_from([["."], ["*"], [NS, "istio-system"]]))
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": meta(f"dr-{i}"),
        "spec": spec,
    }


@st.composite
def http_route(draw: Any, hosts: list[str], ports: list[int]) -> dict[str, Any]:
    route: dict[str, Any] = {}
    matches = draw(
        st.lists(
            st.sampled_from(
                [
                    {"uri": {"prefix": "/api"}},
                    {"uri": {"exact": "/health"}},
                    {"uri": {"regex": "^/v[0-9]+/.*"}},
                    {"headers": {"end-user": {"exact": "jason"}}},
                    {"headers": {"x-canary": {"regex": "true|yes"}}},
                    {"method": {"exact": "GET"}},
                    {"queryParams": {"debug": {"exact": "1"}}},
                    {"withoutHeaders": {"x-skip": {"exact": "1"}}},
                    {"port": draw(st.sampled_from(ports))},
                    {"ignoreUriCase": True, "uri": {"prefix": "/Users"}},
                ]
            ),
            max_size=2,
        )
    )
    if matches:
        route["match"] = matches
    action = draw(st.sampled_from(["route", "route", "route", "redirect", "direct"]))
    if action == "redirect":
        route["redirect"] = draw(
            st.sampled_from(
                [
                    {"uri": "/new"},
                    {"authority": "other.example.com"},
                    {"scheme": "https", "redirectCode": 308},
                ]
            )
        )
        if (
            any("uri" in m and "prefix" not in m["uri"] for m in matches)
            and "prefixRewrite" in route["redirect"]
        ):
            del route["redirect"]["prefixRewrite"]
        return route
    if action == "direct":
        route["directResponse"] = {
            "status": draw(st.sampled_from([200, 404, 503])),
            **draw(st.sampled_from([{}, {"body": {"string": "nope"}}])),
        }
        return route
    dests = []
    n = draw(st.integers(1, 3))
    weights = (
        [100]
        if n == 1
        else draw(st.sampled_from([[50, 50, 0][:n], [90, 10, 0][:n], [34, 33, 33][:n]]))
    )
    for w in weights[:n]:
        dest = compact(
            {
                "host": draw(st.sampled_from(hosts)),
                "subset": optional(draw, st.sampled_from(["v1", "v2", "v3"])),
                "port": optional(draw, st.builds(lambda p: {"number": p}, st.sampled_from(ports))),
            }
        )
        d: dict[str, Any] = {"destination": dest}
        if n > 1:
            d["weight"] = w
        if draw(st.integers(0, 4)) == 0:
            d["headers"] = {
                "request": {"set": {"x-dest": "1"}},
                "response": {"remove": ["x-internal"]},
            }
        dests.append(d)
    route["route"] = dests
    extras = draw(
        st.sets(
            st.sampled_from(
                ["timeout", "retries", "fault", "mirror", "rewrite", "headers", "cors", "noretry"]
            ),
            max_size=3,
        )
    )
    if "timeout" in extras:
        route["timeout"] = draw(DURATIONS)
    if "retries" in extras:
        route["retries"] = compact(
            {
                "attempts": draw(st.integers(1, 5)),
                "perTryTimeout": optional(draw, DURATIONS),
                "retryOn": optional(
                    draw, st.sampled_from(["5xx", "connect-failure,503", "gateway-error,reset"])
                ),
            }
        )
    elif "noretry" in extras:
        route["retries"] = {"attempts": 0}
    if "fault" in extras:
        route["fault"] = draw(
            st.sampled_from(
                [
                    {"delay": {"fixedDelay": "5s", "percentage": {"value": 10}}},
                    {"abort": {"httpStatus": 503, "percentage": {"value": 0.5}}},
                    {"abort": {"grpcStatus": "UNAVAILABLE"}},
                ]
            )
        )
    if "mirror" in extras:
        route["mirror"] = {"host": draw(st.sampled_from(hosts))}
        route["mirrorPercentage"] = {"value": draw(st.sampled_from([0, 5.5, 100]))}
    if "rewrite" in extras:
        route["rewrite"] = draw(
            st.sampled_from(
                [
                    {"uri": "/"},
                    {"authority": "internal.example.com"},
                    {"uriRegexRewrite": {"match": "^/old/(.*)$", "rewrite": "/new/\\1"}},
                ]
            )
        )
    if "headers" in extras:
        route["headers"] = {
            "request": {"add": {"x-trace": "%REQ(x-request-id)%"}},
            "response": {"set": {"cache-control": "no-store"}},
        }
    if "cors" in extras:
        route["corsPolicy"] = {
            "allowOrigins": [{"exact": "https://example.com"}],
            "allowMethods": ["GET"],
            "maxAge": "24h",
        }
    return route


@st.composite
def virtual_service(
    draw: Any, i: int, host: str, targets: list[str], ports: list[int], tcp_like: bool
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": [host]}
    kind = draw(st.sampled_from(["tcp", "tls"])) if tcp_like else "http"
    if kind == "http":
        spec["http"] = draw(st.lists(http_route([host, *targets], ports), min_size=1, max_size=3))
    elif kind == "tcp":
        spec["tcp"] = [
            {
                "match": [{"port": draw(st.sampled_from(ports))}],
                "route": [
                    {
                        "destination": {
                            "host": host,
                            "port": {"number": draw(st.sampled_from(ports))},
                        }
                    }
                ],
            }
        ]
    else:
        spec["tls"] = [
            {
                "match": [{"sniHosts": [host], "port": draw(st.sampled_from(ports))}],
                "route": [{"destination": {"host": host}}],
            }
        ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta(f"vs-{i}"),
        "spec": spec,
    }


@st.composite
def service_entry(draw: Any, i: int) -> tuple[dict[str, Any], str, list[int], bool]:
    resolution = draw(st.sampled_from(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"]))
    host = f"ext{i}.example.com" if resolution != "DYNAMIC_DNS" else f"*.dyn{i}.example.com"
    if resolution == "DYNAMIC_DNS":
        proto = draw(st.sampled_from(["HTTP", "TLS"]))
    else:
        proto = draw(st.sampled_from(["HTTP", "HTTPS", "TLS", "TCP", "GRPC", "HTTP2"]))
    number = 443 if proto in ("HTTPS", "TLS") else draw(st.sampled_from([80, 8080, 5432]))
    spec: dict[str, Any] = {
        "hosts": [host],
        "location": draw(st.sampled_from(["MESH_EXTERNAL", "MESH_INTERNAL"])),
        "resolution": resolution,
        "ports": [{"number": number, "name": f"p-{proto.lower()}", "protocol": proto}],
    }
    if resolution == "NONE":
        spec["addresses"] = [draw(st.sampled_from(["10.9.0.0/16", "192.168.7.7"]))]
    elif resolution == "STATIC":
        spec["endpoints"] = [
            {
                "address": f"10.8.{i}.{k}",
                "ports": {f"p-{proto.lower()}": 9443},
                **draw(
                    st.sampled_from(
                        [
                            {},
                            {"labels": {"version": "v1"}},
                            {"weight": 3},
                            {"locality": "us-east/zone-a"},
                        ]
                    )
                ),
            }
            for k in range(1, draw(st.integers(1, 3)) + 1)
        ]
    elif resolution in ("DNS", "DNS_ROUND_ROBIN") and draw(st.booleans()):
        spec["endpoints"] = [{"address": f"backend{i}.example.net"}]
    if draw(st.integers(0, 3)) == 0 and resolution != "DYNAMIC_DNS":
        spec["subjectAltNames"] = ["spiffe://example.com/ext"]
    doc = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": meta(f"se-{i}"),
        "spec": spec,
    }
    return doc, host, [number], proto in ("TCP", "TLS", "HTTPS")


SIDECARS = st.sampled_from(
    [
        {"egress": [{"hosts": ["./*", "istio-system/*"]}]},
        {"egress": [{"hosts": ["*/*"]}], "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
        {
            "egress": [
                {
                    "port": {"number": 9080, "protocol": "HTTP", "name": "egress-http"},
                    "hosts": ["./reviews.mesh-prop.svc.cluster.local"],
                },
                {"hosts": ["./*"]},
            ]
        },
        {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}},
        {
            "workloadSelector": {"labels": {"app": "client"}},
            "egress": [{"hosts": ["*/*.example.com"]}],
        },
    ]
)


@st.composite
def peer_authentications(draw: Any, names: list[str]) -> list[dict[str, Any]]:
    out = []
    mode = st.sampled_from(["UNSET", "DISABLE", "PERMISSIVE", "STRICT"])
    if draw(st.booleans()):
        out.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": meta("default"),
                "spec": {"mtls": {"mode": draw(mode)}},
            }
        )
    if draw(st.booleans()):
        spec = {
            "selector": {"matchLabels": {"app": draw(st.sampled_from(names))}},
            "mtls": {"mode": draw(mode)},
            "portLevelMtls": {str(draw(st.sampled_from([8080, 9000]))): {"mode": draw(mode)}},
        }
        out.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": meta("per-port"),
                "spec": spec,
            }
        )
    return out


@st.composite
def meshes(draw: Any) -> list[dict[str, Any]]:
    """A valid mesh: the client, Services, and Istio config over them."""
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"istio-injection": "enabled"}},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("client"),
            "spec": {
                "selector": {"matchLabels": {"app": "client"}},
                "template": {
                    "metadata": {"labels": {"app": "client"}},
                    "spec": {"containers": [{"name": "c", "image": "curl"}]},
                },
            },
        },
    ]
    targets: list[tuple[str, list[int], bool]] = []
    svcs = draw(services())
    for name, ports, versions in svcs:
        docs += service_docs(name, ports, versions)
        tcp_like = all(
            p.split("-")[0] in ("tcp", "mongo", "redis", "mysql", "tls", "https")
            for p, _, _ in ports
        )
        host = draw(st.sampled_from([name, f"{name}.{NS}.svc.cluster.local"]))
        targets.append((host, [n for _, n, _ in ports], tcp_like))
    for i in range(draw(st.integers(0, 2))):
        doc, host, ports_, tcp_like = draw(service_entry(i))
        docs.append(doc)
        targets.append((host, ports_, tcp_like))
    for i, (host, ports_, _) in enumerate(
        draw(st.lists(st.sampled_from(targets), max_size=3, unique_by=lambda t: t[0]))
    ):
        docs.append(draw(destination_rule(i, host, ports_)))
    hosts = [t[0] for t in targets if not t[0].startswith("*")]
    for i, (host, ports_, tcp_like) in enumerate(
        draw(st.lists(st.sampled_from(targets), max_size=2, unique_by=lambda t: t[0]))
    ):
        if host.startswith("*"):
            continue
        docs.append(draw(virtual_service(i, host, hosts, ports_, tcp_like)))
    if draw(st.booleans()):
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "Sidecar",
                "metadata": meta("default"),
                "spec": draw(SIDECARS),
            }
        )
    docs += draw(peer_authentications([name for name, _, _ in svcs]))
    return docs


# --- invariants -----------------------------------------------------------------------------------

LOAD_CODES = ("ML00", "ML01", "ML04")


def check_invariants(result: Any) -> None:
    names = [c.name for c in result.clusters]
    assert len(names) == len(set(names)), "two clusters share a name"
    cla_names = {cla.cluster_name for cla in result.endpoints}
    for c in result.clusters:
        key = parse_cluster_name(c.name)
        if key is not None:
            assert c.name.count("|") == 3
            assert cluster_name(key.direction, key.port, key.subset, key.host) == c.name
        if c.type == c.EDS:
            service = c.eds_cluster_config.service_name or c.name
            assert service in cla_names, f"EDS cluster {c.name} has no ClusterLoadAssignment"
        for t in c.circuit_breakers.thresholds:
            for field in ("max_connections", "max_pending_requests", "max_requests", "max_retries"):
                if t.HasField(field):
                    assert 0 <= getattr(t, field).value <= U32
        if c.HasField("outlier_detection") and c.outlier_detection.HasField("max_ejection_percent"):
            assert c.outlier_detection.max_ejection_percent.value <= 100
        if c.HasField("connect_timeout"):
            assert c.connect_timeout.seconds >= 0 and c.connect_timeout.nanos >= 0
    for cla in result.endpoints:
        for locality in cla.endpoints:
            for lb in locality.lb_endpoints:
                assert (
                    not lb.HasField("load_balancing_weight") or lb.load_balancing_weight.value >= 1
                )
    listeners = [x.name for x in result.listeners or []]
    assert len(listeners) == len(set(listeners)), "two listeners share a name"
    routes = [x.name for x in result.routes or []]
    assert len(routes) == len(set(routes)), "two route configurations share a name"
    json.dumps([to_dict(c) for c in result.clusters])  # serializable, as the CLI will print it


@given(meshes())
@settings(max_examples=EXAMPLES["valid"], deadline=None, suppress_health_check=HEALTH)
def test_valid_meshes_load_cleanly_and_compile_to_sound_envoy_config(
    docs: list[dict[str, Any]],
) -> None:
    text = yaml.safe_dump_all(docs, sort_keys=False)
    loaded = load_string(text, "valid.yaml")
    assert not loaded.errors, loaded.errors
    bad = [
        d.format()
        for d in loaded.diagnostics
        if d.level == "error" and d.code.startswith(LOAD_CODES)
    ]
    assert not bad, bad  # valid config: the schema and the webhook checks must accept it
    result = compile_for(loaded, f"deploy/client.{NS}")
    check_invariants(result)


# --- mutated manifests ----------------------------------------------------------------------------

SEED = yaml.safe_dump_all(
    [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NS, "labels": {"istio-injection": "enabled"}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("client"),
            "spec": {
                "selector": {"matchLabels": {"app": "client"}},
                "template": {
                    "metadata": {"labels": {"app": "client"}},
                    "spec": {"containers": [{"name": "c", "image": "curl"}]},
                },
            },
        },
        *service_docs("reviews", [("http", 9080, 9080), ("grpc-api", 8080, 8080)], ["v1", "v2"]),
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": meta("reviews"),
            "spec": {
                "host": "reviews",
                "trafficPolicy": {
                    "connectionPool": {"http": {"maxRetries": 3}},
                    "portLevelSettings": [
                        {"port": {"number": 9080}, "tls": {"mode": "ISTIO_MUTUAL"}}
                    ],
                },
                "subsets": [
                    {"name": "v1", "labels": {"version": "v1"}},
                    {
                        "name": "v2",
                        "labels": {"version": "v2"},
                        "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}},
                    },
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": meta("reviews"),
            "spec": {
                "hosts": ["reviews"],
                "http": [
                    {
                        "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                        "route": [{"destination": {"host": "reviews", "subset": "v2"}}],
                    },
                    {
                        "route": [
                            {"destination": {"host": "reviews", "subset": "v1"}, "weight": 90},
                            {"destination": {"host": "reviews", "subset": "v2"}, "weight": 10},
                        ],
                        "retries": {"attempts": 3, "perTryTimeout": "2s"},
                    },
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": meta("ext"),
            "spec": {
                "hosts": ["api.example.com"],
                "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                "resolution": "DNS",
            },
        },
    ],
    sort_keys=False,
)
SEED_LINES = SEED.splitlines()
DEBRIS = [
    "",
    ":",
    "- ",
    "---",
    "&a",
    "*a",
    "*zz",
    "<<: *a",
    "{",
    "}",
    "[",
    "]",
    "!!binary x",
    "!foo",
    "\t",
    "'",
    '"',
    "#",
    "|",
    ">",
    "?",
    "%YAML 1.1",
    "on",
    "0755",
    "~",
    "null",
    "1e999",
    "y",
    "\u00e9",
    "\u2028",
    "\ufeff",
    "&a [*a]",
    "x: &b [*b, *b]",
    "  " * 40 + "deep: 1",
]


@st.composite
def mutations(draw: Any) -> str:
    lines = list(SEED_LINES)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(
            st.sampled_from(["drop", "dup", "swap", "indent", "dedent", "debris", "splice", "char"])
        )
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "debris":
            lines.insert(i, draw(st.sampled_from(DEBRIS)))
        elif op == "splice":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.sampled_from(DEBRIS)) + lines[i][at:]
        else:
            at = draw(st.integers(0, max(0, len(lines[i]) - 1)))
            lines[i] = (
                lines[i][:at]
                + draw(st.characters(blacklist_categories=("Cs",)))
                + lines[i][at + 1 :]
            )
    return "\n".join(lines) + "\n"


@given(mutations())
@settings(max_examples=EXAMPLES["mutated"], deadline=None, suppress_health_check=HEALTH)
def test_mutated_manifests_give_a_result_or_diagnostics(text: str) -> None:
    loaded = load_string(text, "mutated.yaml")
    for e in loaded.errors:
        assert e.span is not None and e.span.line >= 1, str(e)
    for d in loaded.diagnostics:
        assert d.format()
    try:
        result = compile_for(loaded, f"deploy/client.{NS}")
    except UsageError:
        return  # the mutation removed the client itself: "proxy not found" is the answer
    check_invariants(result)


# --- arbitrary text -------------------------------------------------------------------------------

YAMLISH = st.text(
    alphabet=st.sampled_from(
        list("ab:- \n\t{}[],&*!|>'\"#%@`?0123456789.~<=") + ["\u00e9", "\x85"]
    ),
    max_size=300,
)


@given(st.one_of(YAMLISH, st.text(max_size=300)))
@settings(max_examples=EXAMPLES["text"], deadline=None, suppress_health_check=HEALTH)
def test_arbitrary_text_never_crashes_the_loader_or_decoder(text: str) -> None:
    loaded = load_string(text, "text.yaml")
    for e in loaded.errors:
        assert e.span is not None and e.span.line >= 1
        breaks = sum(text.count(c) for c in ("\n", "\r", "\x85", "\u2028", "\u2029"))
        assert e.span.line <= breaks + 2, str(e)
