"""Property test: whatever ``proxy-config --config-dump`` is given, no traceback, exit 0 or 2.

Issue 12, "done when". Three generators feed the command through a file:

* random bytes (binary garbage, truncated UTF-8, NULs);
* random JSON/YAML structures over a vocabulary of config-dump keys and ``@type`` URLs (real
  sections and resources, unknown types, names of Python modules), written as JSON or YAML;
* near-valid dumps: real section types holding resources whose fields get random values.

Each run is a real CLI invocation (typer's runner, exceptions not caught, so a crash fails the
test with its traceback) under a hang guard and a memory bound (:func:`bounded.bounded`). A
valid dump exits 0; anything else exits 2 with one ``error: FILE: ...`` line (after any
``note: FILE: ...`` lines, such as skipped unknown types).
"""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bounded import bounded
from meshlens.cli.proxy_config import proxy_config_app

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
EXAMPLES = {"default": 200, "long": 3000}.get(PROFILE, 200)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=PROFILE == "default",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

T = "type.googleapis.com/"
SECTIONS = [f"{T}envoy.admin.v3.{s}" for s in (
    "BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump",
    "EndpointsConfigDump", "SecretsConfigDump", "ScopedRoutesConfigDump", "EcdsConfigDump")]
RESOURCES = [f"{T}{s}" for s in (
    "envoy.config.cluster.v3.Cluster", "envoy.config.listener.v3.Listener",
    "envoy.config.route.v3.RouteConfiguration", "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", "udpa.type.v1.TypedStruct",
    "google.protobuf.Struct", "google.protobuf.Any", "google.protobuf.Duration",
    "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig")]
JUNK_TYPES = [f"{T}{s}" for s in ("this.Zen", "os.system", "acme.v1.Filter", "", "..", "envoy")]
KEYS = [
    "configs", "@type", "bootstrap", "node", "static_clusters", "dynamic_active_clusters",
    "cluster", "name", "type", "load_assignment", "endpoints", "lb_endpoints", "endpoint",
    "address", "socket_address", "port_value", "dynamic_listeners", "active_state", "listener",
    "filter_chains", "filters", "typed_config", "static_route_configs", "dynamic_route_configs",
    "route_config", "virtual_hosts", "domains", "routes", "match", "prefix", "route",
    "version_info", "connect_timeout", "metadata", "filter_metadata", "value", "fields",
    "dynamic_endpoint_configs", "endpoint_config", "cluster_name", "ecds_filters",
    "transport_socket", "eds_cluster_config", "service_name", "static_listeners",
]
TYPE_URLS = st.sampled_from(SECTIONS + RESOURCES + JUNK_TYPES)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["1s", "STATIC", "EDS", "0.0.0.0", "::1", "-1", "1e999", "\ud800"]))


def _typed(type_urls: Any, fields: Any) -> Any:
    """An object with an ``@type`` and some fields, as every Any in a dump is."""
    return st.builds(lambda url, rest: {"@type": url, **rest}, type_urls, fields)


def _values(leaves: Any, max_leaves: int) -> Any:
    keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(keys, inner, max_size=5),
            _typed(TYPE_URLS, st.dictionaries(st.sampled_from(KEYS[2:]), inner, max_size=4)),
        ),
        max_leaves=max_leaves,
    )


JSON_VALUES = _values(SCALARS, 30)
SMALL_VALUES = _values(SCALARS, 6)
SECTION_KEYS = ["bootstrap", "static_clusters", "dynamic_active_clusters", "dynamic_listeners",
                "static_listeners", "static_route_configs", "dynamic_route_configs",
                "dynamic_endpoint_configs", "static_endpoint_configs", "ecds_filters",
                "version_info", "dynamic_active_secrets"]
RESOURCE = _typed(TYPE_URLS, st.dictionaries(st.sampled_from(KEYS[2:]), SMALL_VALUES, max_size=4))
WRAPPED = st.lists(st.dictionaries(st.sampled_from(KEYS), RESOURCE, max_size=2), max_size=3)
DUMPS = st.fixed_dictionaries({"configs": st.lists(_typed(
    st.sampled_from(SECTIONS + JUNK_TYPES),
    st.dictionaries(st.sampled_from(SECTION_KEYS), st.one_of(WRAPPED, SMALL_VALUES), max_size=3),
), max_size=3)})


@pytest.fixture(autouse=True, scope="module")
def _tracing() -> Iterator[None]:
    """One tracemalloc session for the module: each run only resets the peak (cheap).

    And one click command for the module: typer's runner rebuilds it from the Typer app at
    every invoke, which costs four times the run itself.
    """
    import typer.testing

    built = typer.testing._get_command(proxy_config_app)
    real = typer.testing._get_command
    typer.testing._get_command = lambda app: built if app is proxy_config_app else real(app)
    tracemalloc.start()
    yield
    tracemalloc.stop()
    typer.testing._get_command = real


def _run(path: Path, command: str) -> None:
    with bounded(20, 256):
        out = CliRunner().invoke(proxy_config_app, [command, "--config-dump", str(path)],
                                 catch_exceptions=False)
    assert out.exit_code in (0, 2), (out.exit_code, out.stderr)
    assert "Traceback" not in out.stderr
    *notes, last = out.stderr.splitlines() or [""]
    assert all(line.startswith(f"note: {path}: ") for line in notes), out.stderr
    if out.exit_code == 2:
        assert last.startswith(f"error: {path}: "), out.stderr
    else:
        assert last == "" or last.startswith(f"note: {path}: "), out.stderr


COMMANDS = st.sampled_from(["all", "cluster", "listener", "route", "endpoint", "bootstrap",
                            "secret", "eds", "ecds"])


@SETTINGS
@given(data=st.binary(max_size=300), command=COMMANDS)
def test_random_bytes(tmp_path: Path, data: bytes, command: str) -> None:
    path = tmp_path / "dump.json"
    path.write_bytes(data)
    _run(path, command)


def _write(value: Any, as_yaml: bool, path: Path) -> bool:
    """Write ``value`` as JSON or YAML; False when that format cannot hold it."""
    try:
        text = (yaml.safe_dump(value, allow_unicode=True) if as_yaml
                else json.dumps(value, allow_nan=True))
        path.write_text(text, errors="surrogatepass")
    except (ValueError, yaml.YAMLError, UnicodeError):
        return False
    return True


@pytest.mark.parametrize("strategy", [JSON_VALUES, DUMPS], ids=["structures", "near-valid"])
@SETTINGS
@given(data=st.data(), as_yaml=st.booleans(), command=COMMANDS)
def test_random_structures(tmp_path: Path, strategy: Any, data: Any, as_yaml: bool,
                           command: str) -> None:
    path = tmp_path / "dump.json"
    if _write(data.draw(strategy), as_yaml, path):
        _run(path, command)


def test_the_generators_reach_both_outcomes(tmp_path: Path) -> None:
    """The property would be empty if every example failed to parse: some must be valid dumps."""
    outcomes = set()
    path = tmp_path / "dump.json"
    for configs in ([], [{"@type": SECTIONS[1]}], [{"@type": SECTIONS[1], "static_clusters": 1}]):
        path.write_text(json.dumps({"configs": configs}))
        out = CliRunner().invoke(proxy_config_app, ["all", "--config-dump", str(path)],
                                 catch_exceptions=False)
        outcomes.add(out.exit_code)
    assert outcomes == {0, 2}
    assert sys.getrecursionlimit() >= 1000  # the JSON depth cases rely on Python's own limit
