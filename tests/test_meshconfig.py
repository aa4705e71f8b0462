"""MeshConfig is checked against its schema with line numbers, as istiod reads it (issue 12, item 9).

A wrong type or an unknown enum value is an error with file:line:col and its code; a MeshConfig
with an error is not applied (istiod keeps its defaults: ML0501); an unknown field only warns
(istiod ignores it). Both the ``--mesh-config`` file and the ``istio`` ConfigMap's ``mesh`` key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meshlens.loader import load_mesh_config
from meshlens.model.mesh import DEFAULTS, MeshConfig
from meshlens.pipeline import load
from meshlens.resources.meshconfig import MESH_CONFIG, validate_mesh_config
from meshlens.source import SourceSpan

APP = """\
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
"""


def mesh(tmp_path: Path, text: str) -> tuple[MeshConfig, list[str]]:
    f = tmp_path / "mesh.yaml"
    f.write_text(text)
    doc, errors = load_mesh_config(str(f))
    assert errors == []
    mc = MeshConfig.from_document(doc)
    return mc, [d.format().replace(str(tmp_path) + "/", "") for d in mc.diagnostics]


@pytest.mark.parametrize(("text", "line"), [
    ("outboundTrafficPolicy:\n  mode: NOPE\n",
     'mesh.yaml:2:3: error: outboundTrafficPolicy.mode: unsupported value "NOPE"; supported '
     'values: "REGISTRY_ONLY", "ALLOW_ANY", "ALLOW_ANY_DYNAMIC_DNS" [ML0104] (MeshConfig mesh)'),
    ("rootNamespace: istio-system\naccessLogFile: [1,2]\n",
     "mesh.yaml:2:1: error: accessLogFile: expected string, got array [ML0103] (MeshConfig mesh)"),
    ("defaultConfig: 5\n",
     "mesh.yaml:1:1: error: defaultConfig: expected object, got integer [ML0103] "
     "(MeshConfig mesh)"),
    ("connectTimeout: 10\n",
     "mesh.yaml:1:1: error: connectTimeout: expected string, got integer [ML0103] "
     "(MeshConfig mesh)"),
    ("connectTimeout: 0.5ms\n",
     'mesh.yaml:1:1: error: connectTimeout: must be a valid duration greater than 1ms (got '
     '"0.5ms") [ML0106] (MeshConfig mesh)'),
    ("dnsRefreshRate: 5 minutes\n",
     "mesh.yaml:1:1: error: dnsRefreshRate: must be a duration such as 10s, 500ms or 1m30s "
     '(got "5 minutes") [ML0106] (MeshConfig mesh)'),
    ("enableAutoMtls: 'yes'\n",
     "mesh.yaml:1:1: error: enableAutoMtls: expected boolean, got string [ML0103] "
     "(MeshConfig mesh)"),
    ("proxyListenPort: 0\n",
     "mesh.yaml:1:1: error: proxyListenPort: must be greater than or equal to 1 [ML0106] "
     "(MeshConfig mesh)"),
    ("localityLbSetting: {distribute: 5}\n",
     "mesh.yaml:1:21: error: localityLbSetting.distribute: expected array, got integer "
     "[ML0103] (MeshConfig mesh)"),
])
def test_each_error_has_its_line_and_code_and_the_config_is_not_applied(
        tmp_path: Path, text: str, line: str) -> None:
    mc, lines = mesh(tmp_path, text + "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"
                     if "outbound" not in text else text)
    assert line in lines
    assert lines[-1].startswith("mesh.yaml:1:1: warning: the MeshConfig in ")
    assert lines[-1].endswith("[ML0501] (MeshConfig mesh)")
    assert mc.outbound_mode == "ALLOW_ANY" and mc.doc is None  # istiod keeps its defaults


def test_unknown_fields_warn_and_the_rest_applies(tmp_path: Path) -> None:
    mc, lines = mesh(tmp_path, "outboundTrafficPolicy: {mode: REGISTRY_ONLY, egress: 1}\n"
                     "accesLogFile: /dev/stdout\n")
    assert lines == [
        "mesh.yaml:1:46: warning: outboundTrafficPolicy.egress: unknown MeshConfig field; "
        "istiod ignores it [ML0502] (MeshConfig mesh)",
        "mesh.yaml:2:1: warning: accesLogFile: unknown MeshConfig field; istiod ignores it "
        "[ML0502] (MeshConfig mesh)",
    ]
    assert mc.outbound_mode == "REGISTRY_ONLY"


def test_proto_field_names_are_read_as_istiod_reads_them(tmp_path: Path) -> None:
    mc, lines = mesh(tmp_path, "outbound_traffic_policy: {mode: REGISTRY_ONLY}\n"
                     "root_namespace: mesh-root\n")
    assert lines == []
    assert (mc.outbound_mode, mc.root_namespace) == ("REGISTRY_ONLY", "mesh-root")
    assert mc.is_user_set("outboundTrafficPolicy")


def test_the_istio_configmap_points_at_its_own_lines(tmp_path: Path) -> None:
    f = tmp_path / "istio.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: "
                 "istio-system}\ndata:\n  mesh: |-\n    accessLogFile: /dev/stdout\n"
                 "    defaultConfig: 5\n")
    loaded = load([], mesh_config=str(f))
    lines = [d.format() for d in loaded.diagnostics]
    assert (f"{f}:7:5: error: defaultConfig: expected object, got integer [ML0103] "
            "(MeshConfig mesh)") in lines
    assert any("[ML0501]" in x for x in lines)
    assert loaded.mesh.mesh_config.get("accessLogFile") == ""


def test_the_cli_prints_the_lines(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(APP)
    (tmp_path / "mesh.yaml").write_text("outboundTrafficPolicy:\n  mode: NOPE\n"
                                       "accessLogFile: [1,2]\ndefaultConfig: 5\n")
    run = subprocess.run([sys.executable, "-m", "meshlens", "trace", "pod/client.default",
                          "http://example.com/", "-f", str(tmp_path / "app.yaml"),
                          "--mesh-config", str(tmp_path / "mesh.yaml")],
                         capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert "Traceback" not in out and "internal error" not in out
    for where, code in (("2:3", "ML0104"), ("3:1", "ML0103"), ("4:1", "ML0103")):
        assert any(x.startswith(f"{tmp_path / 'mesh.yaml'}:{where}: error: ") and f"[{code}]" in x
                   for x in out.splitlines()), (where, out)


def test_a_plain_mapping_with_a_source() -> None:
    found = validate_mesh_config({"h2UpgradePolicy": "ALWAYS"}, SourceSpan("cm.yaml", 9, 3))
    assert [d.format() for d in found][0] == (
        'cm.yaml:9:3: error: h2UpgradePolicy: unsupported value "ALWAYS"; supported values: '
        '"DO_NOT_UPGRADE", "UPGRADE" [ML0104] (MeshConfig mesh)')
    assert validate_mesh_config(7, SourceSpan("cm.yaml", 9, 3))[0].message == (  # type: ignore[arg-type]
        "MeshConfig: expected object, got integer")


def test_istiods_defaults_pass_the_schema() -> None:
    assert validate_mesh_config(DEFAULTS) == []
    assert "outbound_traffic_policy" in MESH_CONFIG.fields


def test_never_raises_on_any_value() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    keys = st.sampled_from(sorted(MESH_CONFIG.fields) + ["mode", "tls", "x"]) | st.text(max_size=4)
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=30)

    @settings(max_examples=200, deadline=None)
    @given(values)
    def run(value: object) -> None:
        for d in validate_mesh_config(value, SourceSpan("m.yaml", 1, 1)):  # type: ignore[arg-type]
            assert d.code.startswith(("ML01", "ML05")) and d.span is not None

    run()
