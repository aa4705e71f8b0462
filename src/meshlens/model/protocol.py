"""Port protocols as istiod infers them (`pkg/config/kube/conversion.go:ConvertProtocol`,
`pkg/config/protocol`).

Layer: L3. Imports: stdlib only.
"""

from __future__ import annotations

HTTP, HTTP2, GRPC, GRPC_WEB, HTTPS, TLS, TCP, UDP = (
    "HTTP", "HTTP2", "GRPC", "GRPC-Web", "HTTPS", "TLS", "TCP", "UDP")
MONGO, REDIS, MYSQL, HTTP_PROXY, UNSUPPORTED = "Mongo", "Redis", "MySQL", "HTTP_PROXY", "UnsupportedProtocol"

_BY_NAME = {
    "tcp": TCP, "udp": UDP, "grpc": GRPC, "grpc-web": GRPC_WEB, "http": HTTP,
    "http_proxy": HTTP_PROXY, "http2": HTTP2, "https": HTTPS, "tls": TLS, "mongo": MONGO,
    "redis": REDIS, "mysql": MYSQL,
}
_WELL_KNOWN_TCP = {25, 53, 3306, 27017}


def parse(name: str) -> str:
    """Parse a protocol name case-insensitively (`protocol.Parse`).

    Example:
        >>> parse("http2"), parse("GRPC"), parse("web")
        ('HTTP2', 'GRPC', 'UnsupportedProtocol')
    """
    return _BY_NAME.get(name.lower(), UNSUPPORTED)


def from_kube_port(name: str, port: int, proto: str = "TCP", app_protocol: str = "") -> str:
    """Infer a Kubernetes Service port's protocol from appProtocol, then the port name.

    Example:
        >>> from_kube_port("http-web", 80), from_kube_port("tcp-db", 5432)
        ('HTTP', 'TCP')
        >>> from_kube_port("", 8080), from_kube_port("web", 3306)
        ('UnsupportedProtocol', 'TCP')
        >>> from_kube_port("x", 80, app_protocol="kubernetes.io/h2c")
        'HTTP2'
    """
    if proto == "UDP":
        return UDP
    if proto == "SCTP":
        return UNSUPPORTED
    if app_protocol:
        special = {"kubernetes.io/h2c": HTTP2, "kubernetes.io/ws": HTTP, "kubernetes.io/wss": HTTPS}
        if app_protocol in special:
            return special[app_protocol]
        name = app_protocol
    if name.lower().startswith("grpc-web"):
        return GRPC_WEB
    out = parse(name.split("-", 1)[0])
    if out == UNSUPPORTED and port in _WELL_KNOWN_TCP:
        return TCP
    return out


def is_http(p: str) -> bool:
    """HTTP-family protocols (HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC-Web)."""
    return p in (HTTP, HTTP2, HTTP_PROXY, GRPC, GRPC_WEB)


def is_http2(p: str) -> bool:
    return p in (HTTP2, GRPC, GRPC_WEB)


def is_tcp(p: str) -> bool:
    return p in (TCP, HTTPS, TLS, MONGO, REDIS, MYSQL)


def is_unsupported(p: str) -> bool:
    return p == UNSUPPORTED
