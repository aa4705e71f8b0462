"""Resolving the ``@type`` of every Any in a dump, without ever importing a name from the input.

Layer: L5 (part of ``meshlens.dump``). Imports: compiler.istio_protos (and the xDS protos).

A type is looked up in protobuf's descriptor pool. When it is not there yet, the longest
package prefix of its name that is a key of a fixed table (proto package → ``*_pb2`` modules,
read once from the installed xds-protos folders) names the modules to import; the name itself
is only ever a dictionary key. ``{"@type": "type.googleapis.com/this.Zen"}`` finds nothing and
imports nothing. :func:`prune` drops every Any whose type stays unknown, so a dump from a newer
Envoy still reads.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from meshlens.dump.text import printable

#: The well-known types whose JSON form is not an object of fields: never walked into.
OPAQUE_WKT = frozenset({
    "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
    "google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
    "google.protobuf.Empty", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
    "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
})


# --- type resolution ------------------------------------------------------------------------

#: The Python packages whose generated ``*_pb2`` modules may be imported to resolve an ``@type``:
#: xds-protos's roots. Never a name taken from the input.
_PROTO_ROOTS = ("envoy", "xds", "udpa", "validate")

_modules_by_package: dict[str, tuple[str, ...]] | None = None
_imported: set[str] = set()


def _load_fixed_types() -> None:
    """Import the types every dump uses, and Istio's own filter types meshlens emits."""
    from google.protobuf import (  # noqa: F401 - imported to fill the descriptor pool
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )

    from meshlens.compiler import istio_protos  # noqa: F401 - istio.alpn's FilterConfig


def proto_modules() -> dict[str, tuple[str, ...]]:
    """Proto package → its ``*_pb2`` modules, from the installed xds-protos files (built once).

    The table is read from the folders of the fixed roots in :data:`_PROTO_ROOTS`, so the only
    modules that can ever be imported are files of xds-protos. Importing all 638 of them up
    front costs 0.75 s; a dump names a few dozen packages, so they are imported on first use.
    """
    global _modules_by_package
    if _modules_by_package is None:
        table: dict[str, list[str]] = {}
        for root in _PROTO_ROOTS:
            try:
                package = importlib.import_module(root)
            except ImportError:
                continue
            for folder in getattr(package, "__path__", []):
                base = os.path.dirname(folder)
                for dirpath, dirnames, filenames in os.walk(folder):
                    dirnames[:] = sorted(d for d in dirnames if d.isidentifier() and d != "__pycache__")
                    rel = os.path.relpath(dirpath, base).split(os.sep)
                    if not all(part.isidentifier() for part in rel):
                        continue
                    name = ".".join(rel)
                    table.setdefault(name, []).extend(
                        f"{name}.{f[:-3]}" for f in sorted(filenames)
                        if f.endswith("_pb2.py") and f[:-3].isidentifier())
        _modules_by_package = {k: tuple(v) for k, v in table.items() if v}
        _load_fixed_types()
    return _modules_by_package


def message_class(type_url: str) -> type[Message] | None:
    """The protobuf class for an Any's type URL, if xds-protos (or Istio's filters) define it.

    Example:
        >>> message_class("type.googleapis.com/envoy.config.cluster.v3.Cluster").__name__
        'Cluster'
        >>> message_class("type.googleapis.com/istio.not.a.real.Type") is None
        True
    """
    desc = descriptor(type_url.rsplit("/", 1)[-1])
    return None if desc is None else message_factory.GetMessageClass(desc)


def descriptor(full_name: str) -> Descriptor | None:
    """Resolve a message name in the descriptor pool, never importing a name from the input.

    The name's longest package prefix that is a key of the fixed table of xds-protos packages
    (:func:`proto_modules`) names the modules to import; the name itself is only ever looked
    up, in that table and in the pool.
    """
    table = proto_modules()
    pool = descriptor_pool.Default()
    try:
        return pool.FindMessageTypeByName(full_name)
    except KeyError:
        pass
    parts = full_name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        modules = table.get(".".join(parts[:end]))
        if modules is None:
            continue
        for module in modules:
            if module not in _imported:
                _imported.add(module)
                try:
                    importlib.import_module(module)
                except Exception:  # noqa: BLE001, S112 - a broken module: its types stay unknown
                    continue
        break
    try:
        return pool.FindMessageTypeByName(full_name)
    except KeyError:
        return None


class _Skip:
    pass


SKIP: Any = _Skip()


def prune(value: Any, desc: Descriptor, path: str, skipped: list[str]) -> Any:
    """Walk JSON alongside its message type; drop every Any whose type cannot be resolved.

    Only fields typed ``google.protobuf.Any`` are checked, so a Struct holding an "@type"
    key is left alone.
    """
    if desc.full_name == "google.protobuf.Any":
        if not isinstance(value, dict) or not value:
            return value
        url = value.get("@type")
        if not isinstance(url, str):
            return value  # ParseDict reports it
        inner = descriptor(url.rsplit("/", 1)[-1])
        if inner is None:
            skipped.append(printable(url))
            return SKIP
        if inner.full_name in OPAQUE_WKT or inner.full_name == "google.protobuf.Any":
            if inner.full_name == "google.protobuf.Any" and isinstance(value.get("value"), dict):
                walked = prune(value["value"], inner, path + ".value", skipped)
                return {**value, "value": walked} if walked is not SKIP else SKIP
            return value
        return {"@type": url, **_prune_fields({k: v for k, v in value.items() if k != "@type"},
                                               inner, path, skipped)}
    if desc.full_name in OPAQUE_WKT or not isinstance(value, dict):
        return value
    return _prune_fields(value, desc, path, skipped)


def _prune_fields(value: dict[str, Any], desc: Descriptor, path: str,
                  skipped: list[str]) -> dict[str, Any]:
    by_json = {f.json_name: f for f in desc.fields}
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = by_json.get(key) or desc.fields_by_name.get(key)
        if field is None or field.message_type is None or item is None:
            out[key] = item
            continue
        sub = f"{path}.{key}"
        if field.message_type.GetOptions().map_entry:
            vdesc = field.message_type.fields_by_name["value"].message_type
            if vdesc is None or not isinstance(item, dict):
                out[key] = item
                continue
            kept = {k: prune(v, vdesc, f"{sub}[{k}]", skipped) for k, v in item.items()}
            out[key] = {k: v for k, v in kept.items() if v is not SKIP}
        elif field.is_repeated and isinstance(item, list):
            kept_list = [prune(v, field.message_type, f"{sub}[{i}]", skipped)
                         for i, v in enumerate(item)]
            out[key] = [v for v in kept_list if v is not SKIP]
        else:
            pruned = prune(item, field.message_type, sub, skipped)
            if pruned is not SKIP:
                out[key] = pruned
    return out


