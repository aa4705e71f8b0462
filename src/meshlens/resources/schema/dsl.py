"""The schema DSL: ``Obj`` (fixed fields, required fields, oneOf groups), ``Map``
(additionalProperties), ``List``, ``Str``, ``Int``, ``Num`` and ``Bool``, each with its OpenAPI
bounds and formats and the CEL ``Rule`` objects attached to it, plus constructors for the shapes
Istio's CRDs repeat (``Enum``, ``Duration``, ``UInt32``, ``Int32``, ``Port``, ``req``).

Layer: L2 (package meshlens.resources.schema). Imports: the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from meshlens.resources.schema.cel import DURATION_1MS, PORT_RANGE, Rule


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Node:
    """A schema node. ``required`` only matters for a field of an ``Obj``."""

    required: bool = False
    nullable: bool = False
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Str(Node):
    """``type: string``, with ``maxLength``, ``enum`` and ``format: byte``."""

    max_len: int | None = None
    enum: tuple[str, ...] = ()
    byte: bool = False  # OpenAPI "format: byte": base64


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Int(Node):
    """``type: integer``, with ``minimum``/``maximum`` and ``format: int32``."""

    minimum: int | None = None
    maximum: int | None = None
    int32: bool = False  # OpenAPI "format: int32"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Num(Node):
    """``type: number`` (Istio's doubles), with ``minimum``/``maximum``."""

    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Bool(Node):
    """``type: boolean``."""


@dataclass(frozen=True, slots=True, eq=False)
class List(Node):
    """``type: array`` of ``item``."""

    item: Node
    min_items: int | None = field(default=None, kw_only=True)
    max_items: int | None = field(default=None, kw_only=True)
    map_keys: tuple[str, ...] = field(default=(), kw_only=True)  # x-kubernetes-list-type: map


@dataclass(frozen=True, slots=True, eq=False)
class Map(Node):
    """``type: object`` with ``additionalProperties: value``: free string keys."""

    value: Node
    min_props: int | None = field(default=None, kw_only=True)
    max_props: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True, eq=False)
class Obj(Node):
    """``type: object`` with ``properties``; any other key is an unknown field."""

    fields: Mapping[str, Node]
    one_of: tuple[tuple[str, ...], ...] = field(default=(), kw_only=True)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Open(Node):
    """``type: object`` whose content is not checked (``x-kubernetes-preserve-unknown-fields``,
    or a message meshlens does not model)."""


def req(node: Node) -> Node:
    """Return ``node`` marked as a required field."""
    return replace(node, required=True)


def Enum(*values: str, **kw: Any) -> Str:
    """A string that must be one of ``values`` (case-sensitive)."""
    return Str(enum=values, **kw)


def Duration(**kw: Any) -> Str:
    """A Go duration string of at least 1ms (the CRD's CEL rule)."""
    return Str(rules=(DURATION_1MS,), **kw)


def UInt32(**kw: Any) -> Int:
    """An integer in 0..4294967295 (a protobuf uint32 or UInt32Value)."""
    return Int(minimum=0, maximum=4294967295, **kw)


def Int32(**kw: Any) -> Int:
    """An integer with ``format: int32``."""
    return Int(int32=True, **kw)


def Port(**kw: Any) -> Int:
    """A uint32 that the CRD's CEL rule also limits to 1..65535."""
    return UInt32(rules=(PORT_RANGE,), **kw)
