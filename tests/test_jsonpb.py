"""meshlens.jsonpb (plans, caches) against protobuf's own json_format, key order included.

The oracle is ``emit.to_dict_reference`` (``json_format.MessageToDict`` with proto field names,
whole floats as integers) for the content, and :func:`ordered_reference` for the order: the same
json_format output rearranged by walking the message itself (fields by number, map and Struct
keys sorted, an Any's ``@type`` first). The comparison is of JSON texts, so order counts.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonpb_messages import All, Sub, messages, subs

from meshlens import jsonpb
from meshlens.emit import _sorted, to_dict, to_dict_reference

_LEAVES = {"google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
           "google.protobuf.Empty", *jsonpb._WRAPPERS}
_JSON = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}


# emit's reference normalisation: keys sorted at every depth, whole floats as integers
_num = _sorted_json = _sorted


def _key_text(k: Any) -> str:
    return ("true" if k else "false") if isinstance(k, bool) else str(k)


def _ordered(m: Any, d: Any) -> Any:
    full = m.DESCRIPTOR.full_name
    if full in _JSON:
        return _sorted_json(d)
    if full in _LEAVES:
        return _num(d)
    if full == "google.protobuf.Any":
        if not m.ListFields():
            return {}
        inner = jsonpb._class(m.type_url.rsplit("/", 1)[-1])()
        m.Unpack(inner)
        if inner.DESCRIPTOR.full_name in (_JSON | _LEAVES | {"google.protobuf.Any"}) - {"google.protobuf.Empty"}:
            return {"@type": d["@type"], "value": _ordered(inner, d["value"])}
        return {"@type": d["@type"], **_ordered(inner, {k: v for k, v in d.items() if k != "@type"})}
    out: dict[str, Any] = {}
    for f, v in m.ListFields():
        x = d[f.name]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            message_values = f.message_type.fields_by_name["value"].message_type is not None
            by_text = {_key_text(k): k for k in v}
            out[f.name] = {t: _ordered(v[by_text[t]], x[t]) if message_values else _num(x[t])
                           for t in sorted(x)}
        elif f.message_type is not None and f.is_repeated:
            out[f.name] = [_ordered(a, b) for a, b in zip(v, x, strict=True)]
        elif f.message_type is not None:
            out[f.name] = _ordered(v, x)
        else:
            out[f.name] = _num(x)
    assert set(out) == set(d), (set(out) ^ set(d))
    return out


def ordered_reference(m: Any) -> Any:
    return _ordered(m, json_format.MessageToDict(m, preserving_proto_field_name=True))


def _same(m: Any, printer: jsonpb.Printer | None = None) -> None:
    got = jsonpb.to_json_obj(m, printer)
    assert got == to_dict_reference(m)
    assert json.dumps(got) == json.dumps(ordered_reference(m))


@settings(max_examples=300, deadline=None)
@given(messages())
def test_every_kind_of_field_prints_as_json_format_does(m: Any) -> None:
    _same(m)


@settings(max_examples=50, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=6))
def test_one_printer_for_many_messages_changes_nothing(ms: list[Any]) -> None:
    p = jsonpb.Printer()
    for m in ms * 2:  # the second round answers from the caches
        _same(m, p)


def test_empty_messages_and_unset_well_known_types() -> None:
    _same(All())
    _same(Sub())
    m = All()
    m.any.SetInParent()  # an Any with neither type nor value prints {}
    m.struct.SetInParent()
    m.value.SetInParent()
    m.sub.SetInParent()
    m.empty.SetInParent()
    _same(m)
    assert jsonpb.to_json_obj(m) == {"sub": {}, "any": {}, "struct": {}, "value": None, "empty": {}}


def test_the_spellings_envoy_prints() -> None:
    m = All(i64=-3, u64=2**64 - 1, flt=0.1, dbl=50.0, raw=b"\xff\x00", colour=99)
    m.by_int.update({10: "ten", 9: "nine", -1: "minus"})
    m.by_flag[True].label = "t"
    m.by_flag[False].label = "f"
    m.w_dbl.value = float("inf")
    m.r_flt.extend([float("nan"), 2.0])
    got = jsonpb.to_json_obj(m)
    assert got["i64"] == "-3" and got["u64"] == "18446744073709551615"
    assert got["flt"] == 0.1 and got["dbl"] == 50 and isinstance(got["dbl"], int)
    assert got["raw"] == "/wA=" and got["colour"] == 99  # an enum number without a name stays a number
    assert list(got["by_int"]) == ["-1", "10", "9"]  # sorted as texts, as Go prints map keys
    assert list(got["by_flag"]) == ["false", "true"]
    assert got["w_dbl"] == "Infinity" and got["r_flt"] == ["NaN", 2]
    _same(m)


@settings(max_examples=30, deadline=None)
@given(subs(), st.lists(subs(), min_size=1, max_size=4))
def test_repeated_sub_messages_are_converted_once(one: Any, others: list[Any]) -> None:
    """A type whose values repeat is served from the cache; one whose values differ stops asking it."""
    m = All()
    for _ in range(jsonpb.TRIAL * 2):
        m.r_sub.add().CopyFrom(one)
    for other in others:
        m.r_sub.add().CopyFrom(other)
    p = jsonpb.Printer()
    _same(m, p)
    got = jsonpb.to_json_obj(m, p)["r_sub"]
    assert got[0] is got[jsonpb.TRIAL]  # one conversion, shared
    assert p.caches[Sub.DESCRIPTOR].on

    distinct = All()
    for i in range(jsonpb.TRIAL * 2):
        distinct.r_sub.add(count=i, tags=["x"])
    p = jsonpb.Printer()
    _same(distinct, p)
    cache = p.caches[Sub.DESCRIPTOR]
    assert not cache.on and not cache.values


def test_resources_of_every_golden_case_print_as_json_format_does(monkeypatch: Any) -> None:
    """Real Envoy messages: every resource of every golden case, through one shared Printer."""
    from pathlib import Path

    from test_golden_cases import CASES, compile_case

    root = Path(__file__).parent.parent
    monkeypatch.chdir(root)
    p = jsonpb.Printer()
    seen = 0
    for case in CASES:
        _, _, result = compile_case(case.relative_to(root))
        resources = [*result.clusters, *result.endpoints, *(result.listeners or []),
                     *(result.routes or []), *(result.secrets or []), result.bootstrap]
        for r in resources:
            if r is not None:
                got = jsonpb.to_json_obj(r, p)
                assert json.dumps(got) == json.dumps(ordered_reference(r)), (case.name, r.DESCRIPTOR.name)
                assert got == to_dict(r)
                seen += 1
    assert seen > 400
