"""Finding and reading input files: folders, FIFOs and devices, stdin, size limits, encodings.

Layer: L2 (part of ``meshlens.loader``). Imports: source, diagnostics, errors, limits.

This is the only place that opens manifest files. Folders are walked recursively for
``*.yaml``, ``*.yml`` and ``*.json``; the bytes are checked (size, NUL bytes) and decoded
(UTF-8, or UTF-16 with a byte-order mark as kubectl reads it) before the YAML reader sees them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from meshlens.errors import LoadError
from meshlens.limits import Limits
from meshlens.loader.documents import LoadResult, load_text
from meshlens.source import FieldPath, RawDocument, SourceSpan

_EXTENSIONS = (".yaml", ".yml", ".json")


def _decode(data: bytes, name: str) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and not data.startswith(b"\xff\xfe\x00\x00"):
        # kubectl reads UTF-16 with a byte-order mark (cli-runtime's BOMOverride decoder).
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LoadError(
                f"file starts with a UTF-16 byte-order mark but is not UTF-16 text "
                f"(at offset {exc.start})",
                SourceSpan(name, 1, 1),
            ) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError(
            f"file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            SourceSpan(name, line, col),
        ) from exc


def _nul_error(data: bytes, name: str) -> LoadError:
    pos = data.index(b"\x00")
    line = data.count(b"\n", 0, pos) + 1
    col = len(data[data.rfind(b"\n", 0, pos) + 1 : pos].decode("utf-8", "replace")) + 1
    return LoadError(
        "file contains a NUL byte: not a YAML file (a binary file?)", SourceSpan(name, line, col)
    )



def _walk(path: str) -> Iterator[str]:
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(_EXTENSIONS):
                    yield os.path.join(root, f)
    else:
        yield path


def load_paths(paths: Iterable[str], *, limits: Limits = Limits(), stdin: Any = None) -> LoadResult:
    """Load files, folders (recursive *.yaml, *.yml, *.json) and ``-`` (stdin)."""
    result = LoadResult()
    for given in paths:
        for path in _walk(given):
            try:
                if path == "-":
                    raw = (stdin or sys.stdin.buffer).read(limits.max_file_bytes + 1)
                    name = "<stdin>"
                else:
                    name = path
                    if os.path.getsize(path) > limits.max_file_bytes:
                        raise LoadError(
                            f"file is larger than {limits.max_file_bytes} bytes (--max-file-bytes)",
                            SourceSpan(name, 1, 1),
                            "ML0005",
                        )
                    with open(path, "rb") as fh:
                        raw = fh.read(limits.max_file_bytes + 1)
                if len(raw) > limits.max_file_bytes:
                    raise LoadError(
                        f"input is larger than {limits.max_file_bytes} bytes (--max-file-bytes)",
                        SourceSpan(name, 1, 1),
                        "ML0005",
                    )
                if b"\x00" in raw and raw[:2] not in (b"\xff\xfe", b"\xfe\xff"):
                    raise _nul_error(raw, name)
                text = _decode(raw, name)
            except LoadError as exc:
                result.errors.append(exc)
                continue
            except OSError as exc:
                result.errors.append(
                    LoadError(
                        f"cannot read file: {exc.strerror or exc}", SourceSpan(path, 1, 1), "ML0002"
                    )
                )
                continue
            part = load_text(text, name, limits=limits, start_index=len(result.documents))
            result.documents.extend(part.documents)
            result.diagnostics.extend(part.diagnostics)
            result.errors.extend(part.errors)
    return result


def load_mesh_config(path: str) -> tuple[RawDocument | None, list[LoadError]]:
    """Load a MeshConfig: a MeshConfig document, or the ``istio`` ConfigMap with a ``mesh`` key.

    Positions inside the ConfigMap's ``mesh`` block scalar point at the file's own lines.
    """
    result = load_paths([path])
    if result.errors:
        return None, result.errors
    if not result.documents:
        return None, [LoadError("no MeshConfig in file", SourceSpan(path, 1, 1))]
    doc = result.documents[0]
    data = doc.data
    if data.get("kind") == "ConfigMap":
        body = (data.get("data") or {}).get("mesh") if isinstance(data.get("data"), dict) else None
        if not isinstance(body, str):
            return None, [LoadError("ConfigMap has no data.mesh string", doc.locate(("data",)))]
        key_span = doc.locate(("data", "mesh"))
        # A block scalar starts on the line after its key.
        inner = load_text(body, path)
        if inner.errors or not inner.documents:
            errs = inner.errors or [LoadError("data.mesh is empty", key_span)]
            shifted = [
                LoadError(
                    e.message,
                    SourceSpan(
                        path,
                        key_span.line + (e.span.line if e.span else 1),
                        e.span.col if e.span else 1,
                    ),
                )
                for e in errs
            ]
            return None, shifted
        mesh = inner.documents[0]
        base = mesh.locator

        def locate(p: FieldPath) -> SourceSpan | None:
            s = base(p) if base else None
            return SourceSpan(path, key_span.line + s.line, s.col + key_span.col + 1) if s else None

        return RawDocument(mesh.data, key_span, locate), []
    return doc, []