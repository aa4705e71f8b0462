"""Each module imports only from layers below it (style guide §5, habit 15)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "meshlens"

#: module (or package) → layer. Siblings in one layer may not import each other.
LAYERS: dict[str, int] = {
    "errors": 0, "source": 0, "durations": 0, "interrupts": 0,
    "diagnostics": 1,
    "loader": 2, "resources": 2, "limits": 0,
    "model": 3,
    "compiler": 4,
    "emit": 5, "pipeline": 5, "simulate": 5, "dump": 5, "jsonpb": 4,
    "render": 6, "analyze": 6,
    "lab": 7, "review": 7,
    "cli": 8, "__main__": 10, "__init__": 9, "launcher": 9,
}


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("meshlens"):
            parts = node.module.split(".")
            if len(parts) == 1:
                out.update(alias.name for alias in node.names)
            else:
                out.add(parts[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("meshlens."):
                    out.add(alias.name.split(".")[1])
    return out


def test_every_module_has_a_layer() -> None:
    units = {_unit(p) for p in SRC.rglob("*.py")}
    assert units - set(LAYERS) == set(), "add new modules to LAYERS"


def test_imports_go_down_only() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        for imported in _imports(path):
            if imported == unit:
                continue
            if LAYERS[imported] >= LAYERS[unit]:
                bad.append(f"{path.relative_to(SRC)} (layer {LAYERS[unit]}) imports {imported} "
                           f"(layer {LAYERS[imported]})")
    assert not bad, "\n".join(bad)


def test_compiler_is_pure() -> None:
    forbidden = {"os", "pathlib", "subprocess", "socket", "time", "yaml", "grpc", "datetime"}
    for path in (SRC / "compiler").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import) else (
                [node.module.split(".")[0]] if isinstance(node, ast.ImportFrom) and node.module else [])
            assert not set(names) & forbidden, f"{path.name} imports {set(names) & forbidden}"
