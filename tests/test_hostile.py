"""Hostile and broken input: each hazard gets a clear error (or warning) with its line, in bounded
time and memory, and never an exception.

Every case runs under :func:`bounded`: a SIGALRM hang guard (the test fails instead of hanging)
plus generous assertions on wall time and on the peak memory Python allocated (tracemalloc).
The case tables are also the evidence for the README's hostile-input table.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from meshlens.errors import LoadError
from meshlens.loader import Limits, LoadResult, load_paths, load_text
from meshlens.pipeline import load_string

from bounded import bounded

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


def only_error(r: LoadResult) -> LoadError:
    assert len(r.errors) == 1, [str(e) for e in r.errors]
    err = r.errors[0]
    assert err.span is not None and err.span.line >= 1
    return err


OBJECT = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n"


# --- alias bombs ----------------------------------------------------------------------------------


def laughs(levels: int = 9, fan: int = 9, *, mapping: bool = False) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        refs = [f"*a{i - 1}"] * fan
        body = (
            ("{" + ", ".join(f"k{j}: {r}" for j, r in enumerate(refs)) + "}")
            if mapping
            else "[" + ", ".join(refs) + "]"
        )
        lines.append(f"a{i}: &a{i} {body}")
    return "\n".join(lines) + "\n"


ALIAS_BOMBS = {
    # the line is that of the first anchor whose expansion alone crosses the limit
    "billion-laughs-lists": (laughs(), 7),
    "billion-laughs-mappings": (laughs(mapping=True), 7),
    "wide-fan-out": (
        "big: &big [" + ", ".join(["x"] * 2000) + "]\nuse: [" + ", ".join(["*big"] * 1000) + "]\n",
        2,
    ),
    "inside-a-destination-rule": (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n"
        "  host: reviews\n  subsets:\n  - name: v1\n    labels:\n"
        + "".join(f"      {line}\n" for line in laughs(8, 10).splitlines()),
        15,
    ),
}


@pytest.mark.parametrize("case", sorted(ALIAS_BOMBS))
def test_alias_bombs_are_measured_before_anything_expands_them(case: str) -> None:
    text, line = ALIAS_BOMBS[case]
    with bounded(10, 64):
        r = load_text(text, "bomb.yaml")
    err = only_error(r)
    assert err.code == "ML0005"
    assert "aliases expand this document" in err.message and "--max-alias-nodes" in err.message
    if line is not None:
        assert err.span.line == line, str(err)


def test_a_few_aliases_are_fine_and_a_lower_limit_applies() -> None:
    text = laughs(3, 3)
    assert load_text(text, "a.yaml").errors == []
    err = only_error(load_text(text, "a.yaml", limits=Limits(max_alias_nodes=10)))
    assert "more than 10 extra nodes" in err.message


RECURSIVE = {
    "list": "a: &x [1, *x]\n",
    "mapping": "a: &x {b: *x}\n",
    "in-labels": OBJECT.replace(
        "metadata: {name: x}", "metadata: &m {name: x, labels: {self: *m}}"
    ),
}


@pytest.mark.parametrize("case", sorted(RECURSIVE))
def test_recursive_aliases_are_rejected(case: str) -> None:
    with bounded(5):
        err = only_error(load_text(RECURSIVE[case], "rec.yaml"))
    assert "recursive alias" in err.message


# --- nesting --------------------------------------------------------------------------------------

DEEP = {
    # name: (text, expected line, message fragment)
    "flow-100": ("a: " + "[" * 100 + "]" * 100 + "\n", 1, "deeper than 64 levels (--max-depth)"),
    "block-70": (
        "".join(" " * i + f"k{i}:\n" for i in range(70)) + " " * 70 + "v\n",
        65,
        "deeper than 64 levels (--max-depth)",
    ),
    "flow-5000": ("a: " + "[" * 5000 + "]" * 5000 + "\n", 1, "exceeded maximum nesting depth"),
    "flow-1000000": (
        "a: " + "{b: " * 1_000_000 + "}" * 1_000_000 + "\n",
        1,
        "exceeded maximum nesting depth",
    ),
    "dashes-5000": ("- " * 5000 + "x\n", 1, "exceeded maximum nesting depth"),
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_nesting(case: str) -> None:
    text, line, fragment = DEEP[case]
    with bounded(10, 128):
        err = only_error(load_text(text, "deep.yaml"))
    assert fragment in err.message
    assert err.span.line == line, str(err)


def test_depth_limit_is_configurable() -> None:
    text = OBJECT + "  a: {b: {c: {d: 1}}}\n"
    assert load_text(text, "d.yaml").errors == []
    err = only_error(load_text(text, "d.yaml", limits=Limits(max_depth=3)))
    assert "deeper than 3 levels" in err.message and err.span.line == 5


# --- huge scalars and numbers ---------------------------------------------------------------------

HUGE = {
    "plain-value": (OBJECT + "  big: " + "x" * (4 * MIB) + "\n", 5),
    "block-literal": (OBJECT + "  big: |\n" + ("    " + "y" * 1023 + "\n") * 4200, 5),
    "explicit-key": (OBJECT + "  ? " + "k" * (4 * MIB) + "\n  : 1\n", 5),
    "quoted-utf8": (OBJECT + '  big: "' + "é" * (2 * MIB) + '"\n', 5),
}


@pytest.mark.parametrize("case", sorted(HUGE))
def test_huge_scalars(case: str) -> None:
    text, line = HUGE[case]
    with bounded(20, 512):
        err = only_error(load_text(text, "huge.yaml"))
    assert err.code == "ML0005" and "larger than 3145728 bytes (--max-scalar-bytes)" in err.message
    assert err.span.line == line


def test_scalar_limit_is_configurable() -> None:
    err = only_error(
        load_text(
            OBJECT + "  a: " + "z" * 2000 + "\n", "s.yaml", limits=Limits(max_scalar_bytes=1000)
        )
    )
    assert "a scalar of 2000 bytes is larger than 1000 bytes" in err.message and err.span.line == 5


def test_huge_numbers_stay_strings_as_kubectl_reads_them() -> None:
    with bounded(5):
        r = load_text(
            OBJECT + "  big: " + "9" * 100_000 + "\n  inf: 1e999\n  u65: 99999999999999999999\n",
            "n.yaml",
        )
    data = r.documents[0].data["data"]
    assert data == {"big": "9" * 100_000, "inf": "1e999", "u65": 1e20}


# --- binary garbage, control characters, encodings ------------------------------------------------

GARBAGE = {
    # name: (bytes, expected line, expected column, message fragment)
    "nul-byte": (b"apiVersion: v1\nkind: Service\nmetadata: {name: a\x00}\n", 3, 19, "NUL byte"),
    "elf-header": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), 1, 8, "NUL byte"),
    "bell-character": (b"a: 1\nb: ding\x07\n", 2, 8, "unacceptable character #x0007"),
    "latin-1": (b"apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n", 3, 21, "not UTF-8"),
    "truncated-utf8": (b"a: 1\nb: \xe2\x82", 2, 4, "not UTF-8"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, 1, "NUL byte"),
    "high-bytes": (b"kind: \x80\x81\x82\n", 1, 7, "not UTF-8"),
    "utf16-bad": (b"\xff\xfea\x00:", 1, 1, "UTF-16"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_binary_garbage_and_bad_encodings(case: str, tmp_path: Path) -> None:
    data, line, col, fragment = GARBAGE[case]
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with bounded(5):
        err = only_error(load_paths([str(path)]))
    assert fragment in err.message
    assert (err.span.line, err.span.col) == (line, col), str(err)


def test_utf16_with_a_byte_order_mark_is_read_as_kubectl_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "u16.yaml"
    path.write_bytes("apiVersion: v1\nkind: Namespace\nmetadata: {name: é}\n".encode("utf-16"))
    r = load_paths([str(path)])
    assert r.errors == [] and r.documents[0].data["metadata"]["name"] == "é"


# --- tabs, line endings ---------------------------------------------------------------------------

TABS = {
    "tab-indented-mapping": ("spec:\n\thost: reviews\n", 2),
    "tab-after-block": ("a: 1\n\t\nb: 2\n", 2),
    "tab-in-sequence": ("items:\n- a\n\t- b\n", 3),
}


@pytest.mark.parametrize("case", sorted(TABS))
def test_tabs_for_indentation(case: str) -> None:
    text, line = TABS[case]
    err = only_error(load_text(text, "tabs.yaml"))
    assert "tab" in err.message and "use spaces" in err.message, err.message
    assert err.span.line == line


def test_a_tab_between_tokens_is_fine_and_crlf_or_cr_keep_lines() -> None:
    assert load_text("a:\tb\n", "t.yaml").errors == []
    for eol in ("\r\n", "\r"):
        text = eol.join(
            [
                "apiVersion: v1",
                "kind: Service",
                "metadata:",
                "  name: a",
                "---",
                "apiVersion: v1",
                "kind: Service",
                "metadata:",
                "  name: b",
                "",
            ]
        )
        r = load_text(text, "eol.yaml")
        assert [str(d.locate(("metadata", "name"))) for d in r.documents] == [
            "eol.yaml:4:3",
            "eol.yaml:9:3",
        ]


# --- duplicate keys -------------------------------------------------------------------------------

DUPLICATES = {
    "top-level": (OBJECT + "  a: '1'\nkind: Secret\n", 6, "kind", "Secret"),
    "flow-mapping": (
        "apiVersion: v1\nkind: Service\nmetadata: {name: a, name: b}\n",
        3,
        "name",
        "b",
    ),
    "nested": (OBJECT + "  a: '1'\n  b: '2'\n  a: '3'\n", 7, "a", "3"),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_keys_warn_at_the_second_key_and_the_last_wins(case: str) -> None:
    text, line, key, value = DUPLICATES[case]
    r = load_text(text, "dup.yaml")
    assert r.errors == []
    [d] = r.diagnostics
    assert d.code == "ML0006" and d.level == "warning" and d.span is not None
    assert d.span.line == line and d.message == f"duplicate key {key!r}: the last value wins"
    doc = r.documents[0].data
    got = doc.get(key) or doc.get("metadata", {}).get(key) or doc.get("data", {}).get(key)
    assert got == value
    # the position of the field is the kept (last) key's
    if case == "nested":
        assert r.documents[0].locate(("data", "a")).line == 7


def test_merge_keys_are_not_duplicates() -> None:
    text = "base: &b {host: a, port: 2}\nover: {<<: *b, port: 3}\n"
    r = load_text(text, "m.yaml")
    assert r.diagnostics == [] and r.documents[0].data["over"] == {"host": "a", "port": 3}


# --- YAML 1.1 readings ----------------------------------------------------------------------------

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {canary: yes}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 0755, targetPort: 8080}]
"""
SERVICE_ENTRY = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts:
  - on
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
"""


def test_yaml11_boolean_where_a_string_is_expected_says_so() -> None:
    diags = [d for d in load_string(SERVICE_ENTRY, "se.yaml").diagnostics if d.level == "error"]
    [d] = diags
    assert d.span is not None and d.span.line == 6
    assert d.message.endswith(
        '(on was read as the boolean true (YAML 1.1); quote it ("on") for a string)'
    ), d.message


def test_yaml11_octal_port_and_boolean_label() -> None:
    diags = load_string(SERVICE, "svc.yaml").diagnostics
    messages = [(d.code, d.span.line if d.span else 0, d.message) for d in diags]
    # the label: Kubernetes wants a string, and the message explains why it is not one
    assert any(
        code == "ML0103" and line == 3 and "yes was read as the boolean true (YAML 1.1)" in msg
        for code, line, msg in messages
    ), messages
    text = SERVICE.replace("labels: {canary: yes}", "labels: {canary: 'yes'}")
    [d] = load_string(text, "svc.yaml").diagnostics
    assert (d.code, d.level) == ("ML0403", "warning") and d.span is not None and d.span.line == 6
    assert d.message == (
        "spec.ports[0].port: 0755 was read as the integer 493 (YAML 1.1 octal); "
        'write 755 for the decimal number, or quote it ("0755") for a string'
    )


def test_scalars_are_read_as_kubectl_reads_them() -> None:
    text = (
        "a: y\nb: NO\nc: 0o17\nd: 1_000\ne: 08\nf: 1:30\ng: 2024-01-01T00:00:00Z\nh: =\n"
        "i: !custom 5\nj: !!binary aGk=\nk: .5\nl: 0x1F\n"
    )
    data = load_text(text, "k.yaml").documents[0].data
    assert data == {
        "a": True,
        "b": False,
        "c": 15,
        "d": 1000,
        "e": 8.0,
        "f": "1:30",
        "g": "2024-01-01T00:00:00Z",
        "h": "=",
        "i": "5",
        "j": "hi",
        "k": 0.5,
        "l": 31,
    }


# --- input limits ---------------------------------------------------------------------------------


def test_many_empty_documents_hit_the_document_limit_quickly() -> None:
    with bounded(10, 256):
        r = load_text("---\n" * 1_000_000, "empty.yaml", limits=Limits(max_documents=1000))
    err = only_error(r)
    assert err.code == "ML0005" and "more than 1000 documents (--max-documents)" in err.message
    assert err.span.line == 1001


def test_file_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 1000)
    err = only_error(load_paths([str(path)], limits=Limits(max_file_bytes=100)))
    assert (
        err.message == "file is larger than 100 bytes (--max-file-bytes)" and err.code == "ML0005"
    )


def test_cli_limit_options(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(OBJECT + "  a: {b: {c: {d: 1}}}\n")
    many = tmp_path / "many.yaml"
    many.write_text(
        "".join(
            f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}}}\n" for i in range(5)
        )
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshlens",
            "compile",
            "-f",
            str(deep),
            "-f",
            str(many),
            "--max-depth",
            "3",
            "--max-documents",
            "3",
            "--max-file-bytes",
            "100000",
            "--max-scalar-bytes",
            "1000",
            "--max-alias-nodes",
            "10",
            "deploy/x.y",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2
    assert (
        f"{deep}:5:11: error: document nests deeper than 3 levels (--max-depth) [ML0005]"
        in r.stderr
    )
    assert "error: more than 3 documents (--max-documents) [ML0005]" in r.stderr
    assert "Traceback" not in r.stderr


# --- a manifest keeps compiling around the broken parts -------------------------------------------

GOOD = (ROOT / "tests" / "cases" / "seed-llm-server-canary" / "manifests.yaml").read_text()
BROKEN_DOCS: list[Callable[[], str]] = [
    lambda: laughs(),
    lambda: "a: &x [*x]\n",
    lambda: "a: " + "[" * 200 + "]" * 200 + "\n",
    lambda: "spec:\n\thost: x\n",
    lambda: SERVICE_ENTRY,
]


def test_broken_documents_leave_the_rest_of_the_file_compiling() -> None:
    from meshlens.pipeline import compile_for

    text = "\n---\n".join([GOOD, *(make() for make in BROKEN_DOCS)])
    with bounded(30, 512):
        loaded = load_string(text, "mixed.yaml")
        result = compile_for(loaded, "deploy/client.mesh-demo")
    assert len(loaded.errors) == 4  # the four documents that are not YAML objects at all
    assert all(e.span is not None and e.span.line > GOOD.count("\n") for e in loaded.errors)
    assert result.cluster("outbound|80|v1|llm-server.mesh-demo.svc.cluster.local") is not None
