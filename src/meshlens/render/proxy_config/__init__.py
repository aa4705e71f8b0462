"""istioctl's ``proxy-config`` views, byte for byte, as pure functions: data in, text out.

Layer: L6. Imports: dump, errors.

One module per view (:mod:`cluster`, :mod:`endpoint` (also ``eds``), :mod:`listener`,
:mod:`route`, :mod:`secret`, :mod:`bootstrap`, :mod:`ecds`, :mod:`all`), on top of three
reproductions of Go behaviour: :mod:`table` (``text/tabwriter``), :mod:`gosort`
(``sort.Slice``) and :mod:`jsonfmt` (jsonpb, protojson, ``encoding/json`` and go-yaml v2).
:mod:`ports` adds meshlens's ``--explain-ports`` columns. The rules are in
``shared/spec/istioctl.md``.
"""
