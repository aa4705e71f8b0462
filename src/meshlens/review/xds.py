"""xDS resources as comparable values, and a field-by-field difference between two of them.

Layer: L7 (review). Imports: emit, compiler, dump.

A compiled proxy (:class:`~meshlens.compiler.CompileResult`) and a real sidecar's dump
(:class:`~meshlens.dump.ConfigDump`) are both reduced to one shape: ``{(type, name): value}``
where ``type`` is ``cluster``, ``endpoint``, ``listener`` or ``route`` (the dynamic xDS
resources istiod pushes) and ``value`` is the resource in Envoy's JSON form. Static resources
(the bootstrap's) are left out, as istioctl's comparator leaves them out
(``configdump.Wrapper.GetDynamicClusterDump``).

Paths use the provenance notation (``circuit_breakers.thresholds[0].max_connections``), so a
changed field can be looked up in :class:`~meshlens.compiler.provenance.Provenance`. Lists
whose items all carry a ``name`` are matched by name (``filter_chains[name=X]``), so that
inserting one item does not show every later item as changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from meshlens.compiler import CompileResult
from meshlens.emit import to_dict

#: The xDS types compared, in the order they are shown.
TYPES = ("cluster", "endpoint", "listener", "route")
TYPE_TITLES = {"cluster": "Clusters", "endpoint": "Endpoints", "listener": "Listeners", "route": "Routes"}

Key = tuple[str, str]

#: Values that make a field missing and a field at its default look alike in Envoy's JSON.
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One leaf that differs: ``old``/``new`` are JSON values, or None when absent."""

    path: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


def _name_of(t: str, value: dict[str, Any]) -> str:
    return str(value.get("cluster_name") if t == "endpoint" else value.get("name", ""))


class Res:
    """One xDS message, compared by its deterministic bytes and turned into Envoy's JSON form
    only when it differs (most resources of a large mesh never do)."""

    __slots__ = ("msg", "_bytes", "_value")

    def __init__(self, msg: Any) -> None:
        self.msg, self._bytes, self._value = msg, b"", None

    @property
    def bytes(self) -> bytes:
        if not self._bytes:
            self._bytes = self.msg.SerializeToString(deterministic=True)
        return self._bytes

    def value(self) -> dict[str, Any]:
        if self._value is None:
            self._value = to_dict(self.msg)
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Res) and self.bytes == other.bytes

    __hash__ = None  # type: ignore[assignment]


def value_of(v: Any) -> Any:
    """A resource's JSON form, whether it is a :class:`Res` or already a dict."""
    return v.value() if isinstance(v, Res) else v


def materialize(resources: dict[Key, Any]) -> dict[Key, dict[str, Any]]:
    return {k: value_of(v) for k, v in resources.items()}


def of_result(result: CompileResult) -> dict[Key, Any]:
    """The dynamic resources of a compiled proxy, keyed by (type, name)."""
    return of_messages(result.clusters, result.endpoints, result.listeners or [], result.routes or [])


def of_messages(clusters: Iterable[Any], endpoints: Iterable[Any], listeners: Iterable[Any],
                routes: Iterable[Any]) -> dict[Key, Any]:
    """xDS messages (e.g. what the lab pushed after localizing) keyed by (type, name)."""
    out: dict[Key, Any] = {}
    groups: list[tuple[str, Iterable[Any]]] = [
        ("cluster", clusters), ("endpoint", endpoints), ("listener", listeners), ("route", routes)]
    for t, messages in groups:
        for m in messages:
            out[(t, m.cluster_name if t == "endpoint" else m.name)] = Res(m)
    return out


def of_dump(dump: Any) -> dict[Key, Any]:
    """The dynamic resources of a real sidecar's dump (:class:`meshlens.dump.ConfigDump`).

    As istioctl's comparator reads them: active clusters, listeners' active state (a draining
    state is dropped), dynamic route configurations and EDS assignments; version_info and
    last_updated live on the wrapper entries and so never take part.
    """
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.endpoint.v3 import endpoint_pb2
    from envoy.config.listener.v3 import listener_pb2
    from envoy.config.route.v3 import route_pb2

    from meshlens.dump import unpack

    out: dict[Key, Any] = {}

    def add(t: str, message: Any) -> None:
        out[(t, message.cluster_name if t == "endpoint" else message.name)] = Res(message)

    if dump.clusters is not None:
        for c in dump.clusters.dynamic_active_clusters:
            if c.HasField("cluster"):
                add("cluster", unpack(c.cluster, cluster_pb2.Cluster))
    if dump.endpoints is not None:
        for e in dump.endpoints.dynamic_endpoint_configs:
            if e.HasField("endpoint_config"):
                add("endpoint", unpack(e.endpoint_config, endpoint_pb2.ClusterLoadAssignment))
    if dump.listeners is not None:
        for x in dump.listeners.dynamic_listeners:
            if x.HasField("active_state") and x.active_state.HasField("listener"):
                add("listener", unpack(x.active_state.listener, listener_pb2.Listener))
    if dump.routes is not None:
        for r in dump.routes.dynamic_route_configs:
            if r.HasField("route_config"):
                add("route", unpack(r.route_config, route_pb2.RouteConfiguration))
    return out


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"]
                               for i in items) and len({i["name"] for i in items}) == len(items)


def diff_values(old: Any, new: Any, path: str = "") -> Iterator[FieldChange]:
    """Every leaf that differs between two JSON values, in a stable order.

    Example:
        >>> [c.path for c in diff_values({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1]})]
        ['a', 'b[1]']
    """
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{k}" if path else str(k)
            yield from diff_values(old.get(k), new.get(k), sub)
        return
    if isinstance(old, list) and isinstance(new, list):
        if _named(old) and _named(new):
            before = {i["name"]: i for i in old}
            after = {i["name"]: i for i in new}
            for name in list(before) + [n for n in after if n not in before]:
                yield from diff_values(before.get(name), after.get(name), f"{path}[name={name}]")
            return
        for i in range(max(len(old), len(new))):
            yield from diff_values(old[i] if i < len(old) else None,
                                   new[i] if i < len(new) else None, f"{path}[{i}]")
        return
    yield FieldChange(path, old, new)


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """A resource that was added, removed or changed between two sides."""

    type: str
    name: str
    status: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()


def diff_resources(old: dict[Key, Any], new: dict[Key, Any]) -> list[ResourceChange]:
    """Resources added, removed or changed, ordered by type then name."""
    out: list[ResourceChange] = []
    for key in sorted(set(old) | set(new), key=lambda k: (TYPES.index(k[0]), k[1])):
        a, b = old.get(key), new.get(key)
        if a is None:
            out.append(ResourceChange(key[0], key[1], "added"))
        elif b is None:
            out.append(ResourceChange(key[0], key[1], "removed"))
        elif a != b:
            fields = tuple(diff_values(value_of(a), value_of(b)))
            if fields:
                out.append(ResourceChange(key[0], key[1], "changed", fields))
    return out


_TOKEN = re.compile(r"\[name=([^\]]*)\]|\[(\d+)\]|([^.\[]+)")


def indexed_path(path: str, value: Any) -> str:
    """``a[name=x].b`` → ``a[2].b``: name-matched list items by their index in ``value``.

    Example:
        >>> indexed_path("vh[name=b].r", {"vh": [{"name": "a"}, {"name": "b", "r": 1}]})
        'vh[1].r'
    """
    out = ""
    cur = value
    for m in _TOKEN.finditer(path):
        name, index, key = m.groups()
        if key is not None:
            out += f".{key}" if out else key
            cur = cur.get(key) if isinstance(cur, dict) else None
        elif index is not None:
            out += f"[{index}]"
            cur = cur[int(index)] if isinstance(cur, list) and int(index) < len(cur) else None
        else:
            items = cur if isinstance(cur, list) else []
            pos = next((i for i, it in enumerate(items) if isinstance(it, dict) and it.get("name") == name), None)
            if pos is None:
                return out
            out += f"[{pos}]"
            cur = items[pos]
    return out


def provenance_for(result: CompileResult | None, t: str, name: str, path: str,
                   value: Any = None) -> str:
    """Where a compiled field came from (``rule from Kind ns/name {path} at file:line``), or ''.

    ``value`` is the resource on the same side, to turn ``[name=X]`` into an index. The most
    specific recorded path wins: the field itself, the closest enclosing field, or else the
    first recorded field inside it.
    """
    if result is None:
        return ""
    fields = result.provenance.of(t, name)
    if not fields:
        return ""
    if "[name=" in path and value is not None:
        path = indexed_path(path, value_of(value))
    best = ""
    for p in fields:
        if path == p or path.startswith(p + ".") or path.startswith(p + "["):
            if len(p) > len(best):
                best = p
    if not best:
        inside = [p for p in fields if p.startswith(path + ".") or p.startswith(path + "[")]
        best = min(inside) if inside else ""
    return fields[best].describe() if best else ""
