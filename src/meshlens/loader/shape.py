"""Structure limits of a parsed YAML document: depth, scalar sizes, alias expansion.

Layer: L2 (part of ``meshlens.loader``). Imports: limits, source.

Each check reports ``(code, message, field path)`` so the caller can point at the line. Without
aliases the object graph is a tree and one walk decides; with aliases, sizes are computed on the
shared graph with memoization, so a "billion laughs" costs what is written, not what it
expands to, and a recursive alias is found before anything walks it.
"""

from __future__ import annotations

from typing import Any

from meshlens.limits import Limits, children, too_deep
from meshlens.source import FieldPath

def _scalar_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return 0


def _find(root: Any, predicate: Any) -> FieldPath:
    """The path of the first value (breadth first) for which ``predicate`` holds, else ()."""
    queue: list[tuple[Any, FieldPath]] = [(root, ())]
    seen: set[int] = set()
    for item, path in queue:
        if predicate(item):
            return path
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if predicate(key):
                    return path + (key,) if isinstance(key, str | int) else path
                queue.append((child, path + (key,) if isinstance(key, str | int) else path))
    return ()


def check_shape(
    data: Any, limits: Limits, *, aliases: bool, scalars: bool
) -> tuple[str, str, FieldPath] | None:
    """Check depth, scalar sizes and alias expansion; return (code, message, path) or None.

    Without aliases the object graph is a tree and one walk decides. With aliases, sizes are
    computed on the shared graph with memoization, so a "billion laughs" costs what is written,
    not what it expands to.
    """
    if not isinstance(data, dict | list):
        big = _scalar_bytes(data)
        if big > limits.max_scalar_bytes:
            return (
                "ML0005",
                f"a scalar of {big} bytes is larger than {limits.max_scalar_bytes} "
                "bytes (--max-scalar-bytes)",
                (),
            )
        return None
    if not aliases:
        if too_deep(data, limits.max_depth):
            return "ML0005", _depth_message(limits), _deep_path(data, limits.max_depth)
        if scalars:
            return _big_scalar(data, limits)
        return None
    memo: dict[int, tuple[int, int]] = {}  # id → (height, expanded node count)
    written = 0
    stack: list[tuple[Any, bool]] = [(data, False)]
    on_path: set[int] = set()
    while stack:
        item, done = stack.pop()
        oid = id(item)
        if done:
            on_path.discard(oid)
            height, size = 0, 1
            written += 1
            for child in children(item):
                if isinstance(child, dict | list):
                    ch, cn = memo[id(child)]
                    height, size = max(height, ch), size + cn
                else:
                    size += 1
                    written += 1
            memo[oid] = (height + 1, size)
            continue
        if oid in memo:
            continue
        on_path.add(oid)
        stack.append((item, True))
        for child in children(item):
            if isinstance(child, dict | list):
                if id(child) in on_path:
                    path = _find(data, lambda x, c=child: x is c)
                    return "ML0001", "recursive alias: this anchor's value contains itself", path
                if id(child) not in memo:
                    stack.append((child, False))
    height, expanded = memo[id(data)]
    if height - 1 > limits.max_depth:
        return "ML0005", _depth_message(limits), _deep_path(data, limits.max_depth)
    if expanded - written > limits.max_alias_nodes:
        node: Any = data
        path: FieldPath = ()
        while True:
            pairs = node.items() if isinstance(node, dict) else enumerate(node)
            big = [
                (k, c)
                for k, c in pairs
                if isinstance(c, dict | list) and memo[id(c)][1] > limits.max_alias_nodes
            ]
            if not big or not isinstance(big[0][0], str | int):
                break
            path, node = path + (big[0][0],), big[0][1]
        return (
            "ML0005",
            f"aliases expand this document from {written} written nodes to "
            f"{expanded}, more than {limits.max_alias_nodes} extra nodes "
            '(--max-alias-nodes): a YAML alias bomb ("billion laughs")?',
            path,
        )
    return _big_scalar(data, limits) if scalars else None


def _depth_message(limits: Limits) -> str:
    return f"document nests deeper than {limits.max_depth} levels (--max-depth)"


def _deep_path(data: Any, limit: int) -> FieldPath:
    queue: list[tuple[Any, FieldPath]] = [(data, ())]
    seen: set[int] = set()
    for item, path in queue:
        if len(path) > limit:
            return path
        if isinstance(item, dict | list) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            queue.extend(
                (c, path + (k,))
                for k, c in pairs
                if isinstance(c, dict | list) and isinstance(k, str | int)
            )
    return ()


def _big_scalar(data: Any, limits: Limits) -> tuple[str, str, FieldPath] | None:
    stack, seen, biggest = [data], set(), 0
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        for value in (*item.keys(), *item.values()) if isinstance(item, dict) else item:
            if isinstance(value, dict | list):
                stack.append(value)
            elif isinstance(value, str):
                biggest = max(biggest, _scalar_bytes(value))
    if biggest <= limits.max_scalar_bytes:
        return None
    path = _find(data, lambda x: isinstance(x, str) and _scalar_bytes(x) > limits.max_scalar_bytes)
    return (
        "ML0005",
        f"a scalar of {biggest} bytes is larger than {limits.max_scalar_bytes} bytes "
        "(--max-scalar-bytes)",
        path,
    )
