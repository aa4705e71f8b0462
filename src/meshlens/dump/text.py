"""The text of a dump: reading the file, JSON or YAML within the limits, messages people can act on.

Layer: L5 (part of ``meshlens.dump``). Imports: errors, limits, loader.

JSON numbers with more digits than Python converts, nesting past Python's recursion limit or
``Limits.max_dump_depth``, YAML alias bombs and recursive aliases are all ``DumpError``\\s (exit 2
in the CLI), never an internal error. Text quoted from the input (keys, type URLs, protobuf's
errors) has its invisible characters escaped, so every message stays one line.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from google.protobuf import json_format

from meshlens.errors import DumpError, LoadError
from meshlens.limits import Limits, too_deep
from meshlens.loader import load_yaml_text
from meshlens.loader.files import read_input


def read_dump(path: str, limits: Limits = Limits()) -> str:
    """The text of a dump file (``-`` for stdin) within ``limits.max_dump_bytes``.

    A FIFO or device is read with ``limits.read_timeout``, as manifests are.

    Raises:
        DumpError: it cannot be read, is too large, or is not UTF-8 text.
    """
    try:
        data = read_input(path, limits, max_bytes=limits.max_dump_bytes)
    except LoadError as exc:
        raise DumpError(exc.message.replace("(--max-file-bytes)", "").rstrip()) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DumpError("not a config dump: the file is not UTF-8 text") from exc


#: What protobuf's ParseDict raises for JSON that does not fit the message (a string where a
#: number goes, a lone surrogate in a string, a key that is not a string, ...).
PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError, AttributeError, KeyError,
                 IndexError, OverflowError, UnicodeError, RecursionError)


def parse_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "it nests too deeply"
    return printable(str(exc) or type(exc).__name__)


def printable(text: str) -> str:
    """``text`` with every invisible or control character escaped: a message stays one line.

    Dump keys, type URLs and protobuf's errors quote the input, which may hold anything.

    Example:
        >>> printable("a\\r\\nb\\u200bc"), printable("é ok")
        ('a\\\\r\\\\nb\\\\u200bc', 'é ok')
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] if c in "\r\n\t" else
                   f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in text)


def load_document(text: str, *, what: str, limits: Limits) -> Any:
    """The JSON (or YAML) value of a dump's text, within ``limits``.

    JSON numbers with more digits than Python converts (4,300), nesting past Python's
    recursion limit or past ``limits.max_dump_depth``, and YAML alias bombs are errors.
    """
    if not text.strip():
        raise DumpError(f"empty file: expected an Envoy {what} (JSON)")
    if len(text) > limits.max_dump_bytes:
        raise DumpError(f"not a valid Envoy {what}: larger than {limits.max_dump_bytes} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] in "{[":
            # A prefix of a valid document fails at its very end, or inside a string that
            # never closes.
            if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
                raise DumpError(f"truncated JSON: the {what} stops at line {exc.lineno} column "
                                f"{exc.colno} before it is complete (was the copy cut short?)"
                                ) from exc
            raise DumpError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                            ) from exc
        data = _load_yaml(text, what=what, limits=limits)
    except RecursionError as exc:
        raise DumpError(f"not a valid Envoy {what}: the JSON nests deeper than "
                        f"{limits.max_dump_depth} levels") from exc
    except ValueError as exc:  # int() of a number with more than sys.get_int_max_str_digits()
        raise DumpError(f"not a valid Envoy {what}: {_first_line(exc)}") from exc
    if too_deep(data, limits.max_dump_depth):
        raise DumpError(f"not a valid Envoy {what}: it nests deeper than "
                        f"{limits.max_dump_depth} levels")
    return data


def _first_line(exc: BaseException) -> str:
    text = str(exc).split(";")[0].strip()
    return text[0].lower() + text[1:] if text else type(exc).__name__


def _load_yaml(text: str, *, what: str, limits: Limits) -> Any:
    """Not JSON: meshlens's ``compile -o yaml`` prints the same dump as YAML."""
    yaml_limits = replace(limits, max_file_bytes=limits.max_dump_bytes,
                          max_depth=limits.max_dump_depth)
    try:
        docs = [d.data for d in load_yaml_text(text, "dump", yaml_limits)]
    except LoadError as exc:
        if exc.code == "ML0005" or "alias" in exc.message:
            where = f" (line {exc.span.line})" if exc.span is not None else ""
            raise DumpError(f"not a valid Envoy {what}: {exc.message}{where}") from exc
        raise DumpError(f"not an Envoy {what}: the file is neither JSON nor YAML") from exc
    kinds = [str(d["kind"]) for d in docs if isinstance(d, dict) and "kind" in d]
    if kinds:
        shown = ", ".join(kinds[:4]) + (", ..." if len(kinds) > 4 else "")
        raise DumpError(f"not an Envoy {what}: these are Kubernetes manifests ({shown}); "
                        "compile them with -f PATH PROXY instead")
    if len(docs) != 1 or not isinstance(docs[0], dict):
        found = f"{len(docs)} YAML documents" if len(docs) != 1 else _json_kind(docs[0])
        raise DumpError(f"not an Envoy {what}: expected a JSON object, found {found}")
    return docs[0]


def not_a_config_dump(data: Any) -> str:
    if isinstance(data, dict) and ("cluster_statuses" in data or "clusterStatuses" in data):
        return ("this is Envoy's /clusters?format=json output, not a /config_dump "
                "(give it with --clusters-dump to `proxy-config endpoint`)")
    if isinstance(data, dict):
        keys = ", ".join(printable(k) for k in sorted(map(str, data))[:8]) or "none"
        return (f'not an Envoy config dump: expected a JSON object with a "configs" list '
                f"(from /config_dump); its keys are: {keys}")
    return f"not an Envoy config dump: expected a JSON object, found {_json_kind(data)}"


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


