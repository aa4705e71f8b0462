"""istiod feature flags that change the model (the registry), as values.

Layer: L3. Imports: stdlib only.

The flags that change generated config live in ``compiler.options.CompileOptions``; these are
the ones the service registry reads (``pilot/pkg/features``). Each field names its variable and
keeps istiod's default. The pipeline fills them from the istiod Deployment's env in the input or
from ``--pilot-env NAME=VALUE``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFeatures:
    persistent_session_label: str = "istio.io/persistent-session"  # PILOT_PERSISTENT_SESSION_LABEL
    persistent_session_header_label: str = "istio.io/persistent-session-header"  # PILOT_PERSISTENT_SESSION_HEADER_LABEL
    draining_label: str = "istio.io/draining"  # PILOT_DRAINING_LABEL
    dual_stack: bool = False  # ISTIO_DUAL_STACK
