"""The streamed config dump is the non-streamed one, byte for byte, in JSON and in YAML."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from test_golden_cases import CASES, compile_case
from typer.testing import CliRunner

from meshlens.cli import app
from meshlens.emit import config_dump, config_dump_dict, config_dump_json, config_dump_tree, dumps, to_dict
from meshlens.emit.stream import Branch, Items, NoAliases, json_bytes, materialize, write, write_yaml

ROOT = Path(__file__).resolve().parents[1]


def _yaml_whole(data: Any) -> str:
    """What ``-o yaml`` printed before it streamed: one ``yaml.dump`` of the whole dict."""
    return yaml.dump(data, Dumper=NoAliases, sort_keys=False, width=1000)


def _yaml_streamed(tree: Any) -> str:
    out = io.StringIO()
    write_yaml(tree, out)
    return out.getvalue()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_streamed_dump_is_the_packed_dump(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config_dump_tree (no Any round trip, streamed) == to_dict(config_dump(...)) (packed, whole)."""
    monkeypatch.chdir(ROOT)
    _, _, result = compile_case(case)
    for eds in (True, False):
        whole = to_dict(config_dump(result, include_eds=eds))
        assert config_dump_json(result, include_eds=eds) == dumps(whole)
        assert config_dump_dict(result, include_eds=eds) == whole
        assert _yaml_streamed(config_dump_tree(result, include_eds=eds)) == _yaml_whole(whole)


def test_sections_without_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    """No clusters, endpoints, listeners, routes or secrets, no bootstrap: the keys are left out."""
    monkeypatch.chdir(ROOT)
    _, _, result = compile_case(CASES[0].relative_to(ROOT))
    for bootstrap in (None, result.bootstrap):
        empty = dataclasses.replace(result, clusters=[], endpoints=[], listeners=[], routes=[], secrets=[],
                                    bootstrap=bootstrap)
        whole = to_dict(config_dump(empty))
        assert config_dump_json(empty) == dumps(whole)
        assert _yaml_streamed(config_dump_tree(empty)) == _yaml_whole(whole)
    bare = dataclasses.replace(result, clusters=[], endpoints=[], listeners=None, routes=None, secrets=None,
                               bootstrap=None)
    assert config_dump_dict(bare) == to_dict(config_dump(bare)) == {"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "version_info": "meshlens"},
        {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump"}]}


def _trees() -> list[Any]:
    """Stream trees with empty lists and branches in every position a writer must get right."""
    def gen(*items: Any) -> Items:
        return Items(iter(items))

    return [
        Branch(),
        Branch({"a": gen()}),
        Branch({"a": gen(), "b": 1, "c": gen()}),
        Branch({"a": gen(), "b": gen({"x": []}, {}, [], None)}),
        gen(),
        gen(gen(), Branch(), gen(Branch({"k": gen()}))),
        Branch({"configs": gen(Branch({"@type": "t", "xs": gen()}), Branch({"@type": "u", "xs": gen(
            {"n": "é ünïcode", "v": [1, 2.5, True, None, "a: b", "- x", "", "null", "0x1F"]})}))}),
        Branch({"deep": Branch({"deeper": gen(Branch({"deepest": gen({"a": {"b": [{"c": "long " * 300}]}})}))})}),
        {"plain": ["no", "streaming", {"at": "all"}]},
    ]


@pytest.mark.parametrize("index", range(len(_trees())))
def test_writers_equal_one_dump_of_the_whole(index: int) -> None:
    whole = materialize(_trees()[index])
    assert json_bytes(_trees()[index]) == orjson.dumps(whole, option=orjson.OPT_INDENT_2)
    assert _yaml_streamed(_trees()[index]) == _yaml_whole(whole)


def test_an_items_list_is_read_once_item_by_item() -> None:
    produced: list[int] = []

    def items() -> Any:
        for i in range(3):
            produced.append(i)
            yield {"i": i}

    chunks: list[bytes] = []
    from meshlens.emit.stream import write_json

    def record(chunk: bytes) -> None:
        chunks.append(chunk)
        if b'"i": 0' in chunk:
            assert produced == [0]  # written as soon as it is produced, the next not yet asked for
    write_json(Branch({"items": Items(items())}), record)
    assert produced == [0, 1, 2]


def test_write_to_a_text_stream_without_a_byte_buffer() -> None:
    tree = Branch({"a": Items(iter([{"é": 1}]))})
    text = io.StringIO()
    write(tree, "json", text)
    assert text.getvalue() == dumps({"a": [{"é": 1}]}) + "\n"


def test_compile_cli_writes_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    meta, _, result = compile_case(Path("tests/cases/seed-llm-server-canary"))
    args = ["compile", "-f", "tests/cases/seed-llm-server-canary/manifests.yaml", meta["proxy"]]
    j = CliRunner().invoke(app, [*args, "-o", "json"])
    assert j.exit_code == 0, j.output
    assert j.stdout_bytes == (dumps(to_dict(config_dump(result))) + "\n").encode()
    y = CliRunner().invoke(app, [*args, "-o", "yaml"])
    assert y.exit_code == 0, y.output
    assert y.stdout == _yaml_whole(to_dict(config_dump(result)))


def test_compile_process_exit_codes_and_a_reader_that_stops_early() -> None:
    """The real process (cli.run: flush, then os._exit): full output, its exit codes, `| head`."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "meshlens", "compile", "-f",
            "tests/cases/seed-llm-server-canary/manifests.yaml"]
    whole = subprocess.run([*args, "deploy/client.mesh-demo"], cwd=ROOT, capture_output=True, timeout=120)
    assert whole.returncode == 0 and whole.stdout.endswith(b"}\n") and len(whole.stdout) > 100_000
    bad = subprocess.run([*args, "deploy/nope.mesh-demo"], cwd=ROOT, capture_output=True, timeout=120)
    assert bad.returncode == 2 and b"error: no Deployment nope" in bad.stderr and bad.stdout == b""
    for fmt in ("json", "yaml"):
        proc = subprocess.Popen([*args, "deploy/client.mesh-demo", "-o", fmt], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(50)
        proc.stdout.close()  # the reader goes away with most of the output unread
        assert proc.wait(timeout=120) == 0
        assert proc.stderr.read() == b""
        proc.stderr.close()
