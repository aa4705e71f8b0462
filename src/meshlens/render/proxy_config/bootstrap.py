"""``proxy-config bootstrap``: the BootstrapConfigDump (jsonpb by default) or its version summary.

Layer: L6. Imports: dump, render.proxy_config.
"""

from __future__ import annotations

from meshlens.dump import ConfigDump
from meshlens.render.proxy_config.common import check_format, missing_section
from meshlens.render.proxy_config.jsonfmt import json_to_yaml, jsonpb
from meshlens.render.proxy_config.table import render_table


def render_bootstrap(dump: ConfigDump, *, output: str = "json") -> str:
    """Render ``proxy-config bootstrap``; ``-o json`` (the default) keeps jsonpb's Struct quirk."""
    check_format(output)
    if dump.bootstrap is None:
        raise missing_section("BootstrapConfigDump")
    if output == "short":
        return version_summary(dump)
    text = jsonpb(dump.bootstrap, indent="    ")
    return (json_to_yaml(text) if output == "yaml" else text) + "\n"


def version_summary(dump: ConfigDump) -> str:
    """Istio, Istio proxy and Envoy versions (``PrintBootstrapSummary``), padding 1."""
    if dump.bootstrap is None:
        raise missing_section("BootstrapConfigDump")
    node = dump.bootstrap.bootstrap.node
    md = node.metadata.fields
    istio_version = md["ISTIO_VERSION"].string_value if "ISTIO_VERSION" in md else ""
    sha = md["ISTIO_PROXY_SHA"].string_value if "ISTIO_PROXY_SHA" in md else ""
    parts = sha.split(":")
    if len(parts) > 1:
        sha = parts[1]
    build = node.user_agent_build_version
    v = build.version
    envoy = f"{v.major_number}.{v.minor_number}.{v.patch}"
    bmd = build.metadata.fields
    for key, sep in (("build.label", "-"), ("revision.status", "/"), ("build.type", "/"),
                     ("ssl.version", "/")):
        if key in bmd:
            envoy += sep + bmd[key].string_value
    rows = []
    if istio_version:
        rows.append(["Istio Version:", istio_version])
    if sha:
        rows.append(["Istio Proxy Version:", sha])
    rows.append(["Envoy Version:", envoy])
    return render_table(rows, padding=1)
