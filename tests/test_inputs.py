"""Nothing is lost silently, nothing hangs: special files, unreadable folders, closed stdin, sizes.

Issue 12, items 8 and 10. Every input the loader cannot use is named on stderr with its path:
a FIFO, socket or device inside a folder is skipped with an ML0007 note (reading it could block
forever); one given explicitly with -f is read without blocking, with a timeout; a folder that
cannot be listed is an ML0002 error and exit 2; a ``kind: List`` item with an undefined alias is
reported alone while the other items are kept; ``-f -`` with stdin closed says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bounded import bounded
from meshlens.cli import app
from meshlens.limits import Limits
from meshlens.loader import load_paths, load_text

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "tests" / "cases" / "seed-llm-server-canary" / "manifests.yaml"
PROXY = "deploy/client.mesh-demo"
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "app.yaml").write_text(SEED.read_text())
    (folder / "sub" / "ns.yaml").write_text(NAMESPACE % "extra")
    return folder


def _compile(args: list[str]) -> tuple[int, str, str]:
    out = CliRunner().invoke(app, ["compile", *args, PROXY, "-o", "json"], catch_exceptions=False)
    return out.exit_code, out.stdout, out.stderr


def test_a_fifo_in_a_folder_is_skipped_with_a_note(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.mkfifo(folder / "sub" / "pipe.yaml")
    with bounded(30, 512):
        code, stdout, stderr = _compile(["-f", str(folder)])
    assert code == 0, stderr
    assert (f"{folder}/sub/pipe.yaml:1:1: info: skipped {folder}/sub/pipe.yaml: a FIFO, not a "
            "regular file (give it with -f to read it) [ML0007]") in stderr
    assert '"configs"' in stdout


def test_an_explicit_fifo_is_read_and_a_silent_one_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)

    def writer() -> None:
        time.sleep(0.3)  # the reader is already waiting (without blocking in open)
        with open(fifo, "w") as fh:
            fh.write(NAMESPACE % "from-a-pipe")

    thread = threading.Thread(target=writer)
    thread.start()
    with bounded(10):
        r = load_paths([str(fifo)])
    thread.join()
    assert r.errors == [] and [d.data["metadata"]["name"] for d in r.documents] == ["from-a-pipe"]
    with bounded(5):
        r = load_paths([str(fifo)], limits=replace(Limits(), read_timeout=0.5))
    [err] = r.errors
    assert err.code == "ML0002" and str(err) == (
        f"{fifo}:1:1: error: cannot read file: nothing to read for 0.5s (a FIFO with no writer, "
        "or a device?) [ML0002]")


def test_a_device_is_skipped_in_a_folder_and_bounded_when_explicit(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.symlink("/dev/zero", folder / "zero.yaml")
    r = load_paths([str(folder)])
    assert r.errors == []
    assert [d.message for d in r.diagnostics if d.code == "ML0007"] == [
        f"skipped {folder}/zero.yaml: a character device, not a regular file (give it with -f "
        "to read it)"]
    with bounded(10, 64):
        r = load_paths(["/dev/zero"], limits=replace(Limits(), max_file_bytes=1 << 20))
    [err] = r.errors
    assert err.code == "ML0005" and "larger than 1048576 bytes" in err.message


def test_a_link_loop_in_a_folder_ends(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.symlink("..", folder / "sub" / "up")
    os.symlink(".", folder / "self.yaml")
    with bounded(10):
        r = load_paths([str(folder)])
    assert r.errors == [] and len(r.documents) > 1
    assert [d.message for d in r.diagnostics if d.code == "ML0007"] == [
        f"skipped {folder}/self.yaml: a link to a folder, not a regular file (give it with -f "
        "to read it)"]


def test_an_unreadable_subfolder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """Tests run as root, who can read any folder: the refusal is simulated at os.scandir."""
    folder = _folder(tmp_path)
    real = os.scandir

    def scandir(path: str) -> object:
        if str(path).endswith("/sub"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, stdout, stderr = _compile(["-f", str(folder)])
    assert code == 2
    assert f"{folder}/sub:1:1: error: cannot read folder: Permission denied [ML0002]" in stderr
    assert stdout == ""


def test_an_undefined_alias_drops_one_list_item_not_the_file() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: *nope}}\n"
        "- {apiVersion: v1, kind: Namespace, metadata: {name: &c c, labels: {x: *c}}}\n"
        "---\n" + NAMESPACE % "*undefined" + "---\n" + NAMESPACE % "d"
    )
    r = load_text(text, "list.yaml")
    assert [d.data["metadata"]["name"] for d in r.documents] == ["a", "c", "d"]
    assert [str(e) for e in r.errors] == [
        "list.yaml:5:54: error: invalid YAML: found undefined alias [ML0001]",
        "list.yaml:10:18: error: invalid YAML: found undefined alias [ML0001]",
    ]
    assert str(r.documents[1].locate(("metadata", "labels", "x"))) == "list.yaml:6:69"


def test_closed_stdin_is_named() -> None:
    r = subprocess.run(f"exec {sys.executable} -m meshlens compile -f - {PROXY} <&-", shell=True,
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr == "<stdin>:1:1: error: cannot read stdin: it is closed [ML0002]\n"


# --- item 10: pathological sizes -------------------------------------------------------------------


def test_a_folder_of_100000_empty_files_is_fast(tmp_path: Path) -> None:
    """It took 16 s (a 64 MiB read buffer per file); now it costs what opening them costs.

    The bound is relative to the floor on this machine (opening and closing each file once),
    so a busy machine does not make the test flaky. The files go to /dev/shm where there is
    one (creating 100,000 files on an overlay disk takes longer than the test itself).
    """
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    try:
        _load_empty_files(base / "empty")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _load_empty_files(folder: Path) -> None:
    folder.mkdir()
    names = [str(folder / f"f{i:06d}.yaml") for i in range(100_000)]
    for name in names:
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
    (folder / "zz.yaml").write_text(NAMESPACE % "last")
    start = time.monotonic()
    for name in names:
        os.close(os.open(name, os.O_RDONLY))
    floor = time.monotonic() - start
    start = time.monotonic()
    r = load_paths([str(folder)])
    elapsed = time.monotonic() - start
    assert r.errors == [] and [d.data["metadata"]["name"] for d in r.documents] == ["last"]
    assert elapsed < 4 * floor + 2, f"{elapsed:.1f}s for 100,000 empty files (floor {floor:.1f}s)"


def _rule_with_subsets(n: int) -> str:
    head = (
        NAMESPACE % "ns" + "---\napiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: client, namespace: ns}\nspec:\n  selector: {matchLabels: {app: client}}\n"
        "  template:\n    metadata: {labels: {app: client}}\n"
        "    spec: {containers: [{name: c, image: x}]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns}\n"
        "spec:\n  selector: {app: web}\n  ports: [{name: http, port: 80}]\n"
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: web, namespace: ns}\nspec:\n  host: web\n  subsets:\n"
    )
    return head + "".join(f"  - name: v{i}\n    labels: {{version: v{i}}}\n" for i in range(n))


def test_a_destination_rule_with_10000_subsets_compiles_in_linear_time() -> None:
    """A subset was found by a scan per cluster: 10,000 subsets took 27 s (quadratic).

    Timed against a quarter of the size, so the check is about growth, not the machine:
    linear work grows 4x, the old scan 12x and more.
    """
    from meshlens.pipeline import compile_for, load_string

    times = []
    for n in (2_500, 10_000):
        loaded = load_string(_rule_with_subsets(n), "dr.yaml")
        with bounded(120, None):
            start = time.monotonic()
            result = compile_for(loaded, "deploy/client.ns")
            times.append(time.monotonic() - start)
        assert result.cluster(f"outbound|80|v{n - 1}|web.ns.svc.cluster.local") is not None
    assert times[1] < 8 * times[0] + 1, f"{times}: grows faster than linearly"
