"""``meshlens status``: Gateway API status conditions, as istiod would write them.

Layer: L8.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated

import typer

from meshlens.cli.common import Files, MeshConfigOpt, fail, report


class StatusOutput(str, Enum):
    text = "text"
    json = "json"


def status_cmd(
    filename: Files = [],  # noqa: B006
    mesh_config: MeshConfigOpt = None,
    output: Annotated[StatusOutput, typer.Option("-o", "--output")] = StatusOutput.text,
) -> None:
    """Conditions istiod would write on Gateways, listeners and routes (Accepted, Programmed,
    ResolvedRefs, ...). Exit 1 when any condition is not healthy."""
    from meshlens.pipeline import load
    from meshlens.render.status import render_status_text

    if not filename:
        fail("no input: give manifests with -f FILE (a file, a folder, or - for stdin)")
    loaded = load(filename, mesh_config=mesh_config)
    report(loaded.diagnostics, loaded.errors, strict=False, quiet=True)
    statuses = loaded.mesh.gateway_api_status
    if output == StatusOutput.json:
        sys.stdout.write(json.dumps([s.to_dict() for s in statuses], indent=2) + "\n")
    elif not statuses:
        sys.stdout.write("No Gateway API objects in the input.\n")
    else:
        sys.stdout.write(render_status_text(statuses))
    if any(not s.healthy for s in statuses):
        raise typer.Exit(1)
