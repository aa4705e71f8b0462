"""The whole job in one call: files → resources → mesh → compiled proxy, plus diagnostics.

Layer: L5. Imports: loader, resources, model, compiler, diagnostics, errors, durations.

Used by the CLI, the tests and the benchmark. Load errors (unparseable files) are collected,
not raised; the caller decides (the CLI exits 2).

A cluster export carries istiod's own configuration, and it is read as istiod reads it:

* the MeshConfig is the ``mesh`` key of the ``istio`` ConfigMap (``istio-REV`` for a
  revision) in istiod's namespace (``pkg/config/mesh/kubemesh``: ``NewConfigMapSource``);
  ``--mesh-config`` overrides it;
* istiod's feature flags are the env of the istiod Deployment's ``discovery`` container
  (``pilot/pkg/features``: ``env.Register``), then ``--pilot-env NAME=VALUE``. The flags
  meshlens models are :data:`FLAGS`; a set flag it does not model is reported (ML0306).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from meshlens.compiler import BuildCache, CompileOptions, CompileResult, Wanted, compile_proxy
from meshlens.diagnostics import Diagnostic, Level, report, sort_key
from meshlens.durations import parse_duration
from meshlens.errors import LoadError, UsageError
from meshlens.loader import LoadResult, Limits, load_mesh_config, load_paths, load_text
from meshlens.model import Mesh, build_mesh, resolve_proxy
from meshlens.model.features import ModelFeatures
from meshlens.model.mesh import MeshConfig
from meshlens.model.proxy import ProxyNotFound
from meshlens.model.gateways import gateway_diagnostics
from meshlens.model.registry import InjectionPolicy
from meshlens.resources import decode_documents
from meshlens.source import FieldPath, RawDocument, SourceSpan


def _go_bool(value: str) -> bool:
    """``strconv.ParseBool``, which istiod's ``env.Register`` uses for booleans."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("not a boolean")


def _uint(value: str) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("not an unsigned integer")
    return n


def _duration(value: str) -> int:
    n = parse_duration(value)
    if n is None:
        raise ValueError("not a duration")
    return n


#: istiod flag → (where: "compile" | "model", field, parser, invert). Defaults are the fields'.
FLAGS: dict[str, tuple[str, str, Callable[[str], Any], bool]] = {
    "PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS": ("compile", "auto_send_unhealthy_endpoints", _go_bool, False),
    "PILOT_SEND_UNHEALTHY_ENDPOINTS": ("compile", "send_unhealthy_endpoints", _go_bool, False),
    "PILOT_ENABLE_METADATA_EXCHANGE": ("compile", "metadata_exchange", _go_bool, False),
    "PILOT_DISABLE_MX_ALPN": ("compile", "disable_mx_alpn", _go_bool, False),
    "PILOT_ENABLE_TELEMETRY_LABEL": ("compile", "telemetry_label", _go_bool, False),
    "PILOT_ENDPOINT_TELEMETRY_LABEL": ("compile", "endpoint_telemetry_label", _go_bool, False),
    "DISABLE_TRACK_REMAINING_CB_METRICS": ("compile", "track_remaining_cb_metrics", _go_bool, True),
    "PILOT_DNS_CARES_UDP_MAX_QUERIES": ("compile", "dns_cares_udp_max_queries", _uint, False),
    "PILOT_DNS_JITTER_DURATION": ("compile", "dns_jitter_nanos", _duration, False),
    "PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES": ("compile", "eds_for_headless", _go_bool, False),
    "ENABLE_LOCALITY_WEIGHTED_LB_CONFIG": ("compile", "locality_weighted_lb_config", _go_bool, False),
    "PILOT_ENABLE_REDIS_FILTER": ("compile", "enable_redis_filter", _go_bool, False),
    "PILOT_PERSISTENT_SESSION_LABEL": ("model", "persistent_session_label", str, False),
    "PILOT_PERSISTENT_SESSION_HEADER_LABEL": ("model", "persistent_session_header_label", str, False),
    "PILOT_DRAINING_LABEL": ("model", "draining_label", str, False),
    "ISTIO_DUAL_STACK": ("model", "dual_stack", _go_bool, False),
}

#: Env the istiod chart sets that does not change what a sidecar receives (or only at the
#: chart's default value): not reported.
_NO_XDS_EFFECT = frozenset({
    "REVISION", "PILOT_CERT_PROVIDER", "POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT",
    "KUBECONFIG", "CA_TRUSTED_NODE_ACCOUNTS", "GODEBUG", "PILOT_ENABLE_NODE_UNTAINT_CONTROLLERS",
    "PILOT_NODE_UNTAINT_CONTROLLERS_TAINT_NAME", "EXTERNAL_ISTIOD", "PILOT_CA_CERT_CONFIGMAP",
    "PILOT_CRL_CONFIGMAP", "PILOT_ENABLE_ANALYSIS", "PLATFORM", "GOMEMLIMIT", "GOMAXPROCS",
    "JWT_POLICY", "ISTIOD_CUSTOM_HOST", "PILOT_ENABLE_STATUS", "ENABLE_LEGACY_FSGROUP_INJECTION",
})
_AT_DEFAULT = {"PILOT_TRACE_SAMPLING": ("1", "1.0", "100"), "CLUSTER_ID": ("Kubernetes",)}


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """What the CLI says about the cluster beyond the files.

    Attributes:
        revision: the control plane revision (``--revision``); ``""`` is the default revision.
        assume_injection: namespaces without a Namespace object are assumed labelled for
            injection (``--assume-injection``).
        pilot_env: ``NAME=VALUE`` flags for istiod (``--pilot-env``), over the input's.
    """

    revision: str = ""
    assume_injection: bool = True
    pilot_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # getMeshConfigMapName: "default" is the default revision ("istio", "istiod").
        if self.revision == "default":
            object.__setattr__(self, "revision", "")


@dataclass(slots=True)
class Flags:
    """istiod's feature flags as read from the input and the command line."""

    options: CompileOptions = field(default_factory=CompileOptions)
    features: ModelFeatures = field(default_factory=ModelFeatures)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: dict[str, str] = field(default_factory=dict)  # flag → where its value came from


def istiod_deployment(docs: list[RawDocument], revision: str) -> RawDocument | None:
    """The istiod Deployment of ``revision`` (``istiod`` or ``istiod-REV``) in the input."""
    want = f"istiod-{revision}" if revision else "istiod"
    for doc in docs:
        d = doc.data
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        if d.get("kind") == "Deployment" and meta.get("name") == want:
            return doc
    return None


def _discovery_env(doc: RawDocument) -> list[tuple[str, str, FieldPath]]:
    spec = doc.data.get("spec")
    tmpl = spec.get("template") if isinstance(spec, dict) else None
    pspec = tmpl.get("spec") if isinstance(tmpl, dict) else None
    out: list[tuple[str, str, FieldPath]] = []
    for i, c in enumerate(pspec.get("containers") or [] if isinstance(pspec, dict) else []):
        if not isinstance(c, dict) or c.get("name") != "discovery":
            continue
        for j, e in enumerate(c.get("env") or []):
            if isinstance(e, dict) and isinstance(e.get("name"), str) and "value" in e:
                out.append((e["name"], str(e["value"]),
                            ("spec", "template", "spec", "containers", i, "env", j, "value")))
    return out


def read_flags(docs: list[RawDocument], settings: LoadSettings) -> Flags:
    """istiod's flags: the istiod Deployment's env, then ``--pilot-env`` (each later one wins)."""
    flags = Flags()
    given: list[tuple[str, str, RawDocument | None, FieldPath]] = []
    dep = istiod_deployment(docs, settings.revision)
    if dep is not None:
        given += [(n, v, dep, p) for n, v, p in _discovery_env(dep)]
    for item in settings.pilot_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--pilot-env {item!r}: expected NAME=VALUE")
        given.append((name, value, None, ()))
    compile_values: dict[str, Any] = {}
    model_values: dict[str, Any] = {}
    for name, value, doc, path in given:
        span = None if doc is not None else SourceSpan("--pilot-env", 1, 1)
        if name not in FLAGS:
            if name in _NO_XDS_EFFECT or value in _AT_DEFAULT.get(name, ()):
                continue
            if not name.startswith(("PILOT_", "ENABLE_", "ISTIO_", "DISABLE_", "CLUSTER_ID")):
                continue
            flags.diagnostics.append(report(
                "ML0306", doc=doc, path=path, span=span, name=name, value=value,
                message="meshlens does not model this flag; its effect on the config is not "
                        "reproduced"))
            continue
        where, attr, parse, invert = FLAGS[name]
        try:
            parsed = parse(value)
        except ValueError as exc:
            flags.diagnostics.append(report(
                "ML0306", doc=doc, path=path, span=span, name=name, value=value,
                message=f"{exc}; istiod keeps the default"))
            continue
        (compile_values if where == "compile" else model_values)[attr] = \
            (not parsed) if invert else parsed
        flags.source[name] = "--pilot-env" if doc is None else str(doc.locate(path))
    flags.options = replace(flags.options, **compile_values)
    flags.features = replace(flags.features, **model_values)
    return flags


def mesh_configmap(docs: list[RawDocument], settings: LoadSettings) -> RawDocument | None:
    """The ``istio`` (``istio-REV``) ConfigMap in istiod's namespace, if the input has it."""
    dep = istiod_deployment(docs, settings.revision)
    meta = dep.data.get("metadata") if dep is not None else None
    ns = str(meta.get("namespace") or "istio-system") if isinstance(meta, dict) else "istio-system"
    want = f"istio-{settings.revision}" if settings.revision else "istio"  # getMeshConfigMapName
    for doc in docs:
        d = doc.data
        m = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        if d.get("kind") == "ConfigMap" and m.get("name") == want and m.get("namespace", "default") == ns:
            return doc
    return None


def mesh_from_configmap(doc: RawDocument) -> tuple[RawDocument | None, list[LoadError]]:
    """The MeshConfig in a ConfigMap's ``data.mesh``, with positions in the ConfigMap's file."""
    data = doc.data.get("data")
    body = data.get("mesh") if isinstance(data, dict) else None
    where = doc.locate(("data", "mesh"))
    if body is None:
        return None, []  # no mesh key: istiod runs with the defaults
    if not isinstance(body, str):
        return None, [LoadError("the istio ConfigMap's data.mesh is not a string", where)]
    inner = load_text(body, where.path)
    if inner.errors:
        return None, [LoadError(f"istio ConfigMap data.mesh: {e.message}", where) for e in inner.errors]
    if not inner.documents:
        return None, []
    mesh = inner.documents[0]
    if not isinstance(mesh.data, dict):
        return None, [LoadError("the istio ConfigMap's data.mesh is not a mapping", where)]
    base = mesh.locator

    def locate(path: FieldPath) -> SourceSpan | None:
        # A block scalar's first line is the line after its key.
        s = base(path) if base else None
        return SourceSpan(where.path, where.line + s.line, s.col + where.col + 1) if s else None

    return RawDocument(mesh.data, where, locate, doc.index), []


@dataclass(slots=True)
class Loaded:
    """One loaded input. ``cache`` is the run's build cache: every proxy compiled from this
    input (analyze, diff, a lab with several sidecars) shares clusters and endpoints through it."""

    mesh: Mesh
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    options: CompileOptions = field(default_factory=CompileOptions)
    cache: BuildCache = field(default_factory=BuildCache)

    def has_errors(self) -> bool:
        return bool(self.errors) or any(d.level == Level.ERROR for d in self.diagnostics)


def _mesh_config(path: str | None) -> tuple[MeshConfig, list[LoadError]]:
    if not path:
        return MeshConfig(), []
    doc, errors = load_mesh_config(path)
    return MeshConfig.from_document(doc), errors


def build(loaded: LoadResult, mesh_config: MeshConfig | None = None, *,
          admission: bool = True, settings: LoadSettings = LoadSettings()) -> Loaded:
    """Decode and index the documents; the input's istio ConfigMap is the MeshConfig unless
    ``mesh_config`` is given, and the input's istiod env sets the flags.

    ``admission=False``: a mesh without istiod's validating webhook (see decode_documents).
    """
    docs, errors = loaded.documents, list(loaded.errors)
    cm = mesh_configmap(docs, settings)
    if cm is not None:
        docs = [d for d in docs if d is not cm]  # consumed here, not a skipped kind
        if mesh_config is None:
            mesh_doc, cm_errors = mesh_from_configmap(cm)
            errors += cm_errors
            mesh_config = MeshConfig.from_document(mesh_doc)
    flags = read_flags(docs, settings)
    decoded = decode_documents(docs, admission=admission)
    policy = InjectionPolicy(revision=settings.revision, assume=settings.assume_injection)
    try:
        mesh = build_mesh(decoded.resources, mesh_config, features=flags.features, injection=policy)
    except LoadError as exc:  # the pod address pool is exhausted (ML0005): fail fast
        mesh = build_mesh([], mesh_config)
        errors.append(exc)
    diags = sorted(loaded.diagnostics + decoded.diagnostics + mesh.diagnostics + flags.diagnostics,
                   key=sort_key)
    return Loaded(mesh, diags, errors, flags.options)


#: What ``load`` uses when no settings are passed: the CLI's global options set it once.
DEFAULT_SETTINGS: list[LoadSettings] = [LoadSettings()]


def load(paths: list[str], *, mesh_config: str | None = None, limits: Limits = Limits(),
         settings: LoadSettings | None = None) -> Loaded:
    """Load files/folders/stdin and build the mesh model."""
    mc, mc_errors = _mesh_config(mesh_config)
    out = build(load_paths(paths, limits=limits), mc if mesh_config else None,
                settings=settings or DEFAULT_SETTINGS[0])
    out.errors = mc_errors + out.errors
    return out


def load_string(text: str, name: str = "<string>", *, mesh_config: MeshConfig | None = None,
                admission: bool = True, settings: LoadSettings = LoadSettings()) -> Loaded:
    return build(load_text(text, name), mesh_config, admission=admission, settings=settings)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run a compile without the cyclic garbage collector (as mypy's build raises its
    thresholds): the loaded mesh is hundreds of thousands of live objects, and each collection
    walks them all while the compile itself makes little cyclic garbage (a third of the CPU
    time of a 1,000-service compile went to collections). Reference counting still frees
    everything as usual; collections resume afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def compile_for(loaded: Loaded, proxy: str, *, namespace: str | None = None,
                options: CompileOptions | None = None, proxy_type: str | None = None,
                only: Wanted | None = None, cache: BuildCache | None = None) -> CompileResult:
    """Resolve ``proxy`` (``POD[.NS]`` or ``deploy/NAME[.NS]``) and compile its config.

    ``options`` default to the flags read with the input (``loaded.options``); ``proxy_type``
    (sidecar|router) forces the proxy type, by default inferred from the pod. ``only``: a
    targeted compile (see :func:`meshlens.compiler.compile_proxy`). ``cache`` defaults to
    ``loaded.cache`` (shared by every proxy compiled from this input).
    """
    try:
        p = resolve_proxy(loaded.mesh.registry.workloads, proxy, namespace, proxy_type)
    except ProxyNotFound as exc:
        raise UsageError(str(exc)) from exc
    with gc_paused():
        result = compile_proxy(loaded.mesh, p, options=options or loaded.options, only=only,
                               cache=cache if cache is not None else loaded.cache)
    if p.is_router:
        result.diagnostics.extend(gateway_diagnostics(result))
    elif not p.workload.injected:
        why = ("its spec has no istio-proxy container (it was created without injection)"
               if p.workload.real else "injection is not enabled for it")
        result.diagnostics.append(report(
            "ML0302", doc=p.workload.resource.doc, resource=p.workload.resource.ref,
            message=f"pod {p.name}.{p.namespace} has no sidecar ({why}); "
                    "compiling as if it had one"))
    templates = p.workload.annotations.get("inject.istio.io/templates", "")
    if "grpc-agent" in templates.split(","):
        result.diagnostics.append(report(
            "ML0302", doc=p.workload.resource.doc, resource=p.workload.resource.ref,
            message=f"pod {p.name}.{p.namespace} is injected with the grpc-agent template "
                    "(proxyless gRPC): istiod sends it gRPC xDS, not this Envoy config"))
    return result


def compile_string(text: str, proxy: str, *, mesh_config: MeshConfig | None = None,
                   options: CompileOptions | None = None, name: str = "<string>",
                   admission: bool = True) -> CompileResult:
    """Compile manifests given as one YAML string (tests and examples)."""
    loaded = load_string(text, name, mesh_config=mesh_config, admission=admission)
    return compile_for(loaded, proxy, options=options)


def server_compiler(loaded: Loaded, options: CompileOptions | None = None, *,  # type: ignore[no-untyped-def]
                    targeted: bool = False):
    """A function ``ip -> CompileResult | None`` compiling the injected pod at that IP (cached).

    ``targeted``: each pod's config is compiled as a trace asks for it (``only=Wanted()``).
    """
    from meshlens.model.proxy import Proxy

    cache: dict[str, CompileResult | None] = {}
    by_ip = {w.ip: w for w in loaded.mesh.registry.workloads}

    def compile_ip(ip: str) -> CompileResult | None:
        if ip not in cache:
            wl = by_ip.get(ip)
            cache[ip] = compile_proxy(loaded.mesh, Proxy(wl), options=options or loaded.options,
                                      only=Wanted() if targeted else None,
                                      cache=loaded.cache) \
                if wl is not None and wl.injected else None
        return cache[ip]

    return compile_ip
