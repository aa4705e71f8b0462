"""The loader's fast path (events → values) gives exactly what the general path (nodes) gives.

Every YAML and JSON file under tests/ is loaded both ways, and so are hand-written edge cases
and random documents: the same values (compared by ``repr``, so key order and types count),
the same spans, readings, diagnostics, errors, and the same position for every field path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshlens.limits import Limits
from meshlens.loader import documents, load_text
from meshlens.loader.fast import parse_fast
from meshlens.source import FieldPath

TESTS = Path(__file__).parent


def _corpus() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*") if p.suffix in (".yaml", ".yml", ".json")
                  and p.is_file())


def _paths(value: Any, base: FieldPath = ()) -> Iterator[FieldPath]:
    yield base
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str | int):
                yield from _paths(v, base + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, base + (i,))


def _snapshot(text: str, limits: Limits = Limits()) -> dict[str, Any]:
    r = load_text(text, "f.yaml", limits=limits)
    docs = []
    for d in r.documents:
        readings = getattr(d.locator, "readings", {})
        where = [(p, str(d.locate(p))) for p in _paths(d.data)]
        where += [(p, str(d.locate(p))) for p in readings]
        docs.append((repr(d.data), str(d.span), d.index, list(readings.items()), where))
    return {"docs": docs, "diagnostics": [x.format() for x in r.diagnostics],
            "errors": [(str(e), e.code) for e in r.errors]}


def _both(text: str, limits: Limits = Limits(), *, expect_fast: bool | None = None,
          expect_json: bool | None = None) -> None:
    calls: dict[str, list[bool]] = {"parse_fast": [], "parse_json": []}
    real = {name: getattr(documents, name) for name in calls}

    def spy(name: str) -> Any:
        def call(*args: Any) -> Any:
            out = real[name](*args)
            calls[name].append(out is not None)
            return out
        return call

    for name in calls:
        setattr(documents, name, spy(name))
    try:
        fast = _snapshot(text, limits)
    finally:
        for name in calls:
            setattr(documents, name, real[name])
    for name in calls:
        setattr(documents, name, lambda *args: None)
    try:
        slow = _snapshot(text, limits)
    finally:
        for name in calls:
            setattr(documents, name, real[name])
    assert fast == slow
    if expect_fast is not None:
        assert any(calls["parse_fast"]) is expect_fast
    if expect_json is not None:
        assert any(calls["parse_json"]) is expect_json


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: str(p.relative_to(TESTS)))
def test_every_test_file_loads_the_same_both_ways(path: Path) -> None:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pytest.fail(f"{path} is not UTF-8")  # the corpus is UTF-8; hostile bytes are generated
    _both(text)


EDGE_CASES = {
    "readings everywhere": "a: on\nb: [yes, 0755, {c: off, 0b1: 1_000}]\non: n\nd:\n  e: [[Y]]\n",
    "reading as key and value": "x:\n  0755: on\n  y: 017\n",
    "quoted are strings": "a: 'on'\nb: \"0755\"\nc: |\n  on\n",
    "nulls": "a:\nb: ~\nc: null\nd: ''\n~: 1\n",
    "numbers": "a: [1e3, .5, -0, +1, 0x1F, 0o17, 1.2.3, .inf, -.Inf, .nan, 08, 1_0]\n",
    "list items": "apiVersion: v1\nkind: List\nitems:\n- kind: Service\n  metadata: {name: a}\n"
                  "- 'scalar'\n-\n  kind: Pod\n- [1]\n",
    "list in flow": '{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p"}}, 3]}',
    "items not a list": "kind: List\nitems: {a: 1}\n",
    "items nested": "kind: x\nspec:\n  items: [1, 2]\n",
    "duplicate keys": "a: 1\nb: 2\na: 3\n",
    "equal keys": "on: 1\nyes: 2\n1: a\n01: b\n",
    "quoted duplicate": "a: 1\n'a': 2\n",
    "merge key": "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n",
    "inline merge": "m:\n  <<: {x: 1}\n  y: 2\n",
    "anchors": "a: &x [1, on]\nb: *x\n",
    "undefined alias": "kind: List\nitems:\n- a: *nope\n- b: 2\n",
    "tags": "a: !!str 1\nb: !custom {x: 1}\nc: !!binary aGVsbG8=\nd: ! on\n",
    "complex key": "? [a]\n: 1\n",
    "two documents in a chunk": "a: 1\n...\nb: 2\n",
    "empty": "# just a comment\n",
    "bare marker": "---\n",
    "scalar document": "on\n",
    "list document": "- a\n- b\n",
    "syntax error": "a: [1,\nb: 2\n",
    "tab": "a:\n\tb: 1\n",
    "several documents": "a: 1\n---\n- x\n---\nkind: List\nitems: [{a: on}]\n---\n",
    "crlf": "a: 1\r\nb: on\r\n",
    "deep": "a: " + "[" * 70 + "]" * 70 + "\n",
    "recursive": "a: &a [*a]\n",
    "bomb": "a: &a [x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_load_the_same_both_ways(name: str) -> None:
    _both(EDGE_CASES[name])


def test_the_fast_path_is_taken_for_plain_manifests_and_not_for_anchors() -> None:
    _both("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", expect_fast=True)
    _both("a: &x 1\nb: *x\n", expect_fast=False)
    assert parse_fast("a: 1\nb: 2\na: 3\n", 64) is None  # duplicates: the general path reports


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_depth_limit_at_its_boundary(depth: int) -> None:
    text = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 5)) + "  " * 5 + "x\n"
    _both(text, Limits(max_depth=depth))
    _both("a: " + "[" * depth + "]" * depth, Limits(max_depth=4))


def test_scalar_limit() -> None:
    _both("a: " + "x" * 300 + "\nb: [1]\n", Limits(max_scalar_bytes=100))
    _both("x" * 300 + "\n", Limits(max_scalar_bytes=100))
    many = "".join(f"k{i}: [{'é' * 20}, 1]\n" for i in range(30))  # big file, short scalars
    _both(many, Limits(max_scalar_bytes=100))
    _both(many + "z: " + "é" * 26 + "\n", Limits(max_scalar_bytes=100))  # 52 bytes: allowed
    _both(many + "z: " + "é" * 51 + "\n", Limits(max_scalar_bytes=100))  # 102 bytes: not


_scalar_texts = st.sampled_from(["on", "off", "y", "n", "0755", "0b11", "1_0", "1e3", "~", "",
                                 "'on'", "\"0x1F\"", "a", "items", "kind", "List", "<<", "-1",
                                 ".5", "08", "null", "True", "&a x", "*a", "!t x", "{}", "[]"])


@st.composite
def _yaml_texts(draw: Any) -> str:
    def value(depth: int) -> str:
        kind = draw(st.integers(0, 3 if depth < 4 else 0))
        if kind == 0:
            return draw(_scalar_texts)
        if kind == 1:
            return "[" + ", ".join(value(depth + 1) for _ in range(draw(st.integers(0, 3)))) + "]"
        pairs = [f"{draw(_scalar_texts)}: {value(depth + 1)}" for _ in range(draw(st.integers(0, 3)))]
        return "{" + ", ".join(pairs) + "}"

    docs = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            docs.append("kind: List\nitems: " + value(1) + "\n")
        else:
            lines = [f"{draw(_scalar_texts)}: {value(1)}" for _ in range(draw(st.integers(1, 4)))]
            docs.append("\n".join(lines) + "\n")
    return "---\n".join(docs)


@given(_yaml_texts())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_documents_load_the_same_both_ways(text: str) -> None:
    _both(text, Limits(max_depth=3))  # some random documents go past it


@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                    lambda c: st.one_of(st.lists(c, max_size=3),
                                        st.dictionaries(st.text(max_size=5), c, max_size=3)),
                    max_leaves=20))
@settings(max_examples=200, deadline=None)
def test_dumped_values_load_the_same_both_ways(value: Any) -> None:
    _both(yaml.safe_dump({"kind": "List", "items": [value, value]}))
    _both(yaml.safe_dump(value, default_flow_style=True))


JSON_CASES = {
    "compact list": '{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":'
                    '{"name":"p"}},{"kind":"Service"},3,"x",[1]]}',
    "indented list": json.dumps({"kind": "List", "items": [{"kind": "Pod", "a": [1, 2.5, None,
                                True]}, {"kind": "Svc"}], "metadata": {}}, indent=2) + "\n",
    "empty items": '{"kind": "List", "items": []}\n',
    "no items": '{"kind": "Service", "spec": {"ports": [{"port": 80}]}}',
    "items not a list": '{"kind": "List", "items": {"a": 1}}',
    "duplicate key": '{"a": 1, "b": {"c": 1, "c": 2}}',
    "duplicate items": '{"kind": "List", "items": [1], "items": [2]}',
    "int64 and uint64": '{"a": 9223372036854775807, "b": 18446744073709551615, '
                        '"c": -9223372036854775808}',
    "beyond uint64": '{"c": 18446744073709551616}',
    "below int64": '{"d": -9223372036854775809}',
    "huge float": '{"a": 1e400, "b": -1e400}',
    "floats": '{"a": 1.5, "b": -0.0, "c": 1E5, "d": 1e-7, "e": -0, "f": 0}',
    "escapes": '{"a": "x\\"y", "b": "\\u00e9\\n", "c": "\\/"}',
    "surrogates": '{"a": "\\ud83d\\ude00"}',
    "non-ascii": '{"a": "\u00e9t\u00e9"}',
    "tab": '{\t"a": 1}',
    "long key": '{"' + "k" * 1100 + '": 1}',
    "key line break": '{"a"\n: 1}',
    "key spaces": '{"a"' + " " * 30 + ': 1}',
    "yaml words": '{"on": "yes", "0755": "08", "x": ["on", "~", "null"]}',
    "trailing": '{"a": 1} {"b": 2}',
    "trailing comma": '{"a": 1,}',
    "comment after": '{"a": 1} # note\n',
    "deep": '{"a": ' + "[" * 70 + "]" * 70 + "}",
    "NaN": '{"a": NaN}',
    "empty": "{}",
    "after a marker": '---\n{"kind": "Pod", "metadata": {"name": "p"}}\n',
    "after a marker and spaces": '---   \n\n  {"kind": "List", "items": [{"a": 1}]}',
    "marker on the line": '--- {"kind": "Pod"}\n',
    "two documents": '{"a": 1}\n---\n{"b": [1, 2]}\n---\n{"c": 1, "c": 2}\n',
    "string root key colon": '{"a": ":x", ":b": [": c"]}',
}


@pytest.mark.parametrize("name", sorted(JSON_CASES))
def test_json_cases_load_the_same_both_ways(name: str) -> None:
    _both(JSON_CASES[name])
    _both(JSON_CASES[name], Limits(max_depth=3, max_scalar_bytes=40))


def test_the_json_path_is_taken_for_plain_exports() -> None:
    _both(JSON_CASES["compact list"], expect_json=True)
    _both(JSON_CASES["indented list"], expect_json=True)
    _both(JSON_CASES["after a marker"], expect_json=True)
    _both(JSON_CASES["escapes"], expect_json=False)
    _both(JSON_CASES["duplicate key"], expect_json=False)


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65),
              st.floats(allow_nan=False, allow_infinity=False),
              st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
              st.sampled_from(["on", "0755", "1e3", "~", ""])),
    lambda c: st.one_of(st.lists(c, max_size=4),
                        st.dictionaries(st.text(max_size=6), c, max_size=4)),
    max_leaves=25)


@given(_json_values, st.sampled_from([None, 1, 2]), st.booleans())
@settings(max_examples=300, deadline=None)
def test_random_json_loads_the_same_both_ways(value: Any, indent: int | None, listed: bool) -> None:
    doc = {"kind": "List", "items": [value, {"v": value}]} if listed else {"v": value}
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    _both(text)
    _both(text, Limits(max_depth=4))
