"""MeshConfig: its schema, and the check istiod makes when it reads one.

Layer: L2. Imports: source, diagnostics (and resources.schema of this package).

istiod reads the mesh config (``--meshConfig`` file, or the ``istio`` ConfigMap's ``mesh`` key)
with ``mesh.ApplyMeshConfig`` (pkg/config/mesh/mesh.go): YAML → JSON → ``jsonpb.Unmarshal``
into ``meshconfig.MeshConfig``, retried with ``AllowUnknownFields`` (so an unknown field is
ignored), then ``agent.ValidateMeshConfig``. A wrong type or an unknown enum value fails the
unmarshal, and the mesh watcher (``meshwatcher.NewCollection``) then logs "invalid mesh config,
using last known state" and keeps the defaults. meshlens does the same: each problem is a
diagnostic with its line (ML0103 wrong type, ML0104 enum, ML0106 value, ML0502 unknown field),
and a MeshConfig with an error is not applied (ML0501).

:data:`MESH_CONFIG` follows ``mesh/v1alpha1/config.proto`` (istio/api): every top-level field,
with enums and the nested messages meshlens reads typed; messages meshlens does not model
(``defaultConfig``, ``ca``, ``extensionProviders``, ...) are checked to be objects only.
Durations use Go's syntax, as istiod's jsonpb reads them (``time.ParseDuration``);
``connectTimeout`` must also be at least 1ms (``agent.ValidateConnectTimeout``) and
``proxyListenPort`` a port (``agent.ValidatePort``). jsonpb also accepts the proto (snake_case)
spelling of a field name, so both spellings are known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshlens.diagnostics import Diagnostic, Level, report
from meshlens.resources.schema import Bool, Int, List, Map, Node, Obj, Open, Str, check
from meshlens.resources.schema.cel import Rule
from meshlens.resources.schema.common import CONNECTION_POOL, DURATION, STR, STRS
from meshlens.resources.schema.destination_rule import CLIENT_TLS, LOAD_BALANCER, OUTLIER_DETECTION
from meshlens.resources.schema.goduration import parse_go_duration
from meshlens.resources.schema.virtual_service import HTTP_ROUTE
from meshlens.resources.schema.walk import render_field
from meshlens.source import RawDocument, ResourceRef, SourceSpan

__all__ = ["MESH_CONFIG", "REF", "validate_mesh_config"]

#: The resource name diagnostics about a MeshConfig carry.
REF = ResourceRef("MeshConfig", "", "mesh")

GO_DURATION = Rule(
    "time.ParseDuration(self)",  # not a CRD rule: how istiod's jsonpb reads a Duration
    "must be a duration such as 10s, 500ms or 1m30s",
    lambda v: parse_go_duration(v) is not None,
)
_DUR, _BOOL, _OPEN = Str(rules=(GO_DURATION,)), Bool(nullable=True), Open(nullable=True)
_PORT = Int(minimum=0, maximum=65535)
_OBJECTS = List(_OPEN)


def _enum(*values: str) -> Str:
    return Str(enum=values)


_TLS_CONFIG = Obj({
    "minProtocolVersion": _enum("TLS_AUTO", "TLSV1_2", "TLSV1_3"), "ecdhCurves": STRS,
    "cipherSuites": STRS,
})  # fmt: skip

_FIELDS: dict[str, Node] = {
    "proxyListenPort": Int(minimum=1, maximum=65535),  # agent.ValidatePort in ValidateMeshConfig
    "proxyInboundListenPort": _PORT, "proxyHttpPort": _PORT,
    "connectTimeout": DURATION, "hboneIdleTimeout": _DUR, "protocolDetectionTimeout": _DUR,
    "tcpKeepalive": Obj({"interval": _DUR, "probes": Int(minimum=0), "time": _DUR}),
    "ingressClass": STR, "ingressService": STR,
    "ingressControllerMode": _enum("UNSPECIFIED", "OFF", "DEFAULT", "STRICT"),
    "ingressSelector": STR, "enableTracing": _BOOL, "accessLogFile": STR,
    "accessLogFormat": STR, "accessLogEncoding": _enum("TEXT", "JSON"),
    "enableEnvoyAccessLogService": _BOOL, "disableEnvoyListenerLog": _BOOL,
    "defaultConfig": _OPEN,
    "outboundTrafficPolicy": Obj({
        "mode": _enum("REGISTRY_ONLY", "ALLOW_ANY", "ALLOW_ANY_DYNAMIC_DNS"), "tls": CLIENT_TLS}),
    "inboundTrafficPolicy": Obj({"mode": _enum("PASSTHROUGH", "LOCALHOST")}),
    "configSources": _OBJECTS, "enableAutoMtls": _BOOL, "trustDomain": STR,
    "trustDomainAliases": STRS, "caCertificates": _OBJECTS, "defaultServiceExportTo": STRS,
    "defaultVirtualServiceExportTo": STRS, "defaultDestinationRuleExportTo": STRS,
    "rootNamespace": STR,
    "localityLbSetting": LOAD_BALANCER.fields["localityLbSetting"],
    "zoneAwareLbSetting": LOAD_BALANCER.fields["zoneAwareLbSetting"],
    "dnsRefreshRate": _DUR, "h2UpgradePolicy": _enum("DO_NOT_UPGRADE", "UPGRADE"),
    "inboundClusterStatName": STR, "outboundClusterStatName": STR, "certificates": _OBJECTS,
    "serviceSettings": _OBJECTS, "serviceScopeConfigs": _OBJECTS, "enablePrometheusMerge": _BOOL,
    "verifyCertificateAtClient": _BOOL, "ca": _OPEN, "extensionProviders": _OBJECTS,
    "defaultProviders": _OPEN, "discoverySelectors": _OBJECTS,
    "pathNormalization": Obj({"normalization": _enum(
        "DEFAULT", "NONE", "BASE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES")}),
    "defaultHttpRetryPolicy": HTTP_ROUTE.fields["retries"],
    "meshMTLS": _TLS_CONFIG, "tlsDefaults": _TLS_CONFIG,
    "defaultTrafficPolicy": Obj({"connectionPool": CONNECTION_POOL,
                                 "outlierDetection": OUTLIER_DETECTION}),
    "serviceEntryVisibility": _OPEN,
}  # fmt: skip


def proto_name(json_name: str) -> str:
    """The proto (snake_case) spelling of a field, which jsonpb also accepts.

    Example:
        >>> proto_name("outboundTrafficPolicy"), proto_name("meshMTLS")
        ('outbound_traffic_policy', 'mesh_mTLS')
    """
    if json_name == "meshMTLS":
        return "mesh_mTLS"
    return re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), json_name)


#: The MeshConfig schema (both spellings of each top-level field).
MESH_CONFIG = Obj({**_FIELDS, **{proto_name(k): v for k, v in _FIELDS.items()}})
#: proto spelling → JSON spelling, for the top-level fields.
JSON_NAMES: Mapping[str, str] = {proto_name(k): k for k in _FIELDS}


def validate_mesh_config(
    mesh: RawDocument | Mapping[str, Any], source: SourceSpan | None = None
) -> list[Diagnostic]:
    """Check a MeshConfig as istiod reads it; the diagnostics carry file:line:col.

    Args:
        mesh: the MeshConfig as a RawDocument (positions for every field: the ``--mesh-config``
            file, or the ``istio`` ConfigMap's ``mesh`` key as :func:`meshlens.loader.
            load_mesh_config` reads it), or a plain mapping.
        source: where a plain mapping came from (every diagnostic points there).

    Returns:
        Errors (ML0103/ML0104/ML0106/ML0107) and warnings (ML0502 unknown field), then ML0501
        when there is an error: istiod would not apply this MeshConfig.

    Example:
        >>> [d.format() for d in validate_mesh_config(
        ...     {"accessLogFile": [1, 2]}, SourceSpan("mesh.yaml", 1, 1))][0]
        'mesh.yaml:1:1: error: accessLogFile: expected string, got array [ML0103] (MeshConfig mesh)'
    """
    doc = mesh if isinstance(mesh, RawDocument) else RawDocument(
        dict(mesh) if isinstance(mesh, Mapping) else mesh,
        source or SourceSpan("<mesh config>", 1, 1))
    out: list[Diagnostic] = []
    for p in check(MESH_CONFIG, doc.data, ()):
        span = doc.locate(p.path)
        if p.code == "ML0102":
            out.append(report("ML0502", span=span, resource=REF, path=p.path,
                              field=render_field(p.path)))
        else:
            message = p.message if p.path else "MeshConfig" + p.message
            out.append(Diagnostic(p.code, span, message, REF, p.path))
    if any(d.level == Level.ERROR for d in out):
        out.append(report("ML0501", span=doc.span, resource=REF, path=(), source=doc.span.path))
    return out
