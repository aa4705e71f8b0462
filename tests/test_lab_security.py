"""A lab that cannot do what it says does not start (issue 12 items 2 and 7)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshlens.errors import LabError
from meshlens.lab import runner
from meshlens.lab.addressing import Addressing
from meshlens.lab.guard import NotLoopback
from meshlens.lab.runner import Lab
from meshlens.pipeline import load

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESHLENS_LAB_STATE_DIR", str(tmp_path / "labs"))
    return tmp_path / "labs"


def _server_pod_address() -> tuple[str, int]:
    loaded = load([str(SEED)])
    wl = next(w for w in loaded.mesh.registry.workloads if w.name.startswith("llm-server-v2"))
    return Addressing().ip(wl.ip), 8080


def test_a_nack_at_start_is_a_failed_start(_state: Path) -> None:
    """Another program holds a server sidecar's pod address: Envoy NACKs the listener."""
    squatter = socket.socket()
    squatter.bind(_server_pod_address())
    squatter.listen()
    try:
        async def run() -> None:
            async with Lab(load([str(SEED)]), "deploy/client.mesh-demo"):
                pass

        with pytest.raises(LabError, match=r"the lab did not start: NACK LDS from envoy "
                                           r"llm-server-v2.*(ddress already in use|cannot bind)"):
            asyncio.run(run())
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
               "MESHLENS_LAB_STATE_DIR": str(_state)}
        res = subprocess.run([sys.executable, "-m", "meshlens", "lab", "up", "--detach", "-f",
                              str(SEED), "deploy/client.mesh-demo"], env=env, capture_output=True,
                             text=True, timeout=90)
        assert res.returncode != 0
        assert "the lab did not start: NACK LDS" in res.stdout + res.stderr
    finally:
        squatter.close()
    assert list(_state.glob("lab-*")) == []


def test_nothing_non_loopback_is_ever_pushed(monkeypatch: pytest.MonkeyPatch, _state: Path) -> None:
    """Even if the localization missed an address, the guard refuses before the push."""
    real = runner.localize

    def leaky(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        for cla in out.endpoints:
            for loc in cla.endpoints:
                for lb in loc.lb_endpoints:
                    lb.endpoint.address.socket_address.address = "2001:db8::1"
        return out

    monkeypatch.setattr(runner, "localize", leaky)
    lab = Lab(load([str(SEED)]), "deploy/client.mesh-demo", sidecars="none")

    async def run() -> None:
        async with lab:
            pass

    with pytest.raises(NotLoopback, match=r"refusing to push to client: .*2001:db8::1"):
        asyncio.run(run())
    assert lab.ads.nodes == {}  # no snapshot was ever installed
    assert list(_state.glob("lab-*")) == []
