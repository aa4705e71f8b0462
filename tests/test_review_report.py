"""``meshlens report``: the mesh graph from compiled config, rendered by a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshlens.pipeline import load
from meshlens.review.report import build_report
from meshlens.review.report_html import render_html

ROOT = Path(__file__).resolve().parents[1]
BOOKINFO = ROOT / "tests" / "conformance" / "samples" / "bookinfo"
NET = BOOKINFO / "networking"
SEED = ROOT / "src" / "meshlens" / "examples" / "llm-server.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": "default", "labels": {"istio-injection": "enabled"}}}
#: The flags the Chromium probe uses here: no background traffic, no sandbox (root), no GPU.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
#: Environment-dependent, documented: without Debian's chromium the two browser tests skip;
#: .ci/run installs it, so CI always runs them.
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
OFFLINE = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


@pytest.fixture(scope="module")
def bookinfo_no_v3(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Bookinfo whose reviews VirtualService routes to v3, with no reviews-v3 pods, and its gateway."""
    d = tmp_path_factory.mktemp("bookinfo")
    docs = [x for x in yaml.safe_load_all((BOOKINFO / "platform" / "kube" / "bookinfo.yaml").read_text())
            if x["metadata"]["name"] != "reviews-v3"]
    (d / "platform.yaml").write_text(yaml.safe_dump_all([NAMESPACE] + docs))
    return [str(d / "platform.yaml"), str(NET / "destination-rule-all.yaml"),
            str(NET / "virtual-service-reviews-v3.yaml"), str(NET / "bookinfo-gateway.yaml")]


def test_the_uh_edge_is_red_with_the_fix(bookinfo_no_v3: list[str]) -> None:
    data = build_report(load(bookinfo_no_v3))
    [uh] = [e for e in data["edges"] if e.get("flag") == "UH"]
    assert uh["source"] == "svc:reviews.default.svc.cluster.local" and uh["subset"] == "v3"
    assert uh["target"] == "empty:outbound|9080|v3|reviews.default.svc.cluster.local"
    fixes = [data["findings"][i] for i in uh["findings"]]
    assert any(f["fix"] and f["file"].endswith("destination-rule-all.yaml") for f in fixes), fixes
    assert data["flags"]["UH"] in render_html(data)
    gateway = [e for e in data["edges"] if e["source"].startswith("gw:")]
    assert [e["target"] for e in gateway] == ["svc:productpage.default.svc.cluster.local"]
    workloads = {e["target"] for e in data["edges"] if e["source"] == "svc:reviews.default.svc.cluster.local"}
    assert workloads == {uh["target"]}, "all reviews traffic goes to v3, which has no pod"


def test_panels_hold_proxy_config_tables_and_traces(bookinfo_no_v3: list[str]) -> None:
    data = build_report(load(bookinfo_no_v3))
    panel = data["panels"]["wl:deploy/productpage-v1.default"]
    if panel["sections"] is None:  # alike proxies share their representative's tables
        panel = data["panels"]["wl:" + panel["group"]]
    titles = [s["title"] for s in panel["sections"]]
    assert titles == ["proxy-config clusters", "proxy-config listeners", "proxy-config routes",
                      "proxy-config endpoints"]
    assert any(line.split()[:3] == ["reviews.default.svc.cluster.local", "9080", "v3"]
               for line in panel["sections"][0]["text"].splitlines())
    reviews = data["services"]["svc:reviews.default.svc.cluster.local"]
    [trace] = [t for t in reviews["traces"] if t["match"] == "prefix '/'"]
    assert trace["verdict"] == "UH" and trace["clusters"] == ["outbound|9080|v3|reviews.default.svc.cluster.local"]
    assert any("DestinationRule default/reviews" in row for c in reviews["clusters"] for row in c["fields"]) or \
        all(not c["fields"] for c in reviews["clusters"])


def test_the_change_view_marks_reweighted_edges(tmp_path: Path) -> None:
    common = [str(tmp_path / "ns.yaml"), str(BOOKINFO / "platform" / "kube" / "bookinfo.yaml"),
              str(NET / "destination-rule-all.yaml")]
    (tmp_path / "ns.yaml").write_text(yaml.safe_dump(NAMESPACE))
    before = load(common + [str(NET / "virtual-service-reviews-80-20.yaml")])
    after = load(common + [str(NET / "virtual-service-reviews-90-10.yaml")])
    data = build_report(after, base=before)
    changed = {e["subset"]: (e.get("change"), e.get("was_weight"), e["weight"])
               for e in data["edges"] if e["source"] == "svc:reviews.default.svc.cluster.local"}
    assert changed == {"v1": ("reweighted", 80, 90), "v2": ("reweighted", 20, 10)}
    assert data["change"]["edges_reweighted"] == 2


def _chromium(url: str, *extra: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "Debian's chromium package: .ci/run installs it"
    return subprocess.run([CHROMIUM, *FLAGS, *extra, "--virtual-time-budget=15000", url],
                          capture_output=True, text=True, timeout=timeout)


def _render(tmp_path: Path, paths: list[str], name: str) -> tuple[Path, dict[str, str]]:
    page = tmp_path / f"{name}.html"
    out = subprocess.run([sys.executable, "-m", "meshlens", "report", *[x for p in paths for x in ("-f", p)],
                          "-o", str(page)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    dom = _chromium(page.as_uri(), f"--user-data-dir={tmp_path / (name + '-profile')}", "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stderr[-2000:]
    attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    errors = re.search(r'<div id="errors"[^>]*>(.*?)</div>', dom.stdout, re.S)
    assert errors is None or "hidden" in errors.group(0), errors.group(1)
    return page, attrs


@needs_chromium
def test_chromium_renders_bookinfo_without_errors_and_offline(tmp_path: Path, bookinfo_no_v3: list[str]) -> None:
    page, attrs = _render(tmp_path, bookinfo_no_v3, "bookinfo")
    assert attrs["ready"] == "1" and int(attrs["nodes"]) >= 10 and int(attrs["edges"]) >= 5
    assert int(attrs["panels"]) >= 5, "the packed panels unpack in the browser"
    assert "UH" in attrs["flagged"]
    shot = tmp_path / "bookinfo.png"
    _chromium(page.as_uri(), f"--user-data-dir={tmp_path / 'shot-profile'}", "--window-size=1400,900",
              f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000
    # offline: no proxy, no DNS; the page needs neither
    dom = _chromium(page.as_uri(), f"--user-data-dir={tmp_path / 'offline'}", *OFFLINE, "--dump-dom")
    assert 'data-ready="1"' in dom.stdout
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "default-src 'none'" in text and "fetch(" not in text.split('id="data"')[0].split("cytoscape")[-1]


@needs_chromium
def test_chromium_renders_the_seed_and_a_large_mesh(tmp_path: Path) -> None:
    _, attrs = _render(tmp_path, [str(SEED)], "seed")
    assert attrs["ready"] == "1" and int(attrs["edges"]) >= 2
    gen = subprocess.run([sys.executable, str(ROOT / "bench" / "gen.py"), "--services", "150",
                          "--out", str(tmp_path / "mesh")], capture_output=True, text=True, timeout=120)
    assert gen.returncode == 0, gen.stderr
    page, attrs = _render(tmp_path, [str(tmp_path / "mesh")], "large")
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                page.read_text(), re.S).group(1))
    assert len(data["nodes"]) > 400, "large enough to start with namespaces collapsed"
    assert attrs["ready"] == "1" and int(attrs["nodes"]) < 20, "namespaces are collapsed at first"
