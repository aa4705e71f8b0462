"""Shared fixtures: the golden switch and the path to the conformance data in this repository.

Istio's conformance data (istioctl goldens, analyzer cases, CRD schemas, the bootstrap golden)
lives under ``tests/conformance/``; each folder's ORIGIN.md says where it came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT / "tests" / "conformance"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="Rewrite golden files from actual output (review the diff!)")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(scope="session")
def conformance() -> Path:
    """``tests/conformance``: Istio's data copied into the repository (see each ORIGIN.md)."""
    assert CONFORMANCE.is_dir(), f"{CONFORMANCE} is missing"
    return CONFORMANCE
