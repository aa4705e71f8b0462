"""The diagnostics module: the catalogue table, and messages that show what a terminal would hide
(issue 12, item 12: invisible characters are escaped, confusable letters are pointed out)."""

from __future__ import annotations

import re
import string

import pytest

from meshlens.analyze.core import finding
from meshlens.diagnostics import _CATALOGUE, CODES, Diagnostic, Level, report, visible
from meshlens.pipeline import load_string
from meshlens.source import SourceSpan

# --- the catalogue --------------------------------------------------------------------------------


def test_catalogue_codes_are_unique_and_well_formed() -> None:
    heads = [line.split()[0] for line in _CATALOGUE.splitlines()
             if line.strip() and not line.startswith(("#", " "))]
    assert len(heads) == len(set(heads)) == len(CODES)
    for code, entry in CODES.items():
        assert re.fullmatch(r"ML\d{4}", code) and entry.code == code
        assert entry.level in (Level.ERROR, Level.WARNING, Level.INFO)
        assert entry.template and entry.title and "  " not in entry.template
        assert entry.istio == "" or re.fullmatch(r"IST\d{4}", entry.istio)
        fields = {f for _, f, _, _ in string.Formatter().parse(entry.template) if f}
        entry.template.format(**{f.split("!")[0]: "x" for f in fields})


# --- invisible and confusable characters ----------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("subset name is invalid: v1\u200b",
     "subset name is invalid: v1\\u200b (contains U+200B ZERO WIDTH SPACE, which is invisible)"),
    ('domain name "r\u0435views" invalid',
     'domain name "r\u0435views" invalid (contains U+0435 CYRILLIC SMALL LETTER IE, which looks '
     "like 'e')"),
    ("host a\u00a0b", "host a\\xa0b (contains U+00A0 NO-BREAK SPACE, which looks like a space)"),
    ("name \u202eabc", "name \\u202eabc (contains U+202E RIGHT-TO-LEFT OVERRIDE, which is "
     "invisible)"),
    ("port \uff48ttp", "port \uff48ttp (contains U+FF48 FULLWIDTH LATIN SMALL LETTER H, which "
     "looks like 'h')"),
    ("\u0440\u043e\u0440\u0440", "\u0440\u043e\u0440\u0440 (contains U+0440 CYRILLIC SMALL LETTER "
     "ER, which looks like 'p', and U+043E CYRILLIC SMALL LETTER O, which looks like 'o')"),
    ("two\nlines\tand a NUL \x00", "two\\nlines\\tand a NUL \\x00"),
    ("plain ascii: nothing to do", "plain ascii: nothing to do"),
    ("caf\u00e9 and \u00fcber are fine", "caf\u00e9 and \u00fcber are fine"),
])
def test_visible(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert visible(shown) == shown  # once is enough


def test_every_diagnostic_message_is_visible_in_text_and_json() -> None:
    d = report("ML0401", span=SourceSpan("m.yaml", 3, 5), field="spec.subsets[0].name",
               message="subset name is invalid: v1\u200b")
    expected = ("spec.subsets[0].name: subset name is invalid: v1\\u200b (contains U+200B ZERO "
                "WIDTH SPACE, which is invisible)")
    assert d.message == expected
    assert d.format() == f"m.yaml:3:5: error: {expected} [ML0401]"
    assert d.to_dict()["message"] == expected
    assert Diagnostic("ML0106", None, "x\u200b").message.startswith("x\\u200b (contains")
    assert finding("ML1101", None, what="host", value="r\u0435views", hint="").message.endswith(
        "(contains U+0435 CYRILLIC SMALL LETTER IE, which looks like 'e')")


NAMES = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: "htt\u0440", port: 80, targetPort: "w\u0435b"}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec: {containers: [{name: web, image: x, ports: [{containerPort: 8080, name: "web\u200b"}]}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: default}
spec: {host: "w\u0435b.default.svc.cluster.local",
       subsets: [{name: "v1\u200b"}]}
"""


def test_names_and_hosts_with_lookalikes_are_rejected_and_explained() -> None:
    """Before: the Service port "htt\u0440" (Cyrillic er) was accepted, and istiod's protocol
    sniffing by port name silently read it as TCP; the subset name printed as "v1"."""
    loaded = load_string(NAMES, "m.yaml")
    found = sorted((d.span.line if d.span else 0, d.message) for d in loaded.diagnostics
                   if d.level == Level.ERROR)
    ie = "(contains U+0435 CYRILLIC SMALL LETTER IE, which looks like 'e')"
    zwsp = "(contains U+200B ZERO WIDTH SPACE, which is invisible)"
    assert found == [
        (6, 'spec.ports[0].name: Invalid value: "htt\u0440": a lowercase RFC 1123 label must '
            "consist of lower case alphanumeric characters or '-', and must start and end with an "
            "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?') (contains U+0440 CYRILLIC SMALL LETTER ER, which "
            "looks like 'p')"),
        (6, 'spec.ports[0].targetPort: Invalid value: "w\u0435b": must contain only '
            f"alpha-numeric characters (a-z, 0-9), and hyphens (-) {ie}"),
        (11, 'spec.containers[0].ports[0].name: Invalid value: "web\\u200b": must contain only '
             f"alpha-numeric characters (a-z, 0-9), and hyphens (-) {zwsp}"),
        (16, 'spec.host: domain name "w\u0435b.default.svc.cluster.local" invalid (label '
             f'"w\u0435b" invalid) {ie}'),
        (17, f"spec.subsets[0].name: subset name is invalid: v1\\u200b {zwsp}"),
    ]
    assert loaded.mesh.resources == []


@pytest.mark.parametrize(("name", "why"), [
    ("a-very-long-port-name", "must be no more than 15 characters"),
    ("web--x", "must not contain consecutive hyphens"),
    ("'8080'", "must contain at least one letter (a-z)"),
    ("-web", "must not begin or end with a hyphen"),
])
def test_container_port_names_follow_iana_svc_name(name: str, why: str) -> None:
    text = NAMES.split("---\n")[1].replace('"web\u200b"', name)
    found = [d.message for d in load_string(text, "m.yaml").diagnostics]
    shown = name.strip("'")
    assert found == [f'spec.containers[0].ports[0].name: Invalid value: "{shown}": {why}']
