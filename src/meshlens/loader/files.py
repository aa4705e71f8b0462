"""Finding and reading input files: folders, FIFOs and devices, stdin, size limits, encodings.

Layer: L2 (part of ``meshlens.loader``). Imports: source, diagnostics, errors, limits.

This is the only place that opens manifest files. Folders are walked recursively for
``*.yaml``, ``*.yml`` and ``*.json``; the bytes are checked (size, NUL bytes) and decoded
(UTF-8, or UTF-16 with a byte-order mark as kubectl reads it) before the YAML reader sees them.
"""

from __future__ import annotations

import os
import select
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from meshlens.diagnostics import Diagnostic, report
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



def _walk(path: str, result: LoadResult) -> Iterator[str]:
    """The manifest files under ``path`` (itself, if it is not a folder), sorted.

    A folder's entries come from ``os.scandir``, whose file types cost no extra system call:
    100,000 files are listed in a fraction of a second. What cannot be listed (an unreadable
    subfolder) is an ML0002 error, not a silent gap; what is not a regular file (a FIFO, a
    socket, a device) is skipped with an ML0007 note, since reading it could block forever.
    """
    if not os.path.isdir(path):
        yield path
        return
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            result.errors.append(_cannot_read(folder, exc, "folder"))
            continue
        subfolders = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):  # as os.walk: a link loop cannot hang
                    subfolders.append(entry.path)
                elif not entry.name.endswith(_EXTENSIONS):
                    continue
                elif entry.is_file():
                    yield entry.path
                else:
                    result.diagnostics.append(_skipped(entry.path, _file_kind(entry.path)))
            except OSError as exc:
                result.errors.append(_cannot_read(entry.path, exc))
        stack.extend(reversed(subfolders))


def _cannot_read(path: str, exc: OSError, what: str = "file") -> LoadError:
    return LoadError(
        f"cannot read {what}: {exc.strerror or exc}", SourceSpan(path, 1, 1), "ML0002"
    )


def _skipped(path: str, kind: str) -> Diagnostic:
    return report(
        "ML0007",
        span=SourceSpan(path, 1, 1),
        file=path,
        reason=f"{kind}, not a regular file (give it with -f to read it)",
    )


def _file_kind(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken link"
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a link to a folder"),
    ):
        if test(mode):
            return kind
    return "a special file"


def read_input(path: str, limits: Limits, *, max_bytes: int | None = None,
               stdin: Any = None) -> bytes:
    """The bytes of ``path``: a file, a FIFO or device (with a timeout), or ``-`` for stdin.

    At most ``max_bytes`` (default ``limits.max_file_bytes``) are read; one byte more means
    the input is too large. A FIFO, pipe or device is read without blocking: if it stays
    silent for ``limits.read_timeout`` seconds (no writer, or a terminal), reading gives up.

    Raises:
        LoadError: ML0002 if it cannot be read (stdin closed, no such file, a timeout),
            ML0005 if it is larger than the limit.
    """
    limit = limits.max_file_bytes if max_bytes is None else max_bytes
    name = "<stdin>" if path == "-" else path
    if path == "-":
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise LoadError("cannot read stdin: it is closed", SourceSpan(name, 1, 1), "ML0002")
        try:
            data: bytes = stream.read(limit + 1)
        except (OSError, ValueError) as exc:
            raise LoadError(
                f"cannot read stdin: {getattr(exc, 'strerror', None) or exc}",
                SourceSpan(name, 1, 1),
                "ML0002",
            ) from exc
    else:
        try:
            data = _read_path(path, limit, limits.read_timeout)
        except _TooLarge:
            raise _too_large(path, limit) from None
        except OSError as exc:
            raise _cannot_read(path, exc) from exc
    if len(data) > limit:
        raise _too_large(path, limit)
    return data


def _too_large(path: str, limit: int) -> LoadError:
    what, name = ("input", "<stdin>") if path == "-" else ("file", path)
    return LoadError(
        f"{what} is larger than {limit} bytes (--max-file-bytes)", SourceSpan(name, 1, 1), "ML0005"
    )


def _read_path(path: str, limit: int, timeout: float) -> bytes:
    # O_NONBLOCK: opening a FIFO never waits for a writer (and a regular file ignores it);
    # the type is checked on the open descriptor, so a file swapped for a FIFO cannot block.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "Is a directory")
        if stat.S_ISREG(info.st_mode):
            if info.st_size > limit:
                raise _TooLarge
            # The first read asks for the whole file and one byte more (a file that grew since
            # fstat is read on, up to the limit); an empty file costs a one-byte read.
            chunks, total, want = [], 0, info.st_size + 1
            while total <= limit:
                chunk = os.read(fd, min(want, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                want = 1 << 20
            return b"".join(chunks)
        return _read_stream(fd, limit, timeout)
    finally:
        os.close(fd)


class _TooLarge(Exception):
    """A regular file whose size is over the limit: it is never read."""


def _read_stream(fd: int, limit: int, timeout: float) -> bytes:
    """Read a non-blocking FIFO, pipe or device to its end, giving up after ``timeout`` idle s."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout
    while total <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                110, f"nothing to read for {timeout:g}s (a FIFO with no writer, or a device?)"
            )
        if not poller.poll(left * 1000):
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        deadline = time.monotonic() + timeout
    return b"".join(chunks)


def load_paths(paths: Iterable[str], *, limits: Limits = Limits(), stdin: Any = None) -> LoadResult:
    """Load files, folders (recursive *.yaml, *.yml, *.json) and ``-`` (stdin)."""
    result = LoadResult()
    for given in paths:
        for path in _walk(given, result):
            name = "<stdin>" if path == "-" else path
            try:
                raw = read_input(path, limits, stdin=stdin)
                if not raw:
                    continue  # an empty file holds no document
                if b"\x00" in raw and raw[:2] not in (b"\xff\xfe", b"\xfe\xff"):
                    raise _nul_error(raw, name)
                text = _decode(raw, name)
            except LoadError as exc:
                result.errors.append(exc)
                continue
            part = load_text(text, name, limits=limits, start_index=len(result.documents))
            result.documents.extend(part.documents)
            result.diagnostics.extend(part.diagnostics)
            result.errors.extend(part.errors)
    return result


def load_mesh_config(
    path: str, *, limits: Limits = Limits()
) -> tuple[RawDocument | None, list[LoadError]]:
    """Load a MeshConfig: a MeshConfig document, or the ``istio`` ConfigMap with a ``mesh`` key.

    Positions inside the ConfigMap's ``mesh`` block scalar point at the file's own lines.
    """
    result = load_paths([path], limits=limits)
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
        inner = load_text(body, path, limits=limits)
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