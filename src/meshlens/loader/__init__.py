"""Read manifest files into RawDocuments, with lazy file:line:col for every field.

Layer: L2. Imports: source, diagnostics, errors, limits, PyYAML.

This package is the only code that reads manifest files (and the YAML of scenarios and dumps,
through :func:`load_yaml_text`). It splits multi-document streams, flattens ``kind: List``
(what ``kubectl get -o yaml`` prints), and keeps, for each object, a locator that finds the
position of any field path. Its modules, bottom to top:

* :mod:`~meshlens.loader.scalars`: YAML 1.1 scalars as kubectl reads them (``on`` is a boolean,
  ``0755`` an octal integer), each such reading recorded as a :class:`Reading`
  (``locator.readings``: field path → reading) so the decoder can explain it;
* :mod:`~meshlens.loader.shape`: structure limits of a parsed document (depth, scalar size,
  alias expansion, recursive aliases);
* :mod:`~meshlens.loader.fast` and :mod:`~meshlens.loader.jsonfast`: the common document
  (no anchors, tags, merge or duplicate keys) read straight from libyaml's events, and JSON
  read with the C ``json`` scanner where it provably reads as YAML would; both give exactly
  what the general path gives, and hand anything else to it;
* :mod:`~meshlens.loader.documents`: one file's text → documents with positions
  (:func:`load_text`, :func:`load_yaml_text`);
* :mod:`~meshlens.loader.files`: folders, files, FIFOs, stdin → text (:func:`load_paths`,
  :func:`load_mesh_config`).

**Duplicate keys** are reported as ML0006 warnings at the second key, and the last value wins:
that is what ``kubectl apply -f`` does (goyaml.v2 keeps the last value and the JSON it sends has
no duplicate left for the API server's strict field validation to see; kubernetes#89303,
#125885). ``kubectl apply -k`` (kustomize's YAML 1.2 reader) would reject the file instead.

**Hostile input** gets a clear error within bounded time and memory, each limit in
:class:`~meshlens.limits.Limits` (and a ``meshlens compile`` option): file size, document count,
nesting depth (libyaml itself stops at 1000), scalar size, and alias expansion — a "billion
laughs" document is measured on the shared object graph (O(written nodes)) before anything walks
it expanded; recursive aliases are rejected. NUL bytes, control characters, non-UTF-8 bytes and
tab indentation are errors with file:line:col. UTF-16 with a byte-order mark is decoded, as
kubectl does. A broken document is reported alone; the file's other documents are kept.
"""

from __future__ import annotations

from meshlens.limits import MIB, Limits
from meshlens.loader.documents import LoadResult, YamlDocument, load_text, load_yaml_text
from meshlens.loader.files import load_mesh_config, load_paths
from meshlens.loader.scalars import Reading

__all__ = [
    "MIB",
    "Limits",
    "LoadResult",
    "Reading",
    "YamlDocument",
    "load_mesh_config",
    "load_paths",
    "load_text",
    "load_yaml_text",
]
