"""Security kinds: PeerAuthentication (``ValidatePeerAuthentication``,
pkg/config/validation/validation.go). AuthorizationPolicy and RequestAuthentication belong here.

Layer: L2 (package meshlens.resources.webhook). Imports: source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshlens.resources.webhook.core import Collector, as_obj
from meshlens.resources.webhook.fields import validate_workload_selector
from meshlens.source import FieldPath


def validate_peer_authentication(
    v: Collector, spec: dict[str, Any], labels: Mapping[str, str]
) -> None:
    """ValidatePeerAuthentication: port-level mTLS needs a selector and valid port keys."""
    sp: FieldPath = ("spec",)
    selector = as_obj(spec.get("selector"))
    empty_selector = selector is None or not as_obj(selector.get("matchLabels"))
    port_level = spec.get("portLevelMtls")
    if empty_selector and as_obj(port_level):
        v.err(
            sp + ("portLevelMtls",),
            "mesh/namespace peer authentication cannot have port level mTLS",
        )
    if port_level is not None and not as_obj(port_level):
        v.err(
            sp + ("portLevelMtls",), "port level mTLS, if defined, must have at least one element"
        )
    for key in as_obj(port_level) or {}:
        port = int(key) if re.fullmatch(r"[0-9]{1,9}", str(key)) else 0
        if port <= 0 or port > 65535:
            v.err(sp + ("portLevelMtls", key), "port must be in range 1..65535")
    validate_workload_selector(v, sp + ("selector",), spec.get("selector"))
