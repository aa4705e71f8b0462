"""The CLI end to end, as a user runs it: exit codes, stderr lines, machine output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "tests" / "cases" / "seed-llm-server-canary" / "manifests.yaml"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          input=stdin, cwd=ROOT, timeout=120)


def test_demo_shows_the_four_port_layers() -> None:
    r = run("demo")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "outbound|80|v1|llm-server.mesh-demo.svc.cluster.local" in out
    assert "outbound|80|v2|llm-server.mesh-demo.svc.cluster.local" in out
    assert ":8080" in out  # targetPort on the endpoints
    assert "max_connections=200" in out
    assert "ISTIO_MUTUAL" in out
    assert "tcp.tcpKeepalive" in out  # the seed's port-level trap
    assert "Traceback" not in r.stderr


def test_demo_dump_is_a_config_dump() -> None:
    r = run("demo", "--dump")
    assert r.returncode == 0, r.stderr
    dump = json.loads(r.stdout)
    types = [c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]]
    assert types[:3] == ["BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump"]
    names = [c["cluster"]["name"] for c in dump["configs"][1]["dynamic_active_clusters"]]
    assert names[0] == "outbound|80||llm-server.mesh-demo.svc.cluster.local"
    static = [c["cluster"]["name"] for c in dump["configs"][1]["static_clusters"]]
    assert {"xds-grpc", "sds-grpc", "prometheus_stats", "agent"} <= set(static)


def test_compile_json_and_yaml_agree() -> None:
    j = run("compile", "-f", str(CASE), "deploy/client.mesh-demo", "-o", "json")
    y = run("compile", "-f", str(CASE), "deploy/client", "-n", "mesh-demo", "-o", "yaml")
    assert j.returncode == 0 and y.returncode == 0, j.stderr + y.stderr
    assert json.loads(j.stdout) == yaml.safe_load(y.stdout)


def test_compile_from_stdin_and_folder(tmp_path: Path) -> None:
    r = run("compile", "-f", "-", "deploy/client.mesh-demo", stdin=CASE.read_text())
    assert r.returncode == 0, r.stderr
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yml").write_text(CASE.read_text())
    (tmp_path / "ignored.txt").write_text("not: yaml: at: all")
    r2 = run("compile", "-f", str(tmp_path), "deploy/client.mesh-demo")
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r.stdout) == json.loads(r2.stdout)


def test_unparseable_file_gives_file_line_col_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n")
    r = run("compile", "-f", str(bad), "-f", str(CASE), "deploy/client.mesh-demo")
    assert r.returncode == 2
    assert f"{bad}:" in r.stderr and "error:" in r.stderr and "[ML0001]" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_resource_is_left_out_and_the_rest_compiles(tmp_path: Path) -> None:
    bad = tmp_path / "dr.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
        "  name: broken\n  namespace: mesh-demo\nspec:\n  host: llm-server\n"
        "  trafficPolicy:\n    connectionPool:\n      tcp:\n        maxConection: 5\n")
    r = run("compile", "-f", str(CASE), "-f", str(bad), "deploy/client.mesh-demo")
    assert r.returncode == 0, r.stderr
    assert f"{bad}:11:9: error:" in r.stderr and "maxConection" in r.stderr
    strict = run("compile", "--strict", "-f", str(CASE), "-f", str(bad), "deploy/client.mesh-demo")
    assert strict.returncode == 2


def test_other_kinds_are_skipped_with_an_info_line(tmp_path: Path) -> None:
    extra = tmp_path / "cm.yaml"
    extra.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n")
    r = run("compile", "-f", str(CASE), "-f", str(extra), "deploy/client.mesh-demo")
    assert r.returncode == 0
    assert "info:" in r.stderr and "ConfigMap" in r.stderr


def test_unknown_proxy_is_a_clear_error() -> None:
    r = run("compile", "-f", str(CASE), "deploy/nope.mesh-demo")
    assert r.returncode == 2
    assert "error: no Deployment nope in namespace mesh-demo" in r.stderr
    assert "Traceback" not in r.stderr


def test_kind_list_is_flattened(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(CASE.read_text()))
    lst = tmp_path / "list.yaml"
    lst.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}))
    a = run("compile", "-f", str(lst), "deploy/client.mesh-demo")
    b = run("compile", "-f", str(CASE), "deploy/client.mesh-demo")
    assert a.returncode == 0, a.stderr
    assert json.loads(a.stdout) == json.loads(b.stdout)
