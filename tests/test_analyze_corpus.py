"""The precision corpus: `meshlens analyze` on real-world configurations gives exactly the
Warnings and Errors listed by hand in ``tests/analyze_corpus/expected.toml``, each with a one-line
reason. Any other Warning or Error fails (a false alarm to fix in the analyzer, not here); a
listed finding that no longer appears fails too (a stale entry or a lost check).

The configurations (:func:`configurations`):

* bookinfo (``tests/conformance/samples``, hand-written equivalents of Istio's ``samples/``):
  the platform alone; every ``networking/*.yaml`` applied one at a time over the platform, and
  over the platform plus ``destination-rule-all.yaml`` (the order Istio's guides use); every
  extra platform file (details-v2, ratings-v2, db, versions); and the guides' pairs of a route
  with the version it routes to;
* helloworld, httpbin, curl, sleep, tcp-echo, grpc-echo, alone and with their gateway or
  routing files;
* configurations of Istio's documentation tasks (``tests/analyze_corpus/tasks``: circuit
  breaking, mirroring, egress, locality failover) over the samples they use;
* the manifests of every golden case in ``tests/cases/*/``.

Files are combined as ``kubectl apply`` would apply them in order: a later object with the same
kind, namespace and name replaces the earlier one (e.g. tcp-echo-20-v2's VirtualService replaces
tcp-echo-all-v1's). ``tests/analyze_corpus/namespaces.yaml`` labels the samples' namespaces for
injection, as the guides do before deploying them.

Info findings are not listed: they are notes (unused subsets, undeclared port protocols, ...).
Run ``python tests/test_analyze_corpus.py [SUBSTRING]`` to print what a configuration produces.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshlens.analyze import load_for_analysis, run
from meshlens.analyze.core import Finding, dotted
from meshlens.analyze.report import finalize
from meshlens.diagnostics import Level

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "conformance" / "samples"
CORPUS = ROOT / "tests" / "analyze_corpus"
NAMESPACES = CORPUS / "namespaces.yaml"
EXPECTED: dict[str, dict[str, str]] = tomllib.loads(
    (CORPUS / "expected.toml").read_text())["configurations"]

PLATFORM = "bookinfo/platform/kube/bookinfo.yaml"
DR_ALL = "bookinfo/networking/destination-rule-all.yaml"
INGRESS = "istio-system/ingressgateway.yaml"


def configurations() -> Iterator[tuple[str, list[Path]]]:
    """(name, files in apply order) of every configuration of the corpus."""
    def s(*names: str) -> list[Path]:
        return [NAMESPACES] + [SAMPLES / n for n in names]

    yield "bookinfo", s(PLATFORM)
    for f in sorted((SAMPLES / "bookinfo" / "networking").glob("*.yaml")):
        rel = str(f.relative_to(SAMPLES))
        yield f"bookinfo + {f.name}", s(PLATFORM, rel)
        if rel != DR_ALL:
            yield f"bookinfo + destination-rule-all.yaml + {f.name}", s(PLATFORM, DR_ALL, rel)
    for f in sorted((SAMPLES / "bookinfo" / "platform" / "kube").glob("bookinfo-*.yaml")):
        yield f"bookinfo + {f.name}", s(PLATFORM, str(f.relative_to(SAMPLES)))
    net = "bookinfo/networking/"
    kube = "bookinfo/platform/kube/"
    yield "bookinfo + details-v2 + destination-rule-all + virtual-service-details-v2", s(
        PLATFORM, kube + "bookinfo-details-v2.yaml", DR_ALL, net + "virtual-service-details-v2.yaml")
    yield "bookinfo + ratings-v2 + db + destination-rule-all + virtual-service-ratings-db", s(
        PLATFORM, kube + "bookinfo-ratings-v2.yaml", kube + "bookinfo-db.yaml", DR_ALL,
        net + "virtual-service-ratings-db.yaml")
    yield "bookinfo + gateway + ingress + destination-rule-all + virtual-service-all-v1", s(
        PLATFORM, INGRESS, net + "bookinfo-gateway.yaml", DR_ALL,
        net + "virtual-service-all-v1.yaml")
    yield "helloworld", s("helloworld/helloworld.yaml")
    yield "helloworld + gateway + ingress", s("helloworld/helloworld.yaml", INGRESS,
                                              "helloworld/helloworld-gateway.yaml")
    yield "helloworld + gateway-api", s("helloworld/helloworld.yaml",
                                        "helloworld/gateway-api/helloworld-versions.yaml",
                                        "helloworld/gateway-api/helloworld-gateway.yaml",
                                        "helloworld/gateway-api/helloworld-route.yaml")
    yield "httpbin", s("httpbin/httpbin.yaml")
    yield "httpbin + gateway + ingress", s("httpbin/httpbin.yaml", INGRESS,
                                           "httpbin/httpbin-gateway.yaml")
    yield "httpbin + gateway-api", s("httpbin/httpbin.yaml",
                                     "httpbin/gateway-api/httpbin-gateway.yaml")
    yield "curl", s("curl/curl.yaml")
    yield "curl + httpbin", s("curl/curl.yaml", "httpbin/httpbin.yaml")
    yield "sleep", s("sleep/sleep.yaml")
    yield "tcp-echo", s("tcp-echo/tcp-echo.yaml")
    yield "tcp-echo-services", s("tcp-echo/tcp-echo-services.yaml")
    yield "tcp-echo-services + all-v1 + ingress", s("tcp-echo/tcp-echo-services.yaml", INGRESS,
                                                    "tcp-echo/tcp-echo-all-v1.yaml")
    yield "tcp-echo-services + all-v1 + 20-v2 + ingress", s(
        "tcp-echo/tcp-echo-services.yaml", INGRESS, "tcp-echo/tcp-echo-all-v1.yaml",
        "tcp-echo/tcp-echo-20-v2.yaml")
    yield "tcp-echo-services + gateway-api", s("tcp-echo/tcp-echo-services.yaml",
                                               "tcp-echo/gateway-api/tcp-echo-all-v1.yaml")
    yield "grpc-echo", s("grpc-echo/grpc-echo.yaml")
    yield "curl + grpc-echo", s("curl/curl.yaml", "grpc-echo/grpc-echo.yaml")
    tasks = CORPUS / "tasks"
    yield "task circuit-breaking", s("httpbin/httpbin.yaml", "curl/curl.yaml") + [
        tasks / "circuit-breaking.yaml"]
    yield "task mirroring", s("httpbin/httpbin.yaml", "curl/curl.yaml") + [
        tasks / "mirroring.yaml"]
    yield "task egress", s("curl/curl.yaml", "httpbin/httpbin.yaml") + [tasks / "egress.yaml"]
    yield "task locality-failover", s("helloworld/helloworld.yaml", "curl/curl.yaml") + [
        tasks / "locality-failover.yaml"]
    for case in sorted((ROOT / "tests" / "cases").glob("*/manifests.yaml")):
        yield f"case {case.parent.name}", [case]


def mesh_config(files: list[Path]) -> str | None:
    """A golden case's ``mesh.yaml`` (its MeshConfig), as the golden test passes it."""
    mesh = files[-1].parent / "mesh.yaml"
    return str(mesh) if files[-1].name == "manifests.yaml" and mesh.exists() else None


def applied(files: list[Path], out: Path) -> Path:
    """The documents of ``files`` as ``kubectl apply -f`` in order leaves them, in one file."""
    objects: dict[tuple[str, str, str, str], object] = {}
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not isinstance(doc, dict):
                continue
            meta = doc.get("metadata") or {}
            group = str(doc.get("apiVersion", "")).rpartition("/")[0]
            key = (group, str(doc.get("kind")), str(meta.get("namespace", "default")),
                   str(meta.get("name")))
            objects[key] = doc  # a dict keeps the first position, as an update keeps the object
    out.write_text(yaml.safe_dump_all(list(objects.values()), sort_keys=False))
    return out


def analyzed(files: list[Path], tmp: Path) -> list[Finding]:
    loaded = load_for_analysis([str(applied(files, tmp / "config.yaml"))],
                               mesh_config=mesh_config(files))
    assert not loaded.errors, loaded.errors
    return finalize(run(loaded), loaded.mesh.resources)


def key(f: Finding) -> str:
    """``CODE Kind ns/name [field]``: the finding's identity in expected.toml."""
    field = dotted(f.path)
    return " ".join(x for x in (f.code, f.origin, field) if x)


CONFIGS = dict(configurations())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_corpus_gives_exactly_the_listed_findings(name: str, tmp_path: Path) -> None:
    findings = analyzed(CONFIGS[name], tmp_path)
    got = {key(f): f.message for f in findings if f.level != Level.INFO}
    expected = EXPECTED.get(name, {})
    unexpected = {k: v for k, v in got.items() if k not in expected}
    missing = sorted(set(expected) - set(got))
    assert not unexpected, f"false alarms (or findings to list with a reason): {unexpected}"
    assert not missing, f"listed but not found: {missing}"


def test_expected_data_names_only_configurations_that_exist() -> None:
    assert set(EXPECTED) <= set(CONFIGS), sorted(set(EXPECTED) - set(CONFIGS))
    for name, entries in EXPECTED.items():
        for finding_key, reason in entries.items():
            assert reason.strip() and "\n" not in reason, (name, finding_key)


def test_the_corpus_covers_every_sample_and_golden_case() -> None:
    used = {f.resolve() for files in CONFIGS.values() for f in files}
    samples = {f.resolve() for f in SAMPLES.rglob("*.yaml")}
    assert samples <= used, sorted(str(f) for f in samples - used)
    cases = {f.resolve() for f in (ROOT / "tests" / "cases").glob("*/manifests.yaml")}
    assert cases <= used


if __name__ == "__main__":  # print what the corpus produces, to write expected.toml by hand
    import tempfile

    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    for config, paths in CONFIGS.items():
        if wanted not in config:
            continue
        with tempfile.TemporaryDirectory() as d:
            shown = [f for f in analyzed(paths, Path(d)) if f.level != Level.INFO]
        print(f"== {config}")
        for f in shown:
            print(f"   {key(f)}: {f.message[:200]}")
