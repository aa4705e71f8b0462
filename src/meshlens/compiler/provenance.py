"""Where every Envoy field came from.

Layer: L4. Imports: source, resources, model.policy.

Each field the compiler sets is recorded as ``(resource name, envoy field path) → Origin``. An
Origin names the rule that put the value there (istiod default, destination-level, port-level,
subset, subset port-level, mesh default, registry, quirk), the resource and the YAML path it was
read from; the file:line is recovered lazily from the resource's document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from meshlens.model.policy import Block, Dropped
from meshlens.resources import Resource
from meshlens.source import FieldPath, RawDocument, ResourceRef, SourceSpan, render_path

DEFAULT = "istiod default"
REGISTRY = "registry"
QUIRK = "quirk"


@dataclass(frozen=True, slots=True)
class Origin:
    rule: str
    resource: ResourceRef | None = None
    field: FieldPath = ()
    doc: RawDocument | None = None
    note: str = ""

    @property
    def span(self) -> SourceSpan | None:
        return self.doc.locate(self.field) if self.doc is not None else None

    def describe(self) -> str:
        parts = [self.rule]
        if self.resource is not None:
            parts.append(f"from {self.resource} {render_path(self.field)}")
        elif self.field:
            parts.append(f"from MeshConfig {render_path(self.field)}")
        span = self.span
        if span is not None:
            parts.append(f"at {span}")
        if self.note:
            parts.append(f"({self.note})")
        return " ".join(parts)


@lru_cache(maxsize=4096)
def default(note: str = "") -> Origin:
    """An istiod default. Origins are immutable, so equal ones are one shared record (most
    notes are constants: "math.MaxUint32" is written four times into every cluster)."""
    return Origin(DEFAULT, note=note)


def from_resource(res: Resource, path: FieldPath, rule: str, note: str = "") -> Origin:
    return Origin(rule, res.ref, path, res.doc, note)


def from_block(block: Block, *sub: str | int, note: str = "", mesh_doc: RawDocument | None = None) -> Origin:
    if block.resource is None:
        return Origin(block.rule, None, block.path + sub, mesh_doc, note)
    return Origin(block.rule, block.resource.ref, block.path + sub, block.resource.doc, note)


@dataclass(slots=True)
class Provenance:
    """Provenance of every compiled resource, keyed by (xDS type, resource name)."""

    fields: dict[tuple[str, str], dict[str, Origin]] = field(default_factory=dict)
    dropped: dict[tuple[str, str], list[Dropped]] = field(default_factory=dict)

    def record(self, kind: str, name: str, envoy_path: str, origin: Origin) -> None:
        self.fields.setdefault((kind, name), {})[envoy_path] = origin

    def of(self, kind: str, name: str) -> dict[str, Origin]:
        return self.fields.get((kind, name), {})
