"""Where everything lives in the lab: every address of the mesh mapped into 127.0.0.0/8.

Layer: L7 (lab). Imports: stdlib only.

The lab binds and targets loopback only. :class:`Addressing` is the one map from the addresses
and DNS names of the manifests to lab addresses, used by the localization (Envoy config), the
fake workloads (what they bind) and the load generator (where a URL's host "resolves"):

* ``10.a.b.c`` -> ``127.a.b.c`` (pod IPs and Service VIPs keep their last three octets, so a lab
  address still reads like the real one). ``10.0.0.1`` and ``10.0.0.6`` would land on the
  loopback addresses the host and Istio's inbound passthrough (127.0.0.6) use, so they take a
  pool address instead.
* ``127.x`` and ``0.0.0.0`` stay as they are.
* any other IPv4 address (ServiceEntry addresses, auto-allocated 240.240.x.y, ...) and every DNS
  name that is not a Kubernetes Service takes the next address of the pool ``127.255.0.0/16``:
  the lab's "outside world". DNS is never asked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

POOL = ipaddress.ip_network("127.255.0.0/16")
#: The lab's own services (ADS, admin, capture entry) bind here, on dynamic ports.
LAB_HOST = "127.0.0.1"
_RESERVED = frozenset({"127.0.0.0", "127.0.0.1", "127.0.0.6", "127.255.255.255"})


@dataclass(slots=True)
class Addressing:
    """Real address or DNS name -> lab address (always inside 127.0.0.0/8).

    Example:
        >>> a = Addressing()
        >>> a.ip("10.244.1.11"), a.ip("0.0.0.0"), a.ip("240.240.0.5"), a.name("api.vendor.com")
        ('127.244.1.11', '0.0.0.0', '127.255.0.1', '127.255.0.2')
        >>> a.ip("10.0.0.1")
        '127.255.0.3'
    """

    ips: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    _next: int = 1

    def ip(self, real: str) -> str:
        """The lab address for an IPv4 address (IPv6 is returned unchanged: not supported)."""
        if real in self.ips:
            return self.ips[real]
        try:
            addr = ipaddress.ip_address(real)
        except ValueError:
            return self.name(real)
        if addr.version != 4:
            return real
        if addr.is_loopback or addr.is_unspecified:
            return real
        octets = real.split(".")
        mapped = f"127.{octets[1]}.{octets[2]}.{octets[3]}" if octets[0] == "10" else ""
        if not mapped or mapped in _RESERVED or mapped.startswith("127.255."):
            mapped = self._allocate()
        self.ips[real] = mapped
        return mapped

    def name(self, host: str) -> str:
        """The lab address a DNS name resolves to (a pool address, stable per name)."""
        host = host.lower().rstrip(".")
        if host not in self.names:
            self.names[host] = self._allocate()
        return self.names[host]

    def cidr(self, prefix: str, length: int) -> tuple[str, int]:
        """Map a CIDR range: a /32 like its address, a wider 10.0.0.0/8 range keeps its length."""
        if length >= 32:
            return self.ip(prefix), length
        addr = ipaddress.ip_address(prefix)
        if addr.version == 4 and prefix.startswith("10."):
            return "127." + prefix.split(".", 1)[1], max(length, 8)
        return prefix, length

    def is_lab(self, address: str) -> bool:
        """True for addresses the lab may bind or target (127.0.0.0/8)."""
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network("127.0.0.0/8")
        except ValueError:
            return False

    def _allocate(self) -> str:
        while True:
            candidate = str(POOL.network_address + self._next)
            self._next += 1
            if candidate not in _RESERVED and candidate not in self.ips.values() \
                    and candidate not in self.names.values():
                return candidate

    def to_dict(self) -> dict[str, Any]:
        return {"ips": dict(sorted(self.ips.items())), "names": dict(sorted(self.names.items())),
                "next": self._next}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Addressing:
        return cls(dict(data.get("ips", {})), dict(data.get("names", {})), int(data.get("next", 1)))


def require_loopback(address: str) -> str:
    """Return ``address`` if it is in 127.0.0.0/8, else raise ``ValueError`` (the lab's belt)."""
    try:
        ok = ipaddress.ip_address(address) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"the lab only binds or targets 127.0.0.0/8, not {address!r}")
    return address
