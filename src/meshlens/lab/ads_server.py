"""A small xDS control plane: gRPC ADS, state of the world, one snapshot per Envoy node.

Layer: L7 (lab). Imports: grpc, xDS protos, errors, lab.addressing.

What istiod does for a sidecar, reduced to what the lab needs (lab-notes §1):

* One ``StreamAggregatedResources`` stream per Envoy; the first request's ``node.id`` picks the
  snapshot, so one server feeds the client sidecar and every server sidecar.
* CDS and LDS are wildcard; EDS, RDS and SDS answer the names in ``resource_names``. A requested
  EDS name without endpoints gets an empty ``ClusterLoadAssignment`` (as istiod sends, so the
  cluster warms and fails with UH instead of staying warming), a missing RDS name an empty
  ``RouteConfiguration``.
* A request whose ``response_nonce`` is the last one sent is an ACK, or a NACK when
  ``error_detail`` is set (Envoy's own message is kept); stale nonces are ignored. A NACKed
  version is not resent; the next snapshot is.
* Versions are per type and derived from the content, so a new snapshot pushes only the types
  that changed. Resources are packed into ``Any`` once, when the snapshot is built.

Every send, ACK and NACK is an :class:`XdsEvent`; :meth:`AdsServer.wait_applied` waits until a
node has answered a snapshot (used for readiness and push-to-ACK timing).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from meshlens.errors import XdsServerError
from meshlens.lab.addressing import require_loopback

_T = "type.googleapis.com/"
CLUSTER = _T + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _T + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = _T + "envoy.config.listener.v3.Listener"
ROUTE = _T + "envoy.config.route.v3.RouteConfiguration"
SECRET = _T + "envoy.extensions.transport_sockets.tls.v3.Secret"
EXTENSION = _T + "envoy.config.core.v3.TypedExtensionConfig"  # ECDS, by name like EDS/RDS
TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
SHORT = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS", SECRET: "SDS",
         EXTENSION: "ECDS"}
_WILDCARD = frozenset({CLUSTER, LISTENER})


def _name_of(type_url: str, msg: Any) -> str:
    return str(msg.cluster_name if type_url == ENDPOINT else msg.name)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Packed resources and a content version per type URL."""

    resources: dict[str, dict[str, any_pb2.Any]]
    versions: dict[str, str]

    @classmethod
    def build(cls, *, clusters: Iterable[Any] = (), endpoints: Iterable[Any] = (),
              listeners: Iterable[Any] = (), routes: Iterable[Any] = (),
              secrets: Iterable[Any] = (), extension_configs: Iterable[Any] = ()) -> Snapshot:
        """``extension_configs`` (ECDS) are a type of their own only when there are some."""
        resources: dict[str, dict[str, any_pb2.Any]] = {}
        versions: dict[str, str] = {}
        extensions = list(extension_configs)
        for type_url, items in ((CLUSTER, clusters), (ENDPOINT, endpoints), (LISTENER, listeners),
                                (ROUTE, routes), (SECRET, secrets),
                                *(((EXTENSION, extensions),) if extensions else ())):
            packed: dict[str, any_pb2.Any] = {}
            digest = hashlib.sha256()
            for msg in items:
                a = any_pb2.Any()
                a.Pack(msg, deterministic=True)
                packed[_name_of(type_url, msg)] = a
                digest.update(a.value)
            resources[type_url] = packed
            versions[type_url] = digest.hexdigest()[:12]
        return cls(resources, versions)

    def names(self, type_url: str) -> list[str]:
        return sorted(self.resources.get(type_url, {}))


@dataclass(frozen=True, slots=True)
class XdsEvent:
    """One thing that happened on a stream: a response sent, or Envoy's ACK or NACK of one."""

    at: float
    node: str
    kind: str  # send | ack | nack
    type_url: str
    version: str
    nonce: str
    error: str = ""
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "node": self.node, "kind": self.kind, "type": SHORT.get(
            self.type_url, self.type_url), "version": self.version, "nonce": self.nonce,
            "error": self.error, "resources": self.count}


@dataclass(slots=True)
class _TypeState:
    names: frozenset[str] | None = None  # None: wildcard
    version: str = ""
    nonce: str = ""
    nacked_version: str = ""


@dataclass(slots=True)
class _NodeState:
    snapshot: Snapshot | None = None
    pushed_at: float = 0.0
    changed_at: dict[str, float] = field(default_factory=dict)
    queues: list[asyncio.Queue[tuple[str, Any]]] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)
    nacked: dict[str, tuple[str, str]] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=set)


class AdsServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """The ADS servicer plus its grpc.aio server on 127.0.0.1 (start/stop)."""

    def __init__(self, *, max_events: int = 20_000) -> None:
        self.nodes: dict[str, _NodeState] = {}
        self.events: deque[XdsEvent] = deque(maxlen=max_events)
        self._changed = asyncio.Condition()
        self._nonce = 0
        self._server: grpc.aio.Server | None = None
        self._starting: asyncio.Future[None] | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", *, unix_socket: str | None = None) -> int:
        """Serve on ``host`` (loopback) at a free port and return the port; or, with
        ``unix_socket``, on that Unix socket (mode 0600: it hands out private keys over SDS)
        and return 0."""
        opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                ("grpc.so_reuseport", 0)]
        self._server = grpc.aio.server(options=opts)
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, self._server)
        where = f"unix:{unix_socket}" if unix_socket else f"{require_loopback(host)}:0"
        try:
            self.port = self._server.add_insecure_port(where)
            # Shielded: a Ctrl-C must not leave grpc half started (its shutdown then fails).
            self._starting = asyncio.ensure_future(self._server.start())
            await asyncio.shield(self._starting)
            if unix_socket:
                os.chmod(unix_socket, 0o600)
                self.port = 0
        except Exception as exc:  # grpc raises RuntimeError on bind failures
            raise XdsServerError(f"cannot start the ADS server on {where}: {exc}") from exc
        return self.port

    async def stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            await asyncio.wait([self._starting], timeout=5)
        if self._server is not None:
            for node in self.nodes.values():
                for q in node.queues:
                    q.put_nowait(("eof", None))
            await self._server.stop(grace=0.2)
            self._server = None

    # -- snapshots ----------------------------------------------------------------------------

    def set_snapshot(self, node_id: str, snapshot: Snapshot) -> list[str]:
        """Install a node's snapshot and push it; returns the type URLs whose version changed."""
        state = self.nodes.setdefault(node_id, _NodeState())
        old = state.snapshot
        ecds = EXTENSION in snapshot.versions or (old is not None and EXTENSION in old.versions)
        kinds = (*TYPES, EXTENSION) if ecds else TYPES
        changed = [t for t in kinds if old is None or old.versions.get(t) != snapshot.versions.get(t)]
        state.snapshot = snapshot
        state.pushed_at = time.perf_counter()
        for t in changed:
            state.changed_at[t] = state.pushed_at
        for q in state.queues:
            q.put_nowait(("push", None))
        return changed

    def acked(self, node_id: str, type_url: str) -> str:
        state = self.nodes.get(node_id)
        return state.acked.get(type_url, "") if state else ""

    def nacks(self) -> list[XdsEvent]:
        return [e for e in self.events if e.kind == "nack"]

    async def wait_applied(self, node_id: str, *, types: Iterable[str] | None = None,
                           timeout: float = 10.0) -> dict[str, XdsEvent]:
        """Wait until the node ACKed or NACKed the current version of each subscribed type.

        Args:
            types: only these type URLs (default: every type the node subscribed to, at least
                CDS and LDS).
            timeout: seconds; raises ``TimeoutError`` after it.

        Returns:
            type URL -> the ACK or NACK event that answered the current version.
        """
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                done = self._applied(node_id, types)
                if done is not None:
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"node {node_id} did not answer the snapshot in {timeout}s")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    continue

    def _applied(self, node_id: str, types: Iterable[str] | None) -> dict[str, XdsEvent] | None:
        state = self.nodes.get(node_id)
        if state is None or state.snapshot is None:
            return None
        wanted = set(types) if types is not None else (state.subscribed | _WILDCARD)
        out: dict[str, XdsEvent] = {}
        for t in wanted:
            version = state.snapshot.versions.get(t, "")
            # only answers given since this type last changed: the same content (and so the
            # same version) may have been ACKed before
            since = state.changed_at.get(t, 0.0)
            answer = next((e for e in reversed(self.events) if e.node == node_id
                           and e.type_url == t and e.kind in ("ack", "nack")
                           and e.version == version and e.at >= since), None)
            if answer is None:
                return None
            out[t] = answer
        return out

    async def _record(self, event: XdsEvent) -> None:
        self.events.append(event)
        if event.kind in ("ack", "nack"):
            async with self._changed:
                self._changed.notify_all()

    # -- the stream ---------------------------------------------------------------------------

    async def StreamAggregatedResources(  # noqa: N802 - the gRPC method name
            self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
            context: grpc.aio.ServicerContext) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        async def read() -> None:
            try:
                async for req in request_iterator:
                    queue.put_nowait(("req", req))
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                pass
            finally:
                queue.put_nowait(("eof", None))

        reader = asyncio.create_task(read())
        node_id = ""
        state: _NodeState | None = None
        types: dict[str, _TypeState] = {}
        try:
            while True:
                kind, req = await queue.get()
                if kind == "eof":
                    return
                if kind == "req":
                    if state is None:
                        node_id = req.node.id
                        state = self.nodes.setdefault(node_id, _NodeState())
                        state.queues.append(queue)
                    for resp in await self._on_request(node_id, state, types, req):
                        yield resp
                elif kind == "push" and state is not None:
                    for t, ts in types.items():
                        snap = state.snapshot
                        if snap is not None and snap.versions.get(t) != ts.version:
                            yield await self._respond(node_id, state, t, ts)
        finally:
            reader.cancel()
            if state is not None and queue in state.queues:
                state.queues.remove(queue)

    async def _on_request(self, node_id: str, state: _NodeState, types: dict[str, _TypeState],
                          req: discovery_pb2.DiscoveryRequest) -> list[discovery_pb2.DiscoveryResponse]:
        t = req.type_url
        names = None if t in _WILDCARD else frozenset(req.resource_names)
        ts = types.get(t)
        if ts is not None and req.response_nonce:
            if req.response_nonce != ts.nonce:
                return []  # stale: an answer to an older response
            if req.HasField("error_detail") and req.error_detail.message:
                ts.nacked_version = ts.version
                state.nacked[t] = (ts.version, req.error_detail.message)
                await self._record(XdsEvent(time.perf_counter(), node_id, "nack", t, ts.version,
                                            req.response_nonce,
                                            envoy_error(req.error_detail.message)))
            else:
                state.acked[t] = req.version_info
                state.nacked.pop(t, None)
                await self._record(XdsEvent(time.perf_counter(), node_id, "ack", t,
                                            req.version_info, req.response_nonce))
            if names == ts.names:
                return []
            ts.names = names
        else:
            ts = types.setdefault(t, _TypeState())
            ts.names = names
            state.subscribed.add(t)
        if state.snapshot is None:
            return []
        return [await self._respond(node_id, state, t, ts)]

    async def _respond(self, node_id: str, state: _NodeState, t: str,
                       ts: _TypeState) -> discovery_pb2.DiscoveryResponse:
        snap = state.snapshot
        assert snap is not None
        have = snap.resources.get(t, {})
        if ts.names is None:
            chosen = [have[n] for n in sorted(have)]
        else:
            chosen = [have[n] if n in have else _empty(t, n) for n in sorted(ts.names)]
            chosen = [c for c in chosen if c is not None]
        self._nonce += 1
        ts.nonce = str(self._nonce)
        ts.version = snap.versions.get(t, "")
        resp = discovery_pb2.DiscoveryResponse(version_info=ts.version, type_url=t, nonce=ts.nonce)
        resp.resources.extend(chosen)
        await self._record(XdsEvent(time.perf_counter(), node_id, "send", t, ts.version, ts.nonce,
                                    count=len(chosen)))
        return resp


def envoy_error(text: str) -> str:
    """Envoy's NACK text without the debug dump of the rejected resource.

    A proto constraint failure starts with a ``goo.gle/debugproto`` banner and the whole resource
    in text format, then ``": <message>"`` (no line of a text-format proto starts with ``": "``).

    Example:
        >>> envoy_error('goo.gle/debugproto \\nname: "a"\\n: Proto constraint validation failed (x)')
        'Proto constraint validation failed (x)'
    """
    if text.startswith("goo.gle/") and "\n: " in text:
        return text.split("\n: ", 1)[1].strip()
    return text.strip()


def _empty(type_url: str, name: str) -> any_pb2.Any | None:
    a = any_pb2.Any()
    if type_url == ENDPOINT:
        a.Pack(endpoint_pb2.ClusterLoadAssignment(cluster_name=name))
    elif type_url == ROUTE:
        a.Pack(route_pb2.RouteConfiguration(name=name))
    else:
        return None
    return a
