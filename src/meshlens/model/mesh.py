"""MeshConfig with istiod's defaults (`pkg/config/mesh/mesh.go:DefaultMeshConfig`).

Layer: L3. Imports: source, durations, diagnostics, resources.meshconfig.

:meth:`MeshConfig.from_document` checks the user's MeshConfig as istiod reads it
(:func:`meshlens.resources.meshconfig.validate_mesh_config`): a MeshConfig with an error is not
applied (istiod keeps its defaults), and the diagnostics travel with the MeshConfig into
``Mesh.diagnostics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshlens.diagnostics import Diagnostic, Level
from meshlens.durations import parse_duration
from meshlens.resources.meshconfig import JSON_NAMES, validate_mesh_config
from meshlens.source import FieldPath, RawDocument

#: The defaults that change generated config (the rest of MeshConfig does not touch it here).
DEFAULTS: dict[str, Any] = {
    "connectTimeout": "10s",
    "dnsRefreshRate": "60s",
    "enableAutoMtls": True,
    "h2UpgradePolicy": "DO_NOT_UPGRADE",
    "localityLbSetting": {"enabled": True},
    "inboundTrafficPolicy": {"mode": "PASSTHROUGH"},
    "outboundTrafficPolicy": {"mode": "ALLOW_ANY"},
    "rootNamespace": "istio-system",
    "trustDomain": "cluster.local",
    "trustDomainAliases": [],
    "defaultDestinationRuleExportTo": ["*"],
    "defaultServiceExportTo": ["*"],
    "defaultVirtualServiceExportTo": ["*"],
    "accessLogFile": "",
    "accessLogEncoding": "TEXT",
    "accessLogFormat": "",
    "outboundClusterStatName": "",
    "inboundClusterStatName": "",
    "enableTracing": True,
    "defaultConfig": {},
}


@dataclass(frozen=True)
class MeshConfig:
    """The effective MeshConfig: user values over istiod's defaults, with the user's document."""

    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    doc: RawDocument | None = None
    diagnostics: tuple[Diagnostic, ...] = ()

    @classmethod
    def from_document(cls, doc: RawDocument | None) -> MeshConfig:
        """istiod's ``ApplyMeshConfigDefaults``: user fields over the defaults (either spelling
        of a field name), or the defaults alone when the MeshConfig has an error."""
        values = dict(DEFAULTS)
        if doc is None:
            return cls(values)
        found = tuple(validate_mesh_config(doc))
        if any(d.level == Level.ERROR for d in found):
            return cls(values, None, found)
        values.update({JSON_NAMES.get(k, k): v for k, v in doc.data.items() if v is not None})
        return cls(values, doc, found)

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def is_user_set(self, key: str) -> bool:
        return self.doc is not None and any(JSON_NAMES.get(k, k) == key for k in self.doc.data)

    def path(self, *parts: str | int) -> FieldPath:
        return tuple(parts)

    @property
    def root_namespace(self) -> str:
        return str(self.values.get("rootNamespace") or "istio-system")

    @property
    def trust_domain(self) -> str:
        return str(self.values.get("trustDomain") or "cluster.local")

    @property
    def connect_timeout_nanos(self) -> int:
        return parse_duration(self.values.get("connectTimeout")) or 10_000_000_000

    @property
    def auto_mtls(self) -> bool:
        return bool(self.values.get("enableAutoMtls", True))

    @property
    def outbound_mode(self) -> str:
        otp = self.values.get("outboundTrafficPolicy") or {}
        return str(otp.get("mode", "ALLOW_ANY")) if isinstance(otp, dict) else "ALLOW_ANY"

    @property
    def inbound_mode(self) -> str:
        itp = self.values.get("inboundTrafficPolicy") or {}
        return str(itp.get("mode", "PASSTHROUGH")) if isinstance(itp, dict) else "PASSTHROUGH"

    @property
    def default_traffic_policy(self) -> dict[str, Any] | None:
        v = self.values.get("defaultTrafficPolicy")
        return v if isinstance(v, dict) else None

    def export_to(self, key: str) -> list[str]:
        v = self.values.get(key)
        return [str(x) for x in v] if isinstance(v, list) else ["*"]
