"""CUSTOM action: MeshConfig ``extensionProviders`` → ext_authz filters.

Layer: L4. Imports: compiler.authz.matchers, xDS protos.

Mirrors ``pilot/pkg/security/authz/builder/extauthz.go`` (`processExtensionProvider`,
`buildExtAuthzHTTP`, `buildExtAuthzGRPC`, `generateHTTPConfig`, `generateGRPCConfig`,
`generateFilterMatcherForProvider`). A provider with errors (unknown service, bad port, bad
``statusOnError``, ...) is kept with its error: the policies that name it then compile to a DENY
RBAC filter (`getBadCustomDenyRules`), as istiod does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from envoy.config.core.v3 import config_source_pb2, grpc_service_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2 as http_pb2
from envoy.extensions.filters.network.ext_authz.v3 import ext_authz_pb2 as tcp_pb2
from envoy.type.matcher.v3 import metadata_pb2, string_pb2
from envoy.type.v3 import http_status_pb2

from meshlens import durations

EXT_AUTHZ_PREFIX = "istio-ext-authz"
BAD_CUSTOM_SUFFIX = "-deny-due-to-bad-CUSTOM-action"
SHADOW_PREFIX = "istio_ext_authz_"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(slots=True)
class ExtAuthz:
    """`builtExtAuthz`: the HTTP and (gRPC providers only) TCP filter configs, or an error."""

    http: http_pb2.ExtAuthz | None = None
    tcp: tcp_pb2.ExtAuthz | None = None
    errors: list[str] = field(default_factory=list)
    index: int = 0  # position in extensionProviders (for provenance)


def filter_matcher(filter_name: str, provider: str) -> metadata_pb2.MetadataMatcher:
    """`generateFilterMatcherForProvider`: run ext_authz only when a CUSTOM rule matched."""
    out = metadata_pb2.MetadataMatcher(filter=filter_name)
    out.path.add(key=SHADOW_PREFIX + "shadow_effective_policy_id")
    out.value.string_match.prefix = f"{EXT_AUTHZ_PREFIX}-{provider}"
    return out


def _headers(values: Any) -> string_pb2.ListStringMatcher | None:
    """`generateHeaders`."""
    if not isinstance(values, list) or not values:
        return None
    out = string_pb2.ListStringMatcher()
    for h in map(str, values):
        p = out.patterns.add(ignore_case=True)
        if h.startswith("*"):
            p.suffix = h[1:]
        elif h.endswith("*"):
            p.prefix = h[:-1]
        else:
            p.exact = h
    return out


def _timeout(target: Any, value: Any) -> None:
    """`timeoutOrDefault`: 600s."""
    nanos = durations.parse_duration(value) if isinstance(value, str) else None
    target.seconds, target.nanos = durations.split(nanos if nanos is not None else 600 * 10**9)


def _status(value: Any, errs: list[str]) -> http_status_pb2.HttpStatus | None:
    """`parseStatusOnError`."""
    if value in (None, ""):
        return None
    text = str(value)
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        errs.append(f'invalid statusOnError "{text}"')
        return None
    code = int(text)
    if code not in http_status_pb2.StatusCode.values():
        errs.append(f"unsupported statusOnError {text}")
        return None
    return http_status_pb2.HttpStatus(code=code)  # type: ignore[arg-type]


def lookup_cluster(registry: Any, service: str, port: int) -> tuple[str, str, str]:
    """`model.LookupCluster`: ``[NAMESPACE/]HOSTNAME`` → (hostname, outbound cluster, error)."""
    if not service:
        return "", "", "service must not be empty"
    parts = service.split("/")
    if len(parts) == 2:
        svc = registry.service(parts[1], parts[0])
        if svc is not None:
            return svc.hostname, f"outbound|{port}||{svc.hostname}", ""
    else:
        found = {s.namespace for s in registry.by_host.get(service, [])}
        if len(found) == 1:
            return service, f"outbound|{port}||{service}", ""
        if len(found) > 1:
            return "", "", (f"found {service} in multiple namespaces {sorted(found)}, specify the "
                            "namespace explicitly in the format of <Namespace>/<Hostname>")
    return "", "", f"could not find service {service} in Istio service registry"


def _body(cfg: Any) -> http_pb2.BufferSettings | None:
    """`withBodyRequest`."""
    if not isinstance(cfg, dict):
        return None
    return http_pb2.BufferSettings(max_request_bytes=int(cfg.get("maxRequestBytes") or 0),
                                   allow_partial_message=bool(cfg.get("allowPartialMessage")),
                                   pack_as_bytes=bool(cfg.get("packAsBytes")))


def _target(cfg: dict[str, Any], registry: Any,
            errs: list[str]) -> tuple[str, str, http_status_pb2.HttpStatus | None]:
    """`parsePort`, `model.LookupCluster` and `parseStatusOnError`, shared by both kinds."""
    port = int(cfg.get("port") or 0)
    if not 1 <= port <= 65535:
        errs.append(f"port must be in the range [1, 65535], found: {port}")
    hostname, cluster, err = lookup_cluster(registry, str(cfg.get("service") or ""), port)
    if err:
        errs.append(err)
    return hostname, cluster, _status(cfg.get("statusOnError"), errs)


def _http_provider(cfg: dict[str, Any], registry: Any, errs: list[str]) -> ExtAuthz:
    """`buildExtAuthzHTTP` + `generateHTTPConfig`."""
    hostname, cluster, status = _target(cfg, registry, errs)
    prefix = str(cfg.get("pathPrefix") or "")
    if prefix and not prefix.startswith("/"):
        errs.append(f'pathPrefix must begin with `/`, found: "{prefix}"')
    for key in ("includeRequestHeadersInCheck", "includeHeadersInCheck", "headersToDownstreamOnDeny",
                "headersToDownstreamOnAllow", "headersToUpstreamOnAllow"):
        if "*" in (cfg.get(key) or []):
            errs.append('a single wildcard ("*") is not supported, change it to either prefix or '
                        f"suffix match: {key[0].upper() + key[1:]}")
    if errs:
        return ExtAuthz()
    f = http_pb2.ExtAuthz(failure_mode_allow=bool(cfg.get("failOpen")),
                          transport_api_version=config_source_pb2.V3)
    if status is not None:
        f.status_on_error.CopyFrom(status)
    svc = f.http_service
    svc.path_prefix = prefix
    _timeout(svc.server_uri.timeout, cfg.get("timeout"))
    svc.server_uri.uri = f"http://{hostname}"
    svc.server_uri.cluster = cluster
    allowed = _headers(cfg.get("includeRequestHeadersInCheck")) or _headers(
        cfg.get("includeHeadersInCheck"))
    extra = cfg.get("includeAdditionalHeadersInCheck")
    if isinstance(extra, dict) and extra:
        for k in sorted(extra):
            svc.authorization_request.headers_to_add.add(key=str(k), value=str(extra[k]))
    resp = {k: _headers(cfg.get(k)) for k in ("headersToUpstreamOnAllow", "headersToDownstreamOnDeny",
                                               "headersToDownstreamOnAllow")}
    if any(v is not None for v in resp.values()):
        ar = svc.authorization_response
        ar.SetInParent()
        for field_name, key in (("allowed_upstream_headers", "headersToUpstreamOnAllow"),
                                ("allowed_client_headers", "headersToDownstreamOnDeny"),
                                ("allowed_client_headers_on_success", "headersToDownstreamOnAllow")):
            if resp[key] is not None:
                getattr(ar, field_name).CopyFrom(resp[key])
    body = _body(cfg.get("includeRequestBodyInCheck"))
    if body is not None:
        f.with_request_body.CopyFrom(body)
    if allowed is not None:
        f.allowed_headers.CopyFrom(allowed)
    return ExtAuthz(http=f)


def _grpc_provider(cfg: dict[str, Any], registry: Any, errs: list[str]) -> ExtAuthz:
    """`buildExtAuthzGRPC` + `generateGRPCConfig`."""
    hostname, cluster, status = _target(cfg, registry, errs)
    if errs:
        return ExtAuthz()
    grpc = grpc_service_pb2.GrpcService()
    grpc.envoy_grpc.cluster_name = cluster
    grpc.envoy_grpc.authority = hostname
    _timeout(grpc.timeout, cfg.get("timeout"))
    h = http_pb2.ExtAuthz(failure_mode_allow=bool(cfg.get("failOpen")),
                          transport_api_version=config_source_pb2.V3)
    if status is not None:
        h.status_on_error.CopyFrom(status)
    h.grpc_service.CopyFrom(grpc)
    body = _body(cfg.get("includeRequestBodyInCheck"))
    if body is not None:
        h.with_request_body.CopyFrom(body)
    t = tcp_pb2.ExtAuthz(stat_prefix="tcp.", failure_mode_allow=bool(cfg.get("failOpen")),
                         transport_api_version=config_source_pb2.V3)
    t.grpc_service.CopyFrom(grpc)
    return ExtAuthz(http=h, tcp=t)


def process_providers(mesh_config: Any, registry: Any) -> dict[str, ExtAuthz]:
    """`processExtensionProvider`: every ext_authz provider of the mesh config, by name."""
    out: dict[str, ExtAuthz] = {}
    providers = mesh_config.get("extensionProviders")
    for i, cfg in enumerate(providers if isinstance(providers, list) else []):
        if not isinstance(cfg, dict):
            continue
        errs: list[str] = []
        name = str(cfg.get("name") or "")
        if not name:
            errs.append(f"extension provider name must not be empty, found empty at index: {i}")
        elif name in out:
            errs.append(f"extension provider name must be unique, found duplicate: {name}")
        if name and (len(name) > 63 or not _NAME.fullmatch(name)):
            errs.append(f'invalid provider name "{name}"')
        if isinstance(cfg.get("envoyExtAuthzHttp"), dict):
            built = _http_provider(cfg["envoyExtAuthzHttp"], registry, errs)
        elif isinstance(cfg.get("envoyExtAuthzGrpc"), dict):
            built = _grpc_provider(cfg["envoyExtAuthzGrpc"], registry, errs)
        else:
            continue
        built.errors, built.index = errs, i
        out[name] = built
    return out
