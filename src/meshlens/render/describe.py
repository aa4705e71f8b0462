"""``meshlens describe service``: istioctl's ``x describe service`` from files
(istioctl/pkg/describe/describe.go: `svcDescribeCmd`, `describePodServices`, `printService`,
`printDestinationRule`, `printVirtualService`, `httpRouteMatchSvc`, `printIngressInfo`,
`printIngressService`).

Layer: L6. Imports: dump, resources, model.protocol, source.

istioctl reads which DestinationRule and VirtualService apply from the proxies' own config dumps
(cluster and route ``istio.config`` metadata) and prints the objects from the cluster. meshlens
does the same with the config it compiles for the pods (or with real dumps given per pod), and the
objects from the input files. Output is byte for byte istioctl's, quirks included (a Service port
without an explicit ``protocol: TCP`` prints no ``Port:`` line; ``Matching subsets:`` keeps its
trailing space).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshlens.dump import ConfigDump, clusters_of, routes_of
from meshlens.model import protocol
from meshlens.resources import Resource

L0, L1, L2 = 0, 3, 6
K8S_SUFFIX = ".svc.cluster.local"
_DR_PATH = re.compile(r"/apis/networking(\.istio\.io)?/v1(?:alpha3)?/namespaces/([^/]+)/destination-rule/([^/]+)")
_VS_PATH = re.compile(r"/apis/networking(\.istio\.io)?/v1(?:alpha3)?/namespaces/([^/]+)/virtual-service/([^/]+)")
_DOMAIN = re.compile(r"([^\.]+)\.([^\.]+)\.svc\.cluster\.local$")


@dataclass(slots=True)
class Inputs:
    resources: list[Resource]
    namespace: str  # describeNamespace: names in it print without ".ns"
    dump_for: Callable[[Resource], ConfigDump | None]  # a pod's config dump (None: unreachable)


def _sp(n: int) -> str:
    return " " * n


def _meta(o: Resource) -> dict[str, Any]:
    return o.body.get("metadata") or {}


def kname(o: Resource, ns: str) -> str:
    return o.name if o.namespace == ns else f"{o.name}.{o.namespace}"


def extend_fqdn(host: str) -> str:
    """`extendFQDN`."""
    if host.startswith("*") or host.endswith(K8S_SUFFIX):
        return host
    return host + K8S_SUFFIX


def _resolve_short(host: str, ns: str) -> str:
    """`model.ResolveShortnameToFQDN`."""
    if "*" in host or "." in host:
        return host
    return f"{host}.{ns}.svc.cluster.local"


def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(str(k)) == str(v) for k, v in selector.items())


def _istio_config(metadata: Any) -> str:
    fm = metadata.filter_metadata.get("istio") if metadata is not None else None
    if fm is None or "config" not in fm.fields:
        return ""
    return fm.fields["config"].string_value


def dr_path(cd: ConfigDump, svc: Resource, port: int) -> str | None:
    """`getIstioDestinationRulePathForSvc` (``ClusterFilter.Verify``: substring tests); None: error."""
    if cd.clusters is None:
        return None
    fqdn = extend_fqdn(f"{svc.name}.{svc.namespace}")
    for c in clusters_of(cd.clusters)[: len(cd.clusters.dynamic_active_clusters)]:
        if fqdn in c.name and "outbound" in c.name and f"|{port}|" in c.name:
            return _istio_config(c.metadata) if c.HasField("metadata") else ""
    return ""


def _route_matches_svc(r: Any, svc: Resource, vh: Any, port: int) -> bool:
    """`routeDestinationMatchesSvc`."""
    for d in vh.domains:
        m = _DOMAIN.search(d)
        if m and m.group(1) == svc.name and m.group(2) == svc.namespace:
            return True
    action = r.route if r.HasField("route") else None
    cluster = ""
    if action is not None:
        which = action.WhichOneof("cluster_specifier")
        if which == "cluster":
            cluster = action.cluster
        elif which == "weighted_clusters" and action.weighted_clusters.clusters:
            cluster = action.weighted_clusters.clusters[0].name
    m = re.search(rf"outbound\|{port}\|[^\|]*\|([^\.]+)\.([^\.]+)\.svc\.cluster\.local$", cluster)
    return bool(m and m.group(1) == svc.name and m.group(2) == svc.namespace)


def vs_path(cd: ConfigDump, svc: Resource, port: int) -> str | None:
    """`getIstioVirtualServicePathForSvcFromRoute`; None: error (no route section)."""
    if cd.routes is None:
        return None
    for rc in routes_of(cd.routes)[: len(cd.routes.dynamic_route_configs)]:
        if rc.name != str(port) and not rc.name.startswith(("http.", "https.")):
            continue
        for vh in rc.virtual_hosts:
            for r in vh.routes:
                if _route_matches_svc(r, svc, vh, port):
                    return _istio_config(r.metadata) if r.HasField("metadata") else None
    return ""


def _name_from(path: str | None, rx: re.Pattern[str]) -> tuple[str, str] | None:
    if not path:
        return None
    m = rx.search(path)
    return (m.group(3), m.group(2)) if m else None


class Describer:
    def __init__(self, inp: Inputs) -> None:
        self.inp = inp
        self.ns = inp.namespace
        self.out: list[str] = []

    def w(self, text: str) -> None:
        self.out.append(text)

    def find(self, kind: str, ns: str, name: str) -> Resource | None:
        return next((r for r in self.inp.resources if r.kind == kind and r.namespace == ns and r.name == name
                     and (kind not in ("VirtualService", "DestinationRule", "Gateway")
                          or r.group == "networking.istio.io")), None)

    # -- DestinationRule ----------------------------------------------------------------------
    @staticmethod
    def subsets(dr: Resource, pods_labels: list[dict[str, str]]) -> tuple[list[str], list[str]]:
        """`getDestRuleSubsets`."""
        yes, no = [], []
        for s in dr.spec.get("subsets") or []:
            sel = s.get("labels") or {}
            (yes if any(_labels_match(sel, p) for p in pods_labels) else no).append(str(s.get("name")))
        return yes, no

    @staticmethod
    def _short_policies(block: dict[str, Any]) -> str:
        extra = [n for k, n in (("loadBalancer", "load balancer"), ("connectionPool", "connection pool"),
                                ("outlierDetection", "outlier detection")) if block.get(k) is not None]
        return f"Policies: {'/'.join(extra)}\n" if extra else ""

    def print_dr(self, lvl: int, dr: Resource, pods_labels: list[dict[str, str]]) -> None:
        """`printDestinationRule`."""
        self.w(f'{_sp(lvl + L0)}DestinationRule: {kname(dr, self.ns)} for "{dr.spec.get("host", "")}"\n')
        yes, no = self.subsets(dr, pods_labels)
        if yes or no:
            if not yes:
                self.w(f"{_sp(lvl + L1)}WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets {','.join(no)})\n")
            self.w(f"{_sp(lvl + L1)}Matching subsets: {','.join(yes)}\n")
            if no:
                self.w(f"{_sp(lvl + L2)}(Non-matching subsets {','.join(no)})\n")
        tp = dr.spec.get("trafficPolicy")
        if tp is None:
            self.w(f"{_sp(lvl + L1)}No Traffic Policy\n")
            return
        if tp.get("tls") is not None:
            self.w(f"{_sp(lvl + L1)}Traffic Policy TLS Mode: {(tp['tls'] or {}).get('mode') or 'DISABLE'}\n")
        sp = self._short_policies(tp)
        if sp:
            self.w(f"{_sp(lvl + L1)}{sp}")
        if tp.get("portLevelSettings") is not None:
            self.w(f"{_sp(lvl + L1)}Port Level Settings:\n")
            for ps in tp["portLevelSettings"] or []:
                self.w(f"{_sp(4)}{int((ps.get('port') or {}).get('number') or 0)}:\n")
                if ps.get("tls") is not None:
                    self.w(f"{_sp(lvl + L2)}TLS Mode: {(ps['tls'] or {}).get('mode') or 'DISABLE'}\n")
                sp = self._short_policies(ps)
                if sp:
                    self.w(f"{_sp(lvl + L2)}{sp}")

    # -- VirtualService -----------------------------------------------------------------------
    @staticmethod
    def _render_sm(sm: dict[str, Any] | None) -> str:
        if not sm:
            return ""
        if "exact" in sm:
            return str(sm["exact"])
        if "prefix" in sm:
            return str(sm["prefix"]) + "*"
        return "regex:" + str(sm.get("regex", ""))

    def _render_match(self, m: dict[str, Any]) -> str:
        """`renderMatch`."""
        out = "Match: "
        if m.get("uri"):
            out += self._render_sm(m["uri"])
            if m.get("ignoreUriCase"):
                out += " uncased"
        if m.get("headers"):
            conds = [f"{k}={self._render_sm(v)}" for k, v in (m["headers"] or {}).items()]
            out += " when headers are " + "; ".join(conds)
        return out.strip()

    def _render_matches(self, ms: list[Any]) -> str:
        return ", ".join(self._render_match(m) for m in ms) if ms else "everything"

    def _http_route_match(self, vs: Resource, route: dict[str, Any], svc: Resource, yes: list[str],
                          no: list[str], dr: Resource | None) -> tuple[bool, list[str]]:
        """`httpRouteMatchSvc`."""
        svc_host = extend_fqdn(f"{svc.name}.{svc.namespace}")
        facts, mismatch, match = [], [], False
        for d in route.get("route") or []:
            dest = d.get("destination") or {}
            host, subset, weight = str(dest.get("host", "")), str(dest.get("subset") or ""), int(d.get("weight") or 0)
            if extend_fqdn(_resolve_short(host, vs.namespace)) == svc_host:
                if subset:
                    if subset in no:
                        mismatch.append(f"Route to non-matching subset {subset} for "
                                        f"({self._render_matches(route.get('match') or [])})")
                        continue
                    if subset not in yes:
                        mismatch.append(f"Warning: Route to subset {subset} but NO DESTINATION RULE defining subsets!"
                                        if dr is None else
                                        f"Warning: Route to UNKNOWN subset {subset}; check DestinationRule "
                                        f"{kname(dr, self.ns)}")
                        continue
                match = True
                if weight > 0:
                    fact = f'Route to host "{host}"' + (f' subset "{subset}"' if subset else "")
                    facts.append(f"{fact} with weight {weight}%")
            elif not subset:
                facts.append(f'Route to host "{host}" with weight {weight}%')
            else:
                facts.append(f"Route to {host} with invalid config")
        if match:
            req = []
            if route.get("fault") is not None:
                req.append(f"Fault injection {route['fault']}")
            req += [self._render_match(m) for m in route.get("match") or []]
            if req:
                facts.append(", ".join(req))
        if not match and mismatch:
            facts += mismatch
        return match, facts

    def print_vs(self, lvl: int, vs: Resource, svc: Resource, yes: list[str], no: list[str],
                 dr: Resource | None) -> None:
        """`printVirtualService`."""
        self.w(f"{_sp(lvl + L0)}VirtualService: {kname(vs, self.ns)}\n")
        http = vs.spec.get("http") or []
        tcp = vs.spec.get("tcp") or []
        matches = facts = 0
        mismatch: list[str] = []
        for r in http:
            ok, new = self._http_route_match(vs, r, svc, yes, no, dr)
            if ok:
                matches += 1
                for f in new:
                    self.w(f"{_sp(lvl + L1)}{f}\n")
                    facts += 1
            else:
                mismatch += new
        svc_host = extend_fqdn(f"{svc.name}.{svc.namespace}")
        for r in tcp:
            if any(extend_fqdn(_resolve_short(str((d.get("destination") or {}).get("host", "")), vs.namespace))
                   == svc_host for d in r.get("route") or []):
                matches += 1
                for m in r.get("match") or []:
                    self.w(f"{_sp(lvl + L1)}{m}\n")
                    facts += 1
        if matches == 0:
            if http:
                self.w(f"{_sp(lvl + L1)}WARNING: No destinations match pod subsets (checked {len(http)} HTTP routes)\n")
            if tcp:
                self.w(f"{_sp(lvl + L1)}WARNING: No destinations match pod subsets (checked {len(tcp)} TCP routes)\n")
            for m in mismatch:
                self.w(f"{_sp(lvl + L2)}{m}\n")
            return
        possible = len(http) + len(vs.spec.get("tls") or []) + len(tcp)
        if matches < possible:
            self.w(f"{_sp(lvl + L1)}{possible - matches} additional destination(s) that will not reach this pod\n")
            if facts == 0:
                for m in mismatch:
                    self.w(f"{_sp(lvl + L2)}{m}\n")
            return
        if facts == 0:
            if http:
                self.w(f"{_sp(lvl + L1)}{len(http)} HTTP route(s)\n")
            if tcp:
                self.w(f"{_sp(lvl + L1)}{len(tcp)} TCP route(s)\n")

    # -- service -------------------------------------------------------------------------------
    def print_service(self, svc: Resource, pod: Resource) -> None:
        """`printService`: only ports whose ``protocol`` is literally TCP."""
        self.w(f"Service: {kname(svc, self.ns)}\n")
        for p in svc.spec.get("ports") or []:
            if p.get("protocol") != "TCP":
                continue
            target = p.get("targetPort", p.get("port"))
            nport: int | None = target if isinstance(target, int) else None
            if isinstance(target, str):
                for c in (pod.spec.get("containers") or []):
                    for cp in c.get("ports") or []:
                        if cp.get("name") == target and (cp.get("protocol") or "TCP") == "TCP":
                            nport = int(cp.get("containerPort"))
            if nport is None:
                self.w(f"   no suitable port for manifest: {_meta(pod).get('uid', '')}\n")
                continue
            name = str(p.get("name") or "")
            proto = "auto-detect" if not name and not p.get("appProtocol") else protocol.from_kube_port(
                name, int(p.get("port") or 0), "TCP", str(p.get("appProtocol") or ""))
            self.w(f"   Port: {name} {p.get('port')}/{proto} targets pod port {nport}\n")

    def _dr_for(self, cd: ConfigDump, svc: Resource, port: int) -> Resource | None | bool:
        found = _name_from(dr_path(cd, svc, port), _DR_PATH)
        if found is None:
            return None
        dr = self.find("DestinationRule", found[1], found[0])
        if dr is None:
            self.w(f"WARNING: Proxy is stale; it references to non-existent destination rule {found[0]}.{found[1]}\n")
        return dr

    def describe_pod_services(self, pod: Resource, svcs: list[Resource], pods_labels: list[dict[str, str]]) -> None:
        """`describePodServices`."""
        cd = self.inp.dump_for(pod) or ConfigDump()
        for row, svc in enumerate(svcs):
            if row:
                self.w("--------------------\n")
            self._describe_one(cd, pod, svc, pods_labels)

    def _describe_one(self, cd: ConfigDump, pod: Resource, svc: Resource, pods_labels: list[dict[str, str]]) -> None:
        self.print_service(svc, pod)
        ports = svc.spec.get("ports") or []
        lvl = L1 if len(ports) > 1 else L0
        for p in ports:
            port = int(p.get("port") or 0)
            if len(ports) > 1:
                self.w(f"{port}:\n")
            yes: list[str] = []
            no: list[str] = []
            dr = self._dr_for(cd, svc, port)
            if isinstance(dr, Resource):
                self.print_dr(lvl, dr, pods_labels)
                yes, no = self.subsets(dr, pods_labels)
            found = _name_from(vs_path(cd, svc, port), _VS_PATH)
            if found is not None:
                vs = self.find("VirtualService", found[1], found[0])
                if vs is not None:
                    self.print_vs(lvl, vs, svc, yes, no, dr if isinstance(dr, Resource) else None)
                else:
                    self.w(f"WARNING: Proxy is stale; it references to non-existent virtual service "
                           f"{found[0]}.{found[1]}\n")

    def ingress_info(self, svcs: list[Resource], pods_labels: list[dict[str, str]]) -> None:
        """`printIngressInfo`."""
        pods = [r for r in self.inp.resources if r.kind == "Pod" and r.labels.get("istio") == "ingressgateway"
                and (r.body.get("status") or {}).get("phase") == "Running"]
        if not pods:
            self.w("Skipping Gateway information (no ingress gateway pods)\n")
            return
        found: list[tuple[Resource, list[Resource]]] = []
        for ns in sorted({p.namespace for p in pods}):
            for s in (r for r in self.inp.resources if r.kind == "Service" and r.namespace == ns):
                sel = s.spec.get("selector") or {}
                chosen = [p for p in pods if p.namespace == ns and _labels_match(sel, p.labels)]
                if chosen:
                    found.append((s, chosen))
        if not found:
            self.w("Skipping Gateway information (no ingress gateway service)\n")
        seen_gw: set[str] = set()
        for pod in pods:
            cd = self.inp.dump_for(pod) or ConfigDump()
            for svc, p in ((svc, p) for svc in svcs for p in svc.spec.get("ports") or []):
                port = int(p.get("port") or 0)
                dr = self._dr_for(cd, svc, port)
                yes, no = self.subsets(dr, pods_labels) if isinstance(dr, Resource) else ([], [])
                vsf = _name_from(vs_path(cd, svc, port), _VS_PATH)
                if vsf is None:
                    continue
                vs = self.find("VirtualService", vsf[1], vsf[0])
                if vs is None:
                    self.w(f"WARNING: Proxy is stale; it references to non-existent virtual service "
                           f"{vsf[0]}.{vsf[1]}\n")
                    continue
                for gname in vs.spec.get("gateways") or []:
                    gname = str(gname)
                    if not gname or gname == "mesh":
                        continue
                    gns, _, gn = gname.partition("/") if "/" in gname else (vsf[1], "", gname)
                    gid = f"{gns}/{gn}"
                    if gid in seen_gw:
                        continue
                    gw = self.find("Gateway", gns, gn)
                    if gw is None:
                        self.w(f"WARNING: Proxy is stale; it references to non-existent gateway {gns}/{gn}\n")
                        continue
                    seen_gw.add(gid)
                    sel = gw.spec.get("selector")
                    if sel is None:
                        self.w(f"Ingress Gateway {gns}/{gn} be applied all workloads")
                        continue
                    infos = [(s, ps) for s, ps in found if any(_labels_match(sel, x.labels) for x in ps)]
                    if infos:
                        infos.sort(key=lambda i: _ingress_ip(*i))
                        self.w("--------------------\n")
                        for s, ps in infos:
                            self._print_ingress_service(s, ps)
                        self.print_vs(L0, vs, svc, yes, no, dr if isinstance(dr, Resource) else None)

    def _print_ingress_service(self, s: Resource, pods: list[Resource]) -> None:
        """`printIngressService`: http/http2 TCP ports."""
        for p in s.spec.get("ports") or []:
            if p.get("protocol") != "TCP" or p.get("name") not in ("http2", "http"):
                continue
            port = int(p.get("port") or 0)
            proto = protocol.from_kube_port(str(p.get("name")), port, "TCP", str(p.get("appProtocol") or ""))
            scheme = {"HTTP2": "http", "HTTP": "http"}.get(proto, "")
            suffix = "" if scheme == "http" and port == 80 else f":{port}"
            self.w(f"Exposed on Ingress Gateway {scheme}://{_ingress_ip(s, pods)}{suffix}\n")


def _ingress_ip(s: Resource, pods: list[Resource]) -> str:
    """`getIngressIP`: the LoadBalancer IP, else the first pod's hostIP, else "unknown"."""
    lb = ((s.body.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if lb:
        return str(lb[0].get("ip") or "")
    host = (pods[0].body.get("status") or {}).get("hostIP") if pods else None
    return str(host) if host else "unknown"


def describe_service(inp: Inputs, name: str, namespace: str) -> str:
    """`svcDescribeCmd` for Service ``name`` in ``namespace``; raises LookupError if missing."""
    d = Describer(inp)
    svc = d.find("Service", namespace, name)
    if svc is None:
        raise LookupError(f'services "{name}" not found')
    sel = svc.spec.get("selector") or {}
    selected, ready = 0, []
    if sel:
        for pod in (r for r in inp.resources if r.kind == "Pod" and r.namespace == namespace
                    and _labels_match(sel, r.labels)):
            selected += 1
            status = pod.body.get("status") or {}
            if status.get("phase") != "Running":
                d.w(f"   Pod is not Running ({status.get('phase', '')})\n")
                continue
            cs = next((c for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
                       if c.get("name") == "istio-proxy"), None)
            if cs is None:  # `containerReady`
                d.w(f'Pod {kname(pod, d.ns)}: no container "istio-proxy" in pod\n')
                continue
            if not cs.get("ready"):
                d.w(f"WARNING: Pod {kname(pod, d.ns)} Container istio-proxy NOT READY\n")
                continue
            ready.append(pod)
    if not ready:
        if selected == 0:
            d.w(f'Service "{kname(svc, d.ns)}" has no pods.\n')
        else:
            d.w(f'Service "{kname(svc, d.ns)}" has no Istio pods.  ({selected} pods in service).\n'
                "Use `istioctl kube-inject` or redeploy with Istio automatic sidecar injection.\n")
        return "".join(d.out)
    labels = [dict(p.labels) for p in ready]
    d.describe_pod_services(ready[0], [svc], labels)
    d.ingress_info([svc], labels)
    return "".join(d.out)
