"""TCP ServiceEntries without addresses (istioctl `serviceentry.Analyzer`).

Layer: L6. Imports: analyze.core.

Without an address a TCP ServiceEntry gets a 0.0.0.0:PORT listener that every other TCP
destination on that port shares; unless DNS capture auto-allocates addresses.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshlens.analyze.core import CodeDoc, Context, Finding, Metadata, as_dict, finding, iter_dicts

METADATA = Metadata(
    name="serviceentry.Analyzer",
    description="Checks the validity of ServiceEntry",
    inputs=("ServiceEntry", "MeshConfig"),
    codes=("ML1141",),
)

DOCS = {
    "ML1141": CodeDoc(
        checks="ServiceEntries without spec.addresses (nor status addresses, nor DNS "
               "auto-allocation in MeshConfig proxyMetadata) that have a TCP or unspecified-"
               "protocol port (istioctl IST0134).",
        matters="A TCP port without an address gets a 0.0.0.0:PORT listener shared with every "
                "other such entry: traffic goes to whichever entry the listener picked.",
        quiet="addresses set; DNS capture with auto-allocation enabled; only HTTP/TLS ports "
              "(matched by Host or SNI).",
        example="hosts: [db.example.com]\nports: [{number: 5432, name: tcp, protocol: TCP}]\n"
                "resolution: DNS"),
}


def auto_allocated(ctx: Context) -> bool:
    """MeshConfig defaultConfig.proxyMetadata enables DNS capture with auto-allocation."""
    md = as_dict(as_dict(ctx.mesh.mesh_config.get("defaultConfig")).get("proxyMetadata"))
    if md.get("ISTIO_META_DNS_CAPTURE") != "true":
        return False
    return md.get("ISTIO_META_DNS_AUTO_ALLOCATE") == "true" or \
        md.get("PILOT_ENABLE_IP_AUTOALLOCATE") == "true"


def analyze(ctx: Context) -> Iterator[Finding]:
    auto = auto_allocated(ctx)
    for se in ctx.of_kind("ServiceEntry"):
        if se.spec.get("addresses") or auto:
            continue
        if as_dict(se.body.get("status")).get("addresses"):
            continue
        for i, port in enumerate(iter_dicts(se.spec.get("ports"))):
            proto = str(port.get("protocol") or "")
            if proto == "" or proto.upper() == "TCP":
                yield finding("ML1141", se, ("spec", "ports", i))
