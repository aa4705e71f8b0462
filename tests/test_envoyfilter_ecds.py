"""EnvoyFilter EXTENSION_CONFIG (ECDS) and BOOTSTRAP patches.

`InsertedExtensionConfigurations` (``envoyfilter/extension_configuration_patch.go``): the ADD
patches whose name a filter's ``config_discovery`` asks for, listed in the config dump as Envoy's
``EcdsConfigDump`` (measured on Envoy 1.40: a section per filter type, after the clusters, each
entry an ``ecds_filter`` holding the ``TypedExtensionConfig``). BOOTSTRAP: applied by nobody since
Istio removed bootstrap discovery (``agent: remove BDS``, 1.21).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from meshlens.compiler import CompileResult
from meshlens.dump import from_message
from meshlens.emit import config_dump, to_dict
from meshlens.lab.envoy import validate_config_dump
from meshlens.pipeline import compile_string
from meshlens.render.explain import explain
from meshlens.render.proxy_config.ecds import render_ecds
from test_analyze_authz import codes
from test_authn import WORKLOAD
from test_envoyfilter import LUA, ef

ADMIN = "type.googleapis.com/envoy.admin.v3."
WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"


def asking(name: str = "my.ext", type_url: str = LUA) -> str:
    """An HTTP filter on the inbound 8080 chains that gets its config over ECDS."""
    return f"""  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_INBOUND
      listener:
        portNumber: 8080
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
            subFilter: {{name: envoy.filters.http.router}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: {name}
        config_discovery:
          config_source: {{ads: {{}}, initial_fetch_timeout: 0s}}
          type_urls: ["{type_url}"]
"""


def providing(name: str = "my.ext", code: str = "function envoy_on_request(h) end",
              op: str = "ADD") -> str:
    return f"""  - applyTo: EXTENSION_CONFIG
    patch:
      operation: {op}
      value:
        name: {name}
        typed_config: {{'@type': '{LUA}', default_source_code: {{inline_string: '{code}'}}}}
"""


def compile_(patches: str) -> CompileResult:
    return compile_string(WORKLOAD + ef("ext", patches), "deploy/httpbin.foo")


def sections(result: CompileResult) -> list[str]:
    return [c["@type"][len(ADMIN):] for c in to_dict(config_dump(result))["configs"]]


def test_requested_extension_config_is_pushed_and_dumped_as_envoy_shows_it() -> None:
    r = compile_(asking() + providing())
    assert [e.config.name for e in r.extension_configs] == ["my.ext"]
    assert r.extension_configs[0].sections == ("ecds_filter_http",)
    assert sections(r)[:4] == ["BootstrapConfigDump", "ClustersConfigDump", "EcdsConfigDump",
                               "EndpointsConfigDump"]
    ecds = next(c for c in to_dict(config_dump(r))["configs"] if c["@type"].endswith("Ecds"
                                                                                     "ConfigDump"))
    entry = ecds["ecds_filters"][0]
    assert entry["ecds_filter"]["@type"] == "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    assert entry["ecds_filter"]["name"] == "my.ext"
    assert entry["ecds_filter"]["typed_config"]["@type"] == LUA
    origin = r.provenance.of("extension_config", "my.ext")["typed_config"]
    assert origin.rule == "patched by EnvoyFilter foo/ext" and origin.field == ("spec", "configPatches", 1)
    assert origin.span is not None and origin.span.line > 0


def test_proxy_config_ecds_reads_the_compiled_dump() -> None:
    r = compile_(asking() + providing())
    table = render_ecds(from_message(config_dump(r)))
    assert table.splitlines()[1].split() == ["my.ext", "envoy.extensions.filters.http.lua.v3.Lua"]


def test_explain_shows_where_an_extension_config_came_from() -> None:
    r = compile_(asking() + providing())
    e = explain(r, "extension_config", "my.ext")
    assert e is not None
    rules = {row.path: row.origin.rule for row in e.fields if row.origin is not None}
    assert rules["typed_config.default_source_code.inline_string"] == "patched by EnvoyFilter foo/ext"


def test_a_name_nobody_asks_for_is_not_pushed_and_no_section_appears() -> None:
    r = compile_(providing("unused.ext"))
    assert r.extension_configs == []
    assert "EcdsConfigDump" not in sections(r)
    assert not r.provenance.of("envoyfilter", "foo/ext")


def test_only_add_counts_and_the_context_is_not_looked_at() -> None:
    """`InsertedExtensionConfigurations` skips every operation but ADD; it checks no context."""
    assert compile_(asking() + providing(op="MERGE")).extension_configs == []
    ctx = providing().replace("  - applyTo: EXTENSION_CONFIG\n",
                              "  - applyTo: EXTENSION_CONFIG\n    match: {context: GATEWAY}\n")
    assert [e.config.name for e in compile_(asking() + ctx).extension_configs] == ["my.ext"]


def test_listener_filter_asks_in_its_own_section() -> None:
    patches = f"""  - applyTo: LISTENER_FILTER
    match: {{context: SIDECAR_INBOUND, listener: {{name: virtualInbound}}}}
    patch:
      operation: INSERT_FIRST
      value: {{name: my.inspector, config_discovery: {{config_source: {{ads: {{}}}}, type_urls: ["{TLS_INSPECTOR}"]}}}}
  - applyTo: EXTENSION_CONFIG
    patch:
      operation: ADD
      value: {{name: my.inspector, typed_config: {{'@type': '{TLS_INSPECTOR}'}}}}
"""
    r = compile_(patches)
    assert r.extension_configs[0].sections == ("ecds_filter_tcp_listener",)
    assert sections(r).count("EcdsConfigDump") == 1


def test_type_the_filter_refuses_is_reported() -> None:
    r = compile_(asking(type_url=WASM) + providing())
    found = [d for d in r.diagnostics if d.code == "ML1305"]
    assert len(found) == 1 and "envoy.extensions.filters.http.lua.v3.Lua" in found[0].message
    assert "virtualInbound" in found[0].message and found[0].span is not None


def test_analyze_reports_unrequested_config_bootstrap_patches_and_refused_types() -> None:
    assert [c for c, _ in codes(ef("ext", asking() + providing()))] == []
    assert [c for c, _ in codes(ef("ext", providing("unused.ext")))] == ["ML1303"]
    assert [c for c, _ in codes(ef("ext", asking(type_url=WASM) + providing()))] == ["ML1305"]
    boot = """  - applyTo: BOOTSTRAP
    patch: {operation: MERGE, value: {stats_flush_interval: 7s}}
"""
    assert [c for c, _ in codes(ef("boot", boot))] == ["ML1304"]


def test_bootstrap_patch_leaves_the_bootstrap_as_pilot_agent_renders_it() -> None:
    boot = """  - applyTo: BOOTSTRAP
    patch: {operation: MERGE, value: {stats_flush_interval: 7s}}
"""
    plain = compile_string(WORKLOAD, "deploy/httpbin.foo")
    patched = compile_(boot)
    assert patched.bootstrap == plain.bootstrap
    assert [d.code for d in patched.diagnostics if d.code.startswith("ML13")] == ["ML1304"]
    assert "configPatches[0]" in patched.diagnostics[-1].message


def test_explain_extension_config_on_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.yaml"
    path.write_text(WORKLOAD + ef("ext", asking() + providing()))
    out = subprocess.run([sys.executable, "-m", "meshlens", "explain", "extension-config", "my.ext",
                          "deploy/httpbin.foo", "-f", str(path)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "patched by EnvoyFilter foo/ext" in out.stdout


@pytest.mark.envoy
def test_compiled_ecds_loads_in_the_real_envoy_and_its_content_is_checked() -> None:
    good = validate_config_dump(to_dict(config_dump(compile_(asking() + providing()))))
    assert good.ok, good.error
    assert any("ECDS 'my.ext' inlined" in c for c in good.changes)
    bad = validate_config_dump(to_dict(config_dump(compile_(asking() + providing(code="x")))))
    assert not bad.ok and "script load error" in bad.error


def test_streamed_dump_has_the_ecds_sections_too() -> None:
    # `compile -o json` writes config_dump_tree (no Any round trip): it must print the same
    # sections, in the same place, as the packed ConfigDump.
    from meshlens.emit import config_dump_dict, config_dump_json, dumps

    r = compile_(asking() + providing())
    assert config_dump_dict(r) == to_dict(config_dump(r))
    assert config_dump_json(r) == dumps(to_dict(config_dump(r)))
