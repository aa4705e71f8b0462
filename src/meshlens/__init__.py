"""meshlens: compile Kubernetes + Istio manifests into the Envoy config istiod would push to one
sidecar, show it as istioctl does, and explain where every field came from.

The facade re-exports a small public API. It does not import the lab or the CLI.
"""

from typing import Any

__all__ = ["Diagnostic", "LoadError", "MeshlensError", "UsageError"]
__version__ = "0.1.0"

#: Where each public name lives. Resolved on first use (PEP 562), so that ``meshlens --help``
#: (which imports this package before anything else) does not pay for the diagnostics catalogue.
_PUBLIC = {"Diagnostic": "meshlens.diagnostics", "LoadError": "meshlens.errors",
           "MeshlensError": "meshlens.errors", "UsageError": "meshlens.errors"}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'meshlens' has no attribute {name!r}")
