"""Where everything lives in the lab: every address of the mesh mapped into 127.0.0.0/8.

Layer: L7 (lab). Imports: stdlib only.

The lab binds and targets loopback only. :class:`Addressing` is the one map from the addresses
and DNS names of the manifests to lab addresses, used by the localization (Envoy config), the
fake workloads (what they bind) and the load generator (where a URL's host "resolves"):

* ``10.a.b.c`` -> ``127.a.b.c`` (pod IPs and Service VIPs keep their last three octets, so a lab
  address still reads like the real one). ``10.0.0.1`` and ``10.0.0.6`` would land on the
  loopback addresses the host and Istio's inbound passthrough (127.0.0.6) use, so they take a
  pool address instead.
* ``127.x``, ``::1``, ``0.0.0.0`` and ``::`` stay as they are (the unspecified addresses only
  ever appear as match keys of listeners that do not bind; :mod:`meshlens.lab.guard` checks it).
* an IPv4-mapped IPv6 address (``::ffff:198.51.100.7``) is mapped like its IPv4 address.
* any other address of either family (ServiceEntry addresses, auto-allocated 240.240.x.y,
  ``2001:db8::1``, ...) and every DNS name that is not a Kubernetes Service takes the next address
  of the pool ``127.255.0.0/16``: the lab's "outside world". DNS is never asked.

Every address family is thus localized: nothing the map returns for an IP lies outside
127.0.0.0/8, ``::1`` or the unspecified addresses.
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
        """The lab address for an IP address of either family (a name goes to :meth:`name`)."""
        if real in self.ips:
            return self.ips[real]
        addr = parse_ip(real)
        if addr is None:
            return self.name(real)
        if addr.version == 6:
            mapped4 = addr.ipv4_mapped  # type: ignore[union-attr]
            if mapped4 is not None:
                out = self.ip(str(mapped4))
                self.ips[real] = out
                return out
            if addr.is_loopback or addr.is_unspecified:
                return real
            self.ips[real] = self._allocate()
            return self.ips[real]
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
        """Map a CIDR range: one host (/32, /128) like its address, a 10.0.0.0/8 range keeps
        its length; other ranges are match keys only and stay as they are."""
        addr = parse_ip(prefix)
        if addr is None:
            return prefix, length
        if length >= addr.max_prefixlen:
            local = self.ip(prefix)
            return local, 32 if ":" not in local else 128
        if addr.version == 4 and prefix.startswith("10."):
            return "127." + prefix.split(".", 1)[1], max(length, 8)
        return prefix, length

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


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``text`` spells, or None for a name (``2001:db8::1`` is an IP, not a name)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ``::1`` (the only addresses the lab binds or targets)."""
    addr = parse_ip(address)
    return addr is not None and (addr.version == 4 and addr.is_loopback or str(addr) == "::1")


def require_loopback(address: str) -> str:
    """Return ``address`` if it is loopback, else raise ``ValueError`` (the lab's belt)."""
    if not is_loopback(address):
        raise ValueError(f"the lab only binds or targets 127.0.0.0/8 or ::1, not {address!r}")
    return address
