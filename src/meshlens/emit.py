"""Turn a CompileResult into Envoy's ``/config_dump?include_eds`` shape.

Layer: L5. Imports: compiler, xDS protos.

The dump is built from Envoy's own admin protos (``envoy.admin.v3.*ConfigDump``) and printed
with protobuf's JSON mapping using the proto field names, as Envoy prints it, so a real
sidecar's dump and meshlens's are interchangeable for every tool that reads one.
"""

from __future__ import annotations

import json
from typing import Any

from envoy.admin.v3 import config_dump_pb2, config_dump_shared_pb2
from google.protobuf import json_format

from meshlens.compiler import CompileResult

VERSION = "meshlens"


def config_dump(result: CompileResult, *, include_eds: bool = True) -> config_dump_pb2.ConfigDump:
    """Assemble the ConfigDump message (Bootstrap, Clusters, Endpoints sections)."""
    dump = config_dump_pb2.ConfigDump()
    if result.bootstrap is not None:
        bcd = config_dump_pb2.BootstrapConfigDump()
        bcd.bootstrap.CopyFrom(result.bootstrap)
        dump.configs.add().Pack(bcd)
    ccd = config_dump_shared_pb2.ClustersConfigDump(version_info=VERSION)
    if result.bootstrap is not None:
        for c in result.bootstrap.static_resources.clusters:
            ccd.static_clusters.add().cluster.Pack(c)
    for c in result.clusters:
        entry = ccd.dynamic_active_clusters.add(version_info=VERSION)
        entry.cluster.Pack(c)
    dump.configs.add().Pack(ccd)
    if include_eds:
        ecd = config_dump_shared_pb2.EndpointsConfigDump()
        for cla in result.endpoints:
            entry = ecd.dynamic_endpoint_configs.add(version_info=VERSION)
            entry.endpoint_config.Pack(cla)
        dump.configs.add().Pack(ecd)
    return dump


def to_dict(message: Any) -> dict[str, Any]:
    """protobuf JSON mapping with Envoy's snake_case field names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def config_dump_json(result: CompileResult, *, include_eds: bool = True, indent: int | None = 2) -> str:
    return json.dumps(to_dict(config_dump(result, include_eds=include_eds)), indent=indent)
