"""PeerAuthentication: the effective mTLS mode at mesh, namespace, workload and port level.

Layer: L3. Imports: resources.

`pilot/pkg/security/authn/policy_applier.go` / `model/authentication.go`: the most specific
policy wins (workload > namespace > mesh), the oldest one at each level, and ``UNSET`` (or a
missing mode) inherits from the level above. Port-level entries (`portLevelMtls`, keyed by the
workload's port) apply only with a workload selector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meshlens.resources import Resource
from meshlens.source import FieldPath

STRICT, PERMISSIVE, DISABLE, UNSET = "STRICT", "PERMISSIVE", "DISABLE", "UNSET"


@dataclass(frozen=True, slots=True)
class ModeSource:
    mode: str
    resource: Resource | None  # None: istiod's default (PERMISSIVE)
    level: str  # "mesh" | "namespace" | "workload" | "port" | "default"
    #: where in ``resource`` the mode was read (a port-level UNSET entry points at its entry)
    path: FieldPath = ("spec", "mtls", "mode")


@dataclass(frozen=True, slots=True)
class ComposedMtls:
    """`MergedPeerAuthentication`: the workload's mode and its ``portLevelMtls`` overrides.

    ``per_port`` is keyed by workload (target/container) port; an entry whose mode is UNSET
    carries the workload mode, as istiod fills it in.
    """

    mode: ModeSource
    per_port: dict[int, ModeSource] = field(default_factory=dict)

    def for_port(self, port: int) -> ModeSource:
        """`GetMutualTLSModeForPort`: the port-level mode if the port has one, else the mode."""
        return self.per_port.get(port, self.mode)


def _mode(res: Resource) -> str:
    mtls = res.spec.get("mtls")
    mode = mtls.get("mode") if isinstance(mtls, dict) else None
    return str(mode) if mode else UNSET


class PeerAuthentications:
    def __init__(self, policies: list[Resource], root_namespace: str) -> None:
        self.root = root_namespace
        self.policies = sorted(policies, key=lambda r: (r.creation, r.doc.index))

    def _first(self, ns: str, *, selector: bool, labels: dict[str, str] | None = None) -> Resource | None:
        for p in self.policies:
            if p.namespace != ns:
                continue
            sel = p.spec.get("selector")
            match_labels = sel.get("matchLabels") if isinstance(sel, dict) else None
            if not selector and not match_labels:
                return p
            if selector and match_labels and labels is not None and all(
                    labels.get(k) == v for k, v in match_labels.items()):
                return p
        return None

    def namespace_mode(self, namespace: str) -> ModeSource:
        """Namespace-level mode, falling back to mesh-level (what auto-mTLS inference uses)."""
        mesh = self._first(self.root, selector=False)
        out = ModeSource(PERMISSIVE, None, "default")
        if mesh is not None and _mode(mesh) != UNSET:
            out = ModeSource(_mode(mesh), mesh, "mesh")
        ns = self._first(namespace, selector=False) if namespace != self.root else None
        if ns is not None and _mode(ns) != UNSET:
            out = ModeSource(_mode(ns), ns, "namespace")
        return out

    def workload_mode(self, namespace: str, labels: dict[str, str], port: int | None) -> ModeSource:
        """Effective mode for a workload's port (workload and port level honoured)."""
        out = self.namespace_mode(namespace)
        wl = self._first(namespace, selector=True, labels=labels)
        if wl is None:
            return out
        if _mode(wl) != UNSET:
            out = ModeSource(_mode(wl), wl, "workload")
        plm = wl.spec.get("portLevelMtls")
        if port is not None and isinstance(plm, dict):
            entry = plm.get(port, plm.get(str(port)))
            mode = entry.get("mode") if isinstance(entry, dict) else None
            if mode and mode != UNSET:
                out = ModeSource(str(mode), wl, "port")
        return out

    def compose(self, namespace: str, labels: dict[str, str]) -> ComposedMtls:
        """`ComposePeerAuthentication` for a workload: mesh, namespace, then workload level, and
        the workload policy's ``portLevelMtls``. A selector policy in the root namespace is not a
        workload policy (istiod ignores it)."""
        base = self.namespace_mode(namespace)
        wl = None
        if namespace != self.root:
            wl = self._first(namespace, selector=True, labels=labels)
        if wl is None:
            return ComposedMtls(base)
        mode = ModeSource(_mode(wl), wl, "workload") if _mode(wl) != UNSET else base
        per_port: dict[int, ModeSource] = {}
        plm = wl.spec.get("portLevelMtls")
        if isinstance(plm, dict):
            for key, entry in plm.items():
                try:
                    port = int(key)
                except (TypeError, ValueError):
                    continue
                value = entry.get("mode") if isinstance(entry, dict) else None
                path: FieldPath = ("spec", "portLevelMtls", key, "mode")
                if value and value != UNSET:
                    per_port[port] = ModeSource(str(value), wl, "port", path)
                else:  # UNSET inherits the workload-level mode
                    per_port[port] = ModeSource(mode.mode, wl, "port",
                                                ("spec", "portLevelMtls", key))
        return ComposedMtls(mode, per_port)
