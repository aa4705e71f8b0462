"""Invalid values get a diagnostic with their line, never silence or a crash (issue 12, item 9).

Addresses meshlens reads (a Pod's IP, a Service's cluster IP, EndpointSlice addresses,
ServiceEntry addresses and endpoints, a WorkloadEntry's address) are checked as the API server
or istiod's webhook checks them: the object is left out, and ``trace`` then runs without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshlens.pipeline import load_string

CLIENT = """\
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
"""

WEB = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 999.1.1.1
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec: {containers: [{name: web, image: x, ports: [{containerPort: 8080}]}]}
status: {podIP: not-an-ip}
---
"""


def errors(text: str) -> list[tuple[int, str, str]]:
    loaded = load_string(text, "m.yaml")
    return [(d.span.line if d.span else 0, d.code, d.message) for d in loaded.diagnostics
            if d.level == "error"]


def test_pod_ip_and_cluster_ip_are_reported_with_their_lines_and_left_out() -> None:
    loaded = load_string(WEB + CLIENT, "m.yaml")
    lines = [d.format() for d in loaded.diagnostics if d.level == "error"]
    assert lines == [
        'm.yaml:5:3: error: spec.clusterIP: Invalid value: "999.1.1.1": must be a valid IP '
        "address [ML0106] (Service default/web)",
        'm.yaml:13:10: error: status.podIP: Invalid value: "not-an-ip": must be a valid IP '
        "address [ML0106] (Pod default/web-1)",
    ]
    kinds = {(r.kind, r.name) for r in loaded.mesh.resources}
    assert ("Service", "web") not in kinds and ("Pod", "web-1") not in kinds


def test_trace_does_not_crash_after_invalid_addresses(tmp_path: Path) -> None:
    """Before: 'internal error: ValueError: '999.1.1.1' does not appear to be an IPv4 or IPv6
    address' (exit 3), and 'node_ip 'not-an-ip' is not an IP address' from the pod's side."""
    f = tmp_path / "app.yaml"
    f.write_text(WEB + CLIENT)
    for proxy in ("pod/client.default", "pod/web-1.default"):
        run = subprocess.run([sys.executable, "-m", "meshlens", "trace", proxy, "http://web/",
                              "-f", str(f)], capture_output=True, text=True, timeout=120)
        assert "internal error" not in run.stderr + run.stdout
        assert "Traceback" not in run.stderr
        assert run.returncode in (0, 1, 2), run.stderr
        assert f"{f}:5:3: error: spec.clusterIP" in run.stdout + run.stderr


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  ports: [{name: http, port: 80}]
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default}
spec: {containers: [{name: web, image: x}]}
"""

SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
ports: [{name: http, port: 80}]
"""


@pytest.mark.parametrize(("text", "line", "message"), [
    (SERVICE + "  clusterIPs: [10.96.0.5, 'fd00::x']\n", 6,
     'spec.clusterIPs[1]: Invalid value: "fd00::x": must be a valid IP address'),
    (SERVICE + "  externalIPs: [1.2.3]\n", 6,
     'spec.externalIPs[0]: Invalid value: "1.2.3": must be a valid IP address'),
    (SERVICE + "  clusterIP: 10.96.0.5%eth0\n", 6,
     'spec.clusterIP: Invalid value: "10.96.0.5%eth0": must be a valid IP address'),
    (POD + "status: {podIPs: [{ip: 10.244.0.300}]}\n", 5,
     'status.podIPs[0].ip: Invalid value: "10.244.0.300": must be a valid IP address'),
    (POD + "status: {hostIP: node-1}\n", 5,
     'status.hostIP: Invalid value: "node-1": must be a valid IP address'),
    (SLICE + "addressType: IPv4\nendpoints: [{addresses: ['2001:db8::1']}]\n", 6,
     'endpoints[0].addresses[0]: Invalid value: "2001:db8::1": must be a valid IPv4 address'),
    (SLICE + "addressType: IPv6\nendpoints: [{addresses: [10.0.0.1]}]\n", 6,
     'endpoints[0].addresses[0]: Invalid value: "10.0.0.1": must be a valid IPv6 address'),
    (SLICE + "endpoints: [{addresses: [not-an-ip]}]\n", 5,
     'endpoints[0].addresses[0]: Invalid value: "not-an-ip": must be a valid IP address'),
])
def test_kubernetes_addresses(text: str, line: int, message: str) -> None:
    assert errors(text) == [(line, "ML0106", message)]


@pytest.mark.parametrize("text", [
    SERVICE + "  clusterIP: None\n",
    SERVICE + "  clusterIP: ''\n  clusterIPs: [fd00::5]\n",
    SERVICE + "  externalIPs: [203.0.113.9, '2001:db8::9']\n",
    POD + "status: {podIP: '', podIPs: [{ip: 10.244.1.2}, {ip: 'fd00::2'}]}\n",
    SLICE + "addressType: FQDN\nendpoints: [{addresses: [web.example.com]}]\n",
])
def test_valid_addresses_pass(text: str) -> None:
    assert errors(text) == []


ISTIO = """\
apiVersion: networking.istio.io/v1
kind: {kind}
metadata: {{name: x, namespace: default}}
spec:
{spec}"""


@pytest.mark.parametrize(("kind", "spec", "message"), [
    ("ServiceEntry", "  hosts: [api.example.com]\n  addresses: [999.1.1.1]\n"
     "  ports: [{number: 80, name: http, protocol: HTTP}]\n",
     "spec.addresses[0]: 999.1.1.1 is not a valid IP"),
    ("ServiceEntry", "  hosts: [api.example.com]\n  resolution: STATIC\n"
     "  ports: [{number: 80, name: http, protocol: HTTP}]\n  endpoints: [{address: 10.0.0.300}]\n",
     'spec.endpoints[0].address: endpoint address "10.0.0.300" is not a valid IP address'),
    ("WorkloadEntry", "  address: not an ip\n",
     'spec.address: endpoint address "not an ip" is not a valid FQDN or an IP address'),
])
def test_istio_addresses_are_rejected_by_the_webhook(kind: str, spec: str, message: str) -> None:
    found = errors(ISTIO.format(kind=kind, spec=spec))
    assert [(code, m) for _, code, m in found] == [("ML0401", message)]
    assert all(line >= 5 for line, _, _ in found)
