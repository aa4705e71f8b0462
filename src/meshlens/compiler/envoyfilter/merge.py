"""Proto merge as istiod's EnvoyFilter MERGE does it.

Layer: L4. Imports: protobuf only.

``pkg/proto/merge`` (`Merge`, `MergeWithReplaceList`): Go's ``proto.Merge`` -- set scalars
overwrite, messages merge field by field, lists append (or, for MERGE_AND_REPLACE_LIST, a list
present in the patch replaces the list), map entries are replaced whole -- except that a
``google.protobuf.Duration`` is replaced, not merged. ``util.MergeAnyWithAny``: two ``Any`` of
the same type are unpacked, merged and packed again; different types are an error (the patch is
then skipped for that object).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import symbol_database

_DURATION = "google.protobuf.Duration"


def merge(dst: Any, src: Any, *, replace_list: bool = False) -> None:
    """Merge ``src`` into ``dst`` in place."""
    for fd, value in src.ListFields():
        target = getattr(dst, fd.name)
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                value_fd = fd.message_type.fields_by_name["value"]
                for k, v in value.items():
                    if value_fd.message_type is not None:
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
                continue
            if replace_list:
                del target[:]
            if fd.message_type is not None:
                for item in value:
                    target.add().CopyFrom(item)
            else:
                target.extend(value)
        elif fd.message_type is not None:
            if fd.message_type.full_name == _DURATION:
                target.CopyFrom(value)
            else:
                target.SetInParent()
                merge(target, value, replace_list=replace_list)
        else:
            setattr(dst, fd.name, value)


def message_of(type_url: str) -> Any:
    """A new message of the type an ``Any`` names (its module must have been imported)."""
    name = type_url.rsplit("/", 1)[-1]
    return symbol_database.Default().GetSymbol(name)()


def merge_any(dst: Any, src: Any) -> Any:
    """`util.MergeAnyWithAny`: a new ``Any`` holding ``src`` merged into ``dst``.

    Raises ValueError when the types differ or cannot be decoded.
    """
    from google.protobuf import any_pb2

    if dst.type_url != src.type_url:
        raise ValueError(f"incompatible types: {dst.type_url} and {src.type_url}")
    try:
        a, b = message_of(dst.type_url), message_of(src.type_url)
    except KeyError as exc:
        raise ValueError(f"unknown type {dst.type_url}") from exc
    dst.Unpack(a)
    src.Unpack(b)
    merge(a, b)
    out = any_pb2.Any()
    out.Pack(a)
    return out
