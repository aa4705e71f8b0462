"""istioctl conformance: every case of tests/conformance/istioctl/cases.json, byte for byte.

Each case's istioctl command line runs as is through ``meshlens proxy-config`` (istioctl's
``--file`` is accepted as a hidden alias), from the conformance folder so its relative paths
resolve. Comparison follows upstream: its Go tests trim whitespace at both ends, except the
secret and ``all`` tests, which compare exactly; ECDS JSON is compared after re-indenting
(protojson randomizes its whitespace).

``VALID CERT`` in the secret tables depends on the clock, as in istioctl. The goldens hold
until the ROOTCA certificates expire (2033-05-02); the same cases also run at a fixed time.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from meshlens.cli.proxy_config import proxy_config_app
from meshlens.dump import parse_config_dump
from meshlens.render.proxy_config.all import render_all
from meshlens.render.proxy_config.jsonfmt import go_indent, json_to_yaml, jsonpb
from meshlens.render.proxy_config.listener import ListenerFilter, render_listeners
from meshlens.render.proxy_config.route import describe_route_domains
from meshlens.render.proxy_config.secret import render_secrets
from meshlens.render.proxy_config.table import render_table

ISTIOCTL = Path(__file__).resolve().parent / "conformance" / "istioctl"
ROOTCA_EXPIRY = dt.datetime(2033, 5, 2, 3, 41, 33, tzinfo=dt.UTC)


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((ISTIOCTL / "cases.json").read_text())["cases"]
    return cases


def _run(args: list[str]) -> Result:
    result = CliRunner().invoke(proxy_config_app, args, catch_exceptions=False)
    return result


def _normalize_json(text: str) -> str:
    return json.dumps(json.loads(text), indent=4, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["id"])
def test_case_matches_istioctl(case: dict[str, Any], conformance: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    words = shlex.split(case["command"])
    assert words[:2] == ["istioctl", "proxy-config"], case["command"]
    if case["id"].startswith("secret") or case["id"].startswith("all"):
        if dt.datetime.now(dt.UTC) >= ROOTCA_EXPIRY:
            pytest.skip("the golden's ROOTCA certificates have expired; see the fixed-clock test")
    monkeypatch.chdir(conformance / "istioctl")
    result = _run(words[2:])
    assert result.exit_code == 0, result.stderr
    expected = (ISTIOCTL / case["expected"]).read_text()
    actual = result.stdout
    compare = case["compare"]
    if compare.startswith("json-normalized"):
        assert _normalize_json(actual) == _normalize_json(expected)
        assert actual == expected  # our protojson is already the normalized form
    elif compare.startswith("exact (") and ("trim" in compare):
        assert actual.strip() == expected.strip()
    else:
        # "exact": upstream compares byte for byte; only whitespace at the very end may differ.
        assert actual.rstrip() == expected.rstrip()
    assert actual == expected, "byte-exact output expected as well"


@pytest.mark.parametrize("case_id", ["secret-istio", "secret-spire", "all-short",
                                     "all-short-with-headers"])
def test_clock_dependent_cases_at_a_fixed_time(case_id: str) -> None:
    case = next(c for c in _cases() if c["id"] == case_id)
    words = shlex.split(case["command"])
    dump = parse_config_dump((ISTIOCTL / words[words.index("--file") + 1]).read_text())
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    if case_id.startswith("secret"):
        actual = render_secrets(dump, now=now)
    else:
        actual = render_all(dump, with_headers="--with-headers" in words, now=now)
    assert actual == (ISTIOCTL / case["expected"]).read_text()


def test_valid_cert_follows_the_clock() -> None:
    dump = parse_config_dump(
        (ISTIOCTL / "writer/envoy/configdump/testdata/secret/istio/config_dump.json").read_text())
    # The leaf cert is valid 2023-05-15T01:30:52Z .. 2023-05-16T01:32:52Z.
    during = render_secrets(dump, now=dt.datetime(2023, 5, 15, 12, tzinfo=dt.UTC)).splitlines()
    after_all = render_secrets(dump, now=dt.datetime(2034, 1, 1, tzinfo=dt.UTC)).splitlines()
    col = during[0].index("VALID CERT")

    def valid(lines: list[str]) -> list[str]:
        return [line[col:].split()[0] for line in lines[1:]]

    # The WARMING secret has no certificate: empty columns, never valid.
    assert valid(during) == ["false", "true", "true"]
    assert valid(after_all) == ["false", "false", "false"]
    assert during[1].split() == ["configmap://some/thing", "WARMING", "false"]


# --- Go behaviours the goldens depend on, pinned one by one -----------------------------------


def test_tabwriter_pads_empty_last_cells_and_never_the_trailing_text() -> None:
    out = render_table([["A", "B", "C"], ["aaaa", "", ""], ["b", "x", "tail"]], padding=5)
    # width = widest cell + padding: "aaaa" + 5 → 9; "B"/"x" + 5 → 6.
    assert out == "A        B     C\naaaa" + " " * 11 + "\nb        x     tail\n"


def test_tabwriter_column_blocks_end_at_shorter_rows() -> None:
    # Go computes widths per block of consecutive rows that have the column.
    out = render_table([["a", "b", "c"], ["only"], ["long-cell", "d", "e"]], padding=1)
    assert out == "a b c\nonly\nlong-cell d e\n"


def test_jsonpb_struct_maps_are_indented_one_level_too_deep() -> None:
    dump = parse_config_dump(
        (ISTIOCTL / "writer/envoy/configdump/testdata/configdump.json").read_text())
    assert dump.bootstrap is not None
    text = jsonpb(dump.bootstrap, indent="    ")
    assert '            "metadata": {\n                    "ISTIO_PROXY_SHA"' in text
    assert '"ISTIO_VERSION": "1.10.0"\n                },' in text


def test_yaml_quotes_like_go_yaml_v2() -> None:
    text = json_to_yaml(json.dumps({
        "int": "1605", "ts": "2022-12-08T11:03:53.361Z", "version": "2022-12-08T09:07:09Z/10",
        "bool": "on", "empty": "", "at": "@type", "colon": "a: b", "sexagesimal": "1:20",
        "list": [], "map": {}, "n": 1, "f": 0.25, "null": None, "port10": 1, "port9": 2,
        "seq": ["a", {"k": "v", "j": [1]}],
    }))
    assert text == (
        "at: '@type'\nbool: \"on\"\ncolon: 'a: b'\nempty: \"\"\nf: 0.25\nint: \"1605\"\n"
        "list: []\nmap: {}\n\"n\": 1\n\"null\": null\nport9: 2\nport10: 1\n"
        "seq:\n- a\n- j:\n  - 1\n  k: v\n"
        "sexagesimal: \"1:20\"\nts: \"2022-12-08T11:03:53.361Z\"\n"
        "version: 2022-12-08T09:07:09Z/10\n")


def test_yaml_folds_long_plain_strings_at_80_columns() -> None:
    words = " ".join(f"word{i}" for i in range(30))
    text = json_to_yaml(json.dumps({"k": words}))
    lines = text.splitlines()
    # A line breaks at the first space once it is past column 80; the rest is indented.
    assert len(lines) == 3 and all(len(line) > 80 for line in lines[:2])
    assert lines[0].startswith("k: word0 ") and lines[1].startswith("  word13 ")
    assert " ".join(line.strip() for line in lines)[3:] == words


def test_go_indent_matches_marshal_indent() -> None:
    assert go_indent('[{"a":[],"b":{}},1]', "    ") == (
        '[\n    {\n        "a": [],\n        "b": {}\n    },\n    1\n]')


def test_route_domains_shortening() -> None:
    assert describe_route_domains(["example.com", "example.com:8080"]) == "example.com"
    assert describe_route_domains(
        ["reviews.default.svc.cluster.local", "reviews", "reviews.default.svc",
         "reviews.default", "10.96.0.7"]) == "reviews, reviews.default + 1 more..."


def test_real_sidecar_listener_dump_renders() -> None:
    # No upstream golden: pin the shape of the real sidecar dump (spec §1.4 illustration).
    dump = parse_config_dump((ISTIOCTL / "authz/testdata/configdump.yaml").read_text())
    # stats.PluginConfig is known once meshlens.compiler.telemetry has declared it
    assert "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange" in dump.skipped_types
    out = render_listeners(dump).splitlines()
    assert out[0].split() == ["ADDRESSES", "PORT", "MATCH", "DESTINATION"]
    assert any(line.startswith("10.96.0.10     53    ALL   ")
               and line.endswith("   Cluster: outbound|53||kube-dns.kube-system.svc.cluster.local")
               for line in out)
    assert any(line.startswith("0.0.0.0        15006 Trans: tls; App: TCP TLS; Addr: 0.0.0.0/0 ")
               and line.endswith("InboundPassthroughClusterIpv4") for line in out)
    short = render_listeners(dump, filter=ListenerFilter(verbose=False)).splitlines()
    assert "0.0.0.0        80    HTTP+TCP" in short
    assert "0.0.0.0        15001 TCP" in short
