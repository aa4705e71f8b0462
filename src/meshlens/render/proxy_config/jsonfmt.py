"""istioctl's JSON and YAML output, byte for byte: three Go serializers and one YAML emitter.

Layer: L6. Imports: gojson, pbjson, goyaml. The views import these functions from here.

istioctl prints protobufs through three different Go paths (istioctl.md §0.3-§0.4), each in
its own module:

* :mod:`.pbjson`: golang/protobuf ``jsonpb`` (:func:`jsonpb`, ``bootstrap`` and ``secret``
  ``-o json``, with its Struct indentation quirk), istioctl's ``MessageSlice``
  (:func:`message_slice_json`: ``cluster``, ``listener``, ``route``, ``eds``, ``endpoint``) and
  ``protojson`` (:func:`protojson`, ``ecds -o json``, normalized);
* :mod:`.gojson`: the Go text encodings under them: ``strconv.FormatFloat``, ``encoding/json``
  numbers and strings, ``json.Indent`` (:func:`go_indent`);
* :mod:`.goyaml`: ``sigs.k8s.io/yaml.JSONToYAML`` on go-yaml v2 (:func:`json_to_yaml`), which
  every ``-o yaml`` goes through.
"""

from __future__ import annotations

from meshlens.render.proxy_config.gojson import (
    go_format_float,
    go_indent,
    go_json_float,
    go_json_string,
)
from meshlens.render.proxy_config.goyaml import json_to_yaml
from meshlens.render.proxy_config.pbjson import jsonpb, message_slice_json, protojson

__all__ = ["go_format_float", "go_indent", "go_json_float", "go_json_string", "json_to_yaml",
           "jsonpb", "message_slice_json", "protojson"]
