"""The scenario file's schema, checked with line numbers before anything runs (issue 12 item 5).

Layer: L7 (lab). Imports: loader (limits, positions), source, errors.

A scenario is read like a manifest: :func:`meshlens.loader.load_text` with the loader's limits
(file size, nesting depth, scalar size, alias expansion), so an alias bomb or a deep document is
rejected with a line. Then every key is checked against :data:`SCHEMA`: unknown keys, wrong
types, missing required keys and bad values are all reported at once, each as
``file:line:col: error: message [CODE]`` (ML0101 missing, ML0102 unknown, ML0103 wrong type,
ML0106 invalid value), and the scenario does not run.

Paths (``manifests``, ``mesh_config``, ``apply.manifests``) must be strings (``manifests`` a
list of them) and are resolved against the scenario file's folder when relative: a string where
a list is expected (``manifests: /abs/app.yaml``) is a type error, not a walk of ``/``.

The schema is a small grammar of Python values: a ``dict`` is a mapping with exactly those keys
(a key ending in ``!`` is required), ``[x]`` a list of ``x``, a ``tuple`` a choice of
alternatives, a :class:`Map` a mapping with free keys, and the leaves are types or checks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshlens.errors import LoadError, UsageError
from meshlens.source import FieldPath, RawDocument, SourceSpan

MAX_SLEEP = 30.0
EXPR_PATTERN = re.compile(r"^\s*(>=|<=|==|!=|>|<)?\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


class ScenarioError(UsageError):
    """A scenario file that does not match the schema; ``errors`` holds one line each."""

    def __init__(self, errors: list[LoadError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Map:
    """A mapping whose keys are free (checked by ``key``) and whose values are ``value``."""

    value: Any
    key: Any = str


@dataclass(frozen=True, slots=True)
class Check:
    """A leaf: ``ok(value)`` says whether the value is good; ``want`` names what is expected."""

    want: str
    ok: Callable[[Any], bool]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_between(lo: int, hi: int) -> Check:
    return Check(f"an integer from {lo} to {hi}",
                 lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi)


def _number_between(lo: float, hi: float) -> Check:
    return Check(f"a number from {lo:g} to {hi:g}", lambda v: _number(v) and lo <= v <= hi)


PATH = Check("a file or folder path (a string)", lambda v: isinstance(v, str) and v.strip() != "")
TEXT = Check("a string", lambda v: isinstance(v, str))
SCALAR = Check("a string or number", lambda v: isinstance(v, (str, int, float))
               and not isinstance(v, bool))
BOOL = Check("true or false", lambda v: isinstance(v, bool))
EXPR = Check("an expectation such as '>=0.9' or '==0'",
             lambda v: (isinstance(v, str) and EXPR_PATTERN.match(v) is not None) or _number(v))
STATUS = _int_between(100, 599)
SECONDS = _number_between(0, 600)

RESPOND = {"status": STATUS, "latency_ms": (_number_between(0, 600_000),
                                            [_number_between(0, 600_000)]),
           "error_rate": _number_between(0, 1), "error_status": STATUS, "reset": BOOL,
           "hang": BOOL, "down": BOOL}
WORKLOAD = {"selector!": Map(SCALAR), "namespace": TEXT, "respond": RESPOND, "sidecar": BOOL,
            "replace": BOOL}
SEND = {"url!": TEXT, "headers": (Map(SCALAR), [TEXT]), "requests": _int_between(1, 1_000_000),
        "concurrency": _int_between(1, 1000), "duration": SECONDS, "timeout": SECONDS}
EXPECT = {"flags": Map(EXPR), "status": Map(EXPR, SCALAR), "clusters": Map(EXPR),
          "endpoints": Map(EXPR), "pods": Map(EXPR), "stats": Map(Map(EXPR)), "nacks": EXPR}
APPLY = {"manifests": [PATH], "inline": TEXT}
STEP = {"name": SCALAR, "send": SEND, "expect": EXPECT, "set": WORKLOAD,
        "sleep": _number_between(0, MAX_SLEEP), "apply": APPLY}
CLAIM = {"id": SCALAR, "text": TEXT, "seed": TEXT, "claimed": TEXT, "part": SCALAR,
         "holds": BOOL}
SCHEMA = {"title": SCALAR, "name": SCALAR, "description": TEXT, "claim": CLAIM,
          "manifests": [PATH], "inline": TEXT, "mesh_config": PATH, "proxy!": TEXT,
          "sidecars": Check("auto or none", lambda v: v in ("auto", "none")),
          "max_sidecars": _int_between(0, 64), "workloads": [WORKLOAD], "steps!": [STEP]}
_STEP_KINDS = ("send", "set", "sleep", "apply")


def _type_name(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "nothing (null)"}.get(
        type(v), type(v).__name__)


def _want(spec: Any) -> str:
    if isinstance(spec, dict):
        return "a mapping"
    if isinstance(spec, list):
        return "a list"
    if isinstance(spec, Map):
        return "a mapping"
    if isinstance(spec, tuple):
        return " or ".join(_want(s) for s in spec)
    if isinstance(spec, Check):
        return spec.want
    return "a string"


class _Validator:
    def __init__(self, doc: RawDocument) -> None:
        self.doc = doc
        self.errors: list[LoadError] = []

    def error(self, path: FieldPath, message: str, code: str) -> None:
        span: SourceSpan = self.doc.locate(path)
        where = ".".join(str(p) for p in path) or "scenario"
        self.errors.append(LoadError(f"{where}: {message}", span, code))

    def fits(self, value: Any, spec: Any) -> bool:
        """Shallow test, to pick among alternatives."""
        if isinstance(spec, (dict, Map)):
            return isinstance(value, dict)
        if isinstance(spec, list):
            return isinstance(value, list)
        if isinstance(spec, tuple):
            return any(self.fits(value, s) for s in spec)
        return bool(spec.ok(value)) if isinstance(spec, Check) else isinstance(value, str)

    def check(self, value: Any, spec: Any, path: FieldPath) -> None:
        if isinstance(spec, tuple):
            for alt in spec:
                if self.fits(value, alt):
                    self.check(value, alt, path)
                    return
            self.error(path, f"expected {_want(spec)}, got {_type_name(value)}", "ML0103")
        elif isinstance(spec, dict):
            self.mapping(value, spec, path)
        elif isinstance(spec, list):
            if not isinstance(value, list):
                self.error(path, f"expected a list, got {_type_name(value)}", "ML0103")
                return
            for i, item in enumerate(value):
                self.check(item, spec[0], (*path, i))
        elif isinstance(spec, Map):
            if not isinstance(value, dict):
                self.error(path, f"expected a mapping, got {_type_name(value)}", "ML0103")
                return
            for k, v in value.items():
                if not self.fits(k, spec.key):
                    self.error((*path, k), f"key {k!r}: expected {_want(spec.key)}", "ML0103")
                self.check(v, spec.value, (*path, k))
        elif isinstance(spec, Check) and not spec.ok(value):
            got = _type_name(value) if not isinstance(value, (str, int, float)) or \
                isinstance(value, bool) else repr(value)
            self.error(path, f"expected {spec.want}, got {got}", "ML0103" if not isinstance(
                value, (str, int, float)) or isinstance(value, bool) else "ML0106")

    def mapping(self, value: Any, spec: dict[str, Any], path: FieldPath) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_type_name(value)}", "ML0103")
            return
        fields = {k.rstrip("!"): v for k, v in spec.items()}
        for key in spec:
            if key.endswith("!") and key[:-1] not in value:
                self.error(path, f"missing required key {key[:-1]!r}", "ML0101")
        for key, v in value.items():
            if key not in fields:
                known = ", ".join(sorted(fields))
                self.error((*path, key), f"unknown key {key!r} (known keys: {known})", "ML0102")
                continue
            self.check(v, fields[key], (*path, key))


def validate(doc: RawDocument) -> list[LoadError]:
    """Every schema violation of a scenario document, with positions."""
    v = _Validator(doc)
    v.mapping(doc.data, SCHEMA, ())
    data = doc.data
    if isinstance(data, dict) and not data.get("manifests") and not data.get("inline"):
        v.error((), "give the mesh with 'manifests' (a list of paths) or 'inline' (YAML text)",
                "ML0101")
    steps = data.get("steps") if isinstance(data, dict) else None
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        kinds = [k for k in _STEP_KINDS if k in step]
        if len(kinds) != 1:
            v.error(("steps", i), f"a step is exactly one of {', '.join(_STEP_KINDS)}"
                    + (f" (this one has {', '.join(kinds)})" if kinds else ""), "ML0106")
        elif "expect" in step and kinds[0] not in ("send", "apply"):
            v.error(("steps", i, "expect"), f"a {kinds[0]} step has nothing to expect", "ML0106")
    return v.errors
