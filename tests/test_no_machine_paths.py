"""No tracked file names a path of one machine, so a clone works anywhere.

A path of a machine is one that exists on the machine where it was written and nowhere else:
home and workspace folders (under ``/home``, ``/root``, ``/Users``, ``/work``, and mounts under
``/mnt``, ``/media``, ``/opt``), a fixed name in a temporary folder (``/tmp``, ``/var/tmp``,
``/dev/shm``, macOS's ``/private/var/folders``), a per-user runtime folder (under ``/run/user``),
a Windows drive path (``C:`` and a user or temp folder), or the project's workspace folder
``shared`` beside the repository (reached as dot-dot-slash shared).

Paths that are the same on every machine are not machine paths and are allowed: system paths
(``/dev/null``, ``/dev/stdout``, ``/proc/stat``, ``/usr/bin/env``) and the fixed paths inside
Istio's proxy container, which Istio's own data and meshlens's output name as facts
(``/etc/istio/proxy``, ``/var/lib/istio/data``, ``/usr/local/bin/envoy``, ``/etc/certs``).

The files are those ``git ls-files`` lists (every file under the repository without git).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The leading "/" must not continue a word, a relative path or a URL's host part.
_START = r"(?<![A-Za-z0-9_.~\-])"
_NAME = r"[A-Za-z0-9_.$%{\-]"
MACHINE_PATH = re.compile(
    _START + r"/(?:home|root|Users|work|mnt|media|opt)/" + _NAME
    + "|" + _START + r"/(?:tmp|var/tmp|dev/shm|private/var/folders|run/user)/" + _NAME
    + "|" + r"(?<![A-Za-z0-9])[A-Z]:(?:\\\\?|/)(?:Users|Windows|Program Files|ProgramData|"
    + r"Documents and Settings|temp|tmp|work|src|code|projects)\b"
    + "|" + r"\.\./shared\b"
)

# (file, the exact text found) -> why it must stay. Keep this short; prefer removing the path.
ALLOWED: dict[tuple[str, str], str] = {}

# Folders never tracked but present in a working copy (used only without git).
_UNTRACKED = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
              ".mypy_cache", ".ruff_cache", "out"}


def tracked_files(root: Path) -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and not _UNTRACKED & set(p.relative_to(root).parts)
                      and not p.parent.name.endswith(".egg-info"))
    return sorted(name for name in out.decode().split("\0") if name)


def machine_paths(text: str) -> list[str]:
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


@pytest.mark.parametrize("text", [
    "/" + "work/wt/data/x.py", "open('/" + "home/alice/seed.yaml')", "/" + "root/.cache/x",
    "/" + "Users/bob/x", "/" + "tmp/mesh.yaml", "/" + "var/tmp/state.json", "file:///" + "work/x",
    "C:" + "\\Users\\bob", "C:/" + "Users/bob", "C:" + "\\\\temp\\x", "../" + "shared/spec/x.md",
    "/" + "run/user/1000/meshlens", "/" + "mnt/data/x", "/" + "opt/istio/x",
])
def test_the_check_finds_machine_paths(text: str) -> None:
    assert machine_paths(text), text


@pytest.mark.parametrize("text", [
    "/etc/istio/proxy", "./etc/istio/proxy/XDS", "/var/lib/istio/data/envoy.prof", "/dev/stdout",
    "/proc/stat", "#!/usr/bin/env python3", "https://github.com/istio/istio/tree/master/tmp/x",
    "src/meshlens/work/x", "a:\\tb", "tmp_path / 'x.log'", "/tmp", "tests/conformance/x",
])
def test_the_check_allows_paths_that_are_not_a_machines(text: str) -> None:
    assert not machine_paths(text), text


def test_no_tracked_file_names_a_machine_path() -> None:
    files = tracked_files(ROOT)
    assert "tests/test_no_machine_paths.py" in files
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file():  # deleted in the working copy, not yet committed
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        for line_no, line in enumerate(text.splitlines(), 1):
            for hit in machine_paths(line):
                if (name, hit) not in ALLOWED:
                    found.append(f"{name}:{line_no}: {hit!r}: {line.strip()[:120]}")
    assert not found, "paths of one machine in tracked files:\n" + "\n".join(found)


def test_every_allowed_entry_is_still_needed() -> None:
    for (name, hit), reason in ALLOWED.items():
        assert reason
        assert hit in (ROOT / name).read_text(encoding="utf-8"), (name, hit)
