"""meshlens's own analyze checks: for each code, a manifest that triggers it and one that does not.

Every manifest is BASE (an injected namespace ``shop`` with a 2-replica ``web`` Deployment behind
Service ``web`` port 80 → 8080, and a ``client`` Deployment) plus the YAML of the test. Checks
that compiled config proves are evaluated from each injected workload's sidecar.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from meshlens.analyze import ANALYZERS, run
from meshlens.analyze.core import Finding
from meshlens.analyze.fixes import FIXES
from meshlens.analyze.inputs import load_for_analysis
from meshlens.analyze.report import finalize
from meshlens.diagnostics import CODES

BASE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, version: v1}}
    spec: {containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
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


def analyze(tmp_path: Path, extra: str, *, base: str = BASE) -> list[Finding]:
    path = tmp_path / "in.yaml"
    path.write_text(base + ("---\n" + extra if extra.strip() else ""))
    loaded = load_for_analysis([str(path)])
    assert not loaded.errors, loaded.errors
    bad = [d.format() for d in loaded.diagnostics if d.level.value == "error"]
    assert not bad, bad  # the test manifests themselves are valid
    return finalize(run(loaded), loaded.mesh.resources)


def line_of(f: Finding) -> str:
    assert f.span is not None
    return Path(f.span.path).read_text().splitlines()[f.span.line - 1]


def only(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def one(findings: list[Finding], code: str) -> Finding:
    got = only(findings, code)
    assert len(got) == 1, [f"{f.code} {f.message}" for f in findings]
    return got[0]


def dr(spec: str, name: str = "web", ns: str = "shop") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}")


def vs(spec: str, name: str = "web", ns: str = "shop") -> str:
    return (f"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}")


def test_clean_base_has_no_findings(tmp_path: Path) -> None:
    assert analyze(tmp_path, "") == []


# --- catalogue and layout ------------------------------------------------------------------------

def test_every_analyzer_follows_the_contract() -> None:
    names = [a.METADATA.name for a in ANALYZERS]
    assert len(names) == len(set(names))
    for a in ANALYZERS:
        assert callable(a.analyze)
        assert a.__doc__ and "Layer: L6" in a.__doc__
        for code in a.METADATA.codes:
            assert code in CODES and code.startswith("ML1"), code
            assert code in FIXES, f"{code} has no flag/fix entry"


def test_istio_codes_are_only_on_mirrors_and_levels_match_istio() -> None:
    mirrored = {"ML1101": "IST0101", "ML1114": "IST0173", "ML1105": "IST0109",
                "ML1131": "IST0118", "ML1107": "IST0131"}
    for code, ist in mirrored.items():
        assert CODES[code].istio == ist
    assert CODES["ML1131"].level.value == "info" and CODES["ML1114"].level.value == "error"


def test_an_analyzer_that_raises_becomes_ML1001(tmp_path: Path) -> None:
    def boom(ctx: object) -> list[Finding]:
        raise RuntimeError("kaput")

    broken = SimpleNamespace(METADATA=ANALYZERS[0].METADATA, analyze=boom)
    path = tmp_path / "in.yaml"
    path.write_text(BASE)
    loaded = load_for_analysis([str(path)])
    found = run(loaded, analyzers=[broken])  # type: ignore[list-item]
    assert [f.code for f in found] == ["ML1001"]
    assert "kaput" in found[0].message and found[0].istio_code == "IST0001"


# --- ML1101: a dotted short name is not expanded -------------------------------------------------

def test_dotted_short_host_is_not_found_and_the_fix_names_the_fqdn(tmp_path: Path) -> None:
    f = one(analyze(tmp_path, vs("  hosts: [web]\n  http:\n  - route:\n"
                                 "    - destination: {host: web.shop}\n")), "ML1101")
    assert f.message == 'Referenced host not found: "web.shop"' and f.istio_code == "IST0101"
    assert f.flag == "NC" and "web.shop.svc.cluster.local" in f.fix
    assert f.span is not None and "{host: web.shop}" in line_of(f)


def test_fqdn_host_is_found(tmp_path: Path) -> None:
    assert not only(analyze(tmp_path, vs("  hosts: [web]\n  http:\n  - route:\n    - destination: "
                                         "{host: web.shop.svc.cluster.local}\n")), "ML1101")


# --- ML1201: route to a cluster the proxy does not have (NC) ------------------------------------

SIDECAR_PORT_80 = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec:
  egress:
  - port: {number: 80, protocol: HTTP, name: http}
    hosts: ["./*", "legacy/*"]
---
apiVersion: v1
kind: Service
metadata: {name: old, namespace: legacy}
spec:
  ports: [{name: http, port: 9000}]
---
""" + vs("  hosts: [web]\n  http:\n  - match: [{uri: {prefix: /old}}]\n    route:\n"
         "    - destination: {host: old.legacy.svc.cluster.local, port: {number: 9000}}\n"
         "  - route:\n    - destination: {host: web}\n")


def test_destination_outside_the_sidecar_egress_scope_is_NC(tmp_path: Path) -> None:
    f = one(analyze(tmp_path, SIDECAR_PORT_80), "ML1201")
    assert "outbound|9000||old.legacy.svc.cluster.local" in f.message
    assert "Sidecar shop/default" in f.message and "503 NC" in f.message
    assert "deploy/client.shop" in f.message and "deploy/web.shop" in f.message
    assert f.flag == "NC" and "egress listener for port 9000" in f.fix


def test_destination_inside_the_sidecar_egress_scope_has_a_cluster(tmp_path: Path) -> None:
    text = SIDECAR_PORT_80.replace("  - port: {number: 80, protocol: HTTP, name: http}\n"
                                   "    hosts:", "  - hosts:")
    assert not only(analyze(tmp_path, text), "ML1201")


def test_subset_defined_by_a_rule_the_proxy_cannot_see_is_NC(tmp_path: Path) -> None:
    other = dr("  host: web.shop.svc.cluster.local\n  exportTo: ['.']\n"
               "  subsets: [{name: v1, labels: {version: v1}}]\n", ns="team")
    route = vs("  hosts: [web]\n  http:\n  - route:\n    - destination: {host: web, subset: v1}\n")
    found = analyze(tmp_path, other + "---\n" + route)
    f = one(found, "ML1201")
    assert "DestinationRule team/web" in f.message and "subset v1" in f.message
    assert not only(found, "ML1103")  # istioctl finds the subset somewhere: only meshlens sees NC
    assert "the client's namespace" in f.fix and "does not apply to them" in f.message
    fixed = analyze(tmp_path, other.replace("namespace: team", "namespace: shop") + "---\n" + route)
    assert not only(fixed, "ML1201")


def test_NC_is_not_reported_twice_when_istioctl_already_says_not_found(tmp_path: Path) -> None:
    found = analyze(tmp_path, vs("  hosts: [web]\n  http:\n  - route:\n"
                                 "    - destination: {host: web, subset: v9}\n"))
    assert [f.code for f in found] == ["ML1103"]


API_9080 = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, version: v1}}
    spec: {containers: [{name: api, image: api, ports: [{containerPort: 9080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: http, port: 9080}]
---
""" + dr("  host: api\n  subsets: [{name: v1, labels: {version: v1}}]\n", name="api") + \
    "---\n" + vs("  hosts: [api]\n  http:\n  - route:\n    - destination: {host: api, subset: v1}\n",
                 name="api")


def test_port_80_workaround_routes_are_an_info_note_not_NC(tmp_path: Path) -> None:
    """issue 15: with an HTTP port 80 in the mesh (here web's), istiod copies the VirtualService
    for api (port 9080 only) into route table 80 with destinations on port 80
    (`buildSidecarVirtualHostsForVirtualService`); only a request to api:80 reaches them."""
    found = analyze(tmp_path, API_9080)
    assert not only(found, "ML1201")
    f = one(found, "ML1206")
    assert f.level_name == "Info" and f.flag == ""
    assert "outbound|80|v1|api.shop.svc.cluster.local does not exist" in f.message
    assert "api.shop.svc.cluster.local has no port 80 (ports: 9080)" in f.message
    assert "port.number" not in f.message and "Nothing breaks" in f.fix
    assert all(x.level_name == "Info" for x in found), [x.code for x in found]
    explicit = API_9080.replace("{host: api, subset: v1}", "{host: api, subset: v1, port: "
                                "{number: 9080}}")
    assert not only(analyze(tmp_path, explicit), "ML1206")


def test_route_from_a_port_80_service_to_a_missing_port_80_is_still_NC(tmp_path: Path) -> None:
    """The workaround note is only for virtual hosts of services without port 80: web has port
    80, so its route to api on port 80 really fails."""
    route = vs("  hosts: [web]\n  http:\n  - route:\n    - destination: {host: api}\n",
               name="web-to-api")
    found = analyze(tmp_path, API_9080 + "---\n" + route)
    f = one(found, "ML1201")
    assert "outbound|80||api.shop.svc.cluster.local" in f.message and f.flag == "NC"


# --- ML1202 / ML1203: clusters without endpoints (UH) --------------------------------------------

OTHER_APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: shop}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other, version: v2}}
    spec: {containers: [{name: o, image: o, ports: [{containerPort: 8080}]}]}
---
"""


def test_routed_subset_whose_pods_are_not_endpoints_of_the_service_is_UH(
        tmp_path: Path) -> None:
    route = vs("  hosts: [web]\n  http:\n  - route:\n    - destination: {host: web, subset: v2}\n")
    found = analyze(tmp_path, OTHER_APP + dr("  host: web\n  subsets: [{name: v2, labels: "
                                             "{version: v2}}]\n") + "---\n" + route)
    f = one(found, "ML1202")
    assert "outbound|80|v2|web.shop.svc.cluster.local" in f.message
    assert f.flag == "UH" and "503 UH" in f.message
    # issue 15: the pod carrying version=v2 belongs to another service; it is not named
    assert "no pod of web (selector app=web) carries the subset labels version=v2" in f.message
    assert "other" not in f.message
    assert not only(found, "ML1114")  # a pod with version=v2 exists: istioctl is satisfied


def test_empty_subset_that_no_route_uses_is_not_an_error(tmp_path: Path) -> None:
    """issue 15: bookinfo's destination-rule-all defines details v2 over a platform without
    details-v2; no route sends there, so nothing fails (ML1205 notes the unused subset)."""
    found = analyze(tmp_path, OTHER_APP + dr("  host: web\n  subsets: [{name: v2, labels: "
                                             "{version: v2}}]\n"))
    assert not only(found, "ML1202")
    assert [f.code for f in found] == ["ML1205"]


def test_subset_with_endpoints_is_not_reported(tmp_path: Path) -> None:
    found = analyze(tmp_path, dr("  host: web\n  subsets: [{name: v1, labels: {version: v1}}]\n"))
    assert not only(found, "ML1202") and not only(found, "ML1114")


def test_subset_with_no_pod_anywhere_is_reported_once_as_IST0173(tmp_path: Path) -> None:
    found = analyze(tmp_path, dr("  host: web\n  subsets: [{name: v3, labels: {version: v3}}]\n"))
    assert one(found, "ML1114").istio_code == "IST0173"
    assert not only(found, "ML1202")


def test_service_without_pods_is_UH(tmp_path: Path) -> None:
    ghost = ("apiVersion: v1\nkind: Service\nmetadata: {name: ghost, namespace: shop}\n"
             "spec:\n  selector: {app: ghost}\n  ports: [{name: http, port: 80}]\n")
    f = one(analyze(tmp_path, ghost), "ML1203")
    assert "outbound|80||ghost.shop.svc.cluster.local" in f.message
    assert "selector app=ghost matches no pod" in f.message and f.flag == "UH"
    assert not only(analyze(tmp_path, ghost.replace("app: ghost", "app: web")), "ML1203")


# --- ML1204 / ML1205: subsets no route uses -----------------------------------------------------

SUBSETS = dr("  host: web\n  subsets:\n  - {name: v1, labels: {version: v1}}\n"
             "  - name: canary\n    labels: {version: v1}\n"
             "    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n")


def test_unused_subsets(tmp_path: Path) -> None:
    found = analyze(tmp_path, SUBSETS)
    assert "subset canary" in one(found, "ML1204").message
    assert "loadBalancer" in one(found, "ML1204").message
    assert "subset v1" in one(found, "ML1205").message


def test_used_subsets(tmp_path: Path) -> None:
    route = vs("  hosts: [web]\n  http:\n  - route:\n"
               "    - {destination: {host: web, subset: v1}, weight: 90}\n"
               "    - {destination: {host: web, subset: canary}, weight: 10}\n")
    found = analyze(tmp_path, SUBSETS + "---\n" + route)
    assert not only(found, "ML1204") and not only(found, "ML1205")


# --- ML1210 / ML1211: settings a more specific level drops --------------------------------------

PORT_LEVEL = dr("""\
  host: web
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100, tcpKeepalive: {time: 7200s, interval: 75s}}
    outlierDetection: {consecutive5xxErrors: 5, maxEjectionPercent: 50}
    tls: {mode: ISTIO_MUTUAL}
    portLevelSettings:
    - port: {number: 80}
      connectionPool:
        tcp: {maxConnections: 200}
""")


def test_port_level_entry_drops_keepalive_outlier_detection_and_tls(tmp_path: Path) -> None:
    found = only(analyze(tmp_path, PORT_LEVEL), "ML1210")
    by_block = {re.search(r"destination-level (\w+)", f.message).group(1): f  # type: ignore[union-attr]
                for f in found}
    assert set(by_block) == {"connectionPool", "outlierDetection", "tls"}
    cp = by_block["connectionPool"]
    assert "tcp.tcpKeepalive is not inherited" in cp.message
    assert "no upstream_connection_options.tcp_keepalive" in cp.message and cp.flag == "UC"
    assert "has no outlierDetection, which drops" in by_block["outlierDetection"].message
    assert "no outlier_detection" in by_block["outlierDetection"].message
    assert "auto mTLS instead of tls mode ISTIO_MUTUAL" in by_block["tls"].message


def test_port_level_entry_that_drops_only_the_balancing_algorithm_is_info(
        tmp_path: Path) -> None:
    """Istio's egress-rule-google-apis sample: `simple: ROUND_ROBIN` next to a port-level TLS
    entry; port 80 then uses istiod's LEAST_REQUEST. Nothing fails: Info, not ML1210."""
    text = dr("  host: web\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n"
              "    portLevelSettings:\n    - port: {number: 80}\n"
              "      connectionPool: {tcp: {maxConnections: 100}}\n")
    found = analyze(tmp_path, text)
    f = one(found, "ML1213")
    assert f.level_name == "Info" and "lb_policy LEAST_REQUEST" in f.message
    assert "portLevelSettings[0] for port 80" in f.message and not only(found, "ML1210")
    hashed = text.replace("{simple: ROUND_ROBIN}", "{consistentHash: {httpHeaderName: x-user}}")
    assert one(analyze(tmp_path, hashed), "ML1210")  # losing session affinity is not harmless


def test_port_level_entry_that_repeats_everything_drops_nothing(tmp_path: Path) -> None:
    full = PORT_LEVEL.replace("        tcp: {maxConnections: 200}\n", """\
        tcp: {maxConnections: 200, tcpKeepalive: {time: 7200s, interval: 75s}}
      outlierDetection: {consecutive5xxErrors: 5, maxEjectionPercent: 50}
      tls: {mode: ISTIO_MUTUAL}
""")
    assert not only(analyze(tmp_path, full), "ML1210")


def test_subset_block_replaces_the_inherited_block(tmp_path: Path) -> None:
    text = dr("""\
  host: web
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 100, connectTimeout: 300ms}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {http: {http2MaxRequests: 500}}
""")
    f = one(analyze(tmp_path, text), "ML1211")
    assert "subset v1's connectionPool replaces the destination-level connectionPool" in f.message
    assert "so tcp.maxConnections, tcp.connectTimeout are not inherited" in f.message
    assert "max_connections 4294967295" in f.message and "connect_timeout 10s" in f.message
    fine = text.replace("connectionPool: {http: {http2MaxRequests: 500}}",
                        "loadBalancer: {simple: ROUND_ROBIN}")
    assert not only(analyze(tmp_path, fine), "ML1211")


# --- ML1212: portLevelSettings for a port the Service does not have -------------------------------

def test_port_level_entry_for_the_target_port(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    portLevelSettings:\n"
              "    - port: {number: 8080}\n      loadBalancer: {simple: RANDOM}\n")
    f = one(analyze(tmp_path, text), "ML1212")
    assert "8080 is the targetPort of port 80" in f.message and "(80)" in f.fix
    assert not only(analyze(tmp_path, text.replace("8080", "80")), "ML1212")


# --- ML1220 / ML1221: zeros that mean default, ignored fields ------------------------------------

def test_max_retries_zero_is_unlimited(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      http: {http2MaxRequests: 1000, maxRetries: 0}\n")
    f = one(analyze(tmp_path, text), "ML1220")
    assert f.message.startswith("maxRetries: 0 cannot be expressed")
    assert "circuit_breakers.thresholds[0].max_retries" in f.message and "4294967295" in f.message
    assert f.flag == "UO" and "retries.attempts: 0" in f.fix
    assert not only(analyze(tmp_path, text.replace("maxRetries: 0", "maxRetries: 3")), "ML1220")


def test_max_ejection_percent_zero_is_the_default_ten_percent(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    outlierDetection: {maxEjectionPercent: 0}\n")
    f = one(analyze(tmp_path, text), "ML1220")
    assert "outlier_detection.max_ejection_percent" in f.message and "10%" in f.message


def test_deprecated_consecutive_errors_is_ignored(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    outlierDetection: {consecutiveErrors: 2, "
              "maxEjectionPercent: 50}\n")
    found = analyze(tmp_path, text)
    f = one(found, "ML1221")
    assert f.istio_code == "IST0133" and "default 5 consecutive 5xx" in f.message
    assert not only(found, "ML0402")  # the webhook's warning, replaced by the finding
    fine = text.replace("consecutiveErrors", "consecutive5xxErrors")
    assert not only(analyze(tmp_path, fine), "ML1221")


# --- ML1230 / ML1231: outlier detection that never ejects, or ejects everything ----------------

def test_outlier_detection_that_can_never_eject(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3}\n")
    f = one(analyze(tmp_path, text), "ML1230")
    assert "2 endpoints and max_ejection_percent 10%" in f.message and "50%" in f.fix
    fine = text.replace("{consecutive5xxErrors: 3}", "{consecutive5xxErrors: 3, "
                                                     "maxEjectionPercent: 50}")
    assert not only(analyze(tmp_path, fine), "ML1230")


def test_outlier_detection_that_can_eject_every_endpoint(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 3, "
              "maxEjectionPercent: 100}\n")
    f = one(analyze(tmp_path, text), "ML1231")
    assert "eject all 2 endpoints" in f.message and "503 UH" in f.message and f.flag == "UH"
    fine = text.replace("maxEjectionPercent: 100}", "maxEjectionPercent: 100, "
                                                    "minHealthPercent: 50}")
    assert not only(analyze(tmp_path, fine), "ML1231")


# --- ML1240 / ML1241: circuit breakers and retries (UO) -----------------------------------------

def test_limit_below_one_request_and_its_retries(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      tcp: {maxConnections: 1}\n      http: {http1MaxPendingRequests: 1}\n")
    found = only(analyze(tmp_path, text), "ML1240")  # Istio's circuit-breaking task
    assert len(found) == 2
    f = next(x for x in found if "max_connections (maxConnections)" in x.message)
    assert "3 attempts" in f.message
    assert "Istio's default retry policy" in f.message and f.flag == "UO"
    roomy = text.replace("http1MaxPendingRequests: 1", "http1MaxPendingRequests: 100")
    assert not only(analyze(tmp_path, roomy), "ML1240")  # 1 connection + 100 waiting


def test_max_connections_alone_queues_instead_of_overflowing(tmp_path: Path) -> None:
    """With the pending queue left unbounded (istiod's default), requests beyond the
    connections wait: no 503 UO, so a small maxConnections alone is not reported."""
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      tcp: {maxConnections: 1}\n      http: {maxRetries: 1}\n")
    assert not only(analyze(tmp_path, text), "ML1240")


def test_limit_below_retries_of_an_explicit_retry_policy(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      http: {http1MaxPendingRequests: 3, maxRetries: 1}\n") + "---\n" + vs(
        "  hosts: [web]\n  http:\n  - route:\n    - destination: {host: web}\n"
        "    retries: {attempts: 4}\n")
    f = one(analyze(tmp_path, text), "ML1240")
    assert "5 attempts" in f.message and "VirtualService shop/web http[0]" in f.message
    no_retries = text.replace("retries: {attempts: 4}", "retries: {attempts: 0}")
    assert not only(analyze(tmp_path, no_retries), "ML1240")


def test_request_limit_with_unbounded_retries_is_an_info_load_note(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      http: {http2MaxRequests: 100}\n")
    f = one(analyze(tmp_path, text), "ML1241")
    assert "max_retries 4294967295" in f.message and "max_requests (http2MaxRequests)" in f.message
    assert f.level_name == "Info" and "a load note, not a configuration error" in f.message
    assert "more than about 34 concurrent requests" in f.message  # 100 / 3 attempts
    fine = text.replace("{http2MaxRequests: 100}", "{http2MaxRequests: 100, maxRetries: 10}")
    assert not only(analyze(tmp_path, fine), "ML1241")


def test_bookinfo_style_request_budget_gives_no_warning(tmp_path: Path) -> None:
    """issue 15: a plain `http2MaxRequests: 1000` with two subsets under Istio's default retry
    policy is healthy: at most an Info note, never a Warning."""
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      http: {http2MaxRequests: 1000}\n  subsets:\n"
              "  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v1}}\n")
    found = analyze(tmp_path, text)
    assert all(f.level_name == "Info" for f in found), [f.code for f in found]
    assert one(found, "ML1241")


# --- ML1250 / ML1251: client TLS versus server mTLS ---------------------------------------------

STRICT = ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
          "metadata: {name: strict, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n")


def test_tls_disable_toward_strict_mtls(tmp_path: Path) -> None:
    text = STRICT + "---\n" + dr("  host: web\n  trafficPolicy: {tls: {mode: DISABLE}}\n")
    f = one(analyze(tmp_path, text), "ML1250")
    assert "sends plaintext (tls mode DISABLE" in f.message and "STRICT on port 8080" in f.message
    assert f.flag == "UC" and "PeerAuthentication shop/strict" in f.fix
    assert "tls: {mode: DISABLE}" in line_of(f)  # the finding points at the mode
    assert not only(analyze(tmp_path, STRICT), "ML1250")  # auto mTLS: mTLS to the sidecars
    permissive = text.replace("mode: STRICT", "mode: PERMISSIVE")
    assert not only(analyze(tmp_path, permissive), "ML1250")


def test_port_level_drop_of_tls_disable_still_sends_plaintext_via_eds(tmp_path: Path) -> None:
    text = STRICT + "---\n" + dr("  host: web\n  trafficPolicy:\n    tls: {mode: DISABLE}\n"
                                 "    portLevelSettings:\n    - port: {number: 80}\n"
                                 "      loadBalancer: {simple: RANDOM}\n")
    f = one(analyze(tmp_path, text), "ML1250")
    assert "EDS still reads tls mode DISABLE" in f.message


LEGACY = """\
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: old, namespace: legacy}
spec:
  selector: {matchLabels: {app: old}}
  template:
    metadata: {labels: {app: old}}
    spec: {containers: [{name: old, image: old, ports: [{containerPort: 9000}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: old, namespace: legacy}
spec:
  selector: {app: old}
  ports: [{name: http, port: 9000}]
---
"""


def test_istio_mutual_toward_a_pod_without_sidecar(tmp_path: Path) -> None:
    text = LEGACY + dr("  host: old.legacy.svc.cluster.local\n"
                       "  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n")
    f = one(analyze(tmp_path, text), "ML1251")
    assert "old.legacy" in f.message and "without a sidecar" in f.message and f.flag == "UF"
    auto = LEGACY + dr("  host: old.legacy.svc.cluster.local\n"
                       "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n")
    assert not only(analyze(tmp_path, auto), "ML1251")


def test_istio_mutual_toward_peer_authentication_disable(tmp_path: Path) -> None:
    disable = ("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
               "metadata: {name: plain, namespace: shop}\n"
               "spec: {selector: {matchLabels: {app: web}}, mtls: {mode: DISABLE}}\n")
    text = disable + "---\n" + dr("  host: web\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}\n")
    f = one(analyze(tmp_path, text), "ML1251")
    assert "PeerAuthentication shop/plain" in f.message
    assert not only(analyze(tmp_path, dr("  host: web\n  trafficPolicy: {tls: {mode: "
                                         "ISTIO_MUTUAL}}\n")), "ML1251")


# --- ML1252 / ML1253: TLS settings sidecars do not apply -----------------------------------------

EXTERNAL = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  location: MESH_EXTERNAL
---
"""


def test_credential_name_without_workload_selector_sends_plaintext(tmp_path: Path) -> None:
    text = EXTERNAL + dr("  host: api.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, "
                         "credentialName: api-cert}\n", name="api")
    f = one(analyze(tmp_path, text), "ML1252")
    assert "outbound|443||api.example.com" in f.message and f.flag == "UC"
    selected = text.replace("  trafficPolicy:\n", "  workloadSelector: {matchLabels: {app: web}}\n"
                                                  "  trafficPolicy:\n")
    assert not only(analyze(tmp_path, selected), "ML1252")


def test_istio_mutual_with_certificate_fields(tmp_path: Path) -> None:
    text = dr("  host: web\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL, caCertificates: /ca.pem, "
              "sni: web.example}}\n")
    f = one(analyze(tmp_path, text), "ML1253")
    assert f.message.startswith("tls mode ISTIO_MUTUAL ignores caCertificates")
    assert not only(analyze(tmp_path, text.replace("caCertificates: /ca.pem, ", "")), "ML1253")


# --- ML1260 / ML1261: HTTP/2 upgrade without effect ----------------------------------------------

def test_use_client_protocol_with_h2_upgrade(tmp_path: Path) -> None:
    # (with UPGRADE, istiod's webhook rejects the DestinationRule: ML0401)
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      http: {useClientProtocol: true, h2UpgradePolicy: DO_NOT_UPGRADE}\n")
    f = one(analyze(tmp_path, text), "ML1260")
    assert "h2UpgradePolicy: DO_NOT_UPGRADE ineffective" in f.message
    assert "outbound|80||web.shop.svc.cluster.local" in f.message
    assert not only(analyze(tmp_path, text.replace(", h2UpgradePolicy: DO_NOT_UPGRADE", "")),
                    "ML1260")


def test_h2_upgrade_on_tcp_and_on_sniffed_ports(tmp_path: Path) -> None:
    base = BASE.replace("ports: [{name: http, port: 80, targetPort: 8080}]",
                        "ports: [{name: tcp, port: 80, targetPort: 8080}, {port: 81, "
                        "targetPort: 8080, name: web}]")
    text = dr("  host: web\n  trafficPolicy:\n    connectionPool:\n"
              "      http: {h2UpgradePolicy: UPGRADE}\n")
    found = only(analyze(tmp_path, text, base=base), "ML1261")
    assert len(found) == 2
    assert any("port 80 is TCP" in f.message for f in found)
    assert any("port 81 does not declare its protocol" in f.message for f in found)
    assert not only(analyze(tmp_path, text), "ML1261")  # port 80 is http: upgraded


# --- ML1270 / ML1271: several DestinationRules for one host --------------------------------------

TWO_RULES = (dr("  host: web\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"
                "  subsets: [{name: v1, labels: {version: v1}}]\n", name="web-a")
             + "---\n"
             + dr("  host: web.shop.svc.cluster.local\n"
                  "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n"
                  "  subsets: [{name: v1, labels: {version: v1}}]\n", name="web-b"))


def test_two_destination_rules_for_one_host(tmp_path: Path) -> None:
    found = analyze(tmp_path, TWO_RULES)
    f = one(found, "ML1270")
    assert f.origin == "DestinationRule shop/web-b" and "(shop/web-a)" in f.message
    assert one(found, "ML1271").origin == "DestinationRule shop/web-b"


def test_two_destination_rules_that_merge_cleanly(tmp_path: Path) -> None:
    text = (dr("  host: web\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"
               "  subsets: [{name: v1, labels: {version: v1}}]\n", name="web-a")
            + "---\n"
            + dr("  host: web.shop.svc.cluster.local\n"
                 "  subsets: [{name: v2, labels: {version: v1}}]\n", name="web-b"))
    found = analyze(tmp_path, text)
    assert not only(found, "ML1270") and not only(found, "ML1271")


# --- ML1280 / ML1281: protocol sniffing ----------------------------------------------------------

def test_server_first_protocol_on_a_sniffed_port(tmp_path: Path) -> None:
    svc = ("apiVersion: v1\nkind: Service\nmetadata: {name: mail, namespace: shop}\n"
           "spec:\n  selector: {app: web}\n  ports: [{name: submission, port: 587, "
           "targetPort: 8080}]\n")
    f = one(analyze(tmp_path, svc), "ML1280")
    assert "SMTP" in f.message and "hangs" in f.message and "tcp-smtp" in f.fix
    assert not only(analyze(tmp_path, svc.replace("name: submission", "name: tcp-submission")),
                    "ML1280")


def test_app_protocol_that_overrides_a_good_port_name(tmp_path: Path) -> None:
    svc = ("apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
           "spec:\n  selector: {app: web}\n  ports: [{name: http, port: 8080, "
           "appProtocol: rest}]\n")
    f = one(analyze(tmp_path, svc), "ML1281")
    assert "appProtocol rest overrides port name http" in f.message
    assert not only(analyze(tmp_path, svc.replace("appProtocol: rest", "appProtocol: http")),
                    "ML1281")


# --- ML1290: a named targetPort no container defines ------------------------------------------

def test_named_target_port_that_no_container_defines(tmp_path: Path) -> None:
    base = BASE.replace("targetPort: 8080", "targetPort: web-http")
    found = analyze(tmp_path, "", base=base)
    f = one(found, "ML1290")
    assert "targetPort web-http of port 80 names no containerPort" in f.message
    assert "(unnamed) 8080" in f.message and f.flag == "UH"
    assert not only(found, "ML0301")  # the loader's per-pod note is replaced by this finding
    named = base.replace("ports: [{containerPort: 8080}]",
                         "ports: [{name: web-http, containerPort: 8080}]")
    assert not only(analyze(tmp_path, "", base=named), "ML1290")


def test_numeric_target_port_without_container_port_is_legal(tmp_path: Path) -> None:
    """issue 15: Kubernetes needs no containerPort for a numeric targetPort (grpc-echo listens
    on ports given as arguments)."""
    base = BASE.replace("targetPort: 8080", "targetPort: 17171")
    assert analyze(tmp_path, "", base=base) == []
    undeclared = BASE.replace("ports: [{containerPort: 8080}]", "args: [--port=8080]")
    assert analyze(tmp_path, "", base=undeclared) == []


@pytest.mark.parametrize("code", sorted(c for c in CODES if c.startswith("ML12")))
def test_every_meshlens_check_is_tested_here(code: str) -> None:
    source = Path(__file__).read_text()
    assert f'"{code}"' in source, f"{code} has no trigger test in this file"


def test_grouped_proxies_see_what_every_proxy_sees(tmp_path: Path) -> None:
    """One compile per group of proxies with the same outbound view gives the same findings as
    compiling every injected workload."""
    api = OTHER_APP.replace("name: other", "name: api").replace("app: other", "app: api")
    extra = (api + STRICT.replace("namespace: shop", "namespace: legacy") + "---\n" + LEGACY
             + dr("  host: web\n  workloadSelector: {matchLabels: {app: client}}\n"
                  "  trafficPolicy: {tls: {mode: DISABLE}}\n", name="client-only") + "---\n"
             + SIDECAR_PORT_80 + "---\n" + PORT_LEVEL.replace("name: web,", "name: web-pl,"))
    path = tmp_path / "in.yaml"
    path.write_text(BASE + "---\n" + extra)
    loaded = load_for_analysis([str(path)])
    from meshlens.analyze.inputs import default_proxies, proxy_groups

    every = default_proxies(loaded)
    groups = proxy_groups(loaded)
    assert len(groups) < len(every) and sorted(m for ms in groups.values() for m in ms) == \
        sorted(every)
    grouped = finalize(run(loaded), loaded.mesh.resources)
    each = finalize(run(loaded, proxies=every), loaded.mesh.resources)
    assert [f.key() for f in grouped] == [f.key() for f in each]
    assert grouped  # the scenario does produce compiled findings
