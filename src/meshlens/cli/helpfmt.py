"""``--help`` without Python type tags: ``-f FILENAME``, ``--strict``, ``-o json|yaml``.

Layer: L8. Imports: typer.

Recent typer versions print each parameter's Python type in ``--help`` (``<str>``, ``<bool>``,
``<list[str]>``, ``<int range>``) and show a required argument as ``{proxy}`` in the usage line.
Those tags are typer's internals, not ours. :func:`plain_help` changes how typer labels a value,
once, for every command:

* a flag (``--strict``, ``--dump``) has no label;
* an option with an explicit ``metavar`` shows it;
* a choice shows its values, ``json|yaml``;
* any other option shows its name in capitals (``--filename`` → ``FILENAME``), as click does;
* an argument is named in capitals (``PROXY``, ``[NAME]`` when optional) and has no type label.

Typer versions without these hooks (before the type tags existed) are left as they are.
"""

from __future__ import annotations

from typing import Any

import typer.core as typer_core


def _value_label(param: Any, ctx: Any) -> str | None:
    if isinstance(param, _ARGUMENT):
        return None
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        return str(param.metavar)
    desc = getattr(param, "type_descriptor", None)
    if desc is not None and desc.is_choice:
        label = _ORIGINAL_DISPLAY_TYPE(param, ctx).strip("<>")
    else:
        label = (param.name or "value").rstrip("_").upper()
    return label + ("..." if param.nargs != 1 else "")


def _argument_name(param: Any) -> str:
    if param.metavar is not None:
        return str(param.metavar)
    return (param.name or "ARG").rstrip("_").upper()


def _argument_usage(param: Any) -> str:
    name = _argument_name(param)
    if not param.required:
        name = f"[{name}]"
    return name + ("..." if param.nargs != 1 else "")


_PARAM = getattr(typer_core, "_TyperParameter", None)
_ARGUMENT: Any = getattr(typer_core, "TyperArgument", None)
_OPTION = getattr(typer_core, "TyperOption", None)
_ORIGINAL_DISPLAY_TYPE = getattr(_PARAM, "display_type", None)


def plain_help() -> None:
    """Install the labels above into typer (idempotent; a no-op on typers without the hooks)."""
    if None in (_PARAM, _ARGUMENT, _OPTION, _ORIGINAL_DISPLAY_TYPE):
        return
    if not hasattr(_PARAM, "display_type_rich"):
        return
    _PARAM.display_type_rich = _value_label
    _OPTION.display_type_rich = _value_label
    if hasattr(_ARGUMENT, "_usage_display_name") and hasattr(_ARGUMENT, "display_name_raw"):
        _ARGUMENT._usage_display_name = _argument_usage
        _ARGUMENT.display_name_raw = property(_argument_name)
