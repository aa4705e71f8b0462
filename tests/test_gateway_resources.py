"""Istio ``Gateway`` and Kubernetes ``Secret`` as resources: decoding, schema, webhook.

Each case cites the Go function of pkg/config/validation it mirrors (``ValidateGateway``,
``validateServer``, ``validateServerPort``, ``validateServerBind``, ``validateTLSOptions``,
``agent.ValidateNamespaceSlashWildcardHostname``).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from meshlens.pipeline import load_string
from meshlens.resources.webhook import validate_webhook


def gw(servers: Any, name: str = "gw", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"servers": servers, **spec}}


def http(port: int = 80, name: str = "http", hosts: Any = ("*",), **extra: Any) -> dict[str, Any]:
    return {"port": {"number": port, "name": name, "protocol": "HTTP"}, "hosts": list(hosts), **extra}


def https(tls: Any, port: int = 443, name: str = "https", hosts: Any = ("*.example.com",)) -> dict[str, Any]:
    out = {"port": {"number": port, "name": name, "protocol": "HTTPS"}, "hosts": list(hosts)}
    if tls is not None:
        out["tls"] = tls
    return out


def verdicts(obj: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(f.message, f.warning) for f in validate_webhook("Gateway", obj)]


CASES = [
    # ValidateGateway
    ("valid http", gw([http()]), []),
    ("valid https credentialName", gw([https({"mode": "SIMPLE", "credentialName": "c"})]), []),
    ("name is a DNS label", gw([http()], name="a.b"), [('invalid gateway name: "a.b"', False)]),
    ("no servers", gw([]), [("gateway must have at least one server", False)]),
    ("duplicate port names", gw([http(), http(8080)]),
     [("port names in servers must be unique: duplicate name http", False)]),
    ("httpsRedirect on non-HTTP", gw([https({"mode": "SIMPLE", "credentialName": "c", "httpsRedirect": True})]),
     [("tls.httpsRedirect should only be used with http servers", True)]),
    # validateServer / agent.ValidateNamespaceSlashWildcardHostname (isGateway)
    ("no hosts", gw([http(hosts=[])]), [("server config must contain at least one host", False)]),
    ("short host", gw([http(hosts=["reviews"])]), [("short names (non FQDN) are not allowed", False)]),
    ("ns/host, ./host, */host and IP", gw([http(hosts=["bookinfo/a.com", "./b.com", "*/c.com", "10.0.0.1"])]),
     []),
    ("bad namespace", gw([http(hosts=["Bad_NS/a.com"])]), [('invalid namespace value "Bad_NS" in gateway', False)]),
    ("partial wildcard", gw([http(hosts=["a*.com"])]),
     [('domain name "a*.com" invalid (label "a*" invalid)', False),
      ('partial wildcard "a*.com" not allowed', False)]),
    ("HTTPS without tls", gw([https(None)]), [("server must have TLS settings for HTTPS/TLS protocols", False)]),
    ("HTTP with SIMPLE tls", gw([http(tls={"mode": "SIMPLE", "credentialName": "c"})]),
     [("server cannot have TLS settings for plain text HTTP ports", False)]),
    ("HTTP with httpsRedirect only", gw([http(tls={"httpsRedirect": True})]), []),
    ("TCP with tls", gw([{"port": {"number": 31400, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"],
                          "tls": {"mode": "SIMPLE", "credentialName": "c"}}]),
     [("server cannot have TLS settings for non HTTPS/TLS ports", False)]),
    # validateServerPort
    ("unknown protocol", gw([{"port": {"number": 80, "name": "x", "protocol": "QUIC"}, "hosts": ["*"]}]),
     [('invalid protocol "QUIC", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, '
       "MYSQL, TCP", False)]),
    ("port out of range", gw([http(port=70000)]), [("port number 70000 must be in the range 1..65535", False)]),
    ("targetPort", gw([{"port": {"number": 80, "name": "h", "protocol": "HTTP", "targetPort": 8080},
                        "hosts": ["*"]}]), [("targetPort has no impact on Gateways", False)]),
    # validateServerBind
    ("bind not an IP", gw([http(bind="localhost")]), [("localhost is not a valid IP", False)]),
    # validateTLSOptions
    ("SIMPLE without certs", gw([https({"mode": "SIMPLE"})]),
     [("SIMPLE TLS requires a server certificate", False), ("SIMPLE TLS requires a private key", False)]),
    ("MUTUAL with files lacks CA", gw([https({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k"})]),
     [("MUTUAL TLS requires a client CA bundle", False)]),
    ("ISTIO_MUTUAL with credentialName", gw([https({"mode": "ISTIO_MUTUAL", "credentialName": "c"})]),
     [("ISTIO_MUTUAL TLS cannot have associated credentialName", False)]),
    ("PASSTHROUGH ignores certs", gw([https({"mode": "PASSTHROUGH", "credentialName": "c"})]),
     [("PASSTHROUGH mode does not use certificates, they will be ignored", True)]),
    ("two cert sources", gw([https({"mode": "SIMPLE", "credentialName": "c", "serverCertificate": "/c",
                                    "privateKey": "/k"})]),
     [("only one of credential_name, credential_names, server_certificate/private_key, tls_certificates "
       "should be specified", False)]),
    ("invalid cipher", gw([https({"mode": "SIMPLE", "credentialName": "c", "cipherSuites": ["NOPE", "AES128-SHA"]})]),
     [("ignoring invalid cipher suites: [NOPE]", True)]),
    ("CRL with SIMPLE", gw([https({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k",
                                   "caCrl": "/crl"})]), [("CRL is not supported with SIMPLE TLS", False)]),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gateway_webhook(obj: dict[str, Any], expected: list[tuple[str, bool]]) -> None:
    assert sorted(verdicts(obj)) == sorted(expected)


def test_gateway_is_decoded_in_every_version_and_rejected_with_a_line() -> None:
    docs = []
    for version in ("v1", "v1beta1", "v1alpha3"):
        docs.append({"apiVersion": f"networking.istio.io/{version}", "kind": "Gateway",
                     "metadata": {"name": f"gw-{version}", "namespace": "default"},
                     "spec": {"selector": {"istio": "ingressgateway"}, "servers": [http()]}})
    docs.append({"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
                 "metadata": {"name": "broken", "namespace": "default"},
                 "spec": {"servers": [{"port": {"number": 80, "protocol": "HTTP"}, "hosts": ["*"]}]}})
    loaded = load_string(yaml.safe_dump_all(docs), "gw.yaml")
    names = sorted(r.name for r in loaded.mesh.of_kind("Gateway"))
    assert names == ["gw-v1", "gw-v1alpha3", "gw-v1beta1"]
    [diag] = [d for d in loaded.diagnostics if d.resource and d.resource.name == "broken"]
    assert diag.code == "ML0101" and diag.span.line > 1 and "name" in diag.message


def test_secret_keeps_key_names_never_values() -> None:
    text = """
apiVersion: v1
kind: Secret
metadata: {name: bookinfo-cred, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: c2VjcmV0LWNlcnQ=, tls.key: c2VjcmV0LWtleQ==}
stringData: {ca.crt: PLAINTEXT-SECRET}
"""
    loaded = load_string(text, "secret.yaml")
    [secret] = loaded.mesh.of_kind("Secret")
    assert secret.body["data"] == {"tls.crt": "", "tls.key": ""}
    assert secret.body["stringData"] == {"ca.crt": ""}
    assert "c2VjcmV0" not in repr(secret.body) and "PLAINTEXT" not in repr(secret.body)
    assert not [d for d in loaded.diagnostics if d.code == "ML0003"]
