"""EnvoyFilter behaviours as istiod's envoyfilter tests pin them (listener, cluster, route patches,
match semantics, ordering), applied by meshlens's last compiler stage."""

from __future__ import annotations

from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from meshlens.compiler import CompileResult
from meshlens.compiler.envoyfilter.patches import envoy_filters_for
from meshlens.pipeline import compile_string, load_string
from test_authn import WORKLOAD

LUA = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"


def ef(name: str, patches: str, *, ns: str = "foo", extra: str = "") -> str:
    return (f"---\napiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\n"
            f"metadata: {{name: {name}, namespace: {ns}}}\nspec:\n{extra}  configPatches:\n{patches}")


def lua_patch(op: str, context: str = "SIDECAR_INBOUND", port: int = 8080,
              sub: str | None = "envoy.filters.http.router", name: str = "my.lua") -> str:
    fc = ""
    if sub is not None:
        fc = ("        filterChain:\n          filter:\n"
              "            name: envoy.filters.network.http_connection_manager\n"
              f"            subFilter: {{name: {sub}}}\n")
    return (f"  - applyTo: HTTP_FILTER\n    match:\n      context: {context}\n      listener:\n"
            f"        portNumber: {port}\n{fc}"
            f"    patch:\n      operation: {op}\n      value:\n        name: {name}\n"
            f"        typed_config: {{'@type': '{LUA}', default_source_code: {{inline_string: 'x'}}}}\n")


def compile_(text: str, proxy: str = "deploy/httpbin.foo") -> CompileResult:
    return compile_string(WORKLOAD + text, proxy)


def http_filters(result: CompileResult, listener: str = "virtualInbound",
                 chain: str = "0.0.0.0_8080") -> list[str]:
    lis = next(x for x in result.listeners or [] if x.name == listener)
    fc = next(c for c in lis.filter_chains if c.name == chain)
    h = hcm_pb2.HttpConnectionManager()
    next(f for f in fc.filters if f.name.endswith("http_connection_manager")).typed_config.Unpack(h)
    return [f.name for f in h.http_filters]


def test_insert_before_the_router_only_on_the_target_port_chains() -> None:
    r = compile_(ef("lua", lua_patch("INSERT_BEFORE")))
    assert http_filters(r)[-2:] == ["my.lua", "envoy.filters.http.router"]
    assert "my.lua" not in http_filters(r, chain="virtualInbound-catchall-http")


def test_service_port_does_not_match_on_virtual_inbound() -> None:
    # portNumber on virtualInbound is the chain's destination port: the target port 8080,
    # not the Service port 8000.
    r = compile_(ef("lua", lua_patch("INSERT_BEFORE", port=8000)))
    assert "my.lua" not in http_filters(r)


def test_insert_after_first_replace_remove() -> None:
    r = compile_(ef("lua", lua_patch("INSERT_AFTER", sub="envoy.filters.http.fault")))
    names = http_filters(r)
    assert names[names.index("envoy.filters.http.fault") + 1] == "my.lua"
    assert http_filters(compile_(ef("lua", lua_patch("INSERT_FIRST"))))[0] == "my.lua"
    replaced = http_filters(compile_(ef("lua", lua_patch("REPLACE", sub="envoy.filters.http.cors"))))
    assert "envoy.filters.http.cors" not in replaced and "my.lua" in replaced
    removed = http_filters(compile_(ef("f", lua_patch("REMOVE", sub="envoy.filters.http.fault"))))
    assert "envoy.filters.http.fault" not in removed


def test_insert_before_without_sub_filter_inserts_first_and_add_appends() -> None:
    names = http_filters(compile_(ef("lua", lua_patch("INSERT_BEFORE", sub=None))))
    assert names[0] == "my.lua"
    assert http_filters(compile_(ef("lua", lua_patch("ADD", sub=None))))[-1] == "my.lua"


def test_context_outbound_does_not_touch_inbound() -> None:
    r = compile_(ef("lua", lua_patch("INSERT_BEFORE", context="SIDECAR_OUTBOUND", port=8000)))
    assert "my.lua" not in http_filters(r)
    lis = next(x for x in r.listeners or [] if x.name == "0.0.0.0_8000")
    h = hcm_pb2.HttpConnectionManager()
    lis.filter_chains[0].filters[-1].typed_config.Unpack(h)
    assert [f.name for f in h.http_filters][-2:] == ["my.lua", "envoy.filters.http.router"]


def test_cluster_merge_remove_add_and_provenance() -> None:
    patches = """  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND, cluster: {service: httpbin.foo.svc.cluster.local, portNumber: 8000}}
    patch: {operation: MERGE, value: {connect_timeout: 0.25s}}
  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND, cluster: {portNumber: 9000}}
    patch: {operation: REMOVE}
  - applyTo: CLUSTER
    match: {context: SIDECAR_OUTBOUND}
    patch:
      operation: ADD
      value: {name: my-static, type: STATIC, connect_timeout: 1s,
              load_assignment: {cluster_name: my-static, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]}}
"""
    r = compile_(ef("clusters", patches))
    c = r.cluster("outbound|8000||httpbin.foo.svc.cluster.local")
    assert c is not None and (c.connect_timeout.seconds, c.connect_timeout.nanos) == (0, 250_000_000)
    assert r.cluster("outbound|9000||httpbin.foo.svc.cluster.local") is None
    assert all(e.cluster_name != "outbound|9000||httpbin.foo.svc.cluster.local" for e in r.endpoints)
    names = [x.name for x in r.clusters]
    assert names.index("my-static") < names.index("inbound|8080||")  # outbound ADDs before inbound
    origin = r.provenance.of("cluster", "outbound|8000||httpbin.foo.svc.cluster.local")["connect_timeout"]
    assert origin.rule == "patched by EnvoyFilter foo/clusters" and origin.span is not None


def test_inbound_cluster_matches_by_service_hostname() -> None:
    patches = """  - applyTo: CLUSTER
    match: {context: SIDECAR_INBOUND, cluster: {service: httpbin.foo.svc.cluster.local, portNumber: 8080}}
    patch: {operation: MERGE, value: {connect_timeout: 3s}}
"""
    r = compile_(ef("inb", patches))
    c = r.cluster("inbound|8080||")
    assert c is not None and c.connect_timeout.seconds == 3


def test_route_configuration_vhost_and_route_patches() -> None:
    patches = """  - applyTo: HTTP_ROUTE
    match:
      context: SIDECAR_OUTBOUND
      routeConfiguration: {portNumber: 8000, vhost: {name: "httpbin.foo.svc.cluster.local:8000"}}
    patch:
      operation: INSERT_FIRST
      value: {name: first, match: {prefix: /x}, direct_response: {status: 418}}
  - applyTo: VIRTUAL_HOST
    match: {context: SIDECAR_OUTBOUND, routeConfiguration: {portNumber: 8000}}
    patch: {operation: ADD, value: {name: extra, domains: [extra.example.com], routes: [{match: {prefix: /}, direct_response: {status: 204}}]}}
"""
    r = compile_(ef("routes", patches))
    rc = next(x for x in r.routes or [] if x.name == "8000")
    vh = next(v for v in rc.virtual_hosts if v.name == "httpbin.foo.svc.cluster.local:8000")
    assert vh.routes[0].name == "first"
    assert rc.virtual_hosts[-1].name == "extra"


def test_inbound_inline_route_config_is_patched_in_sidecar_inbound() -> None:
    patches = """  - applyTo: HTTP_ROUTE
    match: {context: SIDECAR_INBOUND, routeConfiguration: {portNumber: 8080}}
    patch: {operation: MERGE, value: {route: {timeout: 7s}}}
"""
    r = compile_(ef("inroute", patches))
    lis = next(x for x in r.listeners or [] if x.name == "virtualInbound")
    fc = next(c for c in lis.filter_chains if c.name == "0.0.0.0_8080")
    h = hcm_pb2.HttpConnectionManager()
    fc.filters[-1].typed_config.Unpack(h)
    assert h.route_config.virtual_hosts[0].routes[0].route.timeout.seconds == 7


def test_network_filter_remove_and_listener_remove() -> None:
    patches = """  - applyTo: NETWORK_FILTER
    match: {context: SIDECAR_INBOUND, listener: {portNumber: 9000, filterChain: {filter: {name: istio.metadata_exchange}}}}
    patch: {operation: REMOVE}
  - applyTo: LISTENER
    match: {context: SIDECAR_OUTBOUND, listener: {portNumber: 9000}}
    patch: {operation: REMOVE}
"""
    r = compile_(ef("net", patches))
    lis = next(x for x in r.listeners or [] if x.name == "virtualInbound")
    chain = next(c for c in lis.filter_chains if c.filter_chain_match.destination_port.value == 9000)
    assert [f.name for f in chain.filters] == ["envoy.filters.network.tcp_proxy"]
    assert all(x.address.socket_address.port_value != 9000 or x.name == "virtualInbound"
               for x in r.listeners or [])


def test_order_priority_then_root_namespace_then_creation_then_name() -> None:
    noop = "  - {applyTo: CLUSTER, match: {cluster: {name: none}}, patch: {operation: REMOVE}}\n"
    text = (ef("b", noop, extra="  priority: 0\n") + ef("a", noop, extra="  priority: 0\n")
            + ef("root", noop, ns="istio-system") + ef("early", noop, extra="  priority: -5\n")
            + ef("other-ns", noop, ns="bar"))
    loaded = load_string(WORKLOAD + text, admission=False)
    assert not loaded.errors
    order = [r.name for r in envoy_filters_for(loaded.mesh.resources, "foo", {"app": "httpbin"},
                                               "istio-system")]
    assert order == ["early", "root", "b", "a"]  # same creation time: file order stands in


def test_workload_selector_and_target_refs() -> None:
    sel = ef("lua", lua_patch("INSERT_FIRST"), extra="  workloadSelector: {labels: {app: other}}\n")
    assert "my.lua" not in http_filters(compile_(sel))
    refs = ef("lua", lua_patch("INSERT_FIRST"),
              extra="  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n")
    assert "my.lua" not in http_filters(compile_(refs))


def test_proxy_version_match() -> None:
    text = lua_patch("INSERT_FIRST").replace("      context: SIDECAR_INBOUND\n",
                                             "      context: SIDECAR_INBOUND\n      proxy: {proxyVersion: '^1\\.30.*'}\n")
    assert http_filters(compile_(ef("lua", text)))[0] == "my.lua"
    old = text.replace("1\\.30", "1\\.2[0-9]")
    assert http_filters(compile_(ef("lua", old)))[0] != "my.lua"


def test_merge_and_replace_list() -> None:
    patches = """  - applyTo: VIRTUAL_HOST
    match: {context: SIDECAR_OUTBOUND, routeConfiguration: {portNumber: 8000}}
    patch: {operation: MERGE_AND_REPLACE_LIST, value: {domains: [only.example.com]}}
"""
    r = compile_(ef("vh", patches))
    rc = next(x for x in r.routes or [] if x.name == "8000")
    assert all(list(v.domains) == ["only.example.com"] for v in rc.virtual_hosts)
