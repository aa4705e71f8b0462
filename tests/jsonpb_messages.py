"""A test-only proto type with every kind of field, and hypothesis strategies for its messages.

``meshlens.jsonpbtest.All`` is built here with ``descriptor_pb2`` (no .proto file, no generated
code) and added to the default descriptor pool so that ``Any`` can carry it. Field numbers are
deliberately out of declaration order: the JSON prints fields by number.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from hypothesis import strategies as st

FDP = descriptor_pb2.FieldDescriptorProto
PACKAGE = "meshlens.jsonpbtest"

#: name → (number, type, type_name or None); scalars first, then messages.
SCALARS = {
    "i32": (7, FDP.TYPE_INT32), "i64": (3, FDP.TYPE_INT64), "u32": (12, FDP.TYPE_UINT32),
    "u64": (4, FDP.TYPE_UINT64), "s64": (5, FDP.TYPE_SINT64), "f64": (6, FDP.TYPE_FIXED64),
    "sf32": (8, FDP.TYPE_SFIXED32), "flt": (9, FDP.TYPE_FLOAT), "dbl": (10, FDP.TYPE_DOUBLE),
    "yes": (11, FDP.TYPE_BOOL), "text": (1, FDP.TYPE_STRING), "raw": (2, FDP.TYPE_BYTES),
}
WELL_KNOWN = {
    "any": (40, ".google.protobuf.Any"), "struct": (41, ".google.protobuf.Struct"),
    "value": (42, ".google.protobuf.Value"), "list": (43, ".google.protobuf.ListValue"),
    "dur": (44, ".google.protobuf.Duration"), "ts": (45, ".google.protobuf.Timestamp"),
    "mask": (46, ".google.protobuf.FieldMask"), "empty": (47, ".google.protobuf.Empty"),
    "w_dbl": (50, ".google.protobuf.DoubleValue"), "w_flt": (51, ".google.protobuf.FloatValue"),
    "w_i64": (52, ".google.protobuf.Int64Value"), "w_u64": (53, ".google.protobuf.UInt64Value"),
    "w_i32": (54, ".google.protobuf.Int32Value"), "w_u32": (55, ".google.protobuf.UInt32Value"),
    "w_bool": (56, ".google.protobuf.BoolValue"), "w_str": (57, ".google.protobuf.StringValue"),
    "w_bytes": (58, ".google.protobuf.BytesValue"),
}
#: map field → (number, key type, value type, value type name)
MAPS = {
    "by_name": (60, FDP.TYPE_STRING, FDP.TYPE_INT32, None),
    "by_int": (61, FDP.TYPE_INT32, FDP.TYPE_STRING, None),
    "by_flag": (62, FDP.TYPE_BOOL, FDP.TYPE_MESSAGE, f".{PACKAGE}.Sub"),
    "by_u64": (63, FDP.TYPE_UINT64, FDP.TYPE_DOUBLE, None),
    "subs": (64, FDP.TYPE_STRING, FDP.TYPE_MESSAGE, f".{PACKAGE}.Sub"),
    "structs": (65, FDP.TYPE_STRING, FDP.TYPE_MESSAGE, ".google.protobuf.Struct"),
    "colours": (66, FDP.TYPE_STRING, FDP.TYPE_ENUM, f".{PACKAGE}.Colour"),
}
REPEATED = {"r_i64": (20, FDP.TYPE_INT64, None), "r_text": (21, FDP.TYPE_STRING, None),
            "r_flt": (22, FDP.TYPE_FLOAT, None), "r_raw": (23, FDP.TYPE_BYTES, None),
            "r_colour": (24, FDP.TYPE_ENUM, f".{PACKAGE}.Colour"),
            "r_sub": (25, FDP.TYPE_MESSAGE, f".{PACKAGE}.Sub"),
            "r_any": (26, FDP.TYPE_MESSAGE, ".google.protobuf.Any"),
            "r_w_u32": (27, FDP.TYPE_MESSAGE, ".google.protobuf.UInt32Value")}
COLOURS = {"COLOUR_UNSET": 0, "RED": 1, "GREEN": 2, "BLUE": 7}


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(name="meshlens/jsonpbtest.proto", package=PACKAGE,
                                           syntax="proto3")
    f.dependency.extend(f"google/protobuf/{n}.proto" for n in (
        "any", "struct", "duration", "timestamp", "field_mask", "empty", "wrappers"))
    colour = f.enum_type.add(name="Colour")
    for name, number in COLOURS.items():
        colour.value.add(name=name, number=number)
    sub = f.message_type.add(name="Sub")
    sub.field.add(name="label", number=2, type=FDP.TYPE_STRING, label=FDP.LABEL_OPTIONAL)
    sub.field.add(name="count", number=1, type=FDP.TYPE_INT64, label=FDP.LABEL_OPTIONAL)
    sub.field.add(name="colour", number=3, type=FDP.TYPE_ENUM, type_name=f".{PACKAGE}.Colour",
                  label=FDP.LABEL_OPTIONAL)
    sub.field.add(name="child", number=4, type=FDP.TYPE_MESSAGE, type_name=f".{PACKAGE}.Sub",
                  label=FDP.LABEL_OPTIONAL)
    sub.field.add(name="tags", number=5, type=FDP.TYPE_STRING, label=FDP.LABEL_REPEATED)
    msg = f.message_type.add(name="All")
    for name, (number, kind) in SCALARS.items():
        msg.field.add(name=name, number=number, type=kind, label=FDP.LABEL_OPTIONAL)
    msg.field.add(name="colour", number=13, type=FDP.TYPE_ENUM, type_name=f".{PACKAGE}.Colour",
                  label=FDP.LABEL_OPTIONAL)
    msg.field.add(name="null", number=14, type=FDP.TYPE_ENUM, type_name=".google.protobuf.NullValue",
                  label=FDP.LABEL_OPTIONAL)
    msg.field.add(name="sub", number=15, type=FDP.TYPE_MESSAGE, type_name=f".{PACKAGE}.Sub",
                  label=FDP.LABEL_OPTIONAL)
    for name, (number, type_name) in WELL_KNOWN.items():
        msg.field.add(name=name, number=number, type=FDP.TYPE_MESSAGE, type_name=type_name,
                      label=FDP.LABEL_OPTIONAL)
    for name, (number, kind, type_name) in REPEATED.items():
        fld = msg.field.add(name=name, number=number, type=kind, label=FDP.LABEL_REPEATED)
        if type_name:
            fld.type_name = type_name
    for name, (number, key, value, type_name) in MAPS.items():
        entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
        entry = msg.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key, label=FDP.LABEL_OPTIONAL)
        vf = entry.field.add(name="value", number=2, type=value, label=FDP.LABEL_OPTIONAL)
        if type_name:
            vf.type_name = type_name
        msg.field.add(name=name, number=number, type=FDP.TYPE_MESSAGE, label=FDP.LABEL_REPEATED,
                      type_name=f".{PACKAGE}.All.{entry_name}")
    return f


def _classes() -> tuple[Any, Any]:
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName(f"{PACKAGE}.All")
    except KeyError:
        pool.AddSerializedFile(_file().SerializeToString())
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.All")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Sub")))


All, Sub = _classes()

# -- strategies ----------------------------------------------------------------------------------
I32 = st.integers(-(2**31), 2**31 - 1)
U32 = st.integers(0, 2**32 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
U64 = st.integers(0, 2**64 - 1)
TEXT = st.text(max_size=12)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from([0.0, 1.0, -2.5, 50.0])
DOUBLES = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 1.0, 2.0**60, 0.1])
ENUMS = st.sampled_from(list(COLOURS.values()) + [3, 99])  # 3, 99: no name (an open enum)
#: finite: json_format refuses NaN and infinities in a Value
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10, 10) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
STRUCTS = st.dictionaries(TEXT, JSON_VALUES, max_size=4)


def _struct(data: dict[str, Any]) -> Any:
    s = struct_pb2.Struct()
    s.update(data)
    return s


@st.composite
def subs(draw: Any, depth: int = 2) -> Any:
    m = Sub()
    if draw(st.booleans()):
        m.label = draw(TEXT)
    if draw(st.booleans()):
        m.count = draw(I64)
    if draw(st.booleans()):
        m.colour = draw(ENUMS)
    if depth and draw(st.booleans()):
        m.child.CopyFrom(draw(subs(depth - 1)))
    m.tags.extend(draw(st.lists(TEXT, max_size=2)))
    return m


@st.composite
def anys(draw: Any) -> Any:
    inner = draw(st.one_of(
        subs(), st.just(Sub()), st.builds(lambda v: wrappers_pb2.UInt32Value(value=v), U32),
        st.builds(lambda s: duration_pb2.Duration(seconds=s), st.integers(0, 10**6)),
        STRUCTS.map(_struct), st.just(empty_pb2.Empty())))
    a = any_pb2.Any()
    a.Pack(inner)
    return a


SCALAR_VALUES = {"i32": I32, "i64": I64, "u32": U32, "u64": U64, "s64": I64, "f64": U64, "sf32": I32,
                 "flt": FLOATS, "dbl": DOUBLES, "yes": st.booleans(), "text": TEXT, "raw": st.binary(max_size=8)}


@st.composite
def messages(draw: Any) -> Any:
    """An ``All`` with a random subset of its fields set."""
    m = All()
    for name, values in SCALAR_VALUES.items():
        if draw(st.booleans()):
            setattr(m, name, draw(values))
    if draw(st.booleans()):
        m.colour = draw(ENUMS)
    if draw(st.booleans()):
        m.null = 0
    if draw(st.booleans()):
        m.sub.CopyFrom(draw(subs()))
    if draw(st.booleans()):
        m.any.CopyFrom(draw(anys()))
    if draw(st.booleans()):
        m.struct.CopyFrom(_struct(draw(STRUCTS)))
    if draw(st.booleans()):
        m.value.CopyFrom(_struct({"v": draw(JSON_VALUES)}).fields["v"])
    if draw(st.booleans()):
        m.list.extend(draw(st.lists(JSON_VALUES, max_size=3)))
    if draw(st.booleans()):
        seconds = draw(st.integers(-(10**9), 10**9))
        nanos = draw(st.sampled_from([0, 5, 500000000]))
        m.dur.CopyFrom(duration_pb2.Duration(seconds=seconds, nanos=-nanos if seconds < 0 else nanos))
    if draw(st.booleans()):
        m.ts.CopyFrom(timestamp_pb2.Timestamp(seconds=draw(st.integers(0, 2 * 10**9)),
                                              nanos=draw(st.sampled_from([0, 1000, 7]))))
    if draw(st.booleans()):
        m.mask.CopyFrom(field_mask_pb2.FieldMask(paths=draw(st.lists(
            st.from_regex(r"[a-z]{1,4}(_[a-z]{1,4})?", fullmatch=True), max_size=2))))
    if draw(st.booleans()):
        m.empty.SetInParent()
    for name, values in (("w_dbl", DOUBLES), ("w_flt", FLOATS), ("w_i64", I64), ("w_u64", U64),
                         ("w_i32", I32), ("w_u32", U32), ("w_bool", st.booleans()), ("w_str", TEXT),
                         ("w_bytes", st.binary(max_size=6))):
        if draw(st.booleans()):
            getattr(m, name).value = draw(values)
    m.r_i64.extend(draw(st.lists(I64, max_size=3)))
    m.r_text.extend(draw(st.lists(TEXT, max_size=3)))
    m.r_flt.extend(draw(st.lists(FLOATS, max_size=3)))
    m.r_raw.extend(draw(st.lists(st.binary(max_size=4), max_size=2)))
    m.r_colour.extend(draw(st.lists(ENUMS, max_size=3)))
    m.r_sub.extend(draw(st.lists(subs(), max_size=3)))
    m.r_any.extend(draw(st.lists(anys(), max_size=2)))
    for v in draw(st.lists(U32, max_size=2)):
        m.r_w_u32.add(value=v)
    m.by_name.update(draw(st.dictionaries(TEXT, I32, max_size=3)))
    m.by_int.update(draw(st.dictionaries(I32, TEXT, max_size=4)))
    for k, v in draw(st.dictionaries(st.booleans(), subs(), max_size=2)).items():
        m.by_flag[k].CopyFrom(v)
    m.by_u64.update(draw(st.dictionaries(U64, DOUBLES, max_size=3)))
    for k, v in draw(st.dictionaries(TEXT, subs(), max_size=2)).items():
        m.subs[k].CopyFrom(v)
    for k, v in draw(st.dictionaries(TEXT, STRUCTS, max_size=2)).items():
        m.structs[k].CopyFrom(_struct(v))
    m.colours.update(draw(st.dictionaries(TEXT, ENUMS, max_size=2)))
    return m
