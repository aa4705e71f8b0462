"""Hostile-input limits: the one object every reader takes (manifests, MeshConfig, dumps, scenarios).

Layer: L0 (leaf). Imports: stdlib only.

A file meshlens reads may come from another team or from production: it gets a clear error
within bounded time and memory, whatever it holds. Each bound lives here, once, as a field of
:class:`Limits`; the readers (``meshlens.loader`` for YAML and manifests, ``meshlens.dump`` for
Envoy dumps, the lab's scenario reader through ``meshlens.loader.load_yaml_text``) take a
``Limits`` and never keep a private constant. The CLI's ``--max-...`` options build one.
This mirrors the API server's request limits (3 MiB objects, bounded nesting).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits; the manifest ones can be raised from the CLI (``meshlens compile --max-...``).

    ``max_alias_nodes`` bounds how many nodes aliases (``*name``) may add to one document when
    expanded; a real manifest stays far below it, a "billion laughs" bomb goes far above.
    ``max_dump_bytes`` and ``max_dump_depth`` bound an Envoy config dump (JSON or YAML): a big
    mesh's dump is larger than any manifest, and nests deeper (filters in filters), but never
    past protobuf's own recursion limit of 100. ``read_timeout`` is how long a FIFO, a pipe or
    a device given explicitly may stay silent before reading it gives up.
    """

    max_file_bytes: int = 64 * MIB
    max_documents: int = 200_000
    max_depth: int = 64
    max_scalar_bytes: int = 3 * MIB  # the API server's request limit: no object holds more
    max_alias_nodes: int = 1_000_000
    max_dump_bytes: int = 512 * MIB
    max_dump_depth: int = 100
    read_timeout: float = 30.0


def too_deep(value: Any, limit: int) -> bool:
    """True if ``value`` (dicts and lists) nests deeper than ``limit``.

    Iterative, and shared objects (YAML aliases) are visited once, so neither a deep document
    nor a wide alias graph costs a recursion or more than one step per written node.

    Example:
        >>> too_deep({"a": [[1]]}, 2), too_deep({"a": [[1]]}, 1), too_deep(None, 0)
        (False, True, False)
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict | list):
            stack.extend(
                (child, depth + 1) for child in children(item) if isinstance(child, dict | list)
            )
    return False


def children(item: Any) -> Iterable[Any]:
    """The values of a dict, or the items of a list."""
    return item.values() if isinstance(item, dict) else item
