"""The lab's folders and state file (issue 12 item 3, issue 11): private, never through a
symlink, untrusted when read back, cleaned up when their lab is dead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshlens.errors import LabError
from meshlens.lab import statedir
from meshlens.lab.statedir import (
    check_state,
    find_labs,
    new_lab_dir,
    owner_record,
    process_start,
    remove_dead_labs,
    runtime_root,
    write_private,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "labs"
    monkeypatch.setenv("MESHLENS_LAB_STATE_DIR", str(path))
    return path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_root_is_private_and_checked(root: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime_root() == root and (root.stat().st_mode & 0o777) == 0o700
    root.chmod(0o755)  # another user could read the keys
    with pytest.raises(LabError, match="mode 0755 lets others in"):
        runtime_root()
    root.chmod(0o700)
    if os.geteuid() == 0:  # root can hand the folder to someone else, as an attacker would
        os.chown(root, 12345, -1)
        with pytest.raises(LabError, match="owned by uid 12345"):
            runtime_root()
        os.chown(root, 0, -1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    monkeypatch.setenv("MESHLENS_LAB_STATE_DIR", str(link))
    with pytest.raises(LabError, match="symlink"):
        runtime_root()


def test_xdg_runtime_dir_is_used_only_when_private(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHLENS_LAB_STATE_DIR", raising=False)
    xdg = tmp_path / "run"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime_root() == xdg / "meshlens"
    xdg.chmod(0o777)  # not a real runtime dir: fall back to the per-uid temp folder
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert runtime_root() == tmp_path / f"meshlens-{os.geteuid()}"


def test_files_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "state.json"
    link.symlink_to(victim)
    with pytest.raises(FileExistsError):
        write_private(link, "{}")
    write_private(link, "{}", replace=True)  # replaces the link itself
    assert victim.read_text() == "precious" and not link.is_symlink()
    assert (link.stat().st_mode & 0o777) == 0o600


def test_dead_labs_are_removed_at_the_next_start(root: Path) -> None:
    dead = new_lab_dir()
    write_private(dead / "state.json", json.dumps({"pid": _dead_pid(), "start": 1}))
    (dead / "certs").mkdir()
    write_private(dead / "certs" / "key.pem", "PRIVATE")
    recycled = new_lab_dir()  # a live pid, but not the process that wrote the state
    write_private(recycled / "state.json", json.dumps({"pid": os.getpid(), "start": 1}))
    live = new_lab_dir()
    write_private(live / "state.json", json.dumps(owner_record()))
    starting = new_lab_dir()  # no state yet: a lab starting right now
    fresh = new_lab_dir()
    assert not dead.exists() and not recycled.exists()
    assert live.exists() and starting.exists() and fresh.exists()
    assert remove_dead_labs(root) == []


def _state(lab_dir: Path, **over: object) -> dict:
    log = lab_dir / "access.log"
    log.touch()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    state = {**owner_record(), "status": "up", "entry": ["127.0.0.1", 15001],
             "access_log": str(log),
             "envoys": {"client": {"pid": child.pid, "start": process_start(child.pid),
                                   "admin": "127.0.0.1:15000"}}}
    state.update(over)
    state["_child"] = child
    return state


def test_state_file_is_untrusted(root: Path, tmp_path: Path) -> None:
    lab_dir = new_lab_dir()
    good = _state(lab_dir)
    child = good.pop("_child")
    try:
        assert check_state(good, lab_dir) == ""
        bad_admin = {**good, "envoys": {"client": {**good["envoys"]["client"],
                                                   "admin": "192.0.2.1:15000"}}}
        assert "nor a loopback address" in check_state(bad_admin, lab_dir)
        elsewhere = {**good, "envoys": {"client": {**good["envoys"]["client"],
                                                   "admin": str(tmp_path / "x.sock")}}}
        assert "neither a socket in the lab's folder" in check_state(elsewhere, lab_dir)
        assert "not a loopback address" in check_state({**good, "entry": ["10.0.0.1", 80]},
                                                       lab_dir)
        stranger = {**good, "envoys": {"client": {"pid": os.getppid(), "start": process_start(os.getppid()),
                                                  "admin": "127.0.0.1:1"}}}
        assert f"pid {os.getppid()} is not an Envoy this lab started" in check_state(stranger, lab_dir)
        no_start = {**good, "envoys": {"client": {**good["envoys"]["client"], "start": None}}}
        assert "is gone" in check_state(no_start, lab_dir)
        outside = tmp_path / "elsewhere.log"
        outside.touch()
        assert "not in the lab's folder" in check_state({**good, "access_log": str(outside)},
                                                          lab_dir)
        assert "is gone" in check_state({**good, "pid": _dead_pid()}, lab_dir)
        assert "is gone" in check_state({**good, "pid": "1; rm -rf /"}, lab_dir)
        write_private(lab_dir / "state.json", json.dumps(good))
        [info] = find_labs()
        assert info.live and info.id == lab_dir.name.removeprefix("lab-")
    finally:
        child.kill()
        child.wait()


def test_send_to_a_dead_lab_says_so(root: Path) -> None:
    lab_dir = new_lab_dir()
    write_private(lab_dir / "state.json", json.dumps({"pid": _dead_pid(), "start": 1,
                                                      "status": "up", "proxy": "x"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, "-m", "meshlens", "lab", "send", "http://a/"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "is gone" in res.stderr and "not running" in res.stderr and "Traceback" not in res.stderr
    status = subprocess.run([sys.executable, "-m", "meshlens", "lab", "status"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 1 and "not running" in status.stdout
    down = subprocess.run([sys.executable, "-m", "meshlens", "lab", "down"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert "removed the folder of lab" in down.stdout and not lab_dir.exists()


def test_two_labs_never_share_a_folder(root: Path) -> None:
    """The old fixed path (the temp folder's meshlens-lab, created with exist_ok) is gone."""
    text = Path(statedir.__file__).read_text()
    assert "exist_ok" not in text and '"meshlens-lab"' not in text
    a, b = new_lab_dir(), new_lab_dir()
    assert a != b and a.parent == b.parent == root
