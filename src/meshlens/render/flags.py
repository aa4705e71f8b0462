"""Envoy's response flags: what each means, which layer it points at, and what to check.

Layer: L6. Imports: stdlib only.

The short names are those of ``%RESPONSE_FLAGS%`` in Envoy 1.40 access logs (Envoy's
``StreamInfo::ResponseFlagUtils``); the Istio layer and checks are meshlens's advice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Flag:
    code: str
    name: str
    meaning: str
    layer: str
    checks: tuple[str, ...]


_M = "meshlens"
FLAGS: dict[str, Flag] = {f.code: f for f in (
    Flag("UH", "NoHealthyUpstream", "No healthy upstream host in the chosen cluster (503).",
         "endpoint (EDS)",
         ("Is the EDS assignment empty? A subset whose labels select no pod gives an empty one.",
          f"{_M} proxy-config endpoint -f FILES PROXY --cluster CLUSTER",
          "Outlier detection may have ejected every host (maxEjectionPercent 100, minHealthPercent 0).",
          "REGISTRY_ONLY: TCP to an unknown destination goes to BlackHoleCluster (no endpoints).",
          "istioctl proxy-config endpoint POD --cluster CLUSTER")),
    Flag("UF", "UpstreamConnectionFailure", "The TCP or TLS connection to the upstream failed (503).",
         "cluster (transport socket) / server inbound",
         ("Client TLS versus server mTLS: DestinationRule tls ISTIO_MUTUAL toward a port with "
          "PeerAuthentication DISABLE or a pod without a sidecar fails the handshake.",
          "Is the app listening on the targetPort? (connection refused)",
          f"{_M} trace -f FILES PROXY URL", f"{_M} explain cluster CLUSTER -f FILES PROXY",
          "istioctl proxy-config cluster POD --fqdn HOST -o json (transport_socket)")),
    Flag("UO", "UpstreamOverflow", "A circuit breaker limit overflowed (503).", "cluster (circuit_breakers)",
         ("DestinationRule connectionPool: maxConnections, http1MaxPendingRequests, "
          "http2MaxRequests, maxRetries (0 means unlimited in istiod).",
          f"{_M} explain cluster CLUSTER -f FILES PROXY",
          "Envoy stats: upstream_rq_pending_overflow, upstream_cx_overflow")),
    Flag("NR", "NoRouteFound", "No route matched (404), or no filter chain matched a connection.",
         "route (RDS) / listener",
         ("VirtualService hosts and matches; a dotted short name (reviews.default) is not expanded.",
          "A VirtualService for a non-service host works on port 80 only.",
          "Server side: plaintext toward a STRICT PeerAuthentication matches no inbound chain.",
          f"{_M} trace -f FILES PROXY URL", "istioctl proxy-config route POD --name PORT")),
    Flag("NC", "NoClusterFound", "The route's cluster does not exist (503).", "route → cluster",
         ("A route to a subset no DestinationRule defines, to a host that resolves to nothing, or "
          "outside the Sidecar's egress scope.", f"{_M} analyze -f FILES",
          "istioctl proxy-config cluster POD --fqdn HOST")),
    Flag("URX", "UpstreamRetryLimitExceeded", "Retries were exhausted (HTTP) or the max connect "
         "attempts reached (TCP).", "route (retry_policy)",
         ("Usually with UF/UC/UH: fix the underlying failure.",
          "VirtualService retries; Istio's default is 2 retries on connect-failure,refused-stream,"
          "unavailable,cancelled,retriable-status-codes.")),
    Flag("UC", "UpstreamConnectionTermination", "The upstream closed the connection (503).",
         "cluster / server inbound",
         ("Plaintext toward a STRICT server: the server finds no filter chain and closes.",
          "Idle-timeout races: connectionPool.http.idleTimeout, maxRequestsPerConnection.")),
    Flag("UT", "UpstreamRequestTimeout", "The request timed out upstream (504).", "route (timeout)",
         ("VirtualService timeout / retries.perTryTimeout (Istio's default timeout is 0: none).",)),
    Flag("UR", "UpstreamRemoteReset", "The upstream reset the stream.", "upstream app",
         ("The app or its sidecar reset the stream; check the server's logs.",)),
    Flag("LR", "LocalReset", "Envoy reset the stream itself.", "listener / HCM",
         ("Codec or protocol errors, drains, overload; read %RESPONSE_CODE_DETAILS%.",)),
    Flag("DC", "DownstreamConnectionTermination", "The client closed the connection.", "client",
         ("The client's own timeout is shorter than the upstream latency.",)),
    Flag("DR", "DownstreamRemoteReset", "The client reset the stream.", "client", ("Client-side reset.",)),
    Flag("DI", "DelayInjected", "A fault-injection delay was applied.", "route (fault)",
         ("VirtualService fault.delay.",)),
    Flag("FI", "FaultInjected", "A fault-injection abort was applied.", "route (fault)",
         ("VirtualService fault.abort.",)),
    Flag("RL", "RateLimited", "Rate limited locally (429).", "HTTP filters", ("EnvoyFilter rate limits.",)),
    Flag("RLSE", "RateLimitServiceError", "The rate limit service failed.", "HTTP filters",
         ("Rate limit service availability.",)),
    Flag("UAEX", "UnauthorizedExternalService", "ext_authz denied the request.", "HTTP filters",
         ("CUSTOM AuthorizationPolicy and its provider.",)),
    Flag("IH", "InvalidEnvoyRequestHeaders", "Invalid x-envoy-* request headers (400).", "HCM",
         ("Strict header checks on x-envoy-* headers.",)),
    Flag("SI", "StreamIdleTimeout", "The stream idle timeout fired (408/504).", "HCM / route",
         ("stream_idle_timeout (Istio sets 0s: disabled) or route idle_timeout.",)),
    Flag("DPE", "DownstreamProtocolError", "The client spoke invalid HTTP.", "listener (codec)",
         ("Protocol sniffing: a non-HTTP client on a port Istio treats as HTTP.",)),
    Flag("UPE", "UpstreamProtocolError", "The upstream spoke invalid HTTP.", "cluster (protocol options)",
         ("Port name/appProtocol declares HTTP or HTTP/2 but the app speaks something else; "
          "h2UpgradePolicy UPGRADE toward an HTTP/1-only app.",)),
    Flag("UMSDR", "UpstreamMaxStreamDurationReached", "The upstream stream exceeded its max duration.",
         "route", ("max_stream_duration settings.",)),
    Flag("DT", "DurationTimeout", "A connection or stream hit its maximum duration.", "cluster / tcp_proxy",
         ("connectionPool.tcp.maxConnectionDuration.",)),
    Flag("LH", "FailedLocalHealthCheck", "The local health check failed.", "health checks", ("Health checks.",)),
    Flag("OM", "OverloadManagerTerminated", "The overload manager stopped the request.", "proxy",
         ("Proxy memory/CPU limits.",)),
    Flag("DF", "DnsResolutionFailed", "DNS resolution of the upstream failed.", "cluster (DNS)",
         ("ServiceEntry resolution DNS toward a name that does not resolve.",)),
    Flag("DO", "DropOverload", "Dropped by the cluster's drop_overload.", "endpoint", ("drop_overload.",)),
    Flag("UDO", "UnconditionalDropOverload", "Dropped unconditionally by drop_overload.", "endpoint",
         ("drop_overload 100%.",)),
    Flag("NFCF", "NoFilterConfigFound", "A filter's config (ECDS) was not found.", "listener (ECDS)",
         ("ECDS / WasmPlugin delivery.",)),
)}


def lookup(text: str) -> tuple[list[Flag], list[str]]:
    """The flags named by ``text`` (comma-separated codes, any case, or ``all``), and the unknown.

    Example:
        >>> [f.code for f in lookup("uh,NC")[0]], lookup("ZZ")[1]
        (['UH', 'NC'], ['ZZ'])
    """
    codes = [c.strip().upper() for c in text.split(",") if c.strip()]
    if codes == ["ALL"]:
        codes = list(FLAGS)
    return [FLAGS[c] for c in codes if c in FLAGS], [c for c in codes if c not in FLAGS]


def render_text(flags: list[Flag]) -> str:
    """``explain flag``'s text: meaning, layer, what to check."""
    out = []
    for f in flags:
        out.append(f"{f.code} ({f.name}): {f.meaning}\n  layer: {f.layer}\n  check:\n")
        out.extend(f"  - {c}\n" for c in f.checks)
    return "".join(out)
