"""The walk: check a value against a schema node, as the API server does.

Layer: L2 (package meshlens.resources.schema). Imports: source.

We mirror ``kubectl apply`` with server-side field validation ``Strict``:

- unknown fields are errors (ML0102); no schema here preserves unknown fields;
- a ``null`` for a field that is not ``nullable`` is pruned first, exactly as the API server
  does (``PruneNonNullableNullsWithoutDefaults``): it then counts as absent;
- integers accept ints and integral floats, never booleans; ``format: int32`` is range-checked
  (the API server lets it through, but istiod cannot decode it);
- enums are case-sensitive strings (no integer enum values: every Istio enum is ``type: string``);
- a oneOf group is violated when more than one member is set (ML0107);
- ``format: byte`` must be base64; ``x-kubernetes-list-type: map`` keys must be unique.

Problems come back in document order (a node's own problems before its children's), at most
``MAX_PROBLEMS`` per resource; ``validate_spec`` never raises, whatever the input.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from meshlens.resources.schema.cel import Rule
from meshlens.resources.schema.dsl import Bool, Int, List, Map, Node, Num, Obj, Open, Str
from meshlens.source import FieldPath

#: A resource gets at most this many problems; the walk stops at the limit.
MAX_PROBLEMS = 100
MISSING, UNKNOWN, WRONG_TYPE, BAD_ENUM, INVALID, ONE_OF = (
    "ML0101", "ML0102", "ML0103", "ML0104", "ML0106", "ML0107",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Problem:
    """One schema violation: where (from the resource root: "spec" for a resource), the ML01xx
    code and a message."""

    path: FieldPath
    code: str
    message: str


class _Full(Exception):
    """Raised inside the walk when MAX_PROBLEMS is reached."""


def _json_type(value: Any) -> str:
    for types, name in _TYPE_NAMES:
        if isinstance(value, types):
            return name
    return "null" if value is None else type(value).__name__


def _fast_json_type(value: Any) -> str:
    """:func:`_json_type`, by exact type first (the walk asks it for every value)."""
    return _EXACT_TYPE_NAMES.get(type(value)) or _json_type(value)


_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
    ((datetime.date, datetime.datetime), "string"), ((list, tuple), "array"), (dict, "object"),
    ((bytes, bytearray), "binary"),
)  # fmt: skip
_EXACT_TYPE_NAMES: dict[type, str] = {
    t: name for types, name in _TYPE_NAMES for t in (types if isinstance(types, tuple) else (types,))
    if t is not datetime.date  # a datetime is also a date: keep the first name in the table
}
_EXACT_TYPE_NAMES[datetime.date] = "string"
_EXACT_TYPE_NAMES[type(None)] = "null"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the walk reads of a schema node on every visit, worked out once per node."""

    expected: str
    kind: int  # _MAPPING, _LIST or _SCALAR
    value_rules: tuple[Rule, ...]  # rules on the value itself
    key_rules: tuple[Rule, ...]  # rules checked on each key of a mapping
    required: tuple[str, ...]  # an Obj's required fields


_MAPPING, _LIST, _SCALAR = 0, 1, 2
#: id(node) → (node, plan); the node is held so its id stays its own.
_PLANS: dict[int, tuple[Node, _Plan]] = {}


def _plan(node: Node) -> _Plan:
    hit = _PLANS.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    kind = _MAPPING if isinstance(node, Obj | Map) else _LIST if isinstance(node, List) else _SCALAR
    required = tuple(n for n, c in node.fields.items() if c.required) \
        if isinstance(node, Obj) else ()
    plan = _Plan(_EXPECTED[type(node)], kind, tuple(r for r in node.rules if not r.per_key),
                 tuple(r for r in node.rules if r.per_key), required)
    _PLANS[id(node)] = (node, plan)
    return plan


def _text(value: Any) -> str:
    """Show a scalar in a message: strings quoted and cut short, huge ints elided."""
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 64 else value[:61] + "...", ensure_ascii=False)
    try:
        return str(value)
    except ValueError:  # an int beyond Python's int-to-str digit limit
        return "<huge integer>"


def _key(key: Any) -> str:
    """A mapping key as the API server sees it once kubectl has turned YAML into JSON."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    return _text(key)


def render_field(path: FieldPath) -> str:
    """Render a field path the way the API server writes it in messages.

    Example:
        >>> render_field(("spec", "http", 0, "match", 1, "headers", "x-user", "exact"))
        'spec.http[0].match[1].headers[x-user].exact'
        >>> render_field(("spec", "selector", "matchLabels", ""))
        'spec.selector.matchLabels[""]'
    """
    out = ""
    for part in path:
        if isinstance(part, int) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f"[{part}]" if part != "" else '[""]'
        else:
            out += f".{part}" if out else part
    return out


@dataclass(slots=True)
class _Walk:
    cel: bool
    problems: list[Problem] = field(default_factory=list)
    clean: set[tuple[int, int]] = field(default_factory=set)

    def emit(self, path: FieldPath, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))
        if len(self.problems) >= MAX_PROBLEMS:
            raise _Full

    def invalid(self, path: FieldPath, message: str) -> None:
        self.emit(path, INVALID, f"{render_field(path)}: {message}")

    def visit(self, node: Node, value: Any, path: FieldPath) -> None:
        if value is None and node.nullable:
            return
        plan = _plan(node)
        expected, got = plan.expected, _fast_json_type(value)
        if got != expected and not _type_ok(expected, got, value):
            self.emit(path, WRONG_TYPE, f"{render_field(path)}: expected {expected}, got {got}")
            return
        if plan.kind == _SCALAR:  # only mappings and lists are shared by YAML aliases
            self.visit_value(node, value, path, plan)
            return
        memo = (id(node), id(value))
        if memo in self.clean:
            return
        before = len(self.problems)
        self.visit_value(node, value, path, plan)
        if len(self.problems) == before and isinstance(value, dict | list):
            # YAML aliases can share one subtree many times; a clean one is checked only once.
            self.clean.add(memo)

    def visit_value(self, node: Node, value: Any, path: FieldPath,
                    plan: _Plan | None = None) -> None:
        if plan is None:
            plan = _plan(node)
        if isinstance(value, datetime.date):
            value = str(value)  # a YAML timestamp reaches the API server as a JSON string
        kind = plan.kind
        if kind == _MAPPING:
            value = self.visit_mapping(node, value, path, plan)  # type: ignore[arg-type]
        elif kind == _LIST:
            self.visit_list(node, value, path)  # type: ignore[arg-type]
        else:
            self.check_scalar(node, value, path)
        if self.cel and plan.value_rules:
            self.check_rules(plan.value_rules, value, path)
        if kind == _MAPPING:
            self.visit_children(node, value, path, plan)  # type: ignore[arg-type]
        elif kind == _LIST:
            item = node.item  # type: ignore[attr-defined]
            for index, child in enumerate(value):
                self.visit(item, child, (*path, index))

    def check_rules(self, rules: tuple[Rule, ...], value: Any, path: FieldPath) -> None:
        for rule in rules:
            if rule.per_key:
                continue  # checked key by key, just before each entry's value
            if not rule.check(value):
                shown = f" (got {_text(value)})" if isinstance(value, str | int) else ""
                self.invalid(path, rule.message + shown)

    def visit_mapping(
        self, node: Obj | Map, value: dict[Any, Any], path: FieldPath, plan: _Plan | None = None
    ) -> dict[str, Any]:
        """Check the mapping itself; return it with string keys and pruned nulls, for rules."""
        present: dict[str, Any] = {}
        fields = node.fields if isinstance(node, Obj) else None
        for raw_key, item in value.items():
            key = raw_key if type(raw_key) is str else _key(raw_key)
            if item is None:
                child = fields.get(key) if fields is not None else node.value  # type: ignore[union-attr]
                if child is not None and not child.nullable:
                    continue
            present[key] = item
        if isinstance(node, Map):
            size = len(present)
            if node.min_props is not None and size < node.min_props:
                self.invalid(path, f"must have at least {node.min_props} entries")
            if node.max_props is not None and size > node.max_props:
                self.invalid(path, f"must have at most {node.max_props} entries")
            return present
        required = (plan or _plan(node)).required
        for name in required:
            if name not in present:
                self.emit((*path, name), MISSING, f"missing required field {_text(name)}")
        for group in node.one_of:
            chosen = [name for name in group if name in present]
            if len(chosen) > 1:
                names = ", ".join(_text(name) for name in group)
                self.emit(
                    path,
                    ONE_OF,
                    f"{render_field(path)}: only one of {names} may be set "
                    f"(got {', '.join(_text(name) for name in chosen)})",
                )
        return present

    def visit_children(self, node: Obj | Map, present: dict[str, Any], path: FieldPath,
                       plan: _Plan | None = None) -> None:
        key_rules = (plan or _plan(node)).key_rules if self.cel else ()
        fields = node.fields if isinstance(node, Obj) else None
        for key, item in present.items():
            for rule in key_rules:
                if not rule.check(key):
                    self.invalid((*path, key), f"{rule.message} (key {_text(key)})")
            child = fields.get(key) if fields is not None else node.value  # type: ignore[union-attr]
            if child is None:
                self.emit((*path, key), UNKNOWN, f"unknown field {_text(key)}")
            else:
                self.visit(child, item, (*path, key))

    def visit_list(self, node: List, value: list[Any], path: FieldPath) -> None:
        if node.min_items is not None and len(value) < node.min_items:
            self.invalid(path, f"must have at least {node.min_items} items")
        if node.max_items is not None and len(value) > node.max_items:
            self.invalid(path, f"must have at most {node.max_items} items")
        for index, key in _duplicate_map_keys(node.map_keys, value):
            self.invalid((*path, index), f"duplicate entry with {key}")

    def check_scalar(self, node: Node, value: Any, path: FieldPath) -> None:
        if isinstance(node, Str):
            if node.enum and value not in node.enum:
                allowed = ", ".join(_text(v) for v in node.enum)
                self.emit(
                    path,
                    BAD_ENUM,
                    f"{render_field(path)}: unsupported value "
                    f"{_text(value)}; supported values: {allowed}",
                )
            if node.max_len is not None and len(value) > node.max_len:
                self.invalid(path, f"may not be longer than {node.max_len} characters")
            if node.byte and not _is_base64(value):
                self.invalid(path, "must be base64-encoded bytes")
        elif isinstance(node, Int | Num):
            if isinstance(value, float) and not math.isfinite(value):
                self.invalid(path, "must be a finite number")
                return
            if node.minimum is not None and value < node.minimum:
                self.invalid(path, f"must be greater than or equal to {node.minimum}")
            if node.maximum is not None and value > node.maximum:
                self.invalid(path, f"must be less than or equal to {node.maximum}")
            if isinstance(node, Int) and node.int32 and not -(2**31) <= value < 2**31:
                self.invalid(path, "must fit in a 32-bit signed integer (format int32)")


def _type_ok(expected: str, got: str, value: Any) -> bool:
    if got == expected or (expected == "number" and got == "integer"):
        return True
    # An integral float is an integer to the API server (and to JSON Schema).
    return expected == "integer" and isinstance(value, float) and value.is_integer()


_EXPECTED: dict[type, str] = {
    Obj: "object",
    Open: "object",
    Map: "object",
    List: "array",
    Str: "string",
    Int: "integer",
    Num: "number",
    Bool: "boolean",
}


def _duplicate_map_keys(keys: tuple[str, ...], items: list[Any]) -> Iterator[tuple[int, str]]:
    """Yield (index, description) for entries that repeat an earlier entry's list-map key."""
    if not keys:
        return
    seen: set[tuple[Any, ...]] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        values = tuple(item.get(k) for k in keys)
        if not all(isinstance(v, str | int | float) for v in values):
            continue  # missing or ill-typed keys are reported on their own
        ident = tuple((type(v) is str, v) for v in values)
        if ident in seen:
            yield index, ", ".join(f"{k} {_text(v)}" for k, v in zip(keys, values, strict=True))
        seen.add(ident)


def _is_base64(text: str) -> bool:
    # Go's base64.StdEncoding (what "format: byte" uses): padding required, CR/LF ignored.
    try:
        base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def check(node: Node, value: Any, path: FieldPath, *, cel: bool = True) -> list[Problem]:
    """Check ``value`` (None: absent) against the schema ``node``; ``path`` is where it sits.

    Returns the problems in document order, at most ``MAX_PROBLEMS``; never raises.

    Example:
        >>> [p.message for p in check(Obj({"mode": Str(enum=("A",))}), {"mode": "B"}, ())]
        ['mode: unsupported value "B"; supported values: "A"']
    """
    walk = _Walk(cel)
    try:
        if value is None:
            if node.required:
                walk.emit(path, MISSING, f"missing required field {_text(render_field(path))}")
        else:
            walk.visit(node, value, path)
    except _Full:
        pass
    return walk.problems
