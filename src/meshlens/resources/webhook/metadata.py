"""The API server's ``ObjectMeta`` checks: name (DNS-1123 subdomain, label or DNS-1035 label by
kind), namespace (DNS-1123 label), label keys and values, annotation keys.

Layer: L2 (package meshlens.resources.webhook). Imports: source, resources.schema.

They decide whether two objects could ever produce the same Envoy name: a name with ``|``,
``:``, a space or an upper-case letter never reaches istiod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshlens.resources.schema import Problem, render_field
from meshlens.resources.webhook.core import as_obj, as_str, quote
from meshlens.resources.webhook.names import QUALIFIED, TAG_VALUE
from meshlens.source import FieldPath

_DNS1123_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_DNS1123_LABEL_LOWER = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
_K8S_NAME = re.compile(QUALIFIED)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character (e.g. "
    "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_SUBDOMAIN_RULE = (253, _DNS1123_SUBDOMAIN, _SUBDOMAIN_MSG)
#: Kinds whose metadata.name the API server checks as a DNS-1035 label (Service) or as a DNS-1123
#: label (Namespace): (max length, pattern, message). Every other kind (Istio CRDs included)
#: needs a DNS-1123 subdomain (``_SUBDOMAIN_RULE``).
_NAME_RULES: dict[str, tuple[int, re.Pattern[str], str]] = {
    "Service": (63, _DNS1035_LABEL, _DNS1035_MSG),
    "Namespace": (63, _DNS1123_LABEL_LOWER, _LABEL_MSG),
}


def _invalid(path: FieldPath, value: str, why: str) -> Problem:
    return Problem(path, "ML0106", f"{render_field(path)}: Invalid value: {quote(value)}: {why}")


def _shaped(
    path: FieldPath, value: str, max_len: int, pattern: re.Pattern[str], why: str, *,
    say_length: bool = True,
) -> list[Problem]:
    """At most ``max_len`` characters and matching ``pattern``; the length is named first (a
    namespace only says ``why``, as the API server does)."""
    if len(value) > max_len and say_length:
        return [_invalid(path, value, f"must be no more than {max_len} characters")]
    if len(value) > max_len or not pattern.fullmatch(value):
        return [_invalid(path, value, why)]
    return []


def _qualified_name_errors(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash:
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            errors.append(f"prefix part {_SUBDOMAIN_MSG}")
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    elif not _K8S_NAME.fullmatch(name):
        errors.append(_NAME_PART_MSG)
    return errors


def validate_metadata(kind: str, meta: Mapping[str, Any], *, namespaced: bool) -> list[Problem]:
    """The API server's ObjectMeta checks: name, namespace, label keys and values, annotation keys.

    A name with ``|``, ``:``, a space or an upper-case letter never reaches istiod, so it can
    never appear in an Envoy cluster name.

    Example:
        >>> [p.message[:48] for p in validate_metadata("Service", {"name": "Reviews"},
        ...                                           namespaced=True)]
        ['metadata.name: Invalid value: "Reviews": a DNS-1']
    """
    problems: list[Problem] = []
    max_len, pattern, why = _NAME_RULES.get(kind, _SUBDOMAIN_RULE)
    problems += _shaped(("metadata", "name"), as_str(meta.get("name")), max_len, pattern, why)
    ns = meta.get("namespace")
    if namespaced and isinstance(ns, str) and ns:
        problems += _shaped(("metadata", "namespace"), ns, 63, _DNS1123_LABEL_LOWER, _LABEL_MSG,
                            say_length=False)
    for key, value in (as_obj(meta.get("labels")) or {}).items():
        for why in _qualified_name_errors(str(key)):
            problems.append(_invalid(("metadata", "labels", key), str(key), why))
        problems += _shaped(("metadata", "labels", key), as_str(value), 63, TAG_VALUE, _VALUE_MSG)
    for key in as_obj(meta.get("annotations")) or {}:
        for why in _qualified_name_errors(str(key).lower()):
            problems.append(_invalid(("metadata", "annotations", key), str(key), why))
    return problems
