"""The whole job in one call: files → resources → mesh → compiled proxy, plus diagnostics.

Layer: L5. Imports: loader, resources, model, compiler, diagnostics, errors.

Used by the CLI, the tests and the benchmark. Load errors (unparseable files) are collected,
not raised; the caller decides (the CLI exits 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshlens.compiler import CompileOptions, CompileResult, compile_proxy
from meshlens.diagnostics import Diagnostic, Level, report, sort_key
from meshlens.errors import LoadError, UsageError
from meshlens.loader import LoadResult, Limits, load_mesh_config, load_paths, load_text
from meshlens.model import Mesh, build_mesh, resolve_proxy
from meshlens.model.mesh import MeshConfig
from meshlens.model.proxy import ProxyNotFound
from meshlens.model.gateways import gateway_diagnostics
from meshlens.resources import decode_documents


@dataclass(slots=True)
class Loaded:
    mesh: Mesh
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)

    def has_errors(self) -> bool:
        return bool(self.errors) or any(d.level == Level.ERROR for d in self.diagnostics)


def _mesh_config(path: str | None) -> tuple[MeshConfig, list[LoadError]]:
    if not path:
        return MeshConfig(), []
    doc, errors = load_mesh_config(path)
    return MeshConfig.from_document(doc), errors


def build(loaded: LoadResult, mesh_config: MeshConfig | None = None, *,
          admission: bool = True) -> Loaded:
    """``admission=False``: a mesh without istiod's validating webhook (see decode_documents)."""
    decoded = decode_documents(loaded.documents, admission=admission)
    mesh = build_mesh(decoded.resources, mesh_config)
    diags = sorted(loaded.diagnostics + decoded.diagnostics + mesh.diagnostics, key=sort_key)
    return Loaded(mesh, diags, list(loaded.errors))


def load(paths: list[str], *, mesh_config: str | None = None, limits: Limits = Limits()) -> Loaded:
    """Load files/folders/stdin and build the mesh model."""
    mc, mc_errors = _mesh_config(mesh_config)
    out = build(load_paths(paths, limits=limits), mc)
    out.errors = mc_errors + out.errors
    return out


def load_string(text: str, name: str = "<string>", *, mesh_config: MeshConfig | None = None,
                admission: bool = True) -> Loaded:
    return build(load_text(text, name), mesh_config, admission=admission)


def compile_for(loaded: Loaded, proxy: str, *, namespace: str | None = None,
                options: CompileOptions | None = None, proxy_type: str | None = None) -> CompileResult:
    """Resolve ``proxy`` (``POD[.NS]`` or ``deploy/NAME[.NS]``) and compile its config.

    ``proxy_type`` (sidecar|router) forces the proxy type; by default it is inferred from the pod.
    """
    try:
        p = resolve_proxy(loaded.mesh.registry.workloads, proxy, namespace, proxy_type)
    except ProxyNotFound as exc:
        raise UsageError(str(exc)) from exc
    result = compile_proxy(loaded.mesh, p, options=options)
    if p.is_router:
        result.diagnostics.extend(gateway_diagnostics(result))
    elif not p.workload.injected:
        result.diagnostics.append(report(
            "ML0302", doc=p.workload.resource.doc, resource=p.workload.resource.ref,
            message=f"pod {p.name}.{p.namespace} has no sidecar (injection is not enabled for it); "
                    "compiling as if it had one"))
    return result


def compile_string(text: str, proxy: str, *, mesh_config: MeshConfig | None = None,
                   options: CompileOptions | None = None, name: str = "<string>",
                   admission: bool = True) -> CompileResult:
    """Compile manifests given as one YAML string (tests and examples)."""
    loaded = load_string(text, name, mesh_config=mesh_config, admission=admission)
    return compile_for(loaded, proxy, options=options)


def server_compiler(loaded: Loaded, options: CompileOptions | None = None):  # type: ignore[no-untyped-def]
    """A function ``ip -> CompileResult | None`` compiling the injected pod at that IP (cached)."""
    from meshlens.model.proxy import Proxy

    cache: dict[str, CompileResult | None] = {}
    by_ip = {w.ip: w for w in loaded.mesh.registry.workloads}

    def compile_ip(ip: str) -> CompileResult | None:
        if ip not in cache:
            wl = by_ip.get(ip)
            cache[ip] = compile_proxy(loaded.mesh, Proxy(wl), options=options) \
                if wl is not None and wl.injected else None
        return cache[ip]

    return compile_ip
