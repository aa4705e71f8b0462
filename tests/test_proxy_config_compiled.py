"""``meshlens proxy-config`` on compiled config: goldens for the seed and bookinfo examples.

The views are the istioctl tables (checked byte for byte against istioctl's own goldens in
test_proxy_config_conformance.py); these goldens pin what meshlens compiles, seen through them.
Regenerate with ``pytest --update-goldens`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import check
from typer.testing import CliRunner, Result

from meshlens.cli.proxy_config import proxy_config_app

ROOT = Path(__file__).resolve().parents[1]
GOLDENS = ROOT / "tests" / "goldens" / "proxy-config"
SEED = ROOT / "tests" / "cases" / "seed-llm-server-canary" / "manifests.yaml"
BOOKINFO = ROOT / "tests" / "cases" / "bookinfo" / "manifests.yaml"
SEED_PROXY = "deploy/client.mesh-demo"
BOOKINFO_PROXY = "deploy/productpage-v1.bookinfo"

CASES = {
    "seed-cluster.txt": ["cluster", "-f", str(SEED), SEED_PROXY],
    "seed-cluster-explain-ports.txt": ["cluster", "-f", str(SEED), SEED_PROXY, "--explain-ports"],
    "seed-endpoint.txt": ["endpoint", "-f", str(SEED), SEED_PROXY],
    "seed-endpoint-explain-ports.txt": ["endpoint", "-f", str(SEED), SEED_PROXY,
                                        "--explain-ports"],
    "seed-bootstrap-short.txt": ["bootstrap", "-o", "short", "-f", str(SEED), SEED_PROXY],
    "seed-all.txt": ["all", "-f", str(SEED), SEED_PROXY],
    "seed-cluster-v1.json": ["cluster", "-f", str(SEED), SEED_PROXY, "--subset", "v1",
                             "-o", "json"],
    "bookinfo-all.txt": ["all", "-f", str(BOOKINFO), BOOKINFO_PROXY, "--with-headers"],
    "bookinfo-cluster-explain-ports.txt": ["cluster", "-f", str(BOOKINFO), BOOKINFO_PROXY,
                                           "--explain-ports"],
}


def _run(args: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(proxy_config_app, args, input=stdin, catch_exceptions=False)


@pytest.mark.parametrize("golden", sorted(CASES))
def test_compiled_views(golden: str, update_goldens: bool) -> None:
    result = _run(CASES[golden])
    assert result.exit_code == 0, result.stderr
    check(GOLDENS / golden, result.stdout, update_goldens)


def test_seed_port_layers_follow_one_number() -> None:
    # 80 (the Service port, in the cluster name) becomes 8080 (the targetPort) on the
    # endpoints; both subsets are reached from the port-80 listener after capture on 15001.
    out = _run(CASES["seed-cluster-explain-ports.txt"]).stdout
    rows = {line.split()[2]: line.split() for line in out.splitlines()
            if line.startswith("llm-server.")}
    assert rows["v1"][-4:] == ["15001", "0.0.0.0_80", "80", "8080"]
    assert rows["v2"][-4:] == ["15001", "0.0.0.0_80", "80", "8080"]


def test_compiled_dump_and_config_dump_agree(tmp_path: Path) -> None:
    # `compile -o json` output read back with --config-dump gives the same views.
    import json

    from meshlens.emit import config_dump, to_dict
    from meshlens.pipeline import compile_for, load

    result = compile_for(load([str(SEED)]), SEED_PROXY)
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(to_dict(config_dump(result)), indent=2))
    for view in ("cluster", "endpoint", "all"):
        compiled = _run([view, "-f", str(SEED), SEED_PROXY]).stdout
        read = _run([view, "--config-dump", str(path)])
        assert read.exit_code == 0, read.stderr
        assert read.stdout == compiled
    stdin = _run(["cluster", "--config-dump", "-"], stdin=path.read_text())
    assert stdin.stdout == _run(CASES["seed-cluster.txt"]).stdout


def test_all_json_is_the_dump_itself() -> None:
    import json

    out = _run(["all", "-f", str(SEED), SEED_PROXY, "-o", "json"]).stdout
    dump = json.loads(out)
    assert [c["@type"].rsplit(".", 1)[-1] for c in dump["configs"]][:3] == [
        "BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump"]


@pytest.mark.parametrize(("args", "message"), [
    (["cluster"], "error: proxy-config cluster requires PROXY with -f PATH, or --config-dump FILE"),
    (["cluster", "-f", str(SEED)], "error: proxy-config cluster: PROXY is required with -f"),
    (["cluster", SEED_PROXY], "error: proxy-config cluster: give the manifests to compile"),
    (["cluster", "-f", str(SEED), SEED_PROXY, "--config-dump", "x.json"],
     "not both"),
    (["cluster", "-f", str(SEED), "deploy/nope.mesh-demo"], "error: no Deployment nope"),
    (["cluster", "-f", str(SEED), SEED_PROXY, "-o", "table"],
     'error: output format "table" not supported'),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = _run(args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
