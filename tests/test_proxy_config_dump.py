"""Reading dumps: clear errors for files that are not dumps, unknown types skipped by name.

A bad dump file is ``error: FILE: message`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from meshlens.cli.proxy_config import proxy_config_app
from meshlens.dump import (
    ROUTES,
    clusters_of,
    clusters_status_of,
    parse_clusters,
    parse_config_dump,
    routes_of,
)
from meshlens.errors import DumpError

ROOT = Path(__file__).resolve().parents[1]
ISTIOCTL = ROOT / "tests" / "conformance" / "istioctl"
ALL_DUMP = ISTIOCTL / "proxyconfig" / "testdata" / "config_dump.json"
SEED = ROOT / "tests" / "cases" / "seed-llm-server-canary" / "manifests.yaml"


def _run(args: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(proxy_config_app, args, input=stdin, catch_exceptions=False)


def _error(args: list[str]) -> str:
    result = _run(args)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    err: str = result.stderr
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_a_manifest_is_not_a_dump() -> None:
    err = _error(["cluster", "--config-dump", str(SEED)])
    assert err == (f"error: {SEED}: not an Envoy config dump: these are Kubernetes manifests "
                   "(Namespace, ServiceAccount, Deployment, Deployment, ...); compile them with "
                   "-f PATH PROXY instead\n")


def test_truncated_dump(tmp_path: Path) -> None:
    text = ALL_DUMP.read_text()
    for cut in (len(text) // 2, len(text) - 3, 5000):
        path = tmp_path / f"cut{cut}.json"
        path.write_text(text[:cut])
        err = _error(["cluster", "--config-dump", str(path)])
        assert err.startswith(f"error: {path}: truncated JSON: the config dump stops at line "), err


def test_invalid_json_is_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"configs": [\n  {"@type": "x",, }\n]}\n')
    assert _error(["cluster", "--config-dump", str(path)]) == (
        f"error: {path}: not valid JSON: Expecting property name enclosed in double quotes "
        "at line 2 column 17\n")


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty file: expected an Envoy config dump (JSON)"),
    ("[1, 2]", "not an Envoy config dump: expected a JSON object, found an array"),
    ('{"configs": [{"name": "x"}]}', 'not an Envoy config dump: configs[0] has no "@type"'),
    ('{"cluster_statuses": []}', "this is Envoy's /clusters?format=json output, not a "
                                 "/config_dump (give it with --clusters-dump"),
    ('{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", '
     '"static_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.'
     'Cluster", "connect_timeout": "forever"}}]}]}', "not a valid Envoy config dump: "),
])
def test_not_a_dump_messages(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dump.json"
    path.write_text(content)
    assert _error(["cluster", "--config-dump", str(path)]).startswith(f"error: {path}: {message}")


def test_missing_file_and_binary_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert _error(["cluster", "--config-dump", str(missing)]) == (
        f"error: {missing}: cannot read file: No such file or directory\n")
    binary = tmp_path / "dump.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert "not UTF-8 text" in _error(["cluster", "--config-dump", str(binary)])


def test_missing_section_is_named() -> None:
    dump = ISTIOCTL / "writer/envoy/configdump/testdata/endpoint/configdump.json"
    assert _error(["route", "--config-dump", str(dump)]) == (
        f"error: {dump}: config dump has no configuration type "
        "type.googleapis.com/envoy.admin.v3.RoutesConfigDump\n")
    assert _error(["listener", "--config-dump", str(dump)]).startswith(
        f"error: {dump}: listener dump: config dump has no configuration type")


def test_clusters_dump_errors(tmp_path: Path) -> None:
    assert "this is a /config_dump, not /clusters?format=json output" in _error(
        ["endpoint", "--clusters-dump", str(ALL_DUMP)])
    path = tmp_path / "c.json"
    path.write_text('{"cluster_statuses": [{"name": "x", "host_statuses": [')
    assert "truncated JSON: the /clusters dump stops" in _error(
        ["endpoint", "--clusters-dump", str(path)])


def _with_unknown_types() -> str:
    data = json.loads(ALL_DUMP.read_text())
    # A whole section of a type this Envoy does not know, and an unknown filter inside a
    # listener (the Any is dropped, the listener stays).
    data["configs"].append({"@type": "type.googleapis.com/envoy.admin.v9.FutureConfigDump",
                            "x": 1})
    for section in data["configs"]:
        if section["@type"].endswith("ListenersConfigDump"):
            for lst in section.get("static_listeners", []):
                lst["listener"]["listener_filters"] = [{
                    "name": "acme", "typed_config": {"@type": "type.googleapis.com/acme.v1.Filter",
                                                     "knob": True}}]
    # And an unknown field: ignored.
    data["configs"][0]["bootstrap"]["future_field"] = {"a": 1}
    return json.dumps(data, indent=2)


def test_unknown_types_are_skipped_and_named(tmp_path: Path) -> None:
    dump = parse_config_dump(_with_unknown_types())
    assert dump.skipped_types == ("type.googleapis.com/acme.v1.Filter",
                                  "type.googleapis.com/envoy.admin.v9.FutureConfigDump")
    path = tmp_path / "dump.json"
    path.write_text(_with_unknown_types())
    result = _run(["all", "--config-dump", str(path)])
    assert result.exit_code == 0
    assert result.stderr == (
        f"note: {path}: skipped 2 unknown type(s) this meshlens has no protobuf for: "
        "type.googleapis.com/acme.v1.Filter, type.googleapis.com/envoy.admin.v9.FutureConfigDump\n")
    expected = (ISTIOCTL / "proxyconfig" / "testdata" / "config_dump_summary.txt").read_text()
    assert result.stdout.splitlines()[:14] == expected.splitlines()[:14]


def test_the_cli_never_shows_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text(ALL_DUMP.read_text()[:777])
    r = subprocess.run([sys.executable, "-m", "meshlens", "proxy-config", "cluster",
                        "--config-dump", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {path}: truncated JSON")
    assert "Traceback" not in r.stderr
    pc = subprocess.run([sys.executable, "-m", "meshlens", "pc", "c", "--file", str(ALL_DUMP)],
                        capture_output=True, text=True, timeout=120)
    assert pc.returncode == 0 and pc.stdout.startswith("SERVICE FQDN"), pc.stderr


def test_camel_case_yaml_and_last_section_wins() -> None:
    data = json.loads(ALL_DUMP.read_text())
    routes = next(c for c in data["configs"] if c["@type"] == ROUTES)
    # A second RoutesConfigDump later in the dump replaces the first (istioctl getSection),
    # written in camelCase as protojson may print it.
    data["configs"].append({"@type": ROUTES, "staticRouteConfigs": [{"routeConfig": {
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": "camel", "virtualHosts": [{"name": "vh", "domains": ["*"]}]}}]})
    dump = parse_config_dump(json.dumps(data))
    assert [r.name for r in routes_of(dump.routes)] == ["camel"]
    assert routes  # the original is still in the raw text
    import yaml

    as_yaml = parse_config_dump(yaml.safe_dump(json.loads(ALL_DUMP.read_text())))
    assert [c.name for c in clusters_of(as_yaml.clusters)] == [
        c.name for c in clusters_of(parse_config_dump(ALL_DUMP.read_text()).clusters)]


def test_clusters_status_derived_from_a_dump() -> None:
    statuses = clusters_status_of(parse_config_dump(ALL_DUMP.read_text()))
    hosts = {cs.name: [h.address.socket_address.port_value for h in cs.host_statuses]
             for cs in statuses.cluster_statuses}
    assert hosts["prometheus_stats"] == [15000]
    camel = parse_clusters('{"clusterStatuses": [{"name": "a"}]}').clusters
    assert camel.cluster_statuses[0].name == "a"
    with pytest.raises(DumpError):
        parse_clusters("[]")
