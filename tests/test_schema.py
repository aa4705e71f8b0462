"""Tests for meshlens.resources.schema: Istio CRD checks of a resource's ``spec``.

Four groups:

1. a full-featured valid spec per kind passes;
2. targeted cases for every problem class (ML0101-ML0107), the CEL rules and the Go duration
   parser, plus robustness (any YAML value, deep nesting, the problem cap);
3. the DSL against the CRD, node by node (fields, types, enums, bounds, oneOf groups, CEL texts);
4. CONFORMANCE: hypothesis generates specs from Istio's CRD file (valid ones, and mutated ones)
   and meshlens's verdict must equal ``jsonschema``'s on the CRD's own ``openAPIV3Schema``, read
   with Kubernetes semantics (unknown fields rejected, non-nullable nulls pruned, list-map keys
   unique, int32/byte formats). CEL rules are not JSON Schema, so that comparison runs with
   ``cel=False``; group 2 tests them.

Hypothesis settings come from the profiles registered below (``schema-default``, and
``schema-long`` when HYPOTHESIS_PROFILE=long), so this module never changes the global profile.
"""

from __future__ import annotations

import base64
import copy
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from meshlens.resources import schema
from meshlens.resources.schema import (
    KNOWN_KINDS,
    MAX_PROBLEMS,
    SPEC_REQUIRED,
    SPECS,
    Problem,
    parse_go_duration,
    render_field,
    validate_spec,
)

CRD_FILE = Path(__file__).parent / "conformance" / "crds" / "istio-crds.yaml"
KINDS = sorted(KNOWN_KINDS)
CODES = {"ML0101", "ML0102", "ML0103", "ML0104", "ML0106", "ML0107"}

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "schema-default", max_examples=100, deadline=None, suppress_health_check=_SLOW_OK
)
settings.register_profile(
    "schema-long", max_examples=2000, deadline=None, suppress_health_check=_SLOW_OK
)
PROFILE = settings.get_profile(
    "schema-long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "schema-default"
)


def load(text: str) -> Any:
    return yaml.safe_load(text)


def pairs(problems: list[Problem]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(p.path, p.code) for p in problems]


# --- 1. Valid, full-featured specs ---------------------------------------------------------------

VALID: dict[str, str] = {
    "DestinationRule": r"""
host: reviews.prod.svc.cluster.local
exportTo: [".", istio-system]
workloadSelector: {matchLabels: {app: reviews}}
trafficPolicy:
  connectionPool:
    tcp:
      maxConnections: 100
      connectTimeout: 30ms
      idleTimeout: 1h
      maxConnectionDuration: 10m
      tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}
    http:
      http1MaxPendingRequests: 1024
      http2MaxRequests: 1024
      maxRequestsPerConnection: 10
      maxRetries: 3
      idleTimeout: 1h
      h2UpgradePolicy: UPGRADE
      useClientProtocol: true
      maxConcurrentStreams: 100
      http2KeepAlive: {interval: 30s, timeout: 5s}
  loadBalancer:
    consistentHash:
      httpCookie:
        name: user
        ttl: 0s
        path: /
        attributes: [{name: SameSite, value: Strict}]
      ringHash: {minimumRingSize: 1024}
    localityLbSetting:
      enabled: true
      failover: [{from: us-east, to: eu-west}]
      failoverPriority: [topology.kubernetes.io/region]
      distribute: [{from: us-west/zone1/*, to: {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}]
    warmup: {duration: 60s, minimumPercent: 10, aggression: 1.5}
  outlierDetection:
    consecutive5xxErrors: 7
    consecutiveGatewayErrors: 5
    consecutiveLocalOriginFailures: 3
    splitExternalLocalOriginErrors: true
    interval: 5m
    baseEjectionTime: 15m
    maxEjectionPercent: 50
    minHealthPercent: 10
    outlierDetectionHttpErrorCodes: [503, 504]
  tls:
    mode: ISTIO_MUTUAL
    sni: reviews.example.com
    subjectAltNames: [spiffe://cluster.local/ns/a/sa/b]
    insecureSkipVerify: false
  proxyProtocol: {version: V2}
  retryBudget: {percent: 25, minRetryConcurrency: 3, budgetInterval: 1s}
  tunnel: {protocol: CONNECT, targetHost: 10.0.0.1, targetPort: 8080}
  portLevelSettings:
  - port: {number: 9080}
    loadBalancer: {simple: LEAST_REQUEST, zoneAwareLbSetting: {enabled: true, minClusterSize: 3}}
    connectionPool: {tcp: {maxConnections: 10}}
    outlierDetection: {consecutive5xxErrors: null}
    tls: {mode: SIMPLE, credentialName: client-cert}
subsets:
- name: v1
  labels: {version: v1}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 30s}
""",
    "VirtualService": r"""
hosts: [reviews.prod.svc.cluster.local, "*.bookinfo.com"]
gateways: [bookinfo-gateway, mesh]
exportTo: ["*"]
http:
- name: reviews-v2-routes
  match:
  - name: prefix
    uri: {prefix: /wpcatalog}
    headers: {end-user: {exact: jason}}
    withoutHeaders: {x-debug: {regex: ".*"}}
    queryParams: {v: {exact: "2"}}
    method: {exact: GET}
    authority: {prefix: reviews}
    scheme: {exact: https}
    port: 9080
    sourceLabels: {app: productpage}
    sourceNamespace: default
    gateways: [mesh]
    ignoreUriCase: true
    statPrefix: catalog
  rewrite: {uri: /newcatalog, authority: new}
  route:
  - destination: {host: reviews, subset: v2, port: {number: 9080}}
    weight: 75
    headers:
      request: {set: {x-a: b}, add: {x-c: d}, remove: [x-e]}
      response: {remove: [foo]}
  - destination: {host: reviews, subset: v1}
    weight: 25
  timeout: 10s
  retries:
    attempts: 3
    perTryTimeout: 2s
    retryOn: gateway-error,connect-failure
    retryRemoteLocalities: true
    backoff: 25ms
  fault:
    delay: {percentage: {value: 0.1}, fixedDelay: 5s}
    abort: {percentage: {value: 0.1}, httpStatus: 400}
  mirror: {host: reviews, subset: v3}
  mirrorPercentage: {value: 50.0}
  corsPolicy:
    allowOrigins: [{exact: "https://example.com"}, {regex: "https://.*\\.example\\.org"}]
    allowMethods: [POST, GET]
    allowCredentials: false
    allowHeaders: [X-Foo-Bar]
    exposeHeaders: [X-Expose]
    maxAge: 24h
    unmatchedPreflights: IGNORE
  headers: {request: {set: {x-req: "1"}}}
- match: [{uri: {exact: /redirect}}]
  redirect:
    uri: /v1/bookRatings
    authority: newratings.default.svc.cluster.local
    redirectCode: 301
    derivePort: FROM_REQUEST_PORT
    scheme: https
- match: [{uri: {exact: /teapot}}]
  directResponse: {status: 418, body: {bytes: aGVsbG8=}}
- delegate: {name: reviews-delegate, namespace: nsA}
- route: [{destination: {host: ratings}}]
  mirrors: [{destination: {host: ratings-mirror}, percentage: {value: 10}}]
  fault: {abort: {grpcStatus: UNAVAILABLE}, delay: {exponentialDelay: 1s, percent: 5}}
  rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: '\2/instance/\1'}}
  mirror_percent: 10
tcp:
- match:
  - port: 27017
    destinationSubnets: [10.0.0.0/8]
    sourceSubnet: 10.1.0.0/16
    sourceLabels: {app: x}
    gateways: [mesh]
    sourceNamespace: ns
  route: [{destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}, weight: 100}]
tls:
- match:
  - port: 443
    sniHosts: [login.bookinfo.com]
    destinationSubnets: [10.0.0.0/8]
    gateways: [mesh]
    sourceLabels: {a: b}
    sourceNamespace: ns
  route: [{destination: {host: login.prod.svc.cluster.local}}]
""",
    "ServiceEntry": r"""
hosts: [api.dropboxapi.com, www.googleapis.com]
addresses: [192.168.1.1]
location: MESH_EXTERNAL
exportTo: ["."]
ports:
- {number: 443, name: https, protocol: TLS}
- {number: 80, name: http, protocol: HTTP, targetPort: 8080}
resolution: STATIC
subjectAltNames: [spiffe://cluster.local/ns/a/sa/b]
endpoints:
- address: 2.2.2.2
  ports: {https: 8443, http: 8080}
  labels: {app: foo}
  network: net1
  locality: us-east1/zone1
  weight: 10
  serviceAccount: foo-sa
- address: unix:///var/run/example/socket
- network: remote-net
""",
    "WorkloadEntry": r"""
address: 10.0.0.1
ports: {http: 8080, grpc-web: 9090}
labels: {app: vm, version: v1}
network: vm-net
locality: us-west/zone1/sub
weight: 5
serviceAccount: vm-sa
""",
    "Sidecar": r"""
workloadSelector: {labels: {app: ratings}}
ingress:
- port: {number: 9080, protocol: HTTP, name: somename, targetPort: 8080}
  defaultEndpoint: unix:///var/run/someuds.sock
  captureMode: DEFAULT
  bind: 0.0.0.0
  connectionPool: {http: {http1MaxPendingRequests: 100, idleTimeout: 30s}}
  tls:
    mode: SIMPLE
    credentialName: cert
    minProtocolVersion: TLSV1_2
    maxProtocolVersion: TLSV1_3
    cipherSuites: [ECDHE-RSA-AES256-GCM-SHA384]
    subjectAltNames: [a]
    verifyCertificateSpki: [x]
    verifyCertificateHash: [y]
    httpsRedirect: false
    caCertCredentialName: ca
- port: {number: 9443, protocol: HTTPS, name: tls}
  tls:
    mode: MUTUAL
    tlsCertificates: [{serverCertificate: /a, privateKey: /b, caCertificates: /c}]
    caCrl: /crl
- port: {number: 9444, protocol: HTTPS, name: tls2}
  tls: {mode: OPTIONAL_MUTUAL, credentialNames: [rsa, ecdsa], insecureSkipVerify: true}
egress:
- port: {number: 9080, protocol: HTTP, name: egresshttp}
  hosts: ["prod-us1/*"]
  captureMode: NONE
  bind: 127.0.0.1
- hosts: ["istio-system/*"]
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
  egressProxy: {host: foo.bar, subset: shiny, port: {number: 443}}
inboundConnectionPool:
  tcp: {maxConnections: 100, connectTimeout: 1s}
  http: {maxRetries: 3}
""",
    "PeerAuthentication": r"""
selector: {matchLabels: {app: finance}}
mtls: {mode: STRICT}
portLevelMtls:
  8080: {mode: DISABLE}
  "9090": {mode: PERMISSIVE}
""",
    "Gateway": r"""
selector: {istio: ingressgateway}
servers:
- port: {number: 80, name: http, protocol: HTTP}
  hosts: ["*"]
  tls: {httpsRedirect: true}
- port: {number: 443, name: https, protocol: HTTPS, targetPort: 8443}
  hosts: [bookinfo/bookinfo.example.com, "*/reviews.example.com"]
  bind: 0.0.0.0
  name: main
  defaultEndpoint: 127.0.0.1:8080
  tls:
    mode: MUTUAL
    credentialName: bookinfo-cred
    minProtocolVersion: TLSV1_2
    maxProtocolVersion: TLSV1_3
    cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256]
    subjectAltNames: [spiffe://cluster.local/ns/a/sa/b]
    verifyCertificateSpki: [abc]
    verifyCertificateHash: [def]
    caCertCredentialName: ca
    insecureSkipVerify: null
- port: {number: 15443, name: tls, protocol: TLS}
  hosts: ["*.local"]
  tls:
    mode: SIMPLE
    tlsCertificates: [{serverCertificate: /c, privateKey: /k, caCertificates: /ca}]
    caCertificates: /ca
    caCrl: /crl
    serverCertificate: ""
    privateKey: ""
    credentialNames: null
""",
}


def test_every_kind_has_a_valid_example() -> None:
    assert set(VALID) == KNOWN_KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_valid_full_featured_spec_passes(kind: str) -> None:
    assert validate_spec(kind, load(VALID[kind])) == []


# --- 2. Targeted cases per problem class ---------------------------------------------------------


def found(kind: str, spec: Any, *, cel: bool = True) -> str:
    """The problems as "path CODE; path CODE", the form the case tables below use."""
    return "; ".join(f"{render_field(p.path)} {p.code}" for p in validate_spec(kind, spec, cel=cel))


DR, VS, SE, WE, SC, PA = (
    "DestinationRule", "VirtualService", "ServiceEntry", "WorkloadEntry", "Sidecar",
    "PeerAuthentication",
)  # fmt: skip
TCP = "host: r\ntrafficPolicy: {connectionPool: {tcp: "
LB = "host: r\ntrafficPolicy: {loadBalancer: "

# (name, kind, spec as YAML, expected problems)
CASES: list[tuple[str, str, str, str]] = [
    # ML0102 unknown field
    ("unknown-nested", DR, TCP + "{maxConection: 1}}}",
     "spec.trafficPolicy.connectionPool.tcp.maxConection ML0102"),
    ("unknown-top", VS, "hosts: [a]\nhttps: []", "spec.https ML0102"),
    ("unknown-in-map-value", VS, "http: [{match: [{headers: {x: {exakt: a}}}]}]",
     "spec.http[0].match[0].headers.x.exakt ML0102"),
    ("unknown-null-value", SC, "egres: null", "spec.egres ML0102"),
    ("unknown-int-key", DR, "host: r\n1: x", "spec[1] ML0102"),
    # ML0103 wrong type
    ("type-string", DR, "host: 1", "spec.host ML0103"),
    ("type-bool-for-int", DR, TCP + "{maxConnections: true}}}",
     "spec.trafficPolicy.connectionPool.tcp.maxConnections ML0103"),
    ("type-fraction-for-int", VS, "http: [{route: [{destination: {host: a}, weight: 1.5}]}]",
     "spec.http[0].route[0].weight ML0103"),
    ("type-list-for-object", DR, "host: r\ntrafficPolicy: []", "spec.trafficPolicy ML0103"),
    ("type-object-for-list", VS, "hosts: {a: b}", "spec.hosts ML0103"),
    ("type-null-list-item", VS, "hosts: [a, null]", "spec.hosts[1] ML0103"),
    ("type-spec-list", SC, "[1, 2]", "spec ML0103"),
    ("type-spec-scalar", PA, "STRICT", "spec ML0103"),
    ("type-string-for-bool", VS, "http: [{match: [{ignoreUriCase: 'yes'}]}]",
     "spec.http[0].match[0].ignoreUriCase ML0103"),
    ("type-label-value-int", DR, "host: r\nsubsets: [{name: a, labels: {v: 1}}]",
     "spec.subsets[0].labels.v ML0103"),
    ("type-enum-int", PA, "mtls: {mode: 3}", "spec.mtls.mode ML0103"),
    # ML0104 bad enum
    ("enum-typo", DR, LB + "{simple: LEAST_CON}}", "spec.trafficPolicy.loadBalancer.simple ML0104"),
    ("enum-case", PA, "mtls: {mode: strict}", "spec.mtls.mode ML0104"),
    ("enum-se", SE, "hosts: [a]\nresolution: dns", "spec.resolution ML0104"),
    # ML0101 missing required field
    ("required-host", DR, "subsets: []", "spec.host ML0101"),
    ("required-null-is-missing", DR, "host: null", "spec.host ML0101"),
    ("required-subset-name", DR, "host: r\nsubsets: [{labels: {a: b}}]",
     "spec.subsets[0].name ML0101"),
    ("required-destination", VS, "http: [{route: [{weight: 1}]}]",
     "spec.http[0].route[0].destination ML0101"),
    ("required-two", DR, "host: r\ntrafficPolicy: {tunnel: {}}",
     "spec.trafficPolicy.tunnel.targetHost ML0101; spec.trafficPolicy.tunnel.targetPort ML0101"),
    ("required-se-hosts", SE, "location: MESH_EXTERNAL", "spec.hosts ML0101"),
    # ML0107 oneOf
    ("oneof-lb", DR, LB + "{simple: RANDOM, consistentHash: {useSourceIp: true}}}",
     "spec.trafficPolicy.loadBalancer ML0107"),
    ("oneof-hash-key", DR, LB + "{consistentHash: {httpHeaderName: x, httpQueryParameterName: y}}}",
     "spec.trafficPolicy.loadBalancer.consistentHash ML0107"),
    ("oneof-ring-maglev", DR, LB + "{consistentHash: {ringHash: {}, maglev: {}}}}",
     "spec.trafficPolicy.loadBalancer.consistentHash ML0107"),
    ("oneof-string-match", VS, "http: [{match: [{uri: {exact: /a, prefix: /}}]}]",
     "spec.http[0].match[0].uri ML0107"),
    ("oneof-null-member-ok", VS, "http: [{match: [{uri: {exact: /a, prefix: null}}]}]", ""),
    ("oneof-redirect-port", VS, "http: [{redirect: {port: 80, derivePort: FROM_REQUEST_PORT}}]",
     "spec.http[0].redirect ML0107"),
    # ML0106 ranges, lengths, formats
    ("range-uint32", VS, "http: [{match: [{port: 4294967296}]}]",
     "spec.http[0].match[0].port ML0106"),
    ("range-negative", DR, "host: r\ntrafficPolicy: {outlierDetection: {consecutive5xxErrors: -1}}",
     "spec.trafficPolicy.outlierDetection.consecutive5xxErrors ML0106"),
    ("range-int32", DR, TCP + "{maxConnections: 2147483648}}}",
     "spec.trafficPolicy.connectionPool.tcp.maxConnections ML0106"),
    ("range-huge-int", DR, TCP + "{maxConnections: 100000000000000000000000000000000}}}",
     "spec.trafficPolicy.connectionPool.tcp.maxConnections ML0106"),
    ("range-http-code", DR,
     "host: r\ntrafficPolicy: {outlierDetection: {outlierDetectionHttpErrorCodes: [503, 600]}}",
     "spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes[1] ML0106"),
    ("range-percent", DR, "host: r\ntrafficPolicy: {retryBudget: {percent: 100.5}}",
     "spec.trafficPolicy.retryBudget.percent ML0106"),
    ("range-min-cluster", DR, LB + "{zoneAwareLbSetting: {minClusterSize: 0}}}",
     "spec.trafficPolicy.loadBalancer.zoneAwareLbSetting.minClusterSize ML0106"),
    ("min-items", SE, "hosts: []", "spec.hosts ML0106"),
    ("max-items", SC, "ingress: [{port: {number: 1}, tls: {credentialNames: [a, b, c]}}]",
     "spec.ingress[0].tls.credentialNames ML0106"),
    ("min-props", PA, "selector: {matchLabels: {a: b}}\nportLevelMtls: {}",
     "spec.portLevelMtls ML0106"),
    ("max-length", SC, "workloadSelector: {labels: {app: " + "x" * 64 + "}}",
     "spec.workloadSelector.labels.app ML0106"),
    ("format-byte", VS, "http: [{directResponse: {status: 200, body: {bytes: 'not base64!'}}}]",
     "spec.http[0].directResponse.body.bytes ML0106"),
    ("list-map-duplicate", SE, "hosts: [a]\nports: [{name: p, number: 1}, {name: p, number: 2}]",
     "spec.ports[1] ML0106"),
    ("nonfinite-number", VS, "http: [{mirrorPercentage: {value: .nan}}]",
     "spec.http[0].mirrorPercentage.value ML0106"),
    # Accepted on purpose
    ("ok-integral-float", DR, TCP + "{maxConnections: 10.0}}}", ""),
    ("ok-int-for-number", VS, "http: [{mirrorPercentage: {value: 5}}]", ""),
    ("ok-nullable-null", DR, LB + "{localityLbSetting: {enabled: null}}}", ""),
    ("ok-null-pruned", DR, "host: r\ntrafficPolicy: null\nsubsets: null", ""),
    ("ok-null-map-value", VS, "http: [{match: [{sourceLabels: {a: null}}]}]", ""),
    ("ok-date-as-string", DR, "host: r\nsubsets: [{name: a, labels: {v: 2024-01-01}}]", ""),
    ("ok-no-spec-dr", DR, "", ""),
    ("ok-empty-spec", VS, "{}", ""),
    # Several problems, in document order
    ("order", DR, "subsets: [{name: 1}]\nhost: 2\nfoo: 3",
     "spec.subsets[0].name ML0103; spec.host ML0103; spec.foo ML0102"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "text", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_targeted_case(kind: str, text: str, expected: str) -> None:
    assert found(kind, load(text)) == expected


def test_messages_match_the_issue_wording() -> None:
    spec = load(
        "host: 1\ntrafficPolicy: {loadBalancer: {simple: LEAST_CON}, connectionPool: "
        "{tcp: {maxConection: 1}}}"
    )
    messages = [p.message for p in validate_spec("DestinationRule", spec)]
    assert messages == [
        "spec.host: expected string, got integer",
        'spec.trafficPolicy.loadBalancer.simple: unsupported value "LEAST_CON"; supported '
        'values: "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", '
        '"LEAST_REQUEST"',
        'unknown field "maxConection"',
    ]


def test_other_messages() -> None:
    spec = load(
        "trafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {}}, "
        "connectionPool: {tcp: {connectTimeout: 0.5ms}}}"
    )
    messages = [p.message for p in validate_spec("DestinationRule", spec)]
    assert messages == [
        'missing required field "host"',
        'spec.trafficPolicy.loadBalancer: only one of "simple", "consistentHash" may be set '
        '(got "simple", "consistentHash")',
        "spec.trafficPolicy.connectionPool.tcp.connectTimeout: must be a valid duration greater "
        'than 1ms (got "0.5ms")',
    ]


def test_spec_required_at_root() -> None:
    assert SPEC_REQUIRED == {"ServiceEntry", "WorkloadEntry"}
    for kind in KINDS:
        expected = [(("spec",), "ML0101")] if kind in SPEC_REQUIRED else []
        assert pairs(validate_spec(kind, None)) == expected


def test_unknown_kind_is_not_checked() -> None:
    assert validate_spec("WasmPlugin", {"anything": 1}) == []


def test_problem_is_frozen_value() -> None:
    p = Problem(("spec",), "ML0102", "m")
    assert p == Problem(("spec",), "ML0102", "m")
    with pytest.raises(AttributeError):
        p.code = "x"  # type: ignore[misc]


# --- 2b. CEL rules --------------------------------------------------------------------------------

SEL = "selector: {matchLabels: {a: b}}\n"
INGRESS_TLS = "ingress: [{port: {number: 1}, tls: "

# (name, kind, spec as YAML, expected problems); each spec is valid without CEL.
CEL_CASES: list[tuple[str, str, str, str]] = [
    ("duration-ok", VS, "http: [{timeout: 1ms}]", ""),
    ("duration-zero", VS, "http: [{timeout: 0s}]", "spec.http[0].timeout ML0106"),
    ("duration-below-1ms", VS, "http: [{timeout: 999us}]", "spec.http[0].timeout ML0106"),
    ("duration-unitless", VS, "http: [{retries: {perTryTimeout: '10'}}]",
     "spec.http[0].retries.perTryTimeout ML0106"),
    ("duration-days", DR, "host: r\ntrafficPolicy: {outlierDetection: {interval: 1d}}",
     "spec.trafficPolicy.outlierDetection.interval ML0106"),
    ("duration-negative", SC, "inboundConnectionPool: {tcp: {connectTimeout: -1s}}",
     "spec.inboundConnectionPool.tcp.connectTimeout ML0106"),
    ("duration-empty", VS, "http: [{corsPolicy: {maxAge: ''}}]",
     "spec.http[0].corsPolicy.maxAge ML0106"),
    ("duration-not-cel-field", DR, TCP + "{idleTimeout: forever}}}", ""),
    ("se-port-zero", SE, "hosts: [a]\nports: [{name: p, number: 0}]",
     "spec.ports[0].number ML0106"),
    ("se-port-high", SE, "hosts: [a]\nports: [{name: p, number: 80, targetPort: 65536}]",
     "spec.ports[0].targetPort ML0106"),
    ("se-port-dup-number", SE, "hosts: [a]\nports: [{name: a, number: 80}, {name: b, number: 80}]",
     "spec.ports ML0106"),
    ("se-host-wildcard", SE, "hosts: ['*']", "spec.hosts[0] ML0106"),
    ("se-host-partial-wildcard-ok", SE, "hosts: ['*.example.com']", ""),
    ("se-selector-and-endpoints", SE, "hosts: [a]\nresolution: STATIC\nworkloadSelector: "
     "{labels: {a: b}}\nendpoints: [{address: 1.1.1.1}]", "spec ML0106"),
    ("se-cidr-dns", SE, "hosts: [a]\naddresses: [10.0.0.0/8]\nresolution: DNS", "spec ML0106"),
    ("se-cidr-static-ok", SE, "hosts: [a]\naddresses: [10.0.0.0/8]\nresolution: STATIC", ""),
    ("se-none-endpoints", SE, "hosts: [a]\nendpoints: [{address: 1.1.1.1}]", "spec ML0106"),
    ("se-none-endpoints-empty-list", SE, "hosts: [a]\nendpoints: []", "spec ML0106"),
    ("se-dns-rr-two", SE, "hosts: [a]\nresolution: DNS_ROUND_ROBIN\nendpoints: "
     "[{address: a.com}, {address: b.com}]", "spec ML0106"),
    ("se-dns-rr-one-ok", SE, "hosts: [a]\nresolution: DNS_ROUND_ROBIN\nendpoints: "
     "[{address: a.com}]", ""),
    ("se-endpoint-no-address", SE, "hosts: [a]\nresolution: STATIC\nendpoints: [{labels: {a: b}}]",
     "spec.endpoints[0] ML0106"),
    ("se-selector-wildcard", SE, "hosts: [a]\nworkloadSelector: {labels: {a: '*'}}",
     "spec.workloadSelector.labels.a ML0106"),
    ("we-no-address", WE, "labels: {a: b}", "spec ML0106"),
    ("we-network-only-ok", WE, "network: n1", ""),
    ("we-uds-ports", WE, "address: unix:///a/b\nports: {http: 80}", "spec ML0106"),
    ("we-uds-relative", WE, "address: unix://a/b", "spec.address ML0106"),
    ("we-uds-bare", WE, "address: unix://", "spec.address ML0106; spec.address ML0106"),
    ("we-uds-abstract-ok", WE, "address: unix://@abstract", ""),
    ("we-uds-dir", WE, "address: unix:///a/", "spec.address ML0106"),
    ("we-port-name", WE, "address: a\nports: {-http: 80, ok: 81, " + "p" * 63 + ": 82}",
     f"spec.ports[-http] ML0106; spec.ports.{'p' * 63} ML0106"),
    ("we-port-value", WE, "address: a\nports: {http: 0}", "spec.ports.http ML0106"),
    ("dr-selector-key-wildcard", DR, "host: r\nworkloadSelector: {matchLabels: {'a*': b}}",
     "spec.workloadSelector.matchLabels[a*] ML0106"),
    ("dr-selector-key-empty", DR, "host: r\nworkloadSelector: {matchLabels: {'': b}}",
     'spec.workloadSelector.matchLabels[""] ML0106'),
    ("dr-selector-value-wildcard", DR, "host: r\nworkloadSelector: {matchLabels: {a: 'b*'}}",
     "spec.workloadSelector.matchLabels.a ML0106"),
    ("sidecar-selector-wildcard", SC, "workloadSelector: {labels: {app: '*'}}",
     "spec.workloadSelector.labels.app ML0106"),
    ("sidecar-tls-names-and-certs", SC,
     INGRESS_TLS + "{credentialNames: [a], tlsCertificates: [{privateKey: k}]}}]",
     "spec.ingress[0].tls ML0106"),
    ("sidecar-tls-name-and-names", SC, INGRESS_TLS + "{credentialName: a, credentialNames: [b]}}]",
     "spec.ingress[0].tls ML0106"),
    # The CRD's third rule repeats the first: credentialName + tlsCertificates is accepted.
    ("sidecar-tls-name-and-certs-ok", SC,
     INGRESS_TLS + "{credentialName: a, tlsCertificates: [{privateKey: k}]}}]", ""),
    ("pa-port-key-zero", PA, SEL + "portLevelMtls: {0: {mode: STRICT}}",
     "spec.portLevelMtls[0] ML0106"),
    ("pa-port-key-name", PA, SEL + "portLevelMtls: {http: {mode: STRICT}, ' 80': {}}",
     "spec.portLevelMtls.http ML0106; spec.portLevelMtls[ 80] ML0106"),
    ("pa-port-key-high", PA, SEL + "portLevelMtls: {65536: {mode: STRICT}}",
     "spec.portLevelMtls[65536] ML0106"),
    ("pa-port-level-no-selector", PA, "portLevelMtls: {80: {mode: STRICT}}", "spec ML0106"),
    ("pa-port-level-empty-selector", PA,
     "selector: {matchLabels: {}}\nportLevelMtls: {80: {mode: STRICT}}", "spec ML0106"),
    ("pa-port-level-null-labels", PA,
     "selector: {matchLabels: {a: null}}\nportLevelMtls: {80: {mode: STRICT}}", "spec ML0106"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "text", "expected"), [c[1:] for c in CEL_CASES],
                         ids=[c[0] for c in CEL_CASES])  # fmt: skip
def test_cel_rule(kind: str, text: str, expected: str) -> None:
    spec = load(text)
    assert found(kind, spec) == expected
    assert found(kind, spec, cel=False) == ""  # CEL rules are the only complaint


def test_cel_messages_are_the_crd_messages() -> None:
    spec = load("hosts: ['*']\naddresses: [1.0.0.0/8]\nresolution: DNS")
    assert [p.message for p in validate_spec("ServiceEntry", spec)] == [
        "spec: CIDR addresses are allowed only for NONE/STATIC resolution types",
        'spec.hosts[0]: hostname cannot be wildcard (got "*")',
    ]
    spec = load("address: a\nports: {'-x': 1}")
    assert [p.message for p in validate_spec("WorkloadEntry", spec)] == [
        'spec.ports[-x]: port name must be valid (key "-x")'
    ]


GO_DURATIONS: dict[str, int | None] = {
    # From Go's time.ParseDuration tests.
    "0": 0, "5s": 5_000_000_000, "-5s": -5_000_000_000, "+5s": 5_000_000_000, "-0": 0,
    "5.0s": 5_000_000_000, "5.6s": 5_600_000_000, "5.s": 5_000_000_000, ".5s": 500_000_000,
    "1.004s": 1_004_000_000, "100.00100s": 100_001_000_000, "10ns": 10, "11us": 11_000,
    "12\u00b5s": 12_000, "12\u03bcs": 12_000, "13ms": 13_000_000, "16h": 57_600_000_000_000,
    "3h30m": 12_600_000_000_000, "10.5s4m": 250_500_000_000, "-2m3.4s": -123_400_000_000,
    "1h2m3s4ms5us6ns": 3_723_004_005_006, "39h9m14.425s": 140_954_425_000_000,
    "0.3333333333333333333h": 1_200_000_000_000, "9007199254740993ns": 9007199254740993,
    "9223372036854775807ns": 2**63 - 1, "9223372036854775.807us": 2**63 - 1,
    "9223372036s854ms775us807ns": 2**63 - 1, "-9223372036854775808ns": -(2**63),
    "0.100000000000000000000h": 360_000_000_000, "0.830103483285477580700h": 2_988_372_539_827,
    # Rejected by Go.
    "": None, "3": None, "-": None, "s": None, ".": None, "-.": None, ".s": None, "+.s": None,
    "1d": None, "\x85\x85": None, "9223372036854775808ns": None, "9223372036854775.808us": None,
    "9223372036s854ms775us808ns": None, "-9223372036854775809ns": None, "1s ": None, "00": None,
    "1e3s": None, "1_000s": None, " 1s": None,
}  # fmt: skip


@pytest.mark.parametrize("text", sorted(GO_DURATIONS))
def test_parse_go_duration(text: str) -> None:
    assert parse_go_duration(text) == GO_DURATIONS[text]


# --- 2c. Robustness ------------------------------------------------------------------------------

def all_nodes() -> Iterator[schema.Node]:
    """Every schema node reachable from the kinds' specs."""
    seen: set[int] = set()
    todo: list[schema.Node] = list(SPECS.values())
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, schema.Obj):
            todo.extend(node.fields.values())
        elif isinstance(node, schema.Map):
            todo.append(node.value)
        elif isinstance(node, schema.List):
            todo.append(node.item)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**100, -(10**40), 2**63]),
    st.floats(),
    st.text(max_size=10),
    st.sampled_from(["STRICT", "ROUND_ROBIN", "1ms", "0s", "*", "unix://", "80", "", "host"]),
)
keys = st.one_of(
    st.sampled_from(
        sorted({k for n in all_nodes() if isinstance(n, schema.Obj) for k in n.fields})
    ),
    st.text(max_size=6),
    st.integers(-5, 70000),
    st.booleans(),
    st.none(),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=40,
)


@PROFILE
@given(kind=st.sampled_from(KINDS), spec=anything, cel=st.booleans())
def test_never_raises_on_any_value(kind: str, spec: Any, cel: bool) -> None:
    problems = validate_spec(kind, spec, cel=cel)
    assert len(problems) <= MAX_PROBLEMS
    for p in problems:
        assert p.path[:1] == ("spec",) and p.code in CODES and p.message


def test_problem_count_is_capped() -> None:
    spec = {"hosts": [1] * 500, "http": [{"bad": 1}] * 500}
    problems = validate_spec("VirtualService", spec)
    assert len(problems) == MAX_PROBLEMS
    assert problems[0].path == ("spec", "hosts", 0)


def test_deep_nesting_is_cheap() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = {"trafficPolicy": [deep]}
    start = time.perf_counter()
    for kind in KINDS:
        validate_spec(kind, {"host": "r", "trafficPolicy": deep, "hosts": deep})
        validate_spec(kind, deep)
    assert time.perf_counter() - start < 1.0


def test_recursive_and_aliased_yaml() -> None:
    recursive = load("&a {hosts: [*a], http: [*a], tcp: *a}")
    assert validate_spec("VirtualService", recursive)
    # YAML aliases share one object many times ("billion laughs"): 10**7 logical match
    # entries here, but each shared, clean subtree is checked once.
    headers = load("&h {" + ", ".join(f"h{i}: {{exact: x}}" for i in range(100)) + "}")
    match = {"headers": headers, "queryParams": headers}
    http = [{"match": [match] * 10_000}] * 1000
    start = time.perf_counter()
    assert validate_spec("VirtualService", {"http": http}) == []
    assert time.perf_counter() - start < 1.0


def test_non_string_map_keys_are_stringified() -> None:
    spec = {
        "host": "r",
        "subsets": [{"name": "a", "labels": {True: "x", 2: "y", None: "z", 1.5: "w"}}],
    }
    assert validate_spec("DestinationRule", spec) == []
    spec = {"host": "r", "subsets": [{"name": "a", "labels": {1: 2}}]}
    assert pairs(validate_spec("DestinationRule", spec)) == [
        (("spec", "subsets", 0, "labels", "1"), "ML0103")
    ]


# --- 3. The DSL against the CRD, node by node -----------------------------------------------------


@pytest.fixture(scope="session")
def crd_schemas() -> dict[str, dict[str, Any]]:
    """kind → openAPIV3Schema of its storage version (v1), read from Istio's CRD file."""
    assert CRD_FILE.exists(), f"{CRD_FILE} not found (Istio's CRDs, see ORIGIN.md there)"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out: dict[str, dict[str, Any]] = {}
    with CRD_FILE.open(encoding="utf-8") as f:
        for doc in yaml.load_all(f, Loader=loader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            kind = doc["spec"]["names"]["kind"]
            if kind not in KNOWN_KINDS:
                continue
            versions = doc["spec"]["versions"]
            storage = next(v for v in versions if v.get("storage"))
            assert storage["name"] == "v1"
            # Every served version shares the schema, so checking v1 covers them all.
            for v in versions:
                assert v["schema"] == storage["schema"], (kind, v["name"])
            out[kind] = storage["schema"]["openAPIV3Schema"]
    assert set(out) == KNOWN_KINDS
    return out


KNOWN_KEYWORDS = {
    "type", "description", "properties", "additionalProperties", "items", "required", "enum",
    "format", "minimum", "maximum", "nullable", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "oneOf", "allOf", "x-kubernetes-validations",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}  # fmt: skip


def one_of_groups(s: dict[str, Any]) -> list[tuple[str, ...]]:
    """The oneOf groups of an object schema, as Istio's generator writes them:
    ``oneOf: [{not: {anyOf: [{required: [a]}, ...]}}, {required: [a]}, ...]``."""
    groups = [s["oneOf"]] if "oneOf" in s else []
    groups += [part["oneOf"] for part in s.get("allOf", [])]
    out = []
    for group in groups:
        members = tuple(b["required"][0] for b in group if "required" in b)
        assert group[0] == {"not": {"anyOf": [{"required": [m]} for m in members]}}
        out.append(members)
    return out


def compare_node(node: schema.Node, s: dict[str, Any], where: str) -> None:
    unknown = set(s) - KNOWN_KEYWORDS
    assert not unknown, f"{where}: CRD keywords not handled by meshlens: {unknown}"
    kind = {
        "object": (schema.Obj, schema.Map),
        "array": (schema.List,),
        "string": (schema.Str,),
        "integer": (schema.Int,),
        "number": (schema.Num,),
        "boolean": (schema.Bool,),
    }
    assert isinstance(node, kind[s["type"]]), f"{where}: {type(node).__name__} vs {s['type']}"
    assert node.nullable == bool(s.get("nullable")), where
    cel = sorted(
        r["rule"]
        for r in s.get("x-kubernetes-validations", ())
        if r["rule"] not in schema.SKIPPED_CEL
    )
    assert sorted(r.cel for r in node.rules) == cel, where
    messages = {r["rule"]: r["message"] for r in s.get("x-kubernetes-validations", ())}
    assert all(messages[r.cel] == r.message for r in node.rules), where
    if isinstance(node, schema.Obj):
        assert "additionalProperties" not in s, where
        assert set(node.fields) == set(s["properties"]), where
        assert {k for k, v in node.fields.items() if v.required} == set(s.get("required", ())), (
            where
        )
        assert list(node.one_of) == one_of_groups(s), where
        for name, child in node.fields.items():
            compare_node(child, s["properties"][name], f"{where}.{name}")
    elif isinstance(node, schema.Map):
        assert "properties" not in s and "oneOf" not in s, where
        assert (node.min_props, node.max_props) == (
            s.get("minProperties"),
            s.get("maxProperties"),
        ), where
        compare_node(node.value, s["additionalProperties"], f"{where}{{*}}")
    elif isinstance(node, schema.List):
        assert (node.min_items, node.max_items) == (s.get("minItems"), s.get("maxItems")), where
        map_keys = s.get("x-kubernetes-list-map-keys", ())
        assert s.get("x-kubernetes-list-type", "atomic" if not map_keys else "map") in (
            "atomic",
            "map",
        )
        assert node.map_keys == tuple(map_keys), where
        compare_node(node.item, s["items"], f"{where}[]")
    elif isinstance(node, schema.Str):
        assert node.enum == tuple(s.get("enum", ())), where
        assert node.max_len == s.get("maxLength"), where
        assert node.byte == (s.get("format") == "byte"), where
        assert s.get("format") in (None, "byte"), where
    elif isinstance(node, schema.Int):
        assert (node.minimum, node.maximum) == (s.get("minimum"), s.get("maximum")), where
        assert node.int32 == (s.get("format") == "int32"), where
        assert s.get("format") in (None, "int32"), where
    elif isinstance(node, schema.Num):
        assert (node.minimum, node.maximum) == (s.get("minimum"), s.get("maximum")), where
        assert s.get("format") in (None, "double"), where


@pytest.mark.parametrize("kind", KINDS)
def test_dsl_matches_crd_node_by_node(kind: str, crd_schemas: dict[str, dict[str, Any]]) -> None:
    root = crd_schemas[kind]
    assert set(root["properties"]) == {"spec", "status"}
    assert ("spec" in root.get("required", ())) == (kind in SPEC_REQUIRED)
    assert "x-kubernetes-preserve-unknown-fields" not in root["properties"]["spec"]
    compare_node(SPECS[kind], root["properties"]["spec"], "spec")


def test_every_crd_cel_rule_is_implemented_or_listed(crd_schemas: dict[str, Any]) -> None:
    def rules(s: Any) -> Iterator[str]:
        if isinstance(s, dict):
            yield from (r["rule"] for r in s.get("x-kubernetes-validations", ()))
            for v in s.values():
                yield from rules(v)
        elif isinstance(s, list):
            for v in s:
                yield from rules(v)

    crd = {r for kind in KINDS for r in rules(crd_schemas[kind]["properties"]["spec"])}
    ours = {rule.cel for node in all_nodes() for rule in node.rules}
    assert crd == ours | set(schema.SKIPPED_CEL)


# --- 4. Conformance with jsonschema on the CRD ---------------------------------------------------

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    return -(2**31) <= value <= 2**31 - 1


@FORMATS.checks("byte")
def _byte(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except ValueError:
        return False
    return True


def to_json_schema(s: dict[str, Any]) -> dict[str, Any]:
    """Kubernetes structural schema → JSON Schema with the API server's Strict semantics."""
    out: dict[str, Any] = {}
    for key, value in s.items():
        if key in ("description", "nullable") or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        else:
            out[key] = value
    if s.get("nullable"):
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if (
        "properties" in s
        and "additionalProperties" not in s
        and not s.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False  # Strict field validation: unknown field → error
    return out


def sub_schema(key: str, s: dict[str, Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    if key in s.get("properties", {}):
        return s["properties"][key]  # type: ignore[no-any-return]
    extra = s.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def prune_nulls(x: Any, s: dict[str, Any] | None) -> Any:
    """apiextensions' PruneNonNullableNullsWithoutDefaults, on a copy."""
    if isinstance(x, dict):
        out = {}
        for key, value in x.items():
            sub = sub_schema(key, s)
            if value is None and sub is not None and not sub.get("nullable"):
                continue
            out[key] = prune_nulls(value, sub)
        return out
    if isinstance(x, list):
        return [prune_nulls(v, s.get("items") if s else None) for v in x]
    return x


def list_map_keys_unique(x: Any, s: dict[str, Any] | None) -> bool:
    """The API server's x-kubernetes-list-type: map check, which JSON Schema cannot express."""
    if s is None:
        return True
    if isinstance(x, dict):
        return all(list_map_keys_unique(v, sub_schema(k, s)) for k, v in x.items())
    if isinstance(x, list):
        if s.get("x-kubernetes-list-type") == "map":
            keys = s["x-kubernetes-list-map-keys"]
            seen = [tuple(i.get(k) for k in keys) for i in x if isinstance(i, dict)]
            hashable = [k for k in seen if all(isinstance(v, str | int | float) for v in k)]
            if len(set(hashable)) != len(hashable):
                return False
        return all(list_map_keys_unique(v, s.get("items")) for v in x)
    return True


class Oracle:
    """The API server's verdict on ``{"spec": ...}``, minus CEL, via jsonschema."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = {"type": "object", "properties": {"spec": root["properties"]["spec"]}}
        if "required" in root:
            self.root["required"] = root["required"]
        self.validator = jsonschema.Draft7Validator(
            to_json_schema(self.root), format_checker=FORMATS
        )

    def accepts(self, spec: Any) -> bool:
        obj = prune_nulls({"spec": spec}, self.root)
        return self.validator.is_valid(obj) and list_map_keys_unique(obj, self.root)

    def errors(self, spec: Any) -> list[str]:
        obj = prune_nulls({"spec": spec}, self.root)
        return [f"{list(e.absolute_path)}: {e.message}" for e in self.validator.iter_errors(obj)]


@pytest.fixture(scope="session")
def oracles(crd_schemas: dict[str, dict[str, Any]]) -> dict[str, Oracle]:
    return {kind: Oracle(root) for kind, root in crd_schemas.items()}


# Generating documents from the CRD schema.

MAX_DEPTH = 7
KEY_TEXT = st.text(st.sampled_from("abz09-./*_ "), max_size=6)
_INT_LIMIT = 2**40


def int_bounds(s: dict[str, Any]) -> tuple[int, int]:
    lo, hi = s.get("minimum", -_INT_LIMIT), s.get("maximum", _INT_LIMIT)
    if s.get("format") == "int32":
        lo, hi = max(lo, -(2**31)), min(hi, 2**31 - 1)
    return int(lo), int(hi)


def draw_valid(draw: st.DrawFn, s: dict[str, Any], depth: int = 0) -> Any:
    """Draw a document the CRD's structural schema accepts (CEL rules aside)."""
    if s.get("nullable") and draw(st.integers(0, 9)) == 0:
        return None
    kind = s["type"]
    if kind == "object" and "properties" in s:
        return draw_object(draw, s, depth)
    if kind == "object":
        lo = s.get("minProperties", 0)
        size = draw(st.integers(lo, max(lo, 2 if depth < MAX_DEPTH else 0)))
        names = draw(st.lists(KEY_TEXT, min_size=size, max_size=size, unique=True))
        return {k: draw_valid(draw, s["additionalProperties"], depth + 1) for k in names}
    if kind == "array":
        lo = s.get("minItems", 0)
        hi = min(s.get("maxItems", 2), max(lo, 2 if depth < MAX_DEPTH else 0))
        items = [draw_valid(draw, s["items"], depth + 1) for _ in range(draw(st.integers(lo, hi)))]
        for index, item in enumerate(items):
            for key in s.get("x-kubernetes-list-map-keys", ()):
                item[key] = f"{item[key]}-{index}"  # list-map keys must be unique
        return items
    if kind == "string":
        if "enum" in s:
            return draw(st.sampled_from(s["enum"]))
        if s.get("format") == "byte":
            return base64.b64encode(draw(st.binary(max_size=6))).decode()
        return draw(st.text(max_size=min(s.get("maxLength", 8), 8)))
    if kind == "integer":
        value = draw(st.integers(*int_bounds(s)))
        return float(value) if abs(value) < 2**52 and draw(st.integers(0, 9)) == 0 else value
    if kind == "number":
        lo, hi = s.get("minimum"), s.get("maximum")
        return draw(
            st.floats(lo, hi, allow_nan=False, allow_infinity=False)
            | st.integers(-10 if lo is None else lo, 10**6 if hi is None else hi)
        )
    assert kind == "boolean", s
    return draw(st.booleans())


def draw_object(draw: st.DrawFn, s: dict[str, Any], depth: int) -> dict[str, Any]:
    required = set(s.get("required", ()))
    excluded: set[str] = set()
    for group in one_of_groups(s):
        chosen = draw(st.sampled_from([None, *group]))
        excluded |= {m for m in group if m != chosen}
        if chosen is not None and depth < MAX_DEPTH and draw(st.booleans()):
            required.add(chosen)
    chance = 1 if depth < 3 else 2 if depth < 5 else 4
    names = [n for n in s["properties"] if n not in excluded]
    out = {}
    for name in draw(st.permutations(names)):  # document order is not schema order
        wanted = name in required or (depth < MAX_DEPTH and draw(st.integers(0, chance)) == 0)
        if wanted:
            out[name] = draw_valid(draw, s["properties"][name], depth + 1)
    return out


# Mutations: each returns (new value, expected (path suffix, code) or None).

WRONG_VALUES: list[Any] = [None, True, 0, 7, 1.5, -3, "s", "", [], ["x"], {}, {"a": 1}, 2**70]
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def type_matches(s: dict[str, Any], value: Any) -> bool:
    kind = s["type"]
    if value is None:
        return bool(s.get("nullable"))
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float)
    return isinstance(value, JSON_TYPES[kind])


Mutation = tuple[Any, tuple[tuple[str | int, ...], str] | None]


def mutations(draw: st.DrawFn, s: dict[str, Any], value: Any) -> dict[str, Callable[[], Mutation]]:
    """The mutations that make sense at a node with schema ``s`` and current ``value``."""
    out: dict[str, Callable[[], Mutation]] = {}

    def wrong_type() -> Mutation:
        new = draw(st.sampled_from([v for v in WRONG_VALUES if not type_matches(s, v)]))
        return new, (None if new is None else ((), "ML0103"))  # null is pruned: maybe valid

    out["wrong_type"] = wrong_type
    if isinstance(value, dict) and "properties" in s:
        props = sorted(s["properties"])
        present_required = sorted(value.keys() & set(s.get("required", ())))

        def unknown_field() -> Mutation:
            name = draw(
                st.sampled_from(
                    [
                        "zzUnknown",
                        "",
                        "spec",
                        *(p + "s" for p in props),
                        *(p[:1].upper() + p[1:] for p in props),
                    ]
                )
            )
            if name in s["properties"]:
                return value, None
            return {**value, name: draw(st.sampled_from(WRONG_VALUES))}, ((name,), "ML0102")

        def drop_required() -> Mutation:
            name = draw(st.sampled_from(present_required))
            return {k: v for k, v in value.items() if k != name}, ((name,), "ML0101")

        def two_members() -> Mutation:
            group = draw(st.sampled_from(one_of_groups(s)))
            a, b = draw(st.permutations(group))[:2]
            new = {**value}
            for name in (a, b):
                if new.get(name) is None:
                    new[name] = draw_valid(draw, s["properties"][name], MAX_DEPTH)
            return new, ((), "ML0107")

        out["unknown_field"] = unknown_field
        if present_required:
            out["drop_required"] = drop_required
        if one_of_groups(s):
            out["one_of"] = two_members
    if "enum" in s and isinstance(value, str):
        out["bad_enum"] = lambda: (
            draw(st.sampled_from([value.lower(), value + "_", "", "unset", " " + value])),
            ((), "ML0104"),
        )
    if s["type"] == "integer" and ("minimum" in s or "maximum" in s or "format" in s):
        lo, hi = int_bounds(s)
        bad = [lo - 1] if "minimum" in s or "format" in s else []
        bad += [hi + 1] if "maximum" in s or "format" in s else []
        out["range"] = lambda: (draw(st.sampled_from(bad)), ((), "ML0106"))
    if s["type"] == "number" and ("minimum" in s or "maximum" in s):
        out["range"] = lambda: (
            s["maximum"] + 0.5 if "maximum" in s else s["minimum"] - 0.5,
            ((), "ML0106"),
        )
    if "maxLength" in s:
        out["too_long"] = lambda: ("a" * (s["maxLength"] + 1), ((), "ML0106"))
    if s.get("format") == "byte":
        out["bad_base64"] = lambda: (
            draw(st.sampled_from(["a", "not base64!", "YQ="])),
            ((), "ML0106"),
        )
    if s.get("minItems") or s.get("minProperties"):
        out["too_few"] = lambda: ([] if s["type"] == "array" else {}, ((), "ML0106"))
    if s.get("x-kubernetes-list-type") == "map" and isinstance(value, list) and value:
        out["duplicate_key"] = lambda: (
            [*value, copy.deepcopy(value[0])],
            ((len(value),), "ML0106"),
        )
    return out


def sites(
    value: Any, s: dict[str, Any], path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any], Any]]:
    """Every node of a valid document, with its schema."""
    yield path, s, value
    if isinstance(value, dict) and s["type"] == "object":
        for key, item in value.items():
            sub = sub_schema(key, s)
            if sub is not None and item is not None:
                yield from sites(item, sub, (*path, key))
    elif isinstance(value, list) and s["type"] == "array":
        for index, item in enumerate(value):
            yield from sites(item, s["items"], (*path, index))


def replace_at(doc: Any, path: tuple[str | int, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: replace_at(doc[head], rest, new)}
    out = list(doc)
    out[head] = replace_at(doc[head], rest, new)  # type: ignore[index]
    return out


class Spec(dict[str, Any]):
    """A kind's spec schema, with a short repr for hypothesis's reports."""

    def __init__(self, kind: str, root: dict[str, Any]) -> None:
        super().__init__(root["properties"]["spec"])
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind} spec schema>"


@st.composite
def valid_specs(draw: st.DrawFn, spec_schema: Spec) -> Any:
    return draw_valid(draw, spec_schema)


@st.composite
def mutated_specs(draw: st.DrawFn, spec_schema: Spec) -> tuple[Any, list[Any]]:
    doc = draw_valid(draw, spec_schema)
    expectations = []
    for _ in range(draw(st.integers(1, 2))):
        # Pick the kind of mutation first, then a node that allows it: every class gets its
        # share, not just the wrong types that fit everywhere.
        offers = [
            (path, s, value, mutations(draw, s, value))
            for path, s, value in sites(doc, spec_schema)
        ]
        name = draw(st.sampled_from(sorted({n for *_, m in offers for n in m})))
        path, s, value, available = draw(st.sampled_from([o for o in offers if name in o[3]]))
        new, expect = available[name]()
        doc = replace_at(doc, path, new)
        expectations.append(None if expect is None else ((*path, *expect[0]), expect[1]))
    return doc, expectations


def explain(kind: str, spec: Any, oracle: Oracle) -> str:
    return (
        f"kind={kind}\nspec={spec!r}\nmeshlens={validate_spec(kind, spec, cel=False)}\n"
        f"jsonschema={oracle.errors(spec)}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_valid_documents(
    kind: str, crd_schemas: dict[str, Any], oracles: dict[str, Oracle]
) -> None:
    strategy = valid_specs(Spec(kind, crd_schemas[kind]))

    @PROFILE
    @given(st.data())
    def run(data: st.DataObject) -> None:
        spec = data.draw(strategy)
        note(explain(kind, spec, oracles[kind]))
        assert oracles[kind].accepts(spec)  # the generator is right...
        assert validate_spec(kind, spec, cel=False) == []  # ...and so is meshlens

    run()


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_mutated_documents(
    kind: str, crd_schemas: dict[str, Any], oracles: dict[str, Oracle]
) -> None:
    strategy = mutated_specs(Spec(kind, crd_schemas[kind]))
    verdicts: list[bool] = []

    @PROFILE
    @given(st.data())
    def run(data: st.DataObject) -> None:
        spec, expectations = data.draw(strategy)
        note(explain(kind, spec, oracles[kind]))
        problems = validate_spec(kind, spec, cel=False)
        accepted = oracles[kind].accepts(spec)
        assert (problems == []) == accepted
        verdicts.append(accepted)
        if len(expectations) == 1 and expectations[0] is not None and not accepted:
            # A single mutation is reported where it was made, with the expected code.
            path, code = expectations[0]
            assert (("spec", *path), code) in pairs(problems)

    run()
    # The mutations mostly break documents; a test that only saw valid ones would prove little.
    assert verdicts.count(False) >= len(verdicts) // 3
