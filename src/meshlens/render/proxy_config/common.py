"""Helpers shared by the proxy-config views: Go's subset-key parser, istio metadata, formats.

Layer: L6. Imports: errors, render.proxy_config.jsonfmt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from meshlens.errors import DumpError, UsageError
from meshlens.render.proxy_config.jsonfmt import json_to_yaml, message_slice_json

FORMATS = ("short", "json", "yaml")


@dataclass(frozen=True, slots=True)
class SubsetKey:
    direction: str
    subset: str
    hostname: str
    port: int


def parse_subset_key(name: str) -> SubsetKey:
    """Istio's ``model.ParseSubsetKey`` exactly as istioctl calls it (any direction).

    It is more lenient than ``meshlens.compiler.names.parse_cluster_name``: istioctl shows
    ``inbound-vip|8000|http|host`` and ``inbound|9080||`` clusters with it, and gives an empty
    hostname when a fifth ``|`` part exists.

    Example:
        >>> parse_subset_key("inbound-vip|8000|http|httpbin.default")
        SubsetKey(direction='inbound-vip', subset='http', hostname='httpbin.default', port=8000)
        >>> parse_subset_key("outbound|x|v1|a|b")
        SubsetKey(direction='outbound', subset='v1', hostname='', port=0)
    """
    sep = "_." if name.startswith(("outbound_.", "inbound_.")) else "|"
    direction, found, rest = name.partition(sep)
    if not found:
        return SubsetKey("", "", "", 0)
    port_s, found, rest = rest.partition(sep)
    port = _atoi(port_s)
    if not found:
        return SubsetKey(direction, "", "", port)
    subset, found, rest = rest.partition(sep)
    if not found:
        return SubsetKey(direction, "", "", port)
    if sep in rest:
        return SubsetKey(direction, subset, "", port)
    return SubsetKey(direction, subset, rest, port)


def _atoi(s: str) -> int:
    # strconv.Atoi: optional sign, ASCII digits only, int64 range; 0 on error.
    body = s[1:] if s[:1] in "+-" else s
    if not body or not body.isascii() or not body.isdigit():
        return 0
    v = int(s)
    return v if -(2**63) <= v < 2**63 else 0


def sort_key_of(name: str) -> tuple[str, str, int, str]:
    """istioctl's ``safelyParseSubsetKey`` as a (hostname, subset, port, direction) tuple."""
    if len(name.split("|")) > 3:
        k = parse_subset_key(name)
        return (k.hostname, k.subset, k.port, k.direction)
    return (name, "", 0, "")


def subset_key_less(a: tuple[str, str, int, str], b: tuple[str, str, int, str]) -> bool:
    """The comparator of istioctl's cluster and endpoint sorts (Go string order)."""
    if a[0] == b[0]:
        if a[1] == b[1]:
            if a[2] == b[2]:
                return _go_less(a[3], b[3])
            return a[2] < b[2]
        return _go_less(a[1], b[1])
    return _go_less(a[0], b[0])


def _go_less(a: str, b: str) -> bool:
    # Go compares strings by bytes; UTF-8 preserves code point order, so Python's < agrees.
    return a < b


def describe_management(metadata: Any) -> str:
    """The DESTINATION RULE / VIRTUAL SERVICE cell from ``metadata.filter_metadata.istio.config``.

    ``metadata`` is an ``envoy.config.core.v3.Metadata`` or ``None`` when absent.
    """
    if metadata is None:
        return ""
    istio = metadata.filter_metadata.get("istio")
    if istio is None or "config" not in istio.fields:
        return ""
    return render_config(istio.fields["config"].string_value)


def render_config(path: str) -> str:
    """``/apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME`` → ``NAME.NS``.

    Example:
        >>> render_config("/apis/networking.istio.io/v1/namespaces/default/virtual-service/vs")
        'vs.default'
        >>> render_config("/apis/networking.istio.io/v1/x"), render_config("")
        ('', '<unknown>')
    """
    if path.startswith("/apis/networking.istio.io/"):
        pieces = path.split("/")
        if len(pieces) != 8:
            return ""
        return f"{pieces[7]}.{pieces[5]}"
    return "<unknown>"


def metadata_of(message: Message) -> Any:
    """The message's ``metadata`` field, or None when it is not set (Go's nil)."""
    return message.metadata if message.HasField("metadata") else None


def check_format(output: str) -> None:
    if output not in FORMATS:
        raise UsageError(f'output format "{output}" not supported')


def message_list_output(messages: Sequence[Message], output: str) -> str:
    """``-o json|yaml`` of cluster, listener, route and eds: istioctl's ``MessageSlice``."""
    text = message_slice_json(messages)
    if output == "yaml":
        # yaml.JSONToYAML of the indented JSON, then Println.
        return json_to_yaml(text) + "\n"
    return text


def missing_section(type_name: str) -> DumpError:
    return DumpError(f"config dump has no configuration type type.googleapis.com/envoy.admin.v3."
                     f"{type_name}")
