"""meshlens: compile Kubernetes + Istio manifests into the Envoy config istiod would push to one
sidecar, show it as istioctl does, and explain where every field came from.

The facade re-exports a small public API. It does not import the lab or the CLI.
"""

from meshlens.errors import LoadError, MeshlensError, UsageError
from meshlens.diagnostics import Diagnostic

__all__ = ["Diagnostic", "LoadError", "MeshlensError", "UsageError"]
__version__ = "0.1.0"
