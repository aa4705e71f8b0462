"""trace never crashes: random requests (outbound and inbound, every peer mode and what-if
option) against the random meshes of tests/test_properties.py always give a trace that follows
schemas/trace.schema.json, with a verdict that matches its flags and exit-code contract."""

from __future__ import annotations

import os
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from meshlens.pipeline import compile_for, load_string, server_compiler
from meshlens.simulate import Request, simulate
from tests.test_properties import HEALTH, NS, meshes
from tests.test_trace_outcomes import check

EXAMPLES = 400 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 40


@st.composite
def requests(draw: Any, hosts: list[str]) -> tuple[str, dict[str, Any]]:
    host = draw(st.sampled_from([*hosts, "nosuch", "api.example.org", "10.96.0.1", "127.0.0.1"]))
    port = draw(st.sampled_from([80, 443, 3306, 5432, 8080, 9080, 15001, 15006]))
    scheme = draw(st.sampled_from(["http", "https", "tcp", "tls"]))
    opts: dict[str, Any] = {
        "inbound": draw(st.booleans()),
        "http2": draw(st.booleans()),
        "upstream_status": draw(st.sampled_from([None, 200, 404, 503])),
        "upstream_delay": draw(st.sampled_from([0.0, 0.05, 2.0, 60.0])),
        "upstream_reset": draw(st.booleans()),
        "sni": draw(st.sampled_from([None, "", "x.example"])),
        "alpn": draw(st.sampled_from([None, [], ["h2"], ["istio"]])),
    }
    if opts["inbound"]:
        opts["peer"] = draw(st.sampled_from(["plaintext", "tls", "mtls"]))
    return f"{scheme}://{host}:{port}/p", opts


@given(meshes(), st.data())
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=HEALTH)
def test_any_request_gives_a_schema_valid_trace(docs: list[dict[str, Any]], data: Any) -> None:
    loaded = load_string(yaml.safe_dump_all(docs, sort_keys=False), "valid.yaml")
    result = compile_for(loaded, f"deploy/client.{NS}")
    hosts = sorted({d["metadata"]["name"] for d in docs if d.get("kind") == "Service"})
    url, opts = data.draw(requests(hosts))
    t = check(simulate(result, Request.parse(url, headers=["x-k: v"], **opts),
                       server=server_compiler(loaded)))
    if t.verdict == "ok":
        assert t.flags == [], t.flags
    if t.verdict == "NXDOMAIN":
        assert t.clusters == [] and t.status is None
    if t.verdict not in ("ok", "NXDOMAIN", "BlackHole") and not t.verdict.startswith("partial:"):
        assert t.verdict in t.flags, (t.verdict, t.flags)
