"""Compile options: istiod's feature flags that change generated config, as values.

Layer: L4. Imports: stdlib only.

Every flag is a field here with istiod's default (never a global), so tests can vary them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class CompileOptions:
    auto_send_unhealthy_endpoints: bool = True  # PILOT_AUTO_SEND_UNHEALTHY_ENDPOINTS
    send_unhealthy_endpoints: bool = False  # PILOT_SEND_UNHEALTHY_ENDPOINTS
    metadata_exchange: bool = True  # PILOT_ENABLE_METADATA_EXCHANGE
    disable_mx_alpn: bool = False  # PILOT_DISABLE_MX_ALPN
    telemetry_label: bool = True  # PILOT_ENABLE_TELEMETRY_LABEL
    endpoint_telemetry_label: bool = True  # PILOT_ENDPOINT_TELEMETRY_LABEL
    track_remaining_cb_metrics: bool = False  # not DISABLE_TRACK_REMAINING_CB_METRICS
    dns_cares_udp_max_queries: int = 100  # PILOT_DNS_CARES_UDP_MAX_QUERIES
    dns_jitter_nanos: int = 100_000_000  # PILOT_DNS_JITTER_DURATION
    eds_for_headless: bool = False  # PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES
    locality_weighted_lb_config: bool = False  # ENABLE_LOCALITY_WEIGHTED_LB_CONFIG
    enable_redis_filter: bool = False  # PILOT_ENABLE_REDIS_FILTER
    istio_version: str = "1.30.0"
