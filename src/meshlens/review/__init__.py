"""Change review: ``diff`` (what a change does to every proxy) and ``drift`` (where a live
sidecar differs from the manifests).

Layer: L7. Reads CompileResults and config dumps only; compiles nothing itself but through
:mod:`meshlens.pipeline` (style guide §9: "diff / drift / report ... only reads
CompileResults"). Mirrors ``istioctl/pkg/writer/compare``.
"""
