"""A running lab: compile, localize, serve over ADS, start Envoys and fake workloads, send.

Layer: L7 (lab). Imports: pipeline, compiler, simulate, errors and the lab's own modules.

:class:`Lab` owns everything it starts (a private temporary directory, the ADS server, the fake
workloads process, one Envoy for the client sidecar and one per server sidecar) and ends all of
it in :meth:`Lab.close` (also on Ctrl-C, a dead child, or an exception). :class:`~meshlens.lab.handle.LabHandle` is
the part a client needs to send traffic -- it can be rebuilt from the state file by another
process (``meshlens lab send``).

Server sidecars: an endpoint whose pod is injected gets its own Envoy, compiled for that pod
(its inbound listeners, PeerAuthentication, its identity's certificate), so mTLS mismatches happen
for real; its fake app listens beside it. ``sidecars: none`` turns this off (every endpoint is a
bare fake app).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2

from meshlens import interrupts
from meshlens.compiler import CompileResult
from meshlens.errors import EnvoyExited, LabError, UsageError
from meshlens.lab import ads_server
from meshlens.lab.addressing import Addressing
from meshlens.lab.bootstrap import build_lab_bootstrap
from meshlens.lab.certs import LabCA, spiffe_id
from meshlens.lab.guard import check_loopback_only
from meshlens.lab.handle import LabHandle
from meshlens.lab.localhttp import MAX_SOCKET_PATH, request
from meshlens.lab.localize import DIRECT_PREFIX, Change, LocalConfig, ServerSide, localize
from meshlens.lab.process import Children, EnvoyProcess, free_base_id
from meshlens.lab.report import Report
from meshlens.lab.statedir import STATE_FILE, new_lab_dir, owner_record, write_private
from meshlens.pipeline import Loaded, compile_for, server_compiler

@dataclass(frozen=True, slots=True)
class Behaviour:
    """Scenario ``workloads`` entry: pods whose labels match ``selector`` respond like ``respond``."""

    selector: Mapping[str, str]
    respond: Mapping[str, Any]
    namespace: str | None = None
    sidecar: bool | None = None

    def matches(self, labels: Mapping[str, str], namespace: str, name: str) -> bool:
        if self.namespace and self.namespace != namespace:
            return False
        for k, v in self.selector.items():
            if k == "pod":
                if v != name:
                    return False
            elif labels.get(k) != v:
                return False
        return True


@dataclass(slots=True)
class FakePod:
    name: str
    namespace: str
    version: str
    labels: dict[str, str]
    real: str
    ip: str
    ports: set[int] = field(default_factory=set)
    behaviour: dict[str, Any] = field(default_factory=dict)
    sidecar: bool = False
    app_ports: dict[int, int] = field(default_factory=dict)


class Lab:
    """Everything of one lab run; use ``async with Lab(...) as lab``."""

    def __init__(self, loaded: Loaded, proxy: str, *, behaviours: Iterable[Behaviour] = (),
                 sidecars: str = "auto", max_sidecars: int = 8,
                 direct_entries: bool = False, namespace: str | None = None) -> None:
        if sidecars not in ("auto", "none"):
            raise UsageError("sidecars is 'auto' or 'none'")
        self.loaded, self.proxy, self.namespace = loaded, proxy, namespace
        self.behaviours = list(behaviours)
        self.sidecars, self.max_sidecars = sidecars, max_sidecars
        self.direct_entries = direct_entries
        self.direct: dict[str, tuple[str, int]] = {}
        self.addressing = Addressing()
        self.children = Children()
        self.ads = ads_server.AdsServer()
        self.ca = LabCA.create()
        self._dir: Path | None = None
        self.result: CompileResult | None = None
        self.pods: dict[str, FakePod] = {}
        self.envoys: dict[str, EnvoyProcess] = {}
        self.node_ids: dict[str, str] = {}
        self.servers: dict[str, CompileResult] = {}
        self.local: dict[str, LocalConfig] = {}
        self.control = ""
        self.handle: LabHandle | None = None
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self._closed = False

    async def __aenter__(self) -> Lab:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- start ----------------------------------------------------------------------------------

    @property
    def dir(self) -> Path:
        """The lab's private folder (see :mod:`meshlens.lab.statedir`)."""
        if self._dir is None:
            raise LabError("the lab is not started")
        return self._dir

    def write_state(self, payload: dict[str, Any]) -> Path:
        """Write (or replace) the lab's state file; it always names this process as the owner."""
        path = self.dir / STATE_FILE
        write_private(path, json.dumps({**payload, **owner_record()}), replace=True)
        return path

    def _socket(self, name: str) -> str:
        """The path of one of the lab's Unix sockets (admin, ADS, control): short, in its folder."""
        path = str(self.dir / f"{name}.sock")
        if len(path.encode()) > MAX_SOCKET_PATH:
            raise LabError(f"the lab folder {self.dir} is too deep for a Unix socket path "
                           f"({len(path.encode())} > {MAX_SOCKET_PATH} bytes); set "
                           "MESHLENS_LAB_STATE_DIR to a shorter folder")
        return path

    async def start(self, timeout: float = 20.0) -> None:
        t0 = time.perf_counter()
        with interrupts.raising():  # pure computing: a signal stops it at once
            self.result = compile_for(self.loaded, self.proxy, namespace=self.namespace)
            self._dir = new_lab_dir()
            self.write_state({"status": "starting", "proxy": self.proxy})
            self._plan_pods(self.result)
            compile_server = server_compiler(self.loaded)
            for pod in self.pods.values():
                if pod.sidecar:
                    srv = compile_server(pod.real)
                    if srv is None:
                        pod.sidecar = False
                    else:
                        self.servers[pod.name] = srv
        fake = self._start_fake_pods()
        port = await self.ads.start(unix_socket=self._socket("ads"))
        client_log = self.dir / "client" / "access.log"
        self.local["client"] = localize(self.result, self.addressing, access_log=str(client_log),
                                        direct_entries=self.direct_entries)
        client_ip = self.addressing.ip(self.result.proxy.ip)
        self._spawn("client", self.result, port, client_ip)
        self._push("client", self.result)
        for name, srv in self.servers.items():
            self._spawn(name, srv, port, self.pods[name].ip)
        self.timings["spawned"] = time.perf_counter() - t0
        await self._wait_fake_pods(fake, timeout)
        for name, srv in self.servers.items():
            pod = self.pods[name]
            self.local[name] = localize(srv, self.addressing,
                                        access_log=str(self.dir / name / "access.log"),
                                        server=ServerSide(pod.ip, dict(pod.app_ports)))
            self._push(name, srv)
        await self._wait_ready(timeout)
        if self.ads.nacks():
            # A lab that could not apply its config (e.g. a server sidecar cannot bind its pod
            # address because another program holds it) would measure something else.
            raise LabError("the lab did not start: " + "; ".join(
                f"NACK {n['type']} from envoy {n['node']}: {n['error']}" for n in self.nack_dicts())
                + " (is another lab or program using these addresses?)")
        client = self.envoys["client"]
        bound = await asyncio.to_thread(client.listener_addresses)
        host, _, entry_port = bound.get("virtualOutbound", ":").rpartition(":")
        gateway = _gateway_entries(self.result, bound) if self.result.proxy.is_router else None
        if gateway is not None:
            host, entry_port = next(iter(gateway.values()), ("127.0.0.1", 0))
        if not entry_port and gateway is None:
            raise LabError("the client sidecar has no virtualOutbound listener to send through")
        for name, addr in bound.items():
            if name.startswith(DIRECT_PREFIX):
                h, _, p = addr.rpartition(":")
                self.direct[name[len(DIRECT_PREFIX):]] = (h, int(p))
        self.handle = LabHandle(self.result, self.addressing, (host, int(entry_port)), client_ip,
                                client_log, client.admin, gateway)
        self.timings["ready"] = time.perf_counter() - t0
        # For a look with openssl or curl; removed with the rest of the directory at exit.
        self.ca.write(self.dir / "certs")

    def _plan_pods(self, result: CompileResult) -> None:
        by_ip = {w.ip: w for w in self.loaded.mesh.registry.workloads}
        for cla in result.endpoints:
            for loc in cla.endpoints:
                for lb in loc.lb_endpoints:
                    sa = lb.endpoint.address.socket_address
                    if sa.address:
                        self._add_pod(by_ip, sa.address, sa.port_value, cla.cluster_name)
        for c in result.clusters:
            if c.type in (cluster_pb2.Cluster.STATIC, cluster_pb2.Cluster.STRICT_DNS,
                          cluster_pb2.Cluster.LOGICAL_DNS) and c.name.startswith("outbound|"):
                for loc in c.load_assignment.endpoints:
                    for lb in loc.lb_endpoints:
                        sa = lb.endpoint.address.socket_address
                        if sa.address:
                            self._add_pod(by_ip, sa.address, sa.port_value, c.name)
        sidecars = [p for p in self.pods.values() if p.sidecar]
        if len(sidecars) > self.max_sidecars:
            raise LabError(f"{len(sidecars)} injected endpoints would need {len(sidecars)} server "
                           f"sidecars (max {self.max_sidecars}); set sidecars: none or raise "
                           "max_sidecars")

    def _add_pod(self, by_ip: dict[str, Any], address: str, port: int, cluster: str) -> None:
        wl = by_ip.get(address)
        lab_ip = self.addressing.ip(address)  # a name goes to the name map
        if wl is not None:
            name, ns, labels = wl.name, wl.namespace, dict(wl.labels)
        else:
            host = cluster.split("|")[-1] if "|" in cluster else cluster
            name, ns, labels = f"{host}@{address}", "", {"host": host}
        pod = self.pods.get(name)
        if pod is None:
            behaviour: dict[str, Any] = {}
            sidecar: bool | None = None
            for b in self.behaviours:
                if b.matches(labels, ns, name):
                    behaviour.update(b.respond)
                    if b.sidecar is not None:
                        sidecar = b.sidecar
            want = bool(wl is not None and wl.injected and self.sidecars == "auto")
            pod = FakePod(name, ns, labels.get("version", ""), labels, address, lab_ip,
                          behaviour=behaviour,
                          sidecar=(want if sidecar is None else sidecar and want)
                          and not behaviour.get("down"))
            self.pods[name] = pod
        pod.ports.add(port)

    def _start_fake_pods(self) -> Path:
        ready = self.dir / "fake-pods.ready"
        config: dict[str, Any] = {"ready_file": str(ready),
                                  "control_socket": self._socket("ctl"), "pods": [
            {"name": p.name, "namespace": p.namespace, "version": p.version,
             "behaviour": p.behaviour,
             "binds": [{"ip": p.ip, "port": port, **({"bind": 0} if p.sidecar else {})}
                       for port in sorted(p.ports)]}
            for p in self.pods.values()]}
        config["services"] = self._services()
        path = self.dir / "fake-pods.json"
        write_private(path, json.dumps(config))
        src = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.children.spawn("fake pods", [sys.executable, "-m", "meshlens.lab.fake_pods",
                                          str(path)], self.dir / "fake-pods.log", env=env)
        return ready

    def _services(self) -> list[dict[str, Any]]:
        """kube-proxy's table: each Kubernetes Service VIP:port -> its endpoints (lab addresses)."""
        assert self.result is not None
        from meshlens.compiler.names import parse_cluster_name

        by_name = {cla.cluster_name: cla for cla in self.result.endpoints}
        out = []
        for cluster in self.result.clusters:
            key = parse_cluster_name(cluster.name)
            if key is None or key.subset or not cluster.name.startswith("outbound|"):
                continue
            svc = next((s for s in self.loaded.mesh.registry.by_host.get(key.host, [])
                        if s.registry == "Kubernetes" and s.vip), None)
            cla = by_name.get(cluster.name)
            if svc is None or cla is None:
                continue
            eps = [[self.addressing.ip(lb.endpoint.address.socket_address.address),
                    lb.endpoint.address.socket_address.port_value]
                   for loc in cla.endpoints for lb in loc.lb_endpoints]
            out.append({"ip": self.addressing.ip(svc.vip), "port": key.port, "endpoints": eps})
        return out

    async def _wait_fake_pods(self, ready: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            self.children.check()
            if time.monotonic() > deadline:
                raise LabError("the fake pods did not start")
            await asyncio.sleep(0.01)
        info = json.loads(ready.read_text())
        if info.get("errors"):
            raise LabError("fake pods: " + "; ".join(info["errors"]) +
                           " (is another lab running with the same manifests?)")
        self.control = info["control"]
        self.warnings = list(info.get("warnings", []))
        for name, binds in info["binds"].items():
            pod = self.pods[name]
            for _ip, port, bound in binds:
                pod.app_ports[int(port)] = int(bound)
        self.timings["fake_pods"] = time.perf_counter()

    def _spawn(self, name: str, result: CompileResult, ads_port: int, source_ip: str) -> None:
        bootstrap = build_lab_bootstrap(result, ads_port=ads_port, source_ip=source_ip,
                                        ads_socket=self._socket("ads"),
                                        admin_socket=self._socket(f"e{len(self.envoys)}"))
        if bootstrap["node"]["id"] in self.node_ids.values():
            # The proxy under test also serves traffic (its own Service): its server sidecar is a
            # second Envoy for the same pod and needs a node id of its own, or the ADS server
            # would hand both Envoys one snapshot.
            bootstrap["node"]["id"] += f"~lab-{name}"
        check_loopback_only(bootstrap=bootstrap, node=name)
        self.node_ids[name] = bootstrap["node"]["id"]
        base = free_base_id() + len(self.envoys)
        self.envoys[name] = EnvoyProcess.start(self.children, name=name, bootstrap=bootstrap,
                                               workdir=self.dir / name, base_id=base)

    def _secrets(self, result: CompileResult) -> list[Any]:
        wl = result.proxy.workload
        trust = result.mesh.mesh_config.trust_domain if result.mesh is not None else "cluster.local"
        return self.ca.secrets(spiffe_id(trust, wl.namespace, wl.service_account or "default"))

    def _push(self, name: str, result: CompileResult) -> list[str]:
        lc = self.local[name]
        secrets = self._secrets(result)
        check_loopback_only(clusters=lc.clusters, endpoints=lc.endpoints, listeners=lc.listeners,
                            routes=lc.routes, secrets=secrets, node=name)
        snap = ads_server.Snapshot.build(clusters=lc.clusters, endpoints=lc.endpoints,
                                         listeners=lc.listeners, routes=lc.routes,
                                         secrets=secrets,
                                         extension_configs=[e.config for e in result.extension_configs])
        return self.ads.set_snapshot(self.node_ids[name], snap)

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(self.envoys)
        for e in pending.values():
            await asyncio.to_thread(e.wait_admin, timeout)
        while pending:
            self.children.check()
            for name, e in list(pending.items()):
                if await asyncio.to_thread(e.ready):
                    del pending[name]
            if time.monotonic() > deadline:
                names = ", ".join(pending)
                nacks = "; ".join(f"{n.node}: {n.error}" for n in self.ads.nacks())
                raise EnvoyExited(f"envoy {names} not ready after {timeout}s" +
                                  (f" (NACKs: {nacks})" if nacks else ""))
            if pending:
                await asyncio.sleep(0.01)
        for name in self.envoys:
            await self.ads.wait_applied(self.node_ids[name], timeout=max(1.0, deadline - time.monotonic()))

    # -- while running --------------------------------------------------------------------------

    async def send(self, url: str, headers: Iterable[str] = (), **kw: Any) -> Report:
        if self.handle is None:
            raise LabError("the lab is not started")
        self.children.check()
        return await self.handle.send(url, headers, nacks=self.nack_dicts(), **kw)

    def nack_dicts(self) -> list[dict[str, Any]]:
        names = {v: k for k, v in self.node_ids.items()}
        return [{**e.to_dict(), "node": names.get(e.node, e.node)} for e in self.ads.nacks()]

    async def set_behaviour(self, behaviour: Behaviour, *, replace: bool = False) -> list[str]:
        """Change matching pods' behaviour at run time (``down`` closes their app's sockets)."""
        names = [p.name for p in self.pods.values()
                 if behaviour.matches(p.labels, p.namespace, p.name)]
        if names:
            body = json.dumps({"pods": names, "set": dict(behaviour.respond),
                               "replace": replace}).encode()
            await asyncio.to_thread(request, self.control, "/__control", method="POST",
                                    body=body, headers={"content-type": "application/json"})
        return names

    async def apply(self, loaded: Loaded, *, timeout: float = 10.0) -> dict[str, Any]:
        """Recompile for new manifests and push; returns the push timing and any NACKs.

        The fake pods and server sidecars started with the lab stay as they are.
        """
        t0 = time.perf_counter()
        with interrupts.raising():
            self.loaded = loaded
            self.result = compile_for(loaded, self.proxy, namespace=self.namespace)
            t_compile = time.perf_counter()
            self.local["client"] = localize(self.result, self.addressing,
                                            access_log=str(self.dir / "client" / "access.log"),
                                            direct_entries=self.direct_entries)
        nacks_before = len(self.ads.nacks())
        changed = self._push("client", self.result)
        t_push = time.perf_counter()
        answers = await self.ads.wait_applied(self.node_ids["client"], types=changed, timeout=timeout) \
            if changed else {}
        t_ack = max((e.at for e in answers.values()), default=t_push)
        if self.handle is not None:
            self.handle.result = self.result
        return {"changed": [ads_server.SHORT[t] for t in changed],
                "compile_ms": round((t_compile - t0) * 1000, 2),
                "push_to_ack_ms": round((t_ack - t_push) * 1000, 2),
                "total_ms": round((t_ack - t0) * 1000, 2),
                "nacks": self.nack_dicts()[nacks_before:]}

    def changes(self) -> list[Change]:
        return [c for lc in self.local.values() for c in lc.changes]

    def describe(self) -> dict[str, Any]:
        """Where everything is: admin addresses, the entry, pods, the address map."""
        return {
            "proxy": self.proxy,
            "dir": str(self.dir),
            "entry": f"{self.handle.entry[0]}:{self.handle.entry[1]}" if self.handle else None,
            "direct_entries": {k: f"{h}:{p}" for k, (h, p) in self.direct.items()},
            "envoys": {n: {"admin": _shown(e.admin), "node": self.node_ids[n],
                           "access_log": str(e.access_log), "pid": e.child.proc.pid}
                       for n, e in self.envoys.items()},
            "fake_pods": {"control": _shown(self.control), "pods": {
                p.name: {"address": p.ip, "real": p.real, "ports": sorted(p.ports),
                         "sidecar": p.sidecar, "app_ports": p.app_ports,
                         "behaviour": p.behaviour} for p in self.pods.values()}},
            "addresses": self.addressing.to_dict(),
            "warnings": self.warnings,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items() if k != "fake_pods"},
        }

    # -- stop -----------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with interrupts.deferred():  # a second Ctrl-C must not leave children or keys behind
            try:
                await asyncio.to_thread(self.children.stop_all)
            finally:
                try:
                    await self.ads.stop()
                finally:
                    if self._dir is not None:
                        shutil.rmtree(self._dir, ignore_errors=True)


def _gateway_entries(result: CompileResult, bound: dict[str, str]) -> dict[int, tuple[str, int]]:
    """Listener port (as compiled: ``0.0.0.0_8080`` → 8080) → the lab address it is bound to."""
    out: dict[int, tuple[str, int]] = {}
    for lst in result.listeners or []:
        addr = bound.get(lst.name)
        if addr:
            h, _, p = addr.rpartition(":")
            out[lst.address.socket_address.port_value] = (h, int(p))
    return out


def _shown(address: str) -> str:
    """How to reach a lab endpoint: ``unix:PATH`` for a socket, else ``http://host:port``."""
    return f"unix:{address}" if address.startswith("/") else f"http://{address}"
