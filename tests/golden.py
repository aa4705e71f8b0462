"""Golden-file comparison with one switch: ``pytest --update-goldens`` rewrites them."""

from __future__ import annotations

import difflib
from pathlib import Path


def check(path: Path, actual: str, update: bool) -> None:
    if update or not path.exists():
        if not update:
            raise AssertionError(f"golden {path} is missing; run: make test ARGS=--update-goldens "
                                 f"(or .venv/bin/python -m pytest --update-goldens) and review it")
        path.write_text(actual)
        return
    expected = path.read_text()
    if expected != actual:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            str(path), "actual", n=3))
        raise AssertionError(f"{path} differs from actual output:\n{diff[:20000]}\n"
                             "If the change is intended: .venv/bin/python -m pytest --update-goldens")
