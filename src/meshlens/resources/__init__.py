"""Typed resources decoded from RawDocuments, and the kind registry.

Layer: L2. Imports: source, diagnostics (and resources.schema, resources.k8s of this package).

Every resource keeps its RawDocument, so any field path can be turned into file:line:col.
Istio specs stay mappings in the YAML spelling after a structural check against the CRD
schema (:mod:`meshlens.resources.schema`); Kubernetes objects are checked for the fields meshlens
uses (:mod:`meshlens.resources.k8s`). A resource with an error is left out, as the API server
would have rejected it; the rest compiles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic, report
from meshlens.source import FieldPath, RawDocument, ResourceRef, SourceSpan

#: (API group, kind) → namespaced?  The kinds meshlens reads.
KINDS: dict[tuple[str, str], bool] = {
    ("", "Namespace"): False,
    ("", "ServiceAccount"): True,
    ("", "Service"): True,
    ("", "Pod"): True,
    ("", "Node"): False,
    ("apps", "Deployment"): True,
    ("apps", "StatefulSet"): True,
    ("apps", "ReplicaSet"): True,
    ("apps", "DaemonSet"): True,
    ("batch", "Job"): True,
    ("discovery.k8s.io", "EndpointSlice"): True,
    ("networking.istio.io", "ServiceEntry"): True,
    ("networking.istio.io", "WorkloadEntry"): True,
    ("networking.istio.io", "DestinationRule"): True,
    ("networking.istio.io", "VirtualService"): True,
    ("networking.istio.io", "Sidecar"): True,
    ("networking.istio.io", "EnvoyFilter"): True,
    ("security.istio.io", "PeerAuthentication"): True,
    ("networking.istio.io", "Gateway"): True,
    ("", "Secret"): True,
    ("gateway.networking.k8s.io", "GatewayClass"): False,
    ("gateway.networking.k8s.io", "Gateway"): True,
    ("gateway.networking.k8s.io", "HTTPRoute"): True,
    ("gateway.networking.k8s.io", "GRPCRoute"): True,
    ("gateway.networking.k8s.io", "TCPRoute"): True,
    ("gateway.networking.k8s.io", "TLSRoute"): True,
    ("gateway.networking.k8s.io", "ReferenceGrant"): True,
    ("networking.k8s.io", "Ingress"): True,
    ("networking.k8s.io", "IngressClass"): False,
    ("security.istio.io", "AuthorizationPolicy"): True,
    ("security.istio.io", "RequestAuthentication"): True,
}

#: API versions accepted per group (others are skipped with an info line).
VERSIONS: dict[str, tuple[str, ...]] = {
    "": ("v1",),
    "apps": ("v1",),
    "batch": ("v1",),
    "discovery.k8s.io": ("v1",),
    "networking.istio.io": ("v1", "v1beta1", "v1alpha3"),
    "security.istio.io": ("v1", "v1beta1"),
    "gateway.networking.k8s.io": ("v1", "v1beta1", "v1alpha2", "v1alpha3"),
    "networking.k8s.io": ("v1",),
}


@dataclass(eq=False, slots=True)
class Resource:
    """One accepted Kubernetes or Istio object."""

    group: str
    version: str
    kind: str
    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    body: dict[str, Any]
    doc: RawDocument
    creation: str = ""  # metadata.creationTimestamp, "" when absent
    _ref: ResourceRef | None = None

    @property
    def ref(self) -> ResourceRef:
        if self._ref is None:
            self._ref = ResourceRef(self.kind, self.namespace, self.name, self.group)
        return self._ref

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.body.get("spec")
        return spec if isinstance(spec, dict) else {}

    def span(self, path: FieldPath = ()) -> SourceSpan:
        return self.doc.locate(path)

    @property
    def order(self) -> tuple[str, str, str]:
        """Istio's age order: creationTimestamp, then name, then namespace.

        Objects without a timestamp keep file order (they sort as created at the same instant,
        and istiod's config store would have stamped them in apply order).
        """
        return (self.creation, f"{self.doc.index:09d}", "")


@dataclass(slots=True)
class DecodeResult:
    resources: list[Resource] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _str_map(value: Any) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        return None
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            return None
        out[k] = v
    return out


def decode_documents(docs: Iterable[RawDocument], *, admission: bool = True) -> DecodeResult:
    """Decode documents into resources; bad ones become diagnostics and are left out.

    ``admission`` is what Kubernetes checks beyond the CRD's structural schema: istiod's
    validating webhook (Helm ``global.configValidation``, on by default), whose errors reject a
    resource (ML0401) and whose warnings keep it (ML0402), and the API server's object-name rules
    (ML0106). With ``admission=False`` (a mesh installed without the webhook, or fixtures from
    Istio's translator tests, which skip validation) those errors are reported as ML0404 warnings
    and the resource is kept, as istiod would then serve it.
    """
    from meshlens.resources.k8s import validate_k8s
    from meshlens.resources.schema import validate_spec
    from meshlens.resources.webhook import validate_metadata, validate_webhook

    result = DecodeResult()
    for doc in docs:
        data = doc.data
        api_version, kind = data.get("apiVersion"), data.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            missing = "apiVersion" if not isinstance(api_version, str) else "kind"
            result.diagnostics.append(report(
                "ML0004", doc=doc, path=(missing,) if missing in data else (),
                reason=f"{missing} is missing or not a string"))
            continue
        group, _, version = api_version.rpartition("/")
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if (group, kind) not in KINDS or version not in VERSIONS.get(group, ()):
            result.diagnostics.append(report(
                "ML0003", doc=doc, kind=f"{api_version} {kind}",
                name=name if isinstance(name, str) else "?"))
            continue
        namespaced = KINDS[(group, kind)]
        if not isinstance(meta, dict):
            result.diagnostics.append(report(
                "ML0101", doc=doc, path=("metadata",) if "metadata" in data else (),
                kind=kind, name="?", field="metadata"))
            continue
        if not isinstance(name, str) or not name:
            result.diagnostics.append(report(
                "ML0101", doc=doc, path=("metadata",), kind=kind, name="?", field="metadata.name"))
            continue
        ns = meta.get("namespace", "default" if namespaced else "")
        if not isinstance(ns, str):
            result.diagnostics.append(report(
                "ML0103", doc=doc, path=("metadata", "namespace"),
                field="metadata.namespace", expected="string", got=type(ns).__name__))
            continue
        if not namespaced:
            ns = ""
        labels = _str_map(meta.get("labels"))
        annotations = _str_map(meta.get("annotations"))
        ref = ResourceRef(kind, ns, name, group)
        bad = False
        for key, value in (("labels", labels), ("annotations", annotations)):
            if value is None:
                result.diagnostics.append(report(
                    "ML0103", doc=doc, path=("metadata", key), resource=ref,
                    field=f"metadata.{key}", expected="map of string to string",
                    got=type(meta.get(key)).__name__ + _yaml11_note(doc, ("metadata", key))))
                bad = True
        if bad:
            continue
        k8s = group in ("", "apps", "discovery.k8s.io", "batch", "gateway.networking.k8s.io",
                        "networking.k8s.io")
        names = validate_metadata(kind, meta, namespaced=namespaced)
        if not admission:  # kept, as Istio's translator tests (no API server) would keep them
            result.diagnostics.extend(report("ML0404", doc=doc, path=p.path, resource=ref,
                                             message=p.message) for p in names)
            names = []
        problems = names + (
            validate_k8s(kind, data) if k8s else validate_spec(kind, data.get("spec")))
        if problems:
            result.diagnostics.extend(_problem(p, doc, ref) for p in problems)
            continue
        if not k8s:  # istiod's validating webhook: errors reject, warnings keep the resource
            findings = validate_webhook(kind, data)
            result.diagnostics.extend(_finding(f, doc, ref, admission) for f in findings)
            if admission and any(not f.warning for f in findings):
                continue
        result.diagnostics.extend(_yaml11_warnings(doc, ref))
        created = meta.get("creationTimestamp")
        if kind == "Secret":  # metadata, type and key names only: values are never kept
            from meshlens.resources.secret import redact_secret

            data = redact_secret(data)
        res = Resource(group, version, kind, name, ns, labels or {}, annotations or {}, data, doc,
                       created if isinstance(created, str) else "")
        # The same object twice is resolved where resources are indexed (model.build: the last
        # one wins, as with kubectl apply), not here.
        result.resources.append(res)
    return result


def _problem(p: Any, doc: RawDocument, ref: ResourceRef) -> Diagnostic:
    """Turn a schema Problem into a catalogue diagnostic, keeping the schema's own wording.

    A wrong type that comes from a YAML 1.1 reading (``on`` read as a boolean, ``0755`` as 493)
    says so: the loader records those readings on the document's locator.
    """
    span = doc.locate(p.path)
    message = p.message + (_yaml11_note(doc, p.path) if p.code == "ML0103" else "")
    return Diagnostic(p.code, span, message, ref, p.path)


def _yaml11_note(doc: RawDocument, path: FieldPath) -> str:
    """The explanation of a YAML 1.1 reading under ``path``, in parentheses; empty if none."""
    readings = getattr(doc.locator, "readings", None) or {}
    hits = [r for where, r in readings.items() if where[:len(path)] == path]
    return f" ({hits[0].explain()})" if hits else ""


def _finding(f: Any, doc: RawDocument, ref: ResourceRef, admission: bool) -> Diagnostic:
    from meshlens.resources.schema import render_field

    field = render_field(f.path) or "."
    if not f.warning and not admission:
        return report("ML0404", doc=doc, path=f.path, resource=ref, message=f"{field}: {f.message}")
    return report("ML0402" if f.warning else "ML0401", doc=doc, path=f.path, resource=ref,
                  field=field, message=f.message)


def _yaml11_warnings(doc: RawDocument, ref: ResourceRef) -> list[Diagnostic]:
    """Integers written the YAML 1.1 way (``0755``, ``0b1``, ``1_000``) in an accepted object."""
    from meshlens.resources.schema import render_field

    readings = getattr(doc.locator, "readings", None) or {}
    return [report("ML0403", doc=doc, path=path, resource=ref, field=render_field(path) or ".",
                   explanation=r.explain())
            for path, r in readings.items() if r.form != "boolean"]
