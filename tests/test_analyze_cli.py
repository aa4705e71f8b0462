"""`meshlens analyze` end to end: the seed's traps (golden), output formats, suppression,
thresholds and istioctl's exit codes (0, 79, 65, 64)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from golden import check

ROOT = Path(__file__).resolve().parents[1]
SEED = "src/meshlens/examples/llm-server.yaml"
GOLDENS = ROOT / "tests" / "goldens" / "analyze"

NC_CASE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: web, port: 81, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route:
    - destination: {host: web, subset: v2, port: {number: 80}}
"""


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", "analyze", *args],
                          capture_output=True, text=True, input=stdin, cwd=ROOT, timeout=120)


def write(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_seed_golden(update_goldens: bool) -> None:
    r = run("-f", SEED)
    assert r.returncode == 0, r.stderr  # warnings only: below the default failure threshold
    check(GOLDENS / "seed.txt", r.stdout, update_goldens)


def test_seed_reports_its_two_real_traps() -> None:
    r = run("-f", SEED, "-o", "json")
    findings = json.loads(r.stdout)
    by_code = {f["code"]: f for f in findings}
    keepalive = by_code["ML1210"]
    assert "portLevelSettings[0] for port 80" in keepalive["message"]
    assert "tcp.tcpKeepalive is not inherited" in keepalive["message"]
    assert keepalive["flag"] == "UC" and keepalive["line"] == 96
    retries = by_code["ML1220"]
    assert retries["message"].startswith("maxRetries: 0 cannot be expressed")
    assert "outbound|80|v2|llm-server.mesh-demo.svc.cluster.local is 4294967295" in \
        retries["message"]
    assert retries["line"] == 125


def test_failure_threshold_and_exit_79() -> None:
    assert run("-f", SEED, "--failure-threshold", "warning").returncode == 79
    assert run("-f", SEED, "--failure-threshold", "Error").returncode == 0


def test_error_finding_exits_79_and_prints_istioctl_lines(tmp_path: Path) -> None:
    r = run("-f", write(tmp_path, NC_CASE))
    assert r.returncode == 79, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Error [ML1103] (VirtualService shop/web ")
    assert lines[0].endswith(') Referenced host+subset in destinationrule not found: "web+v2"')
    assert lines[1].startswith("    fix (503 NC): ")
    info = [line for line in lines if line.startswith("Info [ML1131] (Service shop/web ")]
    assert info, r.stdout  # the unnamed port 81


def test_output_threshold_hides_but_does_not_change_the_exit_code(tmp_path: Path) -> None:
    r = run("-f", write(tmp_path, NC_CASE), "--output-threshold", "Error")
    assert r.returncode == 79
    assert "ML1131" not in r.stdout and "ML1103" in r.stdout
    quiet = run("-f", SEED, "--output-threshold", "Error")
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert "No validation issues found when analyzing" in quiet.stderr


def test_suppress_by_meshlens_or_istio_code_with_wildcards(tmp_path: Path) -> None:
    path = write(tmp_path, NC_CASE)
    r = run("-f", path, "--suppress", "IST0101=VirtualService shop/*", "-S", "ML1131=*")
    assert r.returncode == 0, r.stdout
    assert "ML1103" not in r.stdout and "ML1131" not in r.stdout
    assert "ML1103" in run("-f", path, "--suppress", "IST0101=VirtualService other/*").stdout


def test_suppress_annotation_on_the_resource(tmp_path: Path) -> None:
    text = NC_CASE.replace("metadata: {name: web, namespace: shop}\nspec:\n  hosts",
                           "metadata:\n  name: web\n  namespace: shop\n  annotations:\n"
                           "    galley.istio.io/analyze-suppress: IST0101\nspec:\n  hosts")
    r = run("-f", write(tmp_path, text))
    assert r.returncode == 0 and "ML1103" not in r.stdout


def test_suppress_takes_istioctls_resource_forms_and_exact_codes(tmp_path: Path) -> None:
    """`--suppress CODE=RESOURCE` as istioctl: RESOURCE is `Kind name.namespace` (istioctl's help
    text) or `Kind namespace/name` (its origin string), `*` globs; CODE is exact."""
    path = write(tmp_path, NC_CASE)

    def codes(*suppress: str) -> set[str]:
        args = [a for s in suppress for a in ("--suppress", s)]
        return {f["code"] for f in json.loads(run("-f", path, "-o", "json", *args).stdout)}

    assert "ML1103" in codes()
    for form in ("IST0101=VirtualService web.shop", "IST0101=VirtualService *.shop",
                 "ML1103=VirtualService shop/web", "ML1103=VirtualService shop/*",
                 "IST0101=*"):
        assert "ML1103" not in codes(form), form
    for form in ("IST0101=VirtualService web.other", "IST0101=VirtualService web",
                 "IST0101=Service web.shop", "IST01*=VirtualService web.shop",
                 "IST0102=VirtualService web.shop"):
        assert "ML1103" in codes(form), form
    r = run("-f", path, "--suppress", "IST9999=VirtualService web.shop")
    assert "Warning: Supplied message code 'IST9999' is an unknown message code and will not " \
           "have any effect." in r.stderr and r.returncode == 79


@pytest.mark.parametrize(("value", "suppressed"), [
    ("IST0101", True), ("ML1103", True), ("*", True), ("IST0118,IST0101", True),
    ("IST0118, IST0101", False),  # istioctl splits on "," and does not trim
    ("IST0102", False), ("ist0101", False)])
def test_suppress_annotation_as_istioctl_reads_it(tmp_path: Path, value: str,
                                                  suppressed: bool) -> None:
    text = NC_CASE.replace("metadata: {name: web, namespace: shop}\nspec:\n  hosts",
                           "metadata:\n  name: web\n  namespace: shop\n  annotations:\n"
                           f"    galley.istio.io/analyze-suppress: '{value}'\nspec:\n  hosts")
    found = {f["code"] for f in json.loads(run("-f", write(tmp_path, text), "-o", "json").stdout)}
    assert ("ML1103" not in found) == suppressed
    assert "ML1131" in found  # the Service's finding: the annotation is on the VirtualService


def test_failure_threshold_levels(tmp_path: Path) -> None:
    # no VirtualService, port 81 on its own targetPort: only the Info on port 81's name
    infos_only = NC_CASE.rsplit("---\n", 1)[0].replace("port: 81, targetPort: 8080",
                                                       "port: 81, targetPort: 8081")
    path = write(tmp_path, infos_only)
    assert {f["level"] for f in json.loads(run("-f", path, "-o", "json").stdout)} == {"Info"}
    assert run("-f", path).returncode == 0
    assert run("-f", path, "--failure-threshold", "Warning").returncode == 0
    assert run("-f", path, "--failure-threshold", "Info").returncode == 79
    assert run("-f", path, "--failure-threshold", "info").returncode == 79
    assert run("-f", path, "--failure-threshold", "Info", "--output-threshold",
               "Error").returncode == 79  # decided before the output threshold
    assert run("-f", path, "--failure-threshold", "Info", "-S", "IST0118=Service *").returncode == 0


def test_usage_errors_exit_64(tmp_path: Path) -> None:
    assert run().returncode == 64
    assert run("-f", SEED, "--failure-threshold", "fatal").returncode == 64
    assert run("-f", SEED, "--suppress", "ML1220").returncode == 64
    bad_proxy = run("-f", SEED, "--proxy", "deploy/nope.mesh-demo")
    assert bad_proxy.returncode == 64 and "nope" in bad_proxy.stderr
    assert run("-f", SEED, "--analyzer", "no.SuchAnalyzer").returncode == 64


def test_unparseable_input_exits_65_unless_there_are_errors(tmp_path: Path) -> None:
    broken = write(tmp_path, "apiVersion: v1\nkind: [\n", "broken.yaml")
    r = run("-f", broken, "-f", SEED)
    assert r.returncode == 65 and "invalid YAML" in r.stderr
    assert run("-f", broken, "-f", write(tmp_path, NC_CASE)).returncode == 79


def test_unreadable_file_is_not_reported_as_clean(tmp_path: Path) -> None:
    """issue 15: "cannot read file" must not be followed by "✔ No validation issues found"."""
    r = run("-f", str(tmp_path / "missing.yaml"))
    assert r.returncode == 65 and "cannot read file" in r.stderr
    assert "\u2714" not in r.stderr
    assert "(but 1 file could not be read or parsed)" in r.stderr


def test_invalid_yaml_on_stdin_is_not_reported_as_clean() -> None:
    r = run("-f", "-", stdin="apiVersion: v1\nkind: [\n")
    assert r.returncode == 65 and "<stdin>:" in r.stderr and "invalid YAML" in r.stderr
    assert "\u2714" not in r.stderr and "could not be read or parsed" in r.stderr


SKIPPED_KINDS = """\
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: a, namespace: shop}
spec: {}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: b, namespace: shop}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny, namespace: shop}
spec: {}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: patch, namespace: shop}
spec: {}
"""


def test_skipped_kinds_are_named_once_per_kind_with_their_count(tmp_path: Path) -> None:
    """issue 15: kinds meshlens does not read are not silently ignored."""
    r = run("-f", write(tmp_path, SKIPPED_KINDS))
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("info: skipped")]
    assert lines == [
        "info: skipped 2 WasmPlugin (extensions.istio.io/v1alpha1): kind not read by meshlens, "
        "not analyzed [ML0003]",
        "info: skipped 1 AuthorizationPolicy (security.istio.io/v1): kind not read by meshlens, "
        "not analyzed [ML0003]",
        "info: skipped 1 EnvoyFilter (networking.istio.io/v1alpha3): kind not read by meshlens, "
        "not analyzed [ML0003]"]
    assert "\u2714" not in r.stderr and "4 resources of other kinds skipped" in r.stderr
    as_json = run("-f", write(tmp_path, SKIPPED_KINDS), "-o", "json")
    assert json.loads(as_json.stdout) == [] and "skipped 2 WasmPlugin" in as_json.stderr


def test_proxy_option_restricts_the_compiled_view() -> None:
    r = run("-f", SEED, "--proxy", "deploy/client.mesh-demo", "-o", "json")
    assert {f["code"] for f in json.loads(r.stdout)} == {"ML1210", "ML1211", "ML1220"}


def test_stdin_and_list_analyzers() -> None:
    r = run("-f", "-", "-o", "json", stdin=(ROOT / SEED).read_text())
    assert r.returncode == 0 and {f["file"] for f in json.loads(r.stdout)} == {"<stdin>"}
    listing = run("-L")
    assert listing.returncode == 0
    assert "* virtualservice.DestinationHostAnalyzer:\n" in listing.stdout
    assert "* meshlens.PolicyInheritanceAnalyzer:\n" in listing.stdout


def test_json_fields(tmp_path: Path) -> None:
    findings = json.loads(run("-f", write(tmp_path, NC_CASE), "-o", "json").stdout)
    schema = json.loads((ROOT / "src" / "meshlens" / "analyze" / "schemas" /
                         "analyze.schema.json").read_text())
    jsonschema.validate(findings + json.loads(run("-f", SEED, "-o", "json").stdout), schema)
    keys = {"code", "level", "message", "resource", "file", "line", "column", "flag",
            "istio_code", "fix"}
    assert findings and all(set(f) == keys for f in findings)
    first = findings[0]
    assert first["code"] == "ML1103" and first["level"] == "Error"
    assert first["resource"] == "VirtualService shop/web" and first["istio_code"] == "IST0101"
    assert first["flag"] == "NC" and first["line"] == 28 and first["column"] >= 1
    assert [f["level"] for f in findings] == sorted(
        (f["level"] for f in findings), key=["Error", "Warning", "Info"].index)


#: The SARIF 2.1.0 key structure meshlens relies on (a subset of the OASIS schema, written from
#: the standard's object definitions: sarifLog, run, tool, toolComponent, reportingDescriptor,
#: result, location, physicalLocation, artifactLocation, region, logicalLocation, message).
SARIF_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"const": "2.1.0"},
        "runs": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/run"}},
    },
    "$defs": {
        "message": {"type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string"}}},
        "run": {
            "type": "object", "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {
                    "driver": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "version": {"type": "string"},
                        "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}}}}}},
                "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
            },
        },
        "rule": {"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "shortDescription": {"$ref": "#/$defs/message"},
            "helpUri": {"type": "string"},
            "defaultConfiguration": {"type": "object", "properties": {
                "level": {"enum": ["none", "note", "warning", "error"]}}},
            "properties": {"type": "object"}}},
        "result": {"type": "object", "required": ["message"], "properties": {
            "ruleId": {"type": "string"}, "ruleIndex": {"type": "integer", "minimum": -1},
            "level": {"enum": ["none", "note", "warning", "error"]},
            "message": {"$ref": "#/$defs/message"},
            "locations": {"type": "array", "items": {"type": "object", "properties": {
                "physicalLocation": {"type": "object", "properties": {
                    "artifactLocation": {"type": "object", "properties": {
                        "uri": {"type": "string"}}},
                    "region": {"type": "object", "properties": {
                        "startLine": {"type": "integer", "minimum": 1},
                        "startColumn": {"type": "integer", "minimum": 1}}}}},
                "logicalLocations": {"type": "array", "items": {"type": "object", "properties": {
                    "fullyQualifiedName": {"type": "string"}, "kind": {"type": "string"}}}}},
                "additionalProperties": False}},
            "partialFingerprints": {"type": "object",
                                    "additionalProperties": {"type": "string"}},
            "properties": {"type": "object"}}},
    },
}


def test_sarif_is_structurally_valid(tmp_path: Path) -> None:
    r = run("-f", write(tmp_path, NC_CASE), "-f", SEED, "-o", "sarif")
    assert r.returncode == 79
    log = json.loads(r.stdout)
    jsonschema.validate(log, SARIF_SUBSET)
    run0 = log["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    for result in run0["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    levels = {r["ruleId"]: r["level"] for r in run0["results"]}
    assert levels["ML1103"] == "error" and levels["ML1210"] == "warning"
    assert levels["ML1131"] == "note"
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for res in run0["results"] for loc in res["locations"]}
    assert SEED in uris
