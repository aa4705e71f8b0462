"""YAML 1.1 scalars as kubectl reads them: PyYAML's safe loader with goyaml.v2's resolution.

Layer: L2 (part of ``meshlens.loader``). Imports: PyYAML.

``kubectl apply -f`` converts YAML to JSON with ``sigs.k8s.io/yaml`` (goyaml.v2), which is YAML
1.1-flavoured, and so is :class:`Loader`: ``y``/``n``/``yes``/``no``/``on``/``off`` are
booleans, ``0755`` is the octal integer 493, ``1_000`` is 1000, ``0o17``/``0b101``/``0x1F`` are
integers, ``1e3`` and ``08`` are floats; but timestamps, ``1:30`` (YAML 1.1 base 60) and ``=``
stay strings, unknown tags (``!foo``) are read by node kind, and ``!!binary`` decodes to a
string. Plain scalars that YAML 1.2 would read differently (the YAML 1.1 booleans and
octal/binary/underscore integers) are recorded as :class:`Reading`\\s, so the decoder can
explain "expected string, got boolean" or warn about a port written ``0755``. Duplicate keys
are recorded too (the last value wins, as in goyaml.v2).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Reading:
    """A plain scalar read the YAML 1.1 way (as kubectl reads it), which YAML 1.2 reads otherwise.

    Example:
        >>> print(Reading("on", True, "boolean").explain())
        on was read as the boolean true (YAML 1.1); quote it ("on") for a string
    """

    text: str
    value: Any
    form: str  # "boolean", "octal", "binary" or "digit separators"

    def explain(self) -> str:
        quoted = f'"{self.text}"'
        if self.form == "boolean":
            return (
                f"{self.text} was read as the boolean {str(self.value).lower()} (YAML 1.1); "
                f"quote it ({quoted}) for a string"
            )
        if self.form == "octal":
            decimal = self.text.lstrip("+-").lstrip("0") or "0"
            sign = "-" if self.text.startswith("-") else ""
            return (
                f"{self.text} was read as the integer {self.value} (YAML 1.1 octal); write "
                f"{sign}{decimal} for the decimal number, or quote it ({quoted}) for a string"
            )
        return (
            f"{self.text} was read as the integer {self.value} (YAML 1.1 {self.form}); quote "
            f"it ({quoted}) for a string"
        )




_NUMBER_TAG = "tag:meshlens,2024:number"
_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_BOOLS_1_2 = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_SPECIAL_FLOATS = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    **{
        f"{s}{v}": (-math.inf if s == "-" else math.inf)
        for s in ("", "+", "-")
        for v in (".inf", ".Inf", ".INF")
    },
}
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_INT64 = 1 << 63


def _go_number(text: str) -> Any:
    """goyaml.v2's ``resolve`` for a plain scalar starting with a digit, sign or dot.

    Example:
        >>> [_go_number(t) for t in ("0755", "1_000", "0o17", "0x1F", "08", "1e3", "1.2.3", ".inf")]
        [493, 1000, 15, 31, 8.0, 1000.0, '1.2.3', inf]
    """
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text.startswith("."):
        return float(text) if _DOT_FLOAT.fullmatch(text) else text
    plain = text.replace("_", "")
    if _GO_INT.fullmatch(plain) and len(plain) <= 70:
        sign = -1 if plain.startswith("-") else 1
        body = plain.lstrip("+-")
        value = (
            int(body, 8)
            if len(body) > 1 and body[0] == "0" and body[1] in "01234567"
            else int(body, 0)
        )
        value *= sign
        if -_INT64 <= value < _INT64 or (
            0 <= value < (1 << 64) and not plain.startswith(("-", "+"))
        ):
            return value
    if _YAML_FLOAT.fullmatch(plain):
        number = float(plain)
        return number if math.isfinite(number) else text  # Go's ParseFloat: out of range
    return text


class _Hazards:
    """What both loaders record while constructing: YAML 1.1 readings and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self.readings: list[tuple[yaml.Node, Reading]] = []
        self.duplicates: list[yaml.Node] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        own = node.value  # flatten_mapping deletes merge keys from this very list
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)  # type: ignore[misc]
        if len(node.value) != len(own) or len(mapping) < len(own):
            seen: set[tuple[str, str]] = set()
            for key_node, _ in own:
                if isinstance(key_node, yaml.ScalarNode):
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        self.duplicates.append(key_node)
                    seen.add(key)
        return mapping


class Loader(_Hazards, _Base):  # type: ignore[misc,valid-type]
    """PyYAML's safe (C) loader with goyaml.v2's scalar resolution, recording hazards."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}


class PositionLoader(_Base):  # type: ignore[misc,valid-type]
    """The C composer for positions only: nodes and marks, no tag resolution.

    Finding a field's line needs the node tree's shape and the keys' text, never a node's tag,
    so the per-node Python callbacks PyYAML's composer makes to resolve tags are skipped.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return ""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class Undefined:
    """Where an undefined alias (``*name`` with no ``&name`` before it) stood in a document."""

    __slots__ = ("mark",)

    def __init__(self, mark: Any) -> None:
        self.mark = mark


_UNDEFINED_TAG = "tag:meshlens,2024:undefined-alias"


class RecoveringLoader(_Hazards, yaml.SafeLoader):
    """The same rules in pure Python, reading an undefined alias as an :class:`Undefined` value.

    Used only after :class:`Loader` failed on an undefined alias, so that a ``kind: List``
    loses only the items that hold one, not the whole file.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            if event.anchor not in self.anchors:
                self.get_event()
                return yaml.ScalarNode(_UNDEFINED_TAG, "", event.start_mark, event.end_mark)
        return super().compose_node(parent, index)


def bool_reading(text: str) -> tuple[bool, Reading | None]:
    """A plain scalar resolved as a boolean: its value, and a Reading if YAML 1.2 differs."""
    value = text in _TRUE
    return value, (Reading(text, value, "boolean") if text not in _BOOLS_1_2 else None)


def number_reading(text: str) -> tuple[Any, Reading | None]:
    """A plain scalar resolved as a number: its value, and a Reading if YAML 1.2 differs.

    Example:
        >>> number_reading("0755")
        (493, Reading(text='0755', value=493, form='octal'))
    """
    value = _go_number(text)
    if isinstance(value, int):
        body = text.lstrip("+-")
        form = (
            "octal"
            if len(body) > 1 and body[0] == "0" and body[1] in "01234567_"
            else "binary"
            if body[:2] in ("0b", "0B")
            else "digit separators"
            if "_" in text
            else ""
        )
        if form:
            return value, Reading(text, value, form)
    return value, None


def _construct_bool(loader: Loader, node: yaml.ScalarNode) -> bool:
    value, reading = bool_reading(node.value)
    if reading is not None and not node.style:  # plain: None (Python) or "" (C parser)
        loader.readings.append((node, reading))
    return value


def _construct_number(loader: Loader, node: yaml.ScalarNode) -> Any:
    value, reading = number_reading(node.value)
    if reading is not None:
        loader.readings.append((node, reading))
    return value


def _construct_binary(loader: Loader, node: yaml.ScalarNode) -> str:
    try:
        data = base64.b64decode("".join(str(node.value).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"failed to decode base64 data: {exc}", node.start_mark
        ) from exc
    return data.decode("utf-8", "replace")


def _construct_by_kind(loader: Loader, node: yaml.Node) -> Any:
    """An unknown tag (``!foo``): goyaml.v2 ignores it and reads the node by its kind."""
    if isinstance(node, yaml.MappingNode):
        return loader.construct_yaml_map(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_yaml_seq(node)
    return str(node.value)


def _construct_pairs(loader: Loader, node: yaml.Node) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    if isinstance(node, yaml.SequenceNode):
        data.extend(loader.construct_object(item, deep=True) for item in node.value)


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(
        r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE"
        r"|on|On|ON|off|Off|OFF)$"
    ),
    list("yYnNtTfFoO"),
)
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
Loader.add_implicit_resolver(
    _NUMBER_TAG, re.compile(r"^[-+.0-9][-+.0-9a-zA-Z_]*$"), list("-+.0123456789")
)
Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
Loader.add_constructor(_NUMBER_TAG, _construct_number)
Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: str(node.value))
Loader.add_constructor("tag:yaml.org,2002:binary", _construct_binary)
Loader.add_constructor("tag:yaml.org,2002:set", Loader.construct_yaml_map)
Loader.add_constructor("tag:yaml.org,2002:omap", _construct_pairs)
Loader.add_constructor("tag:yaml.org,2002:pairs", _construct_pairs)
Loader.add_constructor(None, _construct_by_kind)

RecoveringLoader.yaml_implicit_resolvers = Loader.yaml_implicit_resolvers
RecoveringLoader.yaml_constructors = {
    **Loader.yaml_constructors,
    _UNDEFINED_TAG: lambda loader, node: Undefined(node.start_mark),
}
