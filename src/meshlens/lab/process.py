"""Start, watch and stop the lab's child processes (Envoys, fake workloads) and read Envoy's admin.

Layer: L7 (lab). Imports: lab.envoy (binary), lab.statedir, errors, stdlib.

Lifecycle rules (lab-notes §0):

* Envoy runs with ``--disable-hot-restart --concurrency 1 --drain-time-s 1
  --file-flush-interval-msec 100`` (access logs are otherwise flushed once a second), its admin on
  a Unix socket (mode 0600) in the lab's folder, or on 127.0.0.1 at a port it picks; either way
  Envoy writes the address to ``--admin-address-path``. A ``--base-id`` of its own.
* Every child is started through ``setpriv --pdeathsig KILL`` when available, so it dies with the
  lab even if the lab is killed with SIGKILL; :class:`Children` ends all of them (TERM, then KILL
  after a grace period) on normal exit, Ctrl-C, SIGTERM or a crash of any part.
* A child that dies is reported with the last lines of its log (:class:`EnvoyExited`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshlens.errors import EnvoyExited, LabError
from meshlens.lab.envoy import envoy_path
from meshlens.lab.localhttp import HttpError, request
from meshlens.lab.statedir import open_log, write_private

ENVOY_FLAGS = ("--disable-hot-restart", "--concurrency", "1", "--drain-time-s", "1",
               "--file-flush-interval-msec", "100")
_SETPRIV = shutil.which("setpriv")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(slots=True)
class Child:
    """One child process with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        """Raise :class:`EnvoyExited` (with the log's tail) if the process has exited."""
        code = self.proc.poll()
        if code is not None:
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise EnvoyExited(f"{self.name} died ({how}); last log lines:\n{_tail(self.log)}")

    def stop(self, grace: float = 2.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(grace)


@dataclass(slots=True)
class Children:
    """Every process the lab started; :meth:`stop_all` is idempotent."""

    items: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], log: Path, *, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Child:
        cmd = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else argv
        with os.fdopen(open_log(log), "ab") as out:
            try:
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=cwd, env=env,
                                        start_new_session=True)
            except OSError as exc:
                raise LabError(f"cannot start {name}: {exc}") from exc
        child = Child(name, proc, log)
        self.items.append(child)
        return child

    def check(self) -> None:
        for c in self.items:
            c.check()

    def stop_all(self) -> None:
        for c in reversed(self.items):
            c.proc.poll() is None and c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        for c in reversed(self.items):
            try:
                c.proc.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()
                c.proc.wait(2.0)


@dataclass(slots=True)
class EnvoyProcess:
    """A running lab Envoy and its admin address."""

    name: str
    child: Child
    workdir: Path
    access_log: Path
    base_id: int
    admin: str = ""

    @classmethod
    def start(cls, children: Children, *, name: str, bootstrap: dict[str, Any], workdir: Path,
              base_id: int, log_level: str = "warning") -> EnvoyProcess:
        """Write the bootstrap and spawn Envoy (does not wait; see :meth:`wait_admin`)."""
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = workdir / "bootstrap.json"
        write_private(config, json.dumps(bootstrap, indent=1))
        admin_file = workdir / "admin-address"
        admin_file.unlink(missing_ok=True)
        argv = [envoy_path(), "-c", str(config), *ENVOY_FLAGS, "--base-id", str(base_id),
                "--admin-address-path", str(admin_file), "-l", log_level]
        child = children.spawn(f"envoy {name}", argv, workdir / "envoy.log", cwd=workdir)
        return cls(name, child, workdir, workdir / "access.log", base_id)

    def wait_admin(self, timeout: float = 10.0) -> str:
        """Wait until the admin address file exists; return the socket path or ``host:port``."""
        path = self.workdir / "admin-address"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.child.check()
            if path.exists():
                text = path.read_text().strip()
                if text:
                    self.admin = text
                    return text
            time.sleep(0.01)
        raise EnvoyExited(f"envoy {self.name}: no admin address after {timeout}s; last log "
                          f"lines:\n{_tail(self.child.log)}")

    def get(self, path: str, timeout: float = 5.0) -> str:
        """GET an admin path (e.g. ``/stats?format=json``) and return the body."""
        if not self.admin:
            self.wait_admin()
        try:
            return request(self.admin, path, timeout=timeout)
        except HttpError as exc:
            return exc.body
        except OSError as exc:
            self.child.check()
            raise EnvoyExited(f"envoy {self.name}: admin {path} failed: {exc}") from exc

    def post(self, path: str, timeout: float = 5.0) -> str:
        return request(self.admin, path, method="POST", body=b"", timeout=timeout)

    def ready(self) -> bool:
        try:
            return self.get("/ready", timeout=1.0).strip() == "LIVE"
        except EnvoyExited:
            raise
        except OSError:
            return False

    def listener_addresses(self) -> dict[str, str]:
        """Listener name -> bound ``ip:port`` (as Envoy reports it)."""
        data = json.loads(self.get("/listeners?format=json"))
        out = {}
        for status in data.get("listener_statuses", []):
            sa = status.get("local_address", {}).get("socket_address", {})
            out[status["name"]] = f"{sa.get('address')}:{sa.get('port_value')}"
        return out


def free_base_id() -> int:
    """A base id unlikely to clash with another Envoy on the machine (shared memory name)."""
    return 10_000 + (os.getpid() % 50_000) * 8 + int(time.monotonic_ns() % 8)
