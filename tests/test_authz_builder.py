"""Istio's authz builder goldens (``pilot/pkg/security/authz/builder/testdata``) reproduced.

For each case of ``builder_test.go`` (``TestGenerator_GenerateHTTP``, both passes: plain and
``extended``, whose goldens are the ``extended-*`` files; and ``TestGenerator_GenerateTCP``: 51
comparisons in all) the policies are read from Istio's source, built by
meshlens's :class:`AuthzBuilder` for the same proxy (``foo``, ``app=httpbin,version=v1``), trust
domain bundle and MeshConfig, and checked twice: against meshlens's own golden
(``tests/goldens/authz/<case>.json``, regenerated with ``--update-goldens``) and, field by field,
against Istio's golden output. Istio's files are never copied into this repository: the tests read
them from a checkout of Istio's source named by ``ISTIO_SOURCE`` (a git directory; the mirror's
bare repo works) and are skipped when it is not set -- the one environment-dependent skip here.
``testdata/http/allow-host-before-111-*`` is not a case of ``builder_test.go`` (a golden for
proxies older than 1.11: regex host matchers that Istio master's builder no longer writes).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from golden import check
from meshlens.compiler import filters as flt
from meshlens.compiler.authz.builder import AuthzBuilder
from meshlens.compiler.authz.extauthz import process_providers
from meshlens.compiler.authz.policies import TrustDomainBundle, select_policies
from meshlens.emit import to_dict
from meshlens.model.mesh import MeshConfig
from meshlens.pipeline import load_string

SOURCE = os.environ.get("ISTIO_SOURCE", "")
TESTDATA = "pilot/pkg/security/authz/builder/testdata/"
GOLDENS = Path(__file__).parent / "goldens" / "authz"
needs_source = pytest.mark.skipif(not SOURCE, reason="ISTIO_SOURCE (Istio's git source) not set")

# The MeshConfigs of builder_test.go (meshConfigGRPCNoNamespace, meshConfigGRPC, meshConfigHTTP,
# meshConfigInvalid), written as MeshConfig YAML would give them.
GRPC_NO_NS = {"extensionProviders": [{"name": "default", "envoyExtAuthzGrpc": {
    "service": "my-custom-ext-authz.foo.svc.cluster.local", "port": 9000, "failOpen": True,
    "statusOnError": "403"}}]}
GRPC = {"extensionProviders": [{"name": "default", "envoyExtAuthzGrpc": {
    "service": "foo/my-custom-ext-authz.foo.svc.cluster.local", "port": 9000, "timeout": "0.002s",
    "failOpen": True, "statusOnError": "403",
    "includeRequestBodyInCheck": {"maxRequestBytes": 4096, "allowPartialMessage": True}}}]}
_HEADERS = ["x-prefix-*", "*-suffix"]
HTTP = {"extensionProviders": [{"name": "default", "envoyExtAuthzHttp": {
    "service": "foo/my-custom-ext-authz.foo.svc.cluster.local", "port": 9000, "timeout": "10s",
    "failOpen": True, "statusOnError": "403", "pathPrefix": "/check",
    "includeRequestHeadersInCheck": ["x-custom-id", *_HEADERS],
    "includeHeadersInCheck": ["should-not-include-when-IncludeRequestHeadersInCheck-is-set"],
    "includeAdditionalHeadersInCheck": {"x-header-1": "value-1", "x-header-2": "value-2"},
    "includeRequestBodyInCheck": {"maxRequestBytes": 2048, "allowPartialMessage": True,
                                  "packAsBytes": True},
    "headersToUpstreamOnAllow": ["Authorization", *_HEADERS],
    "headersToDownstreamOnDeny": ["Set-cookie", *_HEADERS],
    "headersToDownstreamOnAllow": ["Set-cookie", *_HEADERS]}}]}
INVALID = {"extensionProviders": [{"name": "default", "envoyExtAuthzHttp": {
    "service": "foo/my-custom-ext-authz", "port": 999999, "pathPrefix": "check",
    "statusOnError": "999"}}]}

# (case, input, mesh config, trust domain bundle, Istio's golden files)
CASES: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], list[str]]] = [
    ("allow-empty-rule", "http/allow-empty-rule-in", None, (), ["allow-empty-rule-out"]),
    ("allow-full-rule", "http/allow-full-rule-in", None, (), ["allow-full-rule-out"]),
    ("allow-nil-rule", "http/allow-nil-rule-in", None, (), ["allow-nil-rule-out"]),
    ("allow-path", "http/allow-path-in", None, (), ["allow-path-out"]),
    ("audit-full-rule", "http/audit-full-rule-in", None, (), ["audit-full-rule-out"]),
    ("custom-grpc-provider-no-namespace", "http/custom-simple-http-in", GRPC_NO_NS, (),
     ["custom-grpc-provider-no-namespace-out1", "custom-grpc-provider-no-namespace-out2"]),
    ("custom-grpc-provider", "http/custom-simple-http-in", GRPC, (),
     ["custom-grpc-provider-out1", "custom-grpc-provider-out2"]),
    ("custom-http-provider", "http/custom-simple-http-in", HTTP, (),
     ["custom-http-provider-out1", "custom-http-provider-out2"]),
    ("custom-bad-multiple-providers", "http/custom-bad-multiple-providers-in", HTTP, (),
     ["custom-bad-multiple-providers-out1", "custom-bad-multiple-providers-out2"]),
    ("custom-bad-invalid-config", "http/custom-simple-http-in", INVALID, (), ["custom-bad-out"]),
    ("deny-and-allow", "http/deny-and-allow-in", None, (),
     ["deny-and-allow-out1", "deny-and-allow-out2"]),
    ("deny-empty-rule", "http/deny-empty-rule-in", None, (), ["deny-empty-rule-out"]),
    ("dry-run-allow-and-deny", "http/dry-run-allow-and-deny-in", None, (),
     ["dry-run-allow-and-deny-out1", "dry-run-allow-and-deny-out2"]),
    ("dry-run-allow", "http/dry-run-allow-in", None, (), ["dry-run-allow-out"]),
    ("dry-run-mix", "http/dry-run-mix-in", None, (), ["dry-run-mix-out"]),
    ("multiple-policies", "http/multiple-policies-in", None, (), ["multiple-policies-out"]),
    ("single-policy", "http/single-policy-in", None, (), ["single-policy-out"]),
    ("trust-domain-one-alias", "http/simple-policy-td-aliases-in", None,
     ("td1", "cluster.local"), ["simple-policy-td-aliases-out"]),
    ("trust-domain-multiple-aliases", "http/simple-policy-multiple-td-aliases-in", None,
     ("td1", "cluster.local", "some-td"), ["simple-policy-multiple-td-aliases-out"]),
    ("trust-domain-wildcard-in-principal", "http/simple-policy-principal-with-wildcard-in", None,
     ("td1", "foobar"), ["simple-policy-principal-with-wildcard-out"]),
    ("trust-domain-aliases-in-source-principal", "http/td-aliases-source-principal-in", None,
     ("new-td", "old-td", "some-trustdomain"), ["td-aliases-source-principal-out"]),
    ("trust-domains-field", "http/trust-domains-in", None, (), ["trust-domains-out"]),
    ("tcp-allow-both-http-tcp", "tcp/allow-both-http-tcp-in", None, (), ["allow-both-http-tcp-out"]),
    ("tcp-allow-only-http", "tcp/allow-only-http-in", None, (), ["allow-only-http-out"]),
    ("tcp-audit-both-http-tcp", "tcp/audit-both-http-tcp-in", None, (), ["audit-both-http-tcp-out"]),
    ("tcp-custom-both-http-tcp", "tcp/custom-both-http-tcp-in", GRPC, (),
     ["custom-both-http-tcp-out1", "custom-both-http-tcp-out2"]),
    ("tcp-custom-only-http", "tcp/custom-only-http-in", HTTP, (), []),
    ("tcp-deny-both-http-tcp", "tcp/deny-both-http-tcp-in", None, (), ["deny-both-http-tcp-out"]),
    ("tcp-dry-run-mix", "tcp/dry-run-mix-in", None, (), ["dry-run-mix-out"]),
]

# `TestGenerator_GenerateHTTP` runs its cases twice, the second time (``extended``) against the
# ``extended-*`` goldens (the same builder option both times: the loop only renames the wants).
EXTENDED = [(f"extended-{c}", src, mesh, bundle, [f"extended-{w}" for w in wants])
            for c, src, mesh, bundle, wants in CASES if src.startswith("http/")]


class _Service:
    def __init__(self, hostname: str, namespace: str) -> None:
        self.hostname, self.namespace = hostname, namespace


class _Registry:
    """The test's ``ServiceIndex``: one service, ``my-custom-ext-authz.foo.svc.cluster.local``."""

    by_host = {"my-custom-ext-authz.foo.svc.cluster.local":
               [_Service("my-custom-ext-authz.foo.svc.cluster.local", "foo")]}

    def service(self, hostname: str, namespace: str | None = None) -> _Service | None:
        return next((s for s in self.by_host.get(hostname, [])
                     if namespace is None or s.namespace == namespace), None)


def _istio(path: str) -> str:
    return subprocess.run(["git", "-C", SOURCE, "show", f"HEAD:{TESTDATA}{path}"],
                          capture_output=True, text=True, check=True).stdout


def build(source: str, mesh: dict[str, Any] | None, bundle: tuple[str, ...]) -> list[Any]:
    """``New`` + ``BuildHTTP``/``BuildTCP`` for the test's proxy, as builder_test.go calls them."""
    loaded = load_string(_istio(source + ".yaml"), source, admission=False)  # crd.ParseInputs
    selected = select_policies(loaded.mesh.resources, "foo", {"app": "httpbin", "version": "v1"}, "")
    builder = AuthzBuilder(selected, TrustDomainBundle(bundle), custom=mesh is not None,
                           providers=process_providers(MeshConfig(mesh), _Registry()) if mesh else None)
    if source.startswith("tcp/"):
        return [flt.network_filter(b.name, b.config) for b in builder.build_tcp()]
    return [flt.http_filter(b.name, b.config) for b in builder.build_http()]


@needs_source
@pytest.mark.parametrize(("case", "source", "mesh", "bundle", "wants"), CASES + EXTENDED,
                         ids=[c[0] for c in CASES + EXTENDED])
def test_builder_golden(case: str, source: str, mesh: dict[str, Any] | None,
                        bundle: tuple[str, ...], wants: list[str], update_goldens: bool) -> None:
    got = build(source, mesh, bundle)
    own = case.removeprefix("extended-")  # the extended pass builds the same filters
    check(GOLDENS / f"{own}.json", json.dumps([to_dict(f) for f in got], indent=2) + "\n",
          update_goldens)
    assert len(got) == len(wants), f"got {len(got)} filters, Istio has {len(wants)}"
    for filt, want_file in zip(got, wants, strict=True):
        want = type(filt)()
        json_format.ParseDict(yaml.safe_load(_istio(source.split("/")[0] + "/" + want_file + ".yaml")),
                              want)
        assert filt.name == want.name
        assert filt.typed_config.type_url == want.typed_config.type_url
        assert to_dict(filt) == to_dict(want), f"{case}: differs from Istio's {want_file}"

