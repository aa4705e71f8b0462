"""istiod's validating webhook, as meshlens mirrors it (meshlens.resources.webhook and .re2).

Each case is a spec fragment and the verdict istiod's ``pkg/config/validation`` gives it, with
its wording; the pipeline tests check the hook in ``decode_documents`` (errors reject the
resource with a line number, warnings keep it) and that names which would collide in Envoy
never get that far.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshlens.loader import load_text
from meshlens.pipeline import compile_for, load_string
from meshlens.resources import decode_documents
from meshlens.resources.re2 import re2_error
from meshlens.resources.schema import render_field, validate_spec
from meshlens.resources.webhook import validate_metadata, validate_webhook

OK: list[str] = []


def verdicts(
    kind: str, spec: dict[str, Any], *, ns: str = "default", meta: dict[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    """(level, field, message) for every finding; the spec must pass the CRD schema first."""
    assert validate_spec(kind, spec) == [], validate_spec(kind, spec)
    obj = {"metadata": {"name": "x", "namespace": ns, **(meta or {})}, "spec": spec}
    return [
        ("warning" if f.warning else "error", render_field(f.path), f.message)
        for f in validate_webhook(kind, obj)
    ]


def errors(kind: str, spec: dict[str, Any], **kw: Any) -> list[str]:
    return [m for level, _, m in verdicts(kind, spec, **kw) if level == "error"]


def warnings(kind: str, spec: dict[str, Any], **kw: Any) -> list[str]:
    return [m for level, _, m in verdicts(kind, spec, **kw) if level == "warning"]


def dr(**spec: Any) -> dict[str, Any]:
    return {"host": "reviews", **spec}


def tp(**policy: Any) -> dict[str, Any]:
    return dr(trafficPolicy=policy)


def vs(*http: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"hosts": ["reviews"], "http": list(http), **spec}


def route(**extra: Any) -> dict[str, Any]:
    return {"route": [{"destination": {"host": "reviews"}}], **extra}


# --- DestinationRule ------------------------------------------------------------------------------

DESTINATION_RULE_CASES = [
    # (spec, expected errors, expected warnings)
    (dr(), OK, OK),
    (dr(host="*.example.com"), OK, OK),
    (dr(host="reviews|v1"), ['domain name "reviews|v1" invalid (label "reviews|v1" invalid)'], OK),
    (
        dr(host="reviews:9080"),
        ['domain name "reviews:9080" invalid (label "reviews:9080" invalid)'],
        OK,
    ),
    (
        dr(host="a b.example.com"),
        ['domain name "a b.example.com" invalid (label "a b" invalid)'],
        OK,
    ),
    # istiod checks the labels after the first one on their own, and names just those
    (
        dr(host="example.123"),
        ['domain name "123" invalid (top level domain "123" cannot be all-numeric)'],
        OK,
    ),
    (dr(subsets=[{"name": "v1_a"}]), ["subset name is invalid: v1_a"], OK),
    (dr(subsets=[{"name": "v1"}, {"name": "v1"}]), ["duplicate subset names: v1"], OK),
    (dr(subsets=[{"name": ""}]), ["subset name cannot be empty"], OK),
    (dr(subsets=[{"name": "v1", "labels": {"version": "v 1"}}]), ['invalid tag value: "v 1"'], OK),
    (dr(trafficPolicy={}), ["traffic policy must have at least one field"], OK),
    (
        tp(outlierDetection={"interval": "1500us"}),
        ["only durations to ms precision are supported"],
        OK,
    ),
    (
        tp(outlierDetection={"baseEjectionTime": "30s", "maxEjectionPercent": 150}),
        ["percentage 150 is not in range 0..100"],
        OK,
    ),
    (
        tp(outlierDetection={"consecutiveErrors": 5}),
        OK,
        [
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or "
            "consecutive5xxErrors instead"
        ],
    ),
    (
        tp(outlierDetection={"consecutiveLocalOriginFailures": 3}),
        [
            "outlier detection consecutive local origin failures is specified, but split external "
            "local "
            "origin errors is set to false"
        ],
        OK,
    ),
    (
        tp(
            outlierDetection={
                "consecutiveLocalOriginFailures": 3,
                "splitExternalLocalOriginErrors": True,
            }
        ),
        OK,
        OK,
    ),
    (tp(connectionPool={}), ["connection pool must have at least one field"], OK),
    (
        tp(connectionPool={"http": {"http1MaxPendingRequests": -1}}),
        ["http1 max pending requests must be non-negative"],
        OK,
    ),
    (
        tp(connectionPool={"http": {"h2UpgradePolicy": "UPGRADE", "useClientProtocol": True}}),
        ["use client protocol must not be true when H2UpgradePolicy is UPGRADE"],
        OK,
    ),
    (
        tp(connectionPool={"http": {"http2KeepAlive": {"interval": "1s"}}}),
        ["http2 keepalive timeout is required"],
        OK,
    ),
    (tp(connectionPool={"tcp": {"idleTimeout": "0s"}}), OK, OK),
    (tp(connectionPool={"tcp": {"idleTimeout": "500us"}}), OK, OK),  # rounds to 0ms: skipped
    (
        tp(connectionPool={"tcp": {"idleTimeout": "1500us"}}),
        ["only durations to ms precision are supported"],
        OK,
    ),
    (
        tp(connectionPool={"tcp": {"idleTimeout": "1 hour"}}),
        ['time: invalid duration "1 hour"'],
        OK,
    ),
    (
        tp(loadBalancer={"consistentHash": {"maglev": {"tableSize": 65536}, "useSourceIp": True}}),
        ["tableSize must be a prime number for maglev"],
        OK,
    ),
    (
        tp(loadBalancer={"consistentHash": {"maglev": {"tableSize": 65537}, "useSourceIp": True}}),
        OK,
        OK,
    ),
    (
        tp(loadBalancer={"consistentHash": {"useSourceIp": True, "minimumRingSize": 1024}}),
        OK,
        [
            "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash "
            "configuration "
            "instead"
        ],
    ),
    (
        tp(loadBalancer={"consistentHash": {"httpCookie": {"name": "", "ttl": "0s"}}}),
        ["name required for HttpCookie"],
        OK,
    ),
    (
        tp(
            loadBalancer={
                "localityLbSetting": {
                    "distribute": [{"from": "us-east/*", "to": {"us-east/*": 50, "us-west/*": 40}}]
                }
            }
        ),
        ["total locality weight 90 != 100"],
        OK,
    ),
    (
        tp(
            loadBalancer={
                "localityLbSetting": {"failover": [{"from": "us-east", "to": "us-east"}]}
            },
            outlierDetection={"interval": "1s"},
        ),
        ["locality lb failover settings must specify different regions"],
        OK,
    ),
    (
        tp(
            loadBalancer={"localityLbSetting": {"failover": [{"from": "us-east", "to": "us-west"}]}}
        ),
        OK,
        ["outlier detection policy must be provided for failover"],
    ),
    (
        tp(loadBalancer={"warmup": {"duration": "10s", "aggression": 0}}),
        ["aggression should be greater than 0"],
        OK,
    ),
    (
        tp(tls={"mode": "MUTUAL"}),
        ["client certificate required for mutual tls", "private key required for mutual tls"],
        OK,
    ),
    (tp(tls={"mode": "MUTUAL", "credentialName": "cert"}), OK, OK),
    (
        tp(tls={"mode": "SIMPLE", "insecureSkipVerify": True, "caCertificates": "/ca.pem"}),
        [
            "cannot specify CaCertificates or CredentialName or SubjectAltNames when "
            "InsecureSkipVerify is "
            "set true"
        ],
        OK,
    ),
    (
        tp(tls={"mode": "SIMPLE", "credentialName": "configmap://other/ca"}),
        [
            "invalid configmap:// credentialName: namespace must match the configuration namespace "
            '"default"'
        ],
        OK,
    ),
    (tp(tls={"mode": "ISTIO_MUTUAL", "sni": "x", "clientCertificate": "/ignored"}), OK, OK),
    (
        tp(portLevelSettings=[{"port": {"number": 80}}]),
        ["port traffic policy must have at least one field"],
        OK,
    ),
    (
        tp(portLevelSettings=[{"tls": {"mode": "SIMPLE"}}]),
        ["portTrafficPolicy must have valid port"],
        OK,
    ),
    (
        tp(
            tunnel={"targetHost": "proxy.example.com", "targetPort": 443},
            proxyProtocol={"version": "V1"},
        ),
        ["tunnel and proxyProtocol must not be set together"],
        OK,
    ),
    (
        tp(tunnel={"protocol": "GET", "targetHost": "proxy.example.com", "targetPort": 443}),
        ['tunnel protocol must be "CONNECT" or "POST"'],
        OK,
    ),
    (
        dr(exportTo=["default", "."]),
        ["duplicate entries in exportTo: . and current namespace default"],
        OK,
    ),
    (dr(exportTo=[".", "default"]), ["duplicate entries in exportTo for entry default"], OK),
    (
        dr(exportTo=["*", "team-a"]),
        ["cannot have both public (*) and non-public exportTo values for a resource"],
        OK,
    ),
    (dr(exportTo=["~"]), ["exportTo ~ (none) is not allowed for Istio configuration objects"], OK),
    (
        dr(exportTo=["Team_A"]),
        ["only .,*, or a valid DNS 1123 label is allowed as exportTo entry"],
        OK,
    ),
    (
        dr(workloadSelector={"matchLabels": {"app": "a"}}, exportTo=["other"]),
        ["destination rule with workload selector cannot have exportTo beyond current namespace"],
        OK,
    ),
    (dr(workloadSelector={"matchLabels": {}}), OK, ["workload selector specified without labels"]),
]


@pytest.mark.parametrize(("spec", "errs", "warns"), DESTINATION_RULE_CASES)
def test_destination_rule(spec: dict[str, Any], errs: list[str], warns: list[str]) -> None:
    assert errors("DestinationRule", spec) == errs
    assert warnings("DestinationRule", spec) == warns


# --- VirtualService -------------------------------------------------------------------------------

VIRTUAL_SERVICE_CASES = [
    (vs(route()), OK, OK),
    (vs(route(), hosts=["10.0.0.1"]), OK, OK),  # an IP is allowed as a host
    (
        vs({"route": [{"destination": {"host": "reviews", "subset": "v1_x"}}]}),
        ["subset name is invalid: v1_x"],
        OK,
    ),
    (vs({"route": [{"destination": {"host": "*"}}]}), ["invalid destination host *"], OK),
    (
        vs({"route": [{"destination": {"host": "reviews", "port": {}}}]}),
        ["port number 0 must be in the range 1..65535"],
        OK,
    ),
    (
        vs(route(), hosts=["*"]),
        ["wildcard host * is not allowed for virtual services bound to the mesh gateway"],
        OK,
    ),
    (
        vs(route(), hosts=["a.example.com", "*.example.com"]),
        ["duplicate hosts in virtual service: a.example.com & *.example.com"],
        OK,
    ),
    ({"hosts": ["reviews"]}, ["http, tcp or tls must be provided in virtual service"], OK),
    (
        vs(route(match=[{"headers": {"x-user": {"regex": "(a)\\1"}}}])),
        [
            '"headers": error parsing regexp: invalid escape sequence: `\\1`; Istio uses RE2 style '
            "regex-based match (https://github.com/google/re2/wiki/Syntax)"
        ],
        OK,
    ),
    (
        vs(route(match=[{"uri": {"regex": "/api(?=/v1)"}}])),
        [
            '"uri": error parsing regexp: invalid or unsupported Perl syntax: `(?=`; Istio uses '
            "RE2 style "
            "regex-based match (https://github.com/google/re2/wiki/Syntax)"
        ],
        OK,
    ),
    (
        vs(route(match=[{"uri": {"regex": "a" * 1025}}])),
        ['"uri": regex is too large, max length allowed is 1024'],
        OK,
    ),
    (vs(route(match=[{"uri": {"regex": "[[:alpha:]]+\\pL*\\z"}}])), OK, OK),  # RE2, not Python
    (vs(route(match=[{"withoutHeaders": {"x-debug": {"regex": "*"}}}])), OK, OK),  # "*" = present
    (
        vs(route(match=[{"headers": {"x-debug": {"regex": "*"}}}])),
        [
            '"headers": error parsing regexp: missing argument to repetition operator: `*`; Istio '
            "uses RE2 "
            "style regex-based match (https://github.com/google/re2/wiki/Syntax)"
        ],
        OK,
    ),
    (
        vs(route(match=[{"headers": {"bad header": {"exact": "1"}}}])),
        ["header name bad header is not a valid header name"],
        OK,
    ),
    (
        vs(route(match=[{"scheme": {"prefix": ""}}])),
        ['"scheme": prefix string match should not be empty'],
        OK,
    ),
    (
        vs(route(match=[{"sourceNamespace": "Team_A"}])),
        ["sourceNamespace match Team_A is invalid"],
        OK,
    ),
    (
        vs(route(headers={"response": {"set": {"Host": "x"}}, "request": {"remove": [":path"]}})),
        [
            'invalid header ":path": header cannot have ":" prefix',
            'invalid header "Host": cannot set Host header',
        ],
        OK,
    ),
    (
        vs(route(headers={"request": {"set": {"x-time": "%START_TIME%%"}}})),
        ["header value configuration: invalid header configuration. Un-escaped %"],
        OK,
    ),
    (
        vs(route(headers={"request": {"add": {"x-id": "%DOWNSTREAM_REMOTE_ADDRESS% ok 100%%"}}})),
        OK,
        OK,
    ),
    (
        vs(route(fault={"abort": {"httpStatus": 700, "percentage": {"value": 150}}})),
        [
            "percentage 150 is neither 0.0, nor in range [0.0001, 100.0]",
            "HTTP status 700 is not in range 200-599",
        ],
        OK,
    ),
    (
        vs(route(fault={"abort": {"grpcStatus": "NOPE"}})),
        [
            'gRPC status "NOPE" is not supported. See https://github.com/grpc/grpc/blob/master/doc/'
            "statuscodes.md for a list of supported codes, for example 'NOT_FOUND'"
        ],
        OK,
    ),
    (
        vs(route(fault={"delay": {"fixedDelay": "1500us"}})),
        ["only durations to ms precision are supported"],
        OK,
    ),
    (vs(route(retries={"attempts": -1})), ["attempts cannot be negative"], OK),
    (
        vs(route(retries={"attempts": 3, "retryOn": "5xx,bogus,503"})),
        ['"bogus" is not a valid retryOn policy'],
        OK,
    ),
    (
        vs(route(retries={"perTryTimeout": "2s"})),
        ["http retry policy configured when attempts are set to 0 (disabled)"],
        OK,
    ),
    (vs(route(redirect={"uri": "/x"})), ["HTTP route cannot contain both route and redirect"], OK),
    (
        vs({"redirect": {"uri": "/x", "redirectCode": 200}}),
        ["200 is not a valid redirect code, must be 3xx"],
        OK,
    ),
    (
        vs({"match": [{"uri": {"exact": "/a"}}], "redirect": {"prefixRewrite": "/b"}}),
        ["redirect prefix_rewrite requires all URI matches to use prefix match type"],
        OK,
    ),
    (
        vs(route(mirrorPercentage={"value": 120})),
        ["mirror_percentage must have a max value of 100 (it has 120.000000)"],
        OK,
    ),
    (
        vs(route(mirror={"host": "m"}, mirrors=[{"destination": {"host": "m2"}}])),
        ["HTTP route cannot contain both mirror and mirrors"],
        OK,
    ),
    (
        vs(route(mirrorPercent=50)),
        OK,
        ['using deprecated setting "mirrorPercent", use "mirrorPercentage" instead'],
    ),
    (
        vs(route(rewrite={"uriRegexRewrite": {"match": "(", "rewrite": "x"}})),
        [
            'UriRegexRewrite has errors\n"HTTPRewrite.UriRegexRewrite.Match": error parsing '
            "regexp: missing "
            "closing ): `(`; Istio uses RE2 style regex-based match "
            "(https://github.com/google/re2/wiki/"
            "Syntax)"
        ],
        OK,
    ),
    (
        vs(route(rewrite={"authority": "a"}, headers={"request": {"set": {":authority": "b"}}})),
        ['authority header cannot be set multiple times: have "a", attempting to set "b"'],
        OK,
    ),
    (
        vs(route(corsPolicy={"allowMethods": ["FETCH"], "maxAge": "1500ms"})),
        [
            '"FETCH" is not a supported HTTP method',
            "max_age duration is accurate only to seconds precision",
        ],
        OK,
    ),
    (vs(route(timeout="1500us")), ["only durations to ms precision are supported"], OK),
    ({"hosts": ["db"], "tcp": [{"match": [{"port": 5432}]}]}, ["TCP route is required"], OK),
    (
        {
            "hosts": ["db"],
            "tcp": [{"route": [{"destination": {"host": "a"}}, {"destination": {"host": "b"}}]}],
        },
        ["total destination weight = 0"],
        OK,
    ),
    (
        {"hosts": ["db"], "tcp": [{"route": [{"destination": {"host": "a"}, "weight": -1}]}]},
        ["weight -1 < 0"],
        OK,
    ),
    (
        {
            "hosts": ["*.example.com"],
            "tls": [
                {
                    "match": [{"sniHosts": ["api.other.org"]}],
                    "route": [{"destination": {"host": "a"}}],
                }
            ],
        },
        [
            'SNI host "api.other.org" is not a compatible subset of any of the virtual service '
            "hosts: "
            "[*.example.com]"
        ],
        OK,
    ),
    (
        vs(route(), gateways=["istio-system/Bad_Gw"]),
        ['invalid value for gateway name: "Bad_Gw"'],
        OK,
    ),
    (
        vs(route(match=[{"headers": {"@request.auth.claims.group": {"exact": "a"}}}])),
        [
            "JWT claim based routing (key: @request.auth.claims.group) is only supported for "
            "gateway, found no "
            "gateways: []"
        ],
        OK,
    ),
    (
        vs(route(), exportTo=["*", "a"]),
        ["cannot have both public (*) and non-public exportTo values for a resource"],
        OK,
    ),
]


@pytest.mark.parametrize(("spec", "errs", "warns"), VIRTUAL_SERVICE_CASES)
def test_virtual_service(spec: dict[str, Any], errs: list[str], warns: list[str]) -> None:
    assert errors("VirtualService", spec) == errs
    assert warnings("VirtualService", spec) == warns


# --- ServiceEntry, WorkloadEntry ------------------------------------------------------------------


def se(**spec: Any) -> dict[str, Any]:
    base = {
        "hosts": ["api.example.com"],
        "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
        "resolution": "DNS",
    }
    return {**base, **spec}


SERVICE_ENTRY_CASES = [
    (se(), OK, OK),
    (
        se(hosts=["bad host.example.com"], resolution="NONE"),
        ['domain name "bad host.example.com" invalid (label "bad host" invalid)'],
        OK,
    ),
    (
        se(hosts=["api|v2.example.com"]),  # DNS without endpoints also wants an FQDN
        [
            'domain name "api|v2.example.com" invalid (label "api|v2" invalid)',
            "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for "
            "resolution "
            'mode DNS, domain name "api|v2.example.com" invalid (label "api|v2" invalid)',
        ],
        OK,
    ),
    (
        se(hosts=["*foo.example.com"], resolution="NONE"),
        OK,
        ['partial wildcard "*foo.example.com" not allowed'],
    ),
    (
        se(
            ports=[
                {"number": 443, "name": "https", "protocol": "TLS"},
                {"number": 8443, "name": "https", "protocol": "TLS"},
            ]
        ),
        None,
        OK,
    ),  # a duplicate port name is the CRD's own rule (list-map key): not reached
    (
        se(ports=[{"number": 443, "name": "Bad_Name", "protocol": "TLS"}]),
        ["invalid port name: Bad_Name"],
        OK,
    ),
    (
        se(ports=[{"number": 443, "name": "p", "protocol": "FOO"}]),
        ["unsupported protocol: FOO"],
        OK,
    ),
    (
        se(resolution="STATIC", endpoints=[{"address": "api.internal"}]),
        ['endpoint address "api.internal" is not a valid IP address'],
        OK,
    ),
    (
        se(resolution="STATIC", endpoints=[{"address": "10.0.0.1", "ports": {"http": 8080}}]),
        ["endpoint port 8080 is not defined by the service entry"],
        OK,
    ),
    (
        se(hosts=["*.example.com"]),
        [
            "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for "
            "resolution "
            'mode DNS, domain name "*.example.com" invalid (label "*" invalid)'
        ],
        OK,
    ),
    (
        se(hosts=["api.example.com"], resolution="DYNAMIC_DNS"),
        ["host must be wildcarded for resolution mode DYNAMIC_DNS"],
        OK,
    ),
    (
        se(
            hosts=["a.example.com", "b.example.com"],
            ports=[{"number": 5432, "name": "pg", "protocol": "TCP"}],
        ),
        ["multiple hosts provided with non-HTTP, non-TLS ports"],
        OK,
    ),
    (
        se(resolution="NONE", ports=[{"number": 5432, "name": "pg"}]),
        OK,
        [
            "addresses are required for ports serving TCP (or unset) protocol when IP "
            "Autoallocation is not "
            "enabled"
        ],
    ),
    (se(resolution="NONE", addresses=["10.0.0.300"]), ["10.0.0.300 is not a valid IP"], OK),
    (
        se(resolution="NONE", addresses=["10.0.0.0/33"]),
        ["10.0.0.0/33 is not a valid CIDR block"],
        OK,
    ),
    (se(exportTo=["~"]), OK, OK),
    (se(exportTo=["~", "a"]), ["cannot export service entry to no one (~) and someone"], OK),
    (
        se(workloadSelector={"labels": {}}, resolution="STATIC"),
        OK,
        [
            "service entry: workload selector specified without labels, will be applied to all "
            "services in "
            "namespace"
        ],
    ),
]


@pytest.mark.parametrize(("spec", "errs", "warns"), SERVICE_ENTRY_CASES)
def test_service_entry(spec: dict[str, Any], errs: list[str] | None, warns: list[str]) -> None:
    if errs is None:
        assert validate_spec("ServiceEntry", spec), "the CRD schema rejects it already"
        return
    assert errors("ServiceEntry", spec) == errs
    assert warnings("ServiceEntry", spec) == warns


def test_workload_entry() -> None:
    assert errors("WorkloadEntry", {"address": "10.0.0.1", "ports": {"http": 8080}}) == []
    assert errors("WorkloadEntry", {"address": "vm.internal"}) == []  # FQDN allowed here
    assert errors("WorkloadEntry", {"address": "bad host"}) == [
        'endpoint address "bad host" is not a valid FQDN or an IP address'
    ]
    assert warnings("WorkloadEntry", {"network": "n1"}) == ['address is unset with network "n1"']


# --- Sidecar and PeerAuthentication ---------------------------------------------------------------

SIDECAR_CASES = [
    ({"egress": [{"hosts": ["./*", "istio-system/*"]}]}, OK, OK),
    ({}, ["sidecar: empty configuration provided"], OK),
    ({"egress": [{"hosts": ["reviews"]}]}, ["host must be of form namespace/dnsName"], OK),
    ({"egress": [{"hosts": ["./reviews"]}]}, ["short names (non FQDN) are not allowed"], OK),
    (
        {"egress": [{"hosts": ["*/*", "ns/a.example.com"]}]},
        OK,
        ["`*/*` host select all resources, no other hosts can be added"],
    ),
    (
        {"egress": [{"hosts": ["ns/a.example.com", "ns/a.example.com"]}]},
        OK,
        ["duplicated egress host: ns/a.example.com"],
    ),
    (
        {"egress": [{"hosts": ["./*"]}, {"hosts": ["./*"]}]},
        ["sidecar: the egress listener with empty port should be the last listener in the list"],
        OK,
    ),
    (
        {"egress": [{"port": {"number": 0, "protocol": "HTTP", "name": "uds"}, "hosts": ["./*"]}]},
        ["sidecar: ports with 0 value must have a unix domain socket bind address"],
        OK,
    ),
    (
        {
            "egress": [
                {
                    "port": {"number": 0, "protocol": "HTTP", "name": "uds"},
                    "bind": "unix://foo/bar",
                    "hosts": ["./*"],
                }
            ]
        },
        ["foo/bar is not an absolute path to a file"],
        OK,
    ),
    (
        {
            "ingress": [
                {"port": {"number": 80, "protocol": "HTTP", "name": "a"}},
                {"port": {"number": 80, "protocol": "HTTP", "name": "b"}},
            ]
        },
        ["sidecar: ports on IP bound listeners must be unique"],
        OK,
    ),
    (
        {
            "ingress": [
                {
                    "port": {"number": 80, "protocol": "HTTP", "name": "a"},
                    "defaultEndpoint": "1.2.3.4:8080",
                }
            ]
        },
        [
            "sidecar: defaultEndpoint must be of form "
            "127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,"
            "unix://filepath or unset"
        ],
        OK,
    ),
    (
        {
            "ingress": [
                {
                    "port": {"number": 80, "protocol": "HTTP", "name": "a"},
                    "defaultEndpoint": "127.0.0.1",
                }
            ]
        },
        [
            "address 127.0.0.1: missing port in address",
            'sidecar: defaultEndpoint port () is not a number: strconv.Atoi: parsing "": invalid '
            "syntax",
        ],
        OK,
    ),
    (
        {
            "ingress": [
                {
                    "port": {"number": 80, "protocol": "HTTP", "name": "a"},
                    "tls": {"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k"},
                }
            ]
        },
        ["server cannot have TLS settings for non HTTPS/TLS ports"],
        OK,
    ),
    (
        {
            "outboundTrafficPolicy": {
                "mode": "REGISTRY_ONLY",
                "egressProxy": {"host": "proxy.example.com"},
            }
        },
        ["sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode"],
        OK,
    ),
    (
        {"workloadSelector": {"labels": {}}, "egress": [{"hosts": ["./*"]}]},
        OK,
        [
            "sidecar: workload selector specified without labels, will be applied to all services "
            "in "
            "namespace"
        ],
    ),
]


@pytest.mark.parametrize(("spec", "errs", "warns"), SIDECAR_CASES)
def test_sidecar(spec: dict[str, Any], errs: list[str], warns: list[str]) -> None:
    assert errors("Sidecar", spec) == errs
    assert warnings("Sidecar", spec) == warns


def test_peer_authentication() -> None:
    assert verdicts("PeerAuthentication", {"mtls": {"mode": "STRICT"}}) == []
    assert warnings("PeerAuthentication", {"selector": {"matchLabels": {}}}) == [
        "workload selector specified without labels"
    ]


def test_metadata_annotations_reserved_by_istio() -> None:
    spec = dr()
    assert errors("DestinationRule", spec, meta={"annotations": {"istio.io/dry-run": "true"}}) == [
        "default/x has unsupported annotation istio.io/dry-run, please remove the annotation"
    ]
    assert errors(
        "DestinationRule",
        spec,
        meta={"annotations": {"internal.istio.io/webhook-always-reject": ""}},
    ) == ['"internal.istio.io/webhook-always-reject" annotation found, rejecting']


def test_object_names_as_the_api_server_checks_them() -> None:
    def msgs(kind: str, meta: dict[str, Any], namespaced: bool = True) -> list[str]:
        out = []
        for p in validate_metadata(kind, meta, namespaced=namespaced):
            field, _, rest = p.message.partition(": Invalid value: ")
            out.append(field + " " + rest.partition('": ')[2][:26])
        return out

    assert msgs("Service", {"name": "reviews", "namespace": "default"}) == []
    assert msgs("Service", {"name": "9reviews"}) == ["metadata.name a DNS-1035 label must cons"]
    assert msgs("DestinationRule", {"name": "my.rule-1"}) == []
    assert msgs("DestinationRule", {"name": "My|Rule"}) == [
        "metadata.name a lowercase RFC 1123 subdo"
    ]
    assert msgs("Namespace", {"name": "team.a"}, namespaced=False) == [
        "metadata.name a lowercase RFC 1123 label"
    ]
    assert msgs("Deployment", {"name": "web", "namespace": "Team A"}) == [
        "metadata.namespace a lowercase RFC 1123 label"
    ]
    assert msgs(
        "Deployment", {"name": "web", "labels": {"app name": "a", "tier": "front end"}}
    ) == [
        "metadata.labels[app name] name part must consist of ",
        "metadata.labels.tier a valid label must be an e",
    ]


# --- RE2 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        (r"^/api/v[0-9]+/(users|orders)/\d{1,6}$", None),
        (r"(?i)^bearer\s+[A-Za-z0-9._~+/-]+=*$", None),
        (r"\p{Greek}+[[:^digit:]]\x{1F600}\Q.*\E", None),
        (r"(a)\1", "invalid escape sequence: `\\1`"),
        (r"(?<=a)b", "invalid named capture: `(?<=a)b`"),
        (r"(?!a)", "invalid or unsupported Perl syntax: `(?!`"),
        (r"(?>a)", "invalid or unsupported Perl syntax: `(?>`"),
        (r"a++", "invalid nested repetition operator: `++`"),
        (r"a{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
        (r"a{1001}", "invalid repeat count: `{1001}`"),
        (r"(a{40}){40}", "invalid repeat count: `{40}`"),
        (r"\Z", "invalid escape sequence: `\\Z`"),
        (r"\u0041", "invalid escape sequence: `\\u`"),
        (r"[z-a]", "invalid character class range: `z-a`"),
        (r"[[:word]", None),  # not a POSIX class: a literal "[" then "]"
        (r"\p{Klingon}", "invalid character class range: `\\p{Klingon}`"),
    ],
)
def test_re2_verdicts(pattern: str, error: str | None) -> None:
    got = re2_error(pattern)
    assert got == (None if error is None else f"error parsing regexp: {error}")


GO_PROGRAM = """package main
import ("bufio"; "encoding/json"; "fmt"; "os"; "regexp")
func main() {
\tsc := bufio.NewScanner(os.Stdin)
\tfor sc.Scan() {
\t\tvar p string
\t\tjson.Unmarshal(sc.Bytes(), &p)
\t\t_, err := regexp.Compile(p)
\t\tmsg := ""
\t\tif err != nil { msg = err.Error() }
\t\tb, _ := json.Marshal(msg)
\t\tfmt.Println(string(b))
\t}
}
"""


def test_re2_agrees_with_go_regexp(tmp_path: Path) -> None:
    """Cross-check against the real thing when a Go toolchain is installed (skipped otherwise)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "no Go toolchain: the RE2 check is cross-checked against Go's regexp when one is"
        )
    (tmp_path / "main.go").write_text(GO_PROGRAM)
    built = subprocess.run(
        [go, "build", "-o", str(tmp_path / "re"), "main.go"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "GO111MODULE": "off",
            "GOCACHE": str(tmp_path / "cache"),
            "HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin:/usr/local/go/bin",
        },
    )
    if built.returncode != 0:
        pytest.skip(f"go build failed: {built.stderr[:200]}")
    version = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    minor = int(m.group(1)) if (m := re.search(r"go1\.(\d+)", version)) else 0
    rnd = random.Random(8)
    atoms = [
        *"ab.^$|()[]{}*+?-\\:,=!<>PpQEdDwWsSbBzZAx0123456789LiUm_ ",
        "(?",
        "(?P<",
        "{2}",
        "{1,3}",
        "{1001}",
        "{2,}",
        "[:alpha:]",
        "[:foo:]",
        "\\x{41}",
        "\\p{Greek}",
        "\\pL",
        "{100}",
        "]",
    ]
    patterns = sorted(
        {"".join(rnd.choice(atoms) for _ in range(rnd.randint(1, 16))) for _ in range(4000)}
    )
    if minor < 22:  # (?<name>...) arrived in Go 1.22; istiod is built with a newer Go
        patterns = [p for p in patterns if "(?<" not in p]
    out = subprocess.run(
        [str(tmp_path / "re")],
        input="\n".join(json.dumps(p) for p in patterns) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()
    assert len(out) == len(patterns)
    mismatches = [
        (p, json.loads(g) or None, re2_error(p))
        for p, g in zip(patterns, out, strict=True)
        if (json.loads(g) or None) != re2_error(p)
    ]
    assert not mismatches, mismatches[:10]


# --- the hook in decode_documents -----------------------------------------------------------------

BASE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: client, namespace: shop}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec: {containers: [{name: c, image: curl}]}
"""


def test_errors_reject_with_a_line_and_the_rest_still_compiles() -> None:
    text = (
        BASE
        + """\
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api.example.com
  subsets:
  - name: v1_canary
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 5}
"""
    )
    loaded = load_string(text, "m.yaml")
    lines = [d.format() for d in loaded.diagnostics]
    assert (
        "m.yaml:28:5: error: spec.subsets[0].name: subset name is invalid: v1_canary [ML0401] "
        "(DestinationRule shop/api)" in lines
    )
    assert any(
        line.startswith(
            "m.yaml:30:24: warning: spec.trafficPolicy.outlierDetection."
            "consecutiveErrors: outlier detection consecutive errors is deprecated"
        )
        for line in lines
    )
    assert [r.name for r in loaded.mesh.resources if r.kind == "DestinationRule"] == []
    result = compile_for(loaded, "deploy/client.shop")
    assert result.cluster("outbound|443||api.example.com") is not None


def test_warnings_keep_the_resource() -> None:
    text = (
        BASE
        + """\
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 5}
"""
    )
    loaded = load_string(text, "m.yaml")
    assert [d.code for d in loaded.diagnostics] == ["ML0402"]
    assert [r.name for r in loaded.mesh.resources if r.kind == "DestinationRule"] == ["web"]


def test_admission_off_keeps_webhook_errors_as_warnings() -> None:
    text = (
        BASE
        + "---\n"
        + """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec: {host: web, trafficPolicy: {tls: {mode: MUTUAL}}}
"""
    )
    docs = load_text(text, "m.yaml").documents
    on = decode_documents(docs)
    off = decode_documents(docs, admission=False)
    assert [d.code for d in on.diagnostics] == ["ML0401", "ML0401"]
    assert [d.code for d in off.diagnostics] == ["ML0404", "ML0404"]
    assert "DestinationRule" not in [r.kind for r in on.resources]
    assert "DestinationRule" in [r.kind for r in off.resources]


def test_names_that_would_collide_in_envoy_are_rejected_with_their_lines() -> None:
    """outbound|443|v1|other.example.com|api.example.com could be built two ways: subset
    "v1|other.example.com" of api.example.com, or subset v1 of host
    "other.example.com|api.example.com". istiod rejects both names, so does meshlens."""
    text = (
        BASE
        + """\
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api.example.com
  subsets: [{name: "v1|other.example.com"}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other, namespace: shop}
spec:
  hosts: ["other.example.com|api.example.com", "with space.example.com", "host:8443"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: other, namespace: shop}
spec:
  host: "other.example.com|api.example.com"
  subsets: [{name: v1}]
"""
    )
    loaded = load_string(text, "collide.yaml")
    errors_ = sorted(
        (d.span.line, d.message)
        for d in loaded.diagnostics
        if d.code == "ML0401" and d.span is not None
    )
    assert errors_ == [
        (27, "spec.subsets[0].name: subset name is invalid: v1|other.example.com"),
        (
            33,
            'spec.hosts[0]: domain name "example.com|api.example.com" invalid (label "com|api" '
            "invalid)",
        ),
        (
            33,
            "spec.hosts[0]: hosts must be FQDN or contain only prefix wildcards if no endpoints "
            "are "
            'provided for resolution mode DNS, domain name "other.example.com|api.example.com" '
            "invalid "
            '(label "com|api" invalid)',
        ),
        (
            33,
            'spec.hosts[1]: domain name "with space.example.com" invalid (label "with space" '
            "invalid)",
        ),
        (33, 'spec.hosts[2]: domain name "host:8443" invalid (label "host:8443" invalid)'),
        (
            41,
            'spec.host: domain name "example.com|api.example.com" invalid (label "com|api" '
            "invalid)",
        ),
    ]
    result = compile_for(loaded, "deploy/client.shop")
    names = [c.name for c in result.clusters]
    assert len(names) == len(set(names))
    assert all(n.count("|") == 3 for n in names if n.startswith(("outbound|", "inbound|")))
    assert "outbound|443|v1|other.example.com|api.example.com" not in names
