"""``proxy-config all``: every summary in one output (``PrintFullSummary``).

Layer: L6. Imports: dump, render.proxy_config.

Six sections, BOOTSTRAP, CLUSTER, LISTENER, ROUTE, SECRET and ENDPOINTS (the EDS writer),
separated by one empty line; ``--with-headers`` puts ``------ X INFO ------`` and an empty
line before each. The tables get a NAME column (cluster, listener) or a ``route/``,
``secret/``, ``endpoint/`` prefix. ``-o json|yaml`` prints the whole dump as read.

istioctl stops at the first section its dump lacks; meshlens shows the sections that are
there (its own compiled config has no listeners, routes or secrets yet), and
:func:`missing_sections` names the others.
"""

from __future__ import annotations

import datetime as _dt

from meshlens.dump import ConfigDump, clusters_of, listeners_of, routes_of
from meshlens.render.proxy_config.bootstrap import version_summary
from meshlens.render.proxy_config.cluster import ClusterFilter, render_clusters
from meshlens.render.proxy_config.common import check_format
from meshlens.render.proxy_config.endpoint import EndpointFilter, render_eds
from meshlens.render.proxy_config.jsonfmt import json_to_yaml
from meshlens.render.proxy_config.listener import ListenerFilter, render_listeners
from meshlens.render.proxy_config.route import RouteFilter, render_routes
from meshlens.render.proxy_config.secret import render_secrets


def missing_sections(dump: ConfigDump) -> list[str]:
    """The sections ``all`` leaves out because the dump has nothing for them."""
    out = []
    if dump.bootstrap is None:
        out.append("BOOTSTRAP")
    if not clusters_of(dump.clusters):
        out.append("CLUSTER")
    if not listeners_of(dump.listeners):
        out.append("LISTENER")
    if not routes_of(dump.routes):
        out.append("ROUTE")
    if dump.secrets is None:
        out.append("SECRET")
    return out


def render_all(dump: ConfigDump, *, output: str = "short", with_headers: bool = False,
               clusters: ClusterFilter | None = None,
               listeners: ListenerFilter | None = None,
               routes: RouteFilter | None = None,
               endpoints: EndpointFilter | None = None,
               now: _dt.datetime | None = None) -> str:
    """Render ``proxy-config all``; the filters default to none (everything shown)."""
    check_format(output)
    clusters = clusters or ClusterFilter()
    listeners = listeners or ListenerFilter()
    routes = routes or RouteFilter()
    endpoints = endpoints or EndpointFilter()
    if output == "json":
        return dump.raw + "\n"
    if output == "yaml":
        return json_to_yaml(dump.raw) + "\n"
    skip = set(missing_sections(dump))
    sections = []
    if "BOOTSTRAP" not in skip:
        sections.append(("BOOTSTRAP", version_summary(dump)))
    if "CLUSTER" not in skip:
        sections.append(("CLUSTER", render_clusters(dump, filter=clusters, with_names=True)))
    if "LISTENER" not in skip:
        sections.append(("LISTENER", render_listeners(dump, filter=listeners, with_names=True)))
    if "ROUTE" not in skip:
        sections.append(("ROUTE", render_routes(dump, filter=routes, with_names=True)))
    if "SECRET" not in skip:
        sections.append(("SECRET", render_secrets(dump, with_names=True, now=now)))
    sections.append(("ENDPOINTS", render_eds(dump, filter=endpoints, with_names=True)))
    parts = []
    for title, text in sections:
        parts.append((f"------ {title} INFO ------\n\n" if with_headers else "") + text)
    return "\n".join(parts)
