"""`meshlens analyze`: catch the mistakes that cause 503s, from files, before they ship.

Layer: L6. Imports: analyze.*, pipeline, compiler, model, resources, diagnostics, source.

Each analyzer is one module exporting ``METADATA`` and ``analyze(ctx) -> Iterator[Finding]``;
:data:`ANALYZERS` is the order they run in. The first group mirrors istioctl's networking and
workload analyzers (same IST code, same message); the second are meshlens's own checks, most of
them proven on the compiled xDS of each proxy (``ctx.compiled()``), so analyze and compile never
disagree.

Example:
    >>> from meshlens.analyze import run
    >>> from meshlens.pipeline import load_string
    >>> loaded = load_string('''
    ... apiVersion: networking.istio.io/v1
    ... kind: VirtualService
    ... metadata: {name: r, namespace: default}
    ... spec:
    ...   hosts: [reviews]
    ...   http:
    ...   - route:
    ...     - destination: {host: reviews.default}
    ... ''', "vs.yaml")
    >>> [f"{f.code} {f.istio_code} {f.message}" for f in run(loaded, proxies=())][:1]
    ['ML1101 IST0101 Referenced host not found: "reviews.default"']
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from types import ModuleType

from meshlens.analyze import (
    _compiled,
    application_uid,
    authz_effect,
    authz_policies,
    deployment_multi_service,
    deprecation,
    dr_ca_certificates,
    dr_subset_select_pods,
    duplicate_destination_rules,
    empty_endpoints,
    envoyfilter_patch,
    gateway_certificate,
    gateway_conflict,
    gateway_port,
    gateway_secret,
    gatewayapi_status,
    h2_upgrade,
    injection,
    outlier_ejection,
    policy_inheritance,
    port_level_ports,
    protocol_sniffing,
    retries_overflow,
    route_no_cluster,
    se_conflicting_protocol,
    se_protocol_addresses,
    service_port_name,
    sidecar_selector,
    target_port,
    tls_mismatch,
    tls_settings,
    unused_subsets,
    vs_conflicting_mesh_hosts,
    vs_destination_hosts,
    vs_destination_rules,
    vs_gateway_hosts,
    vs_internal_gateway,
    vs_jwt_claim_route,
    vs_unreachable_rules,
    zero_means_default,
)
from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, finding, from_diagnostic
from meshlens.analyze.inputs import default_proxies, load_for_analysis, proxy_groups
from meshlens.pipeline import Loaded

#: The analyzers, in the order they run. istioctl mirrors first, then meshlens's own checks.
ANALYZERS: tuple[ModuleType, ...] = (
    deprecation,
    vs_destination_hosts,
    vs_destination_rules,
    vs_conflicting_mesh_hosts,
    vs_unreachable_rules,
    vs_gateway_hosts,  # runs vs_internal_gateway's check too (one istioctl analyzer)
    gateway_port,
    gateway_secret,
    gateway_conflict,
    gateway_certificate,
    gatewayapi_status,
    dr_ca_certificates,
    dr_subset_select_pods,
    sidecar_selector,
    service_port_name,
    deployment_multi_service,
    application_uid,
    se_protocol_addresses,
    se_conflicting_protocol,
    injection,
    authz_policies,
    envoyfilter_patch,
    vs_jwt_claim_route,
    route_no_cluster,
    empty_endpoints,
    unused_subsets,
    policy_inheritance,
    port_level_ports,
    zero_means_default,
    outlier_ejection,
    retries_overflow,
    tls_mismatch,
    tls_settings,
    h2_upgrade,
    duplicate_destination_rules,
    protocol_sniffing,
    target_port,
    authz_effect,
)

#: The runner's own code (an analyzer or a compile that failed), documented like the analyzers'.
DOCS = {
    "ML1001": CodeDoc(
        checks="Nothing in the input: the runner reports an analyzer that raised, or a proxy "
               "whose compile failed (IST0001).",
        matters="A meshlens bug: the other analyzers' findings are still reported, the failed "
                "one's are missing.",
        quiet="Always, unless meshlens has a bug.",
        example="(none on purpose; report the input that caused it)"),
}

#: Loader diagnostics that are not findings (a skipped kind is not a problem).
QUIET_DIAGNOSTICS = frozenset({"ML0003"})


def by_name(names: Iterable[str]) -> tuple[ModuleType, ...]:
    """The analyzers whose METADATA.name is in ``names`` (istioctl's ``--analyzer``)."""
    wanted = set(names)
    return tuple(a for a in ANALYZERS if a.METADATA.name in wanted)


def run(loaded: Loaded, *, proxies: Sequence[str] | None = None,
        analyzers: Sequence[ModuleType] = ANALYZERS,
        include_input_diagnostics: bool = True) -> list[Finding]:
    """Run ``analyzers`` over ``loaded`` and return their findings (unsorted, not de-duplicated).

    Args:
        loaded: the input (see :func:`load_for_analysis`).
        proxies: proxies whose compiled config the compiled checks read; ``None`` means every
            injected workload (first pod of each controller), compiled once per group of
            workloads whose outbound config is the same (:func:`inputs.proxy_groups`).
        analyzers: which analyzers, in order.
        include_input_diagnostics: also report what loading rejected (ML0xxx).
    """
    groups = proxy_groups(loaded) if proxies is None else {}
    refs = tuple(groups) if proxies is None else tuple(proxies)
    ctx = Context(loaded, refs, groups)
    out: list[Finding] = []
    if include_input_diagnostics:
        out.extend(from_diagnostic(d) for d in loaded.diagnostics
                   if d.code not in QUIET_DIAGNOSTICS)
    for module in analyzers:
        meta: Metadata = module.METADATA
        try:
            found = list(module.analyze(ctx))
        except Exception as exc:  # an analyzer bug must not hide the other findings
            where = traceback.extract_tb(exc.__traceback__)[-1]
            found = [finding("ML1001", None, error=f"{meta.name}: {type(exc).__name__}: {exc} "
                                                   f"({where.filename.rsplit('/', 1)[-1]}:"
                                                   f"{where.lineno})")]
        if meta.yields_to:
            taken = {(f.origin, f.path) for f in out if f.code in meta.yields_to}
            found = [f for f in found if (f.origin, f.path) not in taken]
        out.extend(found)
    out.extend(finding("ML1001", None, error=f"compiling {ref} failed: {error}")
               for ref, error in ctx.compile_errors)
    replaced = {(code, f.origin, f.path) for module in analyzers
                for code in module.METADATA.supersedes for f in out
                if f.code in module.METADATA.codes}
    _compiled.forget()  # the run's compiles are freed with its context, not at exit
    return [f for f in out if (f.code, f.origin, f.path) not in replaced]


__all__ = ["ANALYZERS", "Context", "Finding", "Metadata", "by_name", "default_proxies",
           "load_for_analysis", "run"]
