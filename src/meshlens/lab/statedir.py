"""Where a lab keeps its files: a private folder per user, a private folder per lab.

Layer: L7 (lab). Imports: lab.addressing, errors, stdlib.

A lab writes private keys, its bootstrap and a state file that ``lab send``/``status``/``down``
read. None of that may sit in a shared, guessable place (issue 12, item 3):

* **The root** is ``$MESHLENS_LAB_STATE_DIR`` if set, else ``$XDG_RUNTIME_DIR/meshlens`` when
  ``$XDG_RUNTIME_DIR`` is a folder of ours with mode 0700 (as the XDG spec requires), else
  ``<tmp>/meshlens-<uid>``. It is created with mode 0700; when it exists already it is accepted
  only if ``lstat`` shows a real folder (not a symlink) owned by this user with no permission for
  group or others. Anything else is refused with a message naming the folder.
* **Each lab** gets a fresh folder ``lab-XXXXXXXX`` inside it (``mkdtemp``: new, mode 0700).
  Every file the lab writes there is created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and mode 0600
  (:func:`write_private`); the state file is replaced by writing a new file and renaming it over
  the old one, which never follows a symlink.
* **The state file is untrusted when read back** (:func:`read_state`): its types are checked,
  the lab's pid must be alive *and* have the start time recorded beside it (a recycled pid is
  not the lab), every Envoy pid must be a live child of that lab, admin and entry addresses must
  be loopback, and the access log must be a regular file inside the lab's folder.
* **Dead labs are cleaned up** at the next start (:func:`remove_dead_labs`): a folder whose
  lab is gone (the process was killed with SIGKILL, the machine slept...) is removed with its
  keys. A lab removes its own folder when it stops; nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshlens.errors import LabError
from meshlens.lab.addressing import is_loopback

STATE_FILE = "state.json"
_PREFIX = "lab-"
#: A folder without a readable state file is someone's lab still starting, unless it is older.
_STARTING_GRACE_S = 120.0


def _verify_private_dir(path: Path) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise LabError(f"unsafe lab folder {path}: it is a symlink; remove it or set "
                       "MESHLENS_LAB_STATE_DIR")
    if not stat.S_ISDIR(st.st_mode):
        raise LabError(f"unsafe lab folder {path}: not a folder; remove it or set "
                       "MESHLENS_LAB_STATE_DIR")
    if st.st_uid != os.geteuid():
        raise LabError(f"unsafe lab folder {path}: owned by uid {st.st_uid}, not by you "
                       f"(uid {os.geteuid()}); remove it or set MESHLENS_LAB_STATE_DIR")
    if st.st_mode & 0o077:
        raise LabError(f"unsafe lab folder {path}: mode {stat.S_IMODE(st.st_mode):04o} lets "
                       "others in (want 0700); remove it or set MESHLENS_LAB_STATE_DIR")


def _ensure_private_dir(path: Path) -> Path:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise LabError(f"cannot create the lab folder {path}: {exc.strerror}") from exc
    _verify_private_dir(path)
    return path


def _usable_xdg(value: str | None) -> Path | None:
    if not value or not os.path.isabs(value):
        return None
    try:
        _verify_private_dir(Path(value))
    except (LabError, OSError):
        return None
    return Path(value)


def runtime_root() -> Path:
    """The user's private folder of labs (created if missing, verified if present)."""
    explicit = os.environ.get("MESHLENS_LAB_STATE_DIR")
    if explicit:
        return _ensure_private_dir(Path(explicit))
    xdg = _usable_xdg(os.environ.get("XDG_RUNTIME_DIR"))
    if xdg is not None:
        return _ensure_private_dir(xdg / "meshlens")
    return _ensure_private_dir(Path(tempfile.gettempdir()) / f"meshlens-{os.geteuid()}")


def new_lab_dir() -> Path:
    """A fresh private folder for one lab; folders of dead labs are removed first."""
    root = runtime_root()
    remove_dead_labs(root)
    return Path(tempfile.mkdtemp(prefix=_PREFIX, dir=root))


def write_private(path: Path, data: str | bytes, *, replace: bool = False) -> None:
    """Create ``path`` (mode 0600) and write ``data``; never follows or reuses an existing name.

    With ``replace``, the content goes to a new sibling file first, which is then renamed over
    ``path`` (a rename replaces a symlink instead of following it).
    """
    raw = data.encode() if isinstance(data, str) else data
    target = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}") if replace \
        else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    if replace:
        os.replace(target, path)


def open_log(path: Path) -> int:
    """A log file descriptor to append to (created 0600, never through a symlink)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                   0o600)


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def parent_pid(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[1]) if fields else None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; cut at the last ")".
    rest = text[text.rfind(")") + 2:].split()
    return rest if len(rest) > 20 and rest[0] not in ("Z", "X") else None


def owner_record() -> dict[str, Any]:
    """What identifies this process later: pid and start time."""
    return {"pid": os.getpid(), "start": process_start(os.getpid())}


def alive(pid: Any, start: Any) -> bool:
    """Is ``pid`` running and the same process that recorded ``start``?"""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return False
    now = process_start(pid)
    return now is not None and now == start


def remove_dead_labs(root: Path) -> list[Path]:
    """Remove the folders of labs whose process is gone; return what was removed."""
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(_PREFIX):
            continue
        path = Path(entry.path)
        try:
            _verify_private_dir(path)
        except (LabError, OSError):
            continue  # not a folder of ours: leave it alone
        state = _load_json(path / STATE_FILE)
        if state is None:
            try:
                age = time.time() - os.lstat(path).st_mtime
            except OSError:
                continue
            if age < _STARTING_GRACE_S:
                continue  # a lab that is still starting
        elif alive(state.get("pid"), state.get("start")):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > 64 << 20:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    return data if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class LabInfo:
    """A lab found in the root folder, as far as its (checked) state file tells."""

    id: str
    dir: Path
    state: dict[str, Any]
    live: bool
    problem: str = ""

    @property
    def pid(self) -> int:
        pid = self.state.get("pid")
        return pid if isinstance(pid, int) else 0


def find_labs(root: Path | None = None) -> list[LabInfo]:
    """Every lab folder with a state file, each checked by :func:`check_state`."""
    root = root or runtime_root()
    out = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.name.startswith(_PREFIX):
            continue
        path = Path(entry.path)
        try:
            _verify_private_dir(path)
        except (LabError, OSError):
            continue
        state = _load_json(path / STATE_FILE)
        if state is None:
            continue
        problem = check_state(state, path)
        out.append(LabInfo(entry.name[len(_PREFIX):], path, state, not problem, problem))
    return out


def _loopback_hostport(value: Any) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    host, _, port = value.rpartition(":")
    return is_loopback(host.strip("[]")) and port.isdigit() and 0 < int(port) < 65536


def check_state(state: dict[str, Any], lab_dir: Path) -> str:
    """Why this state file cannot be used ("" when it can): see the module docstring."""
    if not alive(state.get("pid"), state.get("start")):
        return f"the lab (pid {state.get('pid')}) is gone"
    if state.get("status") != "up":
        return "the lab is still starting"
    envoys = state.get("envoys")
    if not isinstance(envoys, dict) or "client" not in envoys:
        return "the state file names no client Envoy"
    for name, e in envoys.items():
        if not isinstance(e, dict):
            return f"envoy {name}: malformed state"
        pid = e.get("pid")
        if not alive(pid, e.get("start")):
            return f"the lab's Envoy {name} (pid {pid}) is gone"
        if parent_pid(pid) != state["pid"]:
            return f"pid {pid} is not an Envoy this lab started"
        admin = e.get("admin")
        if not (_loopback_hostport(admin) or _own_socket(admin, lab_dir)):
            return f"envoy {name}: admin {admin!r} is neither a socket in the lab's folder nor " \
                   "a loopback address"
    entry = state.get("entry")
    if not (isinstance(entry, list) and len(entry) == 2 and
            _loopback_hostport(f"{entry[0]}:{entry[1]}")):
        return f"entry {entry!r} is not a loopback address"
    log = state.get("access_log")
    if not isinstance(log, str) or not _inside(Path(log), lab_dir):
        return f"access log {log!r} is not in the lab's folder"
    return ""


def _inside(path: Path, folder: Path, kind: Any = stat.S_ISREG) -> bool:
    try:
        real = Path(os.path.realpath(path))
        st = os.lstat(path)
    except OSError:
        return False
    return bool(kind(st.st_mode)) and st.st_uid == os.geteuid() and \
        real.is_relative_to(os.path.realpath(folder))


def _own_socket(value: Any, folder: Path) -> bool:
    return isinstance(value, str) and value.startswith("/") and \
        _inside(Path(value), folder, stat.S_ISSOCK)
