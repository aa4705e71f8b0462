"""A config dump is untrusted input: it never runs code, and it is read within the loader's limits.

Issue 12, items 1 and 4. A dump comes from production or from another team; its ``@type`` URLs
name protobuf types, and meshlens must only ever *look them up* (in the descriptor pool, after
importing xds-protos's own modules), never import a module the dump names. Every bad dump is
``error: FILE: message`` and exit 2, within bounded time and memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshlens.cli import app
from meshlens.dump import parse_config_dump

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "tests" / "cases").iterdir() if p.is_dir())
ENV_PYTHON = sys.executable


def _dump(*type_names: str) -> str:
    return json.dumps({"configs": [{"@type": f"type.googleapis.com/{t}"} for t in type_names]})


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ENV_PYTHON, "-m", "meshlens", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


# --- item 1: no import of a name taken from the dump ----------------------------------------------


def _modules_imported_by_parsing(dump_text: str, cwd: Path) -> tuple[list[str], list[str]]:
    """Parse a dump in a fresh interpreter: (skipped types, modules its parsing imported).

    The xds-protos table and the fixed types are loaded first, so what is left is what the
    dump's own ``@type`` names caused.
    """
    (cwd / "input.json").write_text(dump_text)
    code = (
        "import json, sys\n"
        "from meshlens.dump import parse_config_dump\n"
        "from meshlens.dump.types import proto_modules\n"
        "proto_modules()\n"
        "before = set(sys.modules)\n"
        "d = parse_config_dump(open('input.json').read())\n"
        "print(json.dumps([list(d.skipped_types), sorted(set(sys.modules) - before)]))\n"
    )
    r = subprocess.run([ENV_PYTHON, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=cwd)
    assert r.returncode == 0, r.stderr
    *printed, last = r.stdout.splitlines() or [""]
    assert printed == [] and "Beautiful is better" not in r.stdout + r.stderr, r.stdout
    skipped, imported = json.loads(last)
    return skipped, imported


def test_a_type_named_this_zen_prints_nothing_and_imports_nothing(tmp_path: Path) -> None:
    """``this`` is a real stdlib module that prints the Zen of Python when imported."""
    names = ("this.Zen", "antigravity.Fly", "os.system")
    skipped, imported = _modules_imported_by_parsing(_dump(*names), tmp_path)
    assert skipped == sorted(f"type.googleapis.com/{t}" for t in names)
    assert imported == []


def test_a_module_next_to_the_dump_does_not_run(tmp_path: Path) -> None:
    """``python -m meshlens`` puts the working folder on sys.path: a planted module must not run."""
    marker = tmp_path / "PWNED"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    (tmp_path / "evilmod.py").write_text(payload)
    (tmp_path / "evilpkg").mkdir()
    (tmp_path / "evilpkg" / "__init__.py").write_text(payload)
    (tmp_path / "evilpkg" / "sub_pb2.py").write_text(payload)
    dump = tmp_path / "dump.json"
    dump.write_text(_dump("evilmod.Type", "evilpkg.sub.Type", "evilpkg.Type"))
    r = _run(["proxy-config", "all", "--config-dump", "dump.json"], tmp_path)
    assert not marker.exists(), "a module named by the dump was imported"
    assert "Traceback" not in r.stderr
    assert "skipped 3 unknown type(s)" in r.stderr
    assert "type.googleapis.com/evilmod.Type" in r.stderr


def test_only_xds_protos_modules_are_imported_to_resolve_types(tmp_path: Path) -> None:
    names = ["json.decoder.X", "subprocess.Popen", "envoy", "envoy.config", "xds.x",
             "envoy.config.cluster.v3.Cluster", "envoy.config.cluster.v3.Nope.Deeper",
             "envoy.extensions.filters.http.fault.v3.HTTPFault",
             "envoy.extensions.filters.http.buffer.v3.Buffer", "..", ".envoy.x", ""]
    _, imported = _modules_imported_by_parsing(_dump(*names), tmp_path)
    # the fault and buffer filters' modules (and the packages above them), nothing else
    assert "envoy.extensions.filters.http.buffer.v3.buffer_pb2" in imported
    assert "envoy.extensions.filters.http.fault.v3.fault_pb2" in imported
    for module in imported:
        assert module.split(".")[0] in {"envoy", "xds", "udpa", "validate"}, module
        assert module.endswith("_pb2") or any(m.startswith(module + ".") for m in imported), module


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_meshlens_compile_output_reads_back_without_unknown_types(case: Path, fmt: str) -> None:
    meta = tomllib.loads((case / "case.toml").read_text())
    args = ["compile", "-f", str(case / "manifests.yaml"), meta["proxy"], "-o", fmt]
    if (case / "mesh.yaml").exists():
        args += ["--mesh-config", str(case / "mesh.yaml")]
    out = CliRunner().invoke(app, args, catch_exceptions=False)
    assert out.exit_code == 0, out.stderr
    dump = parse_config_dump(out.stdout)
    assert dump.skipped_types == ()
    assert dump.clusters is not None and dump.listeners is not None


# --- item 4: a dump is read within the loader's limits --------------------------------------------


def _laughs(levels: int = 9) -> str:
    """A ~500-byte YAML alias bomb: 9**9 nodes when expanded."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _struct_dump(depth: int) -> str:
    return ('{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", '
            '"bootstrap": {"node": {"metadata": ' + '{"a": ' * depth + "1" + "}" * depth
            + "}}}]}")


HOSTILE_DUMPS = {
    # name: (text, message fragment after "error: FILE: ")
    "yaml-alias-bomb": (_laughs(), "not a valid Envoy config dump: aliases expand this document"),
    "yaml-alias-bomb-in-configs": (
        "configs:\n- '@type': type.googleapis.com/envoy.admin.v3.ClustersConfigDump\n  x:\n"
        + "".join(f"    {line}\n" for line in _laughs().splitlines()),
        "not a valid Envoy config dump: aliases expand this document",
    ),
    "yaml-recursive-alias": ("configs: &c [*c]\n", "not a valid Envoy config dump: recursive alias"),
    "json-integer-5000-digits": (
        '{"configs": [], "n": ' + "9" * 5000 + "}",
        "not a valid Envoy config dump: exceeds the limit (4300 digits)",
    ),
    "json-integer-in-a-field": (
        '{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", '
        '"version_info": ' + "1" * 4000 + "}]}",
        "not a valid Envoy config dump: ",
    ),
    "json-nesting-100000": ("[" * 100_000 + "]" * 100_000, "not a valid Envoy config dump: "),
    "json-nesting-150": (
        '{"configs": ' + "[" * 150 + "]" * 150 + "}",
        "not a valid Envoy config dump: it nests deeper than 100 levels",
    ),
    "json-struct-nesting-30": (_struct_dump(30), None),  # deep, but a valid dump
    "json-struct-nesting-40": (_struct_dump(40), "cannot read a envoy.admin.v3.BootstrapConfigDump"),
    # within max_dump_depth, but past protobuf's own limit of 100 messages (Struct, Value, ...)
    "json-struct-nesting-94": (_struct_dump(94), "not a valid Envoy config dump: "),
    "yaml-nesting-5000": ("a: " + "[" * 5000 + "]" * 5000 + "\n",
                          "not an Envoy config dump: the file is neither JSON nor YAML"),
    "json-lone-surrogate": (
        '{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", '
        '"version_info": "\\ud800"}]}',
        "not a valid Envoy config dump: ",
    ),
    "json-infinity-port": (
        '{"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", '
        '"static_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.'
        'Cluster", "per_connection_buffer_limit_bytes": Infinity}}]}]}',
        "not a valid Envoy config dump: ",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_DUMPS))
def test_hostile_dumps_exit_2_within_bounds(case: str, tmp_path: Path) -> None:
    from meshlens.cli.proxy_config import proxy_config_app

    from bounded import bounded

    text, fragment = HOSTILE_DUMPS[case]
    path = tmp_path / "dump.json"
    path.write_text(text)
    with bounded(20, 256):
        out = CliRunner().invoke(proxy_config_app, ["all", "--config-dump", str(path)],
                                 catch_exceptions=False)
    if fragment is None:
        assert out.exit_code == 0, out.stderr
        return
    assert out.exit_code == 2, (out.exit_code, out.stderr)
    assert out.stderr.startswith(f"error: {path}: {fragment}"), out.stderr
    assert len(out.stderr.splitlines()) == 1 and out.stdout == ""


def test_a_json_bomb_exits_2_in_a_real_process(tmp_path: Path) -> None:
    """The two that exited 3 (an internal error) before, run as the user runs them."""
    for name in ("json-integer-5000-digits", "json-nesting-100000"):
        (tmp_path / "dump.json").write_text(HOSTILE_DUMPS[name][0])
        r = _run(["proxy-config", "cluster", "--config-dump", "dump.json"], tmp_path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("error: dump.json: not a valid Envoy config dump: "), r.stderr
        assert "Traceback" not in r.stderr


def test_a_fifo_as_a_dump_times_out_and_closed_stdin_is_named(tmp_path: Path) -> None:
    import os
    from dataclasses import replace

    from meshlens.dump import read_dump
    from meshlens.errors import DumpError
    from meshlens.limits import Limits

    from bounded import bounded

    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    with bounded(5), pytest.raises(DumpError, match="cannot read file: nothing to read for 0.5s"):
        read_dump(str(fifo), replace(Limits(), read_timeout=0.5))
    r = subprocess.run(f"exec {ENV_PYTHON} -m meshlens proxy-config cluster --config-dump - <&-",
                       shell=True, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "error: <stdin>: cannot read stdin: it is closed\n")
