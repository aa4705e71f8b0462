"""``proxy-config ecds``: the extension configs of every EcdsConfigDump section.

Layer: L6. Imports: dump, render.proxy_config.

All ECDS sections (http, tcp_listener, quic_listener filters) are concatenated in dump order.
The table is sorted by (type URL, name); a filter without ``typed_config`` has an empty TYPE and
sorts first. ``-o json`` is protojson, printed in its normalized form (see :mod:`jsonfmt`).
"""

from __future__ import annotations

from typing import Any

from envoy.admin.v3 import config_dump_shared_pb2
from envoy.config.core.v3 import extension_pb2

from meshlens.dump import ConfigDump, unpack
from meshlens.render.proxy_config.common import check_format, missing_section
from meshlens.render.proxy_config.gosort import go_sort_slice
from meshlens.render.proxy_config.jsonfmt import json_to_yaml, protojson
from meshlens.render.proxy_config.table import render_table

TYPE_PREFIX = "type.googleapis.com/"


def combined_ecds(dump: ConfigDump) -> config_dump_shared_pb2.EcdsConfigDump:
    """One EcdsConfigDump holding the filters of every ECDS section, in order."""
    if not dump.ecds:
        raise missing_section("EcdsConfigDump")
    out = config_dump_shared_pb2.EcdsConfigDump()
    for section in dump.ecds:
        out.ecds_filters.extend(section.ecds_filters)
    return out


def render_ecds(dump: ConfigDump, *, output: str = "short") -> str:
    """Render ``proxy-config ecds``."""
    check_format(output)
    combined = combined_ecds(dump)
    if output != "short":
        text = protojson(combined)
        return json_to_yaml(text) + "\n" if output == "yaml" else text
    configs: list[Any] = [unpack(f.ecds_filter, extension_pb2.TypedExtensionConfig)
                          for f in combined.ecds_filters]

    def less(a: Any, b: Any) -> bool:
        if a.typed_config.type_url == b.typed_config.type_url:
            return bool(a.name < b.name)
        return bool(a.typed_config.type_url < b.typed_config.type_url)

    rows = [["ECDS NAME", "TYPE"]]
    for c in go_sort_slice(configs, less):
        url = c.typed_config.type_url
        rows.append([c.name, url[len(TYPE_PREFIX):] if url.startswith(TYPE_PREFIX) else url])
    return render_table(rows, padding=5)
