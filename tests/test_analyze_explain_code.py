"""`meshlens explain code`: every analyze code documents what it checks, why it matters, when it
stays quiet and an example, next to the analyzer that emits it (a module's ``DOCS``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from meshlens import analyze
from meshlens.analyze import ANALYZERS
from meshlens.analyze.code_docs import documented, lookup, render_text
from meshlens.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[1]


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", "explain", "code", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("code", sorted(c for c in CODES if c.startswith("ML1")))
def test_every_analyze_code_in_the_catalogue_is_documented(code: str) -> None:
    entry = documented().get(code)
    assert entry is not None, f"{code} is emitted by no analyzer"
    assert entry.doc is not None, f"{code}: add it to {entry.analyzer}'s DOCS"
    for field in ("checks", "matters", "quiet", "example"):
        text = getattr(entry.doc, field)
        assert text.strip() and text == text.strip(), (code, field)


def test_docs_live_with_the_analyzer_that_emits_the_code() -> None:
    for module in ANALYZERS:
        docs = getattr(module, "DOCS", {})
        assert set(docs) == set(module.METADATA.codes), module.METADATA.name
    assert set(analyze.DOCS) == {"ML1001"}


def test_ist_codes_list_every_meshlens_code_that_implements_them() -> None:
    assert [e.code for e in lookup("IST0101")] == ["ML1101", "ML1103", "ML1121", "ML1161", "ML1181"]
    assert [e.code for e in lookup("ist0173")] == ["ML1114"]
    assert lookup("IST9999") == [] and lookup("ML9999") == []
    ml0 = lookup("ML0301")[0]
    assert ml0.doc is None and "not by an analyzer" in render_text([ml0])


def test_cli_explain_code_text_json_and_errors() -> None:
    r = explain("ML1206")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ML1206 Info: route copied to port 80 by istiod's workaround\n")
    for label in ("  checks: ", "  why it matters: ", "  quiet when: ", "  example:\n"):
        assert label in r.stdout
    assert "buildSidecarVirtualHostsForVirtualService" in r.stdout
    data = json.loads(explain("IST0101", "-o", "json").stdout)
    assert [d["code"] for d in data] == ["ML1101", "ML1103", "ML1121", "ML1161", "ML1181"]
    assert data[0]["istio_code"] == "IST0101" and data[0]["flag"] == "NC"
    assert set(data[0]) >= {"checks", "matters", "quiet", "example", "level", "analyzer"}
    everything = json.loads(explain("all", "-o", "json").stdout)
    assert {d["code"] for d in everything} == set(documented())
    schema = json.loads((ROOT / "src" / "meshlens" / "analyze" / "schemas" /
                         "explain-code.schema.json").read_text())
    jsonschema.validate(everything + json.loads(explain("ML0301", "-o", "json").stdout), schema)
    bad = explain("ML9999")
    assert bad.returncode == 2 and "unknown code 'ML9999'" in bad.stderr
