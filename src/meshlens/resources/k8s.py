"""Checks of the Kubernetes fields meshlens uses (ports, selectors, labels); the rest passes.

Layer: L2. Imports: source.

The API server would reject these objects; meshlens reports them with the field's line and
leaves the object out, like istiod never seeing it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from meshlens.source import FieldPath


@dataclass(frozen=True, slots=True)
class Problem:
    path: FieldPath
    code: str
    message: str


def _dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


#: JSON type names, checked in order (a bool is not an integer).
_TYPE_NAMES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"), (bool, "boolean"), (int, "integer"), (float, "number"),
    (str, "string"), (list, "array"), (dict, "object"),
)


def _type_name(value: Any) -> str:
    return next((name for types, name in _TYPE_NAMES if isinstance(value, types)),
                type(value).__name__)


_DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
#: IsValidPortName's rules, in its order: (is broken, message).
_PORT_NAME_RULES = (
    (lambda v: len(v) > 15, "must be no more than 15 characters"),
    (lambda v: not re.fullmatch(r"[-a-z0-9]+", v),
     "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
    (lambda v: "--" in v, "must not contain consecutive hyphens"),
    (lambda v: not re.search(r"[a-z]", v), "must contain at least one letter (a-z)"),
    (lambda v: v.startswith("-") or v.endswith("-"), "must not begin or end with a hyphen"),
)


class _Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def type(self, value: Any, path: FieldPath, expected: str) -> bool:
        if expected == "string":
            ok = isinstance(value, str)
        elif expected == "object":
            ok = isinstance(value, dict)
        elif expected == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected == "array":
            ok = isinstance(value, list)
        else:
            raise KeyError(expected)
        if not ok:
            self.problems.append(Problem(path, "ML0103",
                                         f"{_dotted(path)}: expected {expected}, got {_type_name(value)}"))
        return ok

    def port(self, value: Any, path: FieldPath, *, allow_zero: bool = False) -> bool:
        if not self.type(value, path, "integer"):
            return False
        if not (0 if allow_zero else 1) <= value <= 65535:
            self.problems.append(Problem(path, "ML0106",
                                         f"{_dotted(path)}: port {value} is not in 1..65535"))
            return False
        return True

    def int_or_string_port(self, value: Any, path: FieldPath) -> None:
        if isinstance(value, str):
            if not value:
                self.problems.append(Problem(path, "ML0106",
                                             f"{_dotted(path)}: invalid port name {value!r}"))
            else:
                self.port_name(value, path)
        else:
            self.port(value, path)

    def invalid(self, path: FieldPath, value: str, why: str) -> None:
        self.problems.append(Problem(path, "ML0106", f"{_dotted(path)}: Invalid value: "
                                     f"{json.dumps(value, ensure_ascii=False)}: {why}"))

    def port_name(self, value: Any, path: FieldPath) -> None:
        """validation.IsValidPortName (IANA_SVC_NAME): a container port's or targetPort's name."""
        if not self.type(value, path, "string"):
            return
        why = next((w for bad, w in _PORT_NAME_RULES if bad(value)), None)
        if why:
            self.invalid(path, value, why)

    def label(self, value: Any, path: FieldPath) -> None:
        """validation.IsDNS1123Label: a Service port's name."""
        if self.type(value, path, "string") and (
                len(value) > 63 or not _DNS1123_LABEL.fullmatch(value)):
            self.invalid(path, value, _LABEL_MSG if len(value) <= 63
                         else "must be no more than 63 characters")

    def str_map(self, value: Any, path: FieldPath) -> None:
        if value is None:
            return
        if not self.type(value, path, "object"):
            return
        for k, v in value.items():
            if not isinstance(k, str):
                self.problems.append(Problem(path, "ML0103",
                                             f"{_dotted(path)}: keys must be strings"))
            elif not isinstance(v, str):
                self.problems.append(Problem(path + (k,), "ML0103",
                                             f"{_dotted(path + (k,))}: expected string, "
                                             f"got {_type_name(v)}"))

    def ip(self, value: Any, path: FieldPath, *, family: int = 0, also: tuple[str, ...] = ()) -> None:
        """An IP address field (``family`` 4 or 6 to require one), or one of ``also``.

        The API server rejects the object (ValidateIPAddress / validation.IsValidIP); meshlens
        reports the field and leaves the object out, so no invalid address reaches the model.
        """
        if not self.type(value, path, "string") or value in also:
            return
        try:
            addr = None if "%" in value else ipaddress.ip_address(value)
        except ValueError:
            addr = None
        if addr is None or (family and addr.version != family):
            what = f"IPv{family} address" if family else "IP address"
            self.problems.append(Problem(path, "ML0106", f"{_dotted(path)}: Invalid value: "
                                         f"{json.dumps(value, ensure_ascii=False)}: must be a "
                                         f"valid {what}"))

    def ips(self, value: Any, path: FieldPath, **kw: Any) -> None:
        """A list of IP address fields; ``item`` names the key of an object item."""
        item = kw.pop("item", None)
        if value is None or not self.type(value, path, "array"):
            return
        for i, entry in enumerate(value):
            if item is None:
                self.ip(entry, path + (i,), **kw)
            elif self.type(entry, path + (i,), "object") and item in entry:
                self.ip(entry[item], path + (i, item), **kw)

    def required(self, obj: dict[str, Any], key: str, path: FieldPath) -> bool:
        if key not in obj or obj[key] is None:
            self.problems.append(Problem(path, "ML0101",
                                         f"{_dotted(path + (key,))}: required field is missing"))
            return False
        return True


def _service(c: _Checker, spec: Any) -> None:
    path: FieldPath = ("spec",)
    if not c.type(spec, path, "object"):
        return
    c.str_map(spec.get("selector"), path + ("selector",))
    ports = spec.get("ports")
    if ports is None:
        return
    if not c.type(ports, path + ("ports",), "array"):
        return
    seen: set[tuple[int, str]] = set()
    names: set[str] = set()
    for i, port in enumerate(ports):
        pp = path + ("ports", i)
        if not c.type(port, pp, "object"):
            continue
        if c.required(port, "port", pp) and c.port(port["port"], pp + ("port",)):
            proto = port.get("protocol", "TCP")
            if (port["port"], proto) in seen:
                c.problems.append(Problem(pp + ("port",), "ML0106",
                                          f"{_dotted(pp + ('port',))}: duplicate port {port['port']}"))
            seen.add((port["port"], proto))
        if "targetPort" in port:
            c.int_or_string_port(port["targetPort"], pp + ("targetPort",))
        if "name" in port and c.type(port["name"], pp + ("name",), "string"):
            c.label(port["name"], pp + ("name",))
            if port["name"] in names:
                c.problems.append(Problem(pp + ("name",), "ML0106",
                                          f"{_dotted(pp + ('name',))}: duplicate port name"))
            names.add(port["name"])
        elif "name" not in port and len(ports) > 1:
            c.problems.append(Problem(pp, "ML0101",
                                      f"{_dotted(pp + ('name',))}: required when a Service has "
                                      "more than one port"))
        for key in ("protocol", "appProtocol"):
            if key in port:
                c.type(port[key], pp + (key,), "string")
    for key in ("type", "externalName"):
        if key in spec:
            c.type(spec[key], path + (key,), "string")
    if "clusterIP" in spec:
        c.ip(spec["clusterIP"], path + ("clusterIP",), also=("", "None"))
    c.ips(spec.get("clusterIPs"), path + ("clusterIPs",), also=("", "None"))
    c.ips(spec.get("externalIPs"), path + ("externalIPs",))
    if spec.get("loadBalancerIP"):
        c.ip(spec["loadBalancerIP"], path + ("loadBalancerIP",))


def _pod_spec(c: _Checker, spec: Any, path: FieldPath) -> None:
    if not c.type(spec, path, "object"):
        return
    for group in ("containers", "initContainers"):
        containers = spec.get(group)
        if containers is None:
            continue
        if not c.type(containers, path + (group,), "array"):
            continue
        for i, ctr in enumerate(containers):
            cp = path + (group, i)
            if not c.type(ctr, cp, "object"):
                continue
            ports = ctr.get("ports")
            if ports is None or not c.type(ports, cp + ("ports",), "array"):
                continue
            for j, port in enumerate(ports):
                pp = cp + ("ports", j)
                if not c.type(port, pp, "object"):
                    continue
                if c.required(port, "containerPort", pp):
                    c.port(port["containerPort"], pp + ("containerPort",))
                if "name" in port:
                    c.port_name(port["name"], pp + ("name",))
    if "serviceAccountName" in spec:
        c.type(spec["serviceAccountName"], path + ("serviceAccountName",), "string")


def _controller(c: _Checker, data: dict[str, Any], kind: str) -> None:
    spec: Any = data.get("spec")
    path: FieldPath = ("spec",)
    if not c.type(spec, path, "object"):
        return
    if "replicas" in spec and c.type(spec["replicas"], path + ("replicas",), "integer"):
        if spec["replicas"] < 0 or spec["replicas"] > 10_000:
            c.problems.append(Problem(path + ("replicas",), "ML0106",
                                      "spec.replicas: must be between 0 and 10000"))
    sel = spec.get("selector")
    if kind != "Pod" and c.required(spec, "selector", path) and c.type(sel, path + ("selector",),
                                                                        "object"):
        c.str_map(sel.get("matchLabels"), path + ("selector", "matchLabels"))
    template = spec.get("template")
    if c.required(spec, "template", path) and c.type(template, path + ("template",), "object"):
        meta = template.get("metadata", {})
        if c.type(meta, path + ("template", "metadata"), "object"):
            c.str_map(meta.get("labels"), path + ("template", "metadata", "labels"))
            c.str_map(meta.get("annotations"), path + ("template", "metadata", "annotations"))
        if c.required(template, "spec", path + ("template",)):
            _pod_spec(c, template["spec"], path + ("template", "spec"))


#: EndpointSlice addressType → the IP family its addresses must have (FQDN slices hold names).
_SLICE_FAMILY = {"IPv4": 4, "IPv6": 6}


def _endpoint_slice(c: _Checker, data: dict[str, Any]) -> None:
    eps = data.get("endpoints")
    kind = data.get("addressType")
    if eps is not None and c.type(eps, ("endpoints",), "array"):
        for i, ep in enumerate(eps):
            if c.type(ep, ("endpoints", i), "object") and c.required(ep, "addresses",
                                                                     ("endpoints", i)):
                path = ("endpoints", i, "addresses")
                if kind == "FQDN":
                    if c.type(ep["addresses"], path, "array"):
                        for j, a in enumerate(ep["addresses"]):
                            c.type(a, path + (j,), "string")
                else:
                    c.ips(ep["addresses"], path, family=_SLICE_FAMILY.get(str(kind), 0))
    ports = data.get("ports")
    if ports is not None and c.type(ports, ("ports",), "array"):
        for i, p in enumerate(ports):
            if c.type(p, ("ports", i), "object") and "port" in p:
                c.port(p["port"], ("ports", i, "port"), allow_zero=True)


def validate_k8s(kind: str, data: dict[str, Any]) -> list[Problem]:
    """Check the fields meshlens uses; return problems in document order.

    Example:
        >>> [p.message for p in validate_k8s("Service", {"spec": {"ports": [{"port": "80"}]}})]
        ['spec.ports[0].port: expected integer, got string']
    """
    c = _Checker()
    if kind == "Service":
        _service(c, data.get("spec"))
    elif kind == "Pod":
        if "spec" in data:
            _pod_spec(c, data["spec"], ("spec",))
        status = data.get("status")
        if isinstance(status, dict):
            for key in ("podIP", "hostIP"):
                if key in status:
                    c.ip(status[key], ("status", key), also=("",))
            c.ips(status.get("podIPs"), ("status", "podIPs"), item="ip")
            c.ips(status.get("hostIPs"), ("status", "hostIPs"), item="ip")
    elif kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"):
        _controller(c, data, kind)
    elif kind == "EndpointSlice":
        _endpoint_slice(c, data)
    return c.problems
