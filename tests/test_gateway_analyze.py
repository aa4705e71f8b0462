"""The gateway analyzers on meshlens's own inputs (Deployments, not only Pods): each one triggered
and not triggered. istioctl's own cases run in tests/test_analyze_conformance.py."""

from __future__ import annotations

import datetime
from pathlib import Path

from meshlens.analyze import by_name, run
from meshlens.analyze.inputs import load_for_analysis
from meshlens.analyze.report import finalize

CASES = Path(__file__).parent / "cases"


def findings(tmp_path: Path, text: str, analyzer: str, base: str = "gateway-resolve-ports") -> list[tuple[str, str]]:
    f = tmp_path / "extra.yaml"
    f.write_text(text)
    loaded = load_for_analysis([str(CASES / base / "manifests.yaml"), str(f)])
    out = finalize(run(loaded, proxies=(), analyzers=by_name([analyzer]),
                       include_input_diagnostics=False), loaded.mesh.resources)
    return sorted((x.code, x.message) for x in out)


GW = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: extra, namespace: shop}
spec:
  selector: {SELECTOR}
  servers:
  - port: {number: PORT, name: http-x, protocol: HTTP}
    hosts: ["x.example.com"]
"""


def gw(selector: str = "{istio: ingressgateway}", port: int = 80) -> str:
    return GW.replace("{SELECTOR}", selector).replace("PORT", str(port))


def test_port_analyzer(tmp_path: Path) -> None:
    a = "gateway.IngressGatewayPortAnalyzer"
    assert findings(tmp_path, gw(), a) == [("ML1182", (
        "The gateway is listening on a target port (port 9000) that is not defined in the Service "
        "associated with its workload instances (Pod selector istio=ingressgateway). If you need to "
        "access the gateway port through the gateway Service, it will not be available."))]
    # the case's own Gateway has a server on 9000 (not on the Service); the extra one on 80 is fine
    assert [c for c, _ in findings(tmp_path, gw(port=8080), a)] == ["ML1182"]
    assert findings(tmp_path, gw("{istio: nothing}"), a)[0] == (
        "ML1181", 'Referenced selector not found: "istio=nothing"')


def test_secret_analyzer(tmp_path: Path) -> None:
    a = "gateway.SecretAnalyzer"
    assert findings(tmp_path, "", a, base="gateway-https-credentials") == [
        ("ML1181", 'Referenced credentialName not found: "partners-cred"'),
        ("ML1183", "The credential referenced by the Gateway web-gw in namespace istio-system is "
                   "invalid, which can cause the traffic not to work as expected.")]
    # a valid certificate in the gateway pod's namespace: only the missing one remains
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import base64

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
    text = (CASES / "gateway-https-credentials" / "manifests.yaml").read_text().replace(
        "data: {tls.crt: Y2VydA==, tls.key: a2V5}", f"data: {{tls.crt: {pem}, tls.key: a2V5}}")
    f = tmp_path / "m.yaml"
    f.write_text(text)
    loaded = load_for_analysis([str(f)])
    out = finalize(run(loaded, proxies=(), analyzers=by_name([a]), include_input_diagnostics=False),
                   loaded.mesh.resources)
    assert [x.code for x in out] == ["ML1181"]
    assert pem not in repr([r.body for r in loaded.mesh.resources])


def test_conflicting_gateways(tmp_path: Path) -> None:
    a = "gateway.ConflictingGatewayAnalyzer"
    text = gw(port=80).replace("x.example.com", "web.example.com")
    got = findings(tmp_path, text, a)
    assert [c for c, _ in got] == ["ML1184", "ML1184"]
    assert {m for _, m in got} == {
        f"Conflict with gateways shop/{other} (workload selector istio=ingressgateway, port 80, "
        "hosts web.example.com)." for other in ("web-gw", "extra")}
    assert findings(tmp_path, gw(port=80), a) == []


def test_certificate_analyzer(tmp_path: Path) -> None:
    a = "gateway.CertificateAnalyzer"
    text = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["other.example.com"]
    tls: {mode: SIMPLE, credentialName: CRED}
"""
    got = findings(tmp_path, text.replace("CRED", "web-cred"), a, base="gateway-https-credentials")
    assert [c for c, _ in got] == ["ML1185", "ML1185"]
    assert "[shop/other shop/web-gw]" in got[0][1] or "[shop/web-gw shop/other]" in got[0][1]
    assert findings(tmp_path, text.replace("CRED", "own-cred"), a, base="gateway-https-credentials") == []


def test_virtual_service_gateways(tmp_path: Path) -> None:
    a = "virtualservice.GatewayAnalyzer"
    text = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: extra, namespace: shop}
spec:
  hosts: [HOST]
  gateways: [GW]
  http:
  - route: [{destination: {host: web}}]
"""
    assert findings(tmp_path, text.replace("HOST", "web.example.com").replace("GW", "web-gw"), a) == []
    assert findings(tmp_path, text.replace("HOST", "other.example.com").replace("GW", "web-gw"), a) == [
        ("ML1186", "one or more host [other.example.com] defined in VirtualService shop/extra not "
                   "found in Gateway shop/web-gw.")]
    got = findings(tmp_path, text.replace("HOST", "web.example.com").replace("GW", "nope"), a)
    assert [c for c, _ in got] == ["ML1181", "ML1186"]


def test_gateway_api_status_findings(tmp_path: Path) -> None:
    bad = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: default}
spec:
  parentRefs: [{name: helloworld-gateway}]
  rules: [{backendRefs: [{name: nope, port: 80}]}]
"""
    got = findings(tmp_path, bad, "gatewayapi.StatusAnalyzer", base="gateway-api-helloworld")
    assert got == [("ML1187", "HTTPRoute default/broken parent Gateway/default/helloworld-gateway: "
                               "condition ResolvedRefs is False (BackendNotFound): "
                               "backend(nope.default.svc.cluster.local) not found")]
    assert findings(tmp_path, "", "gatewayapi.StatusAnalyzer", base="gateway-api-helloworld") == []
