"""HTTP/1.1 to the lab's own endpoints, over a Unix socket or loopback TCP.

Layer: L7 (lab). Imports: lab.addressing, stdlib.

Envoy's admin and the fake pods' control endpoint listen on Unix sockets (mode 0600, in the lab's
private folder; see the trust boundary in :mod:`meshlens.lab.statedir`), which ``urllib`` cannot
reach. :func:`request` takes an address that is either a socket path (starts with ``/``) or
``host:port`` on loopback, and refuses anything else.
"""

from __future__ import annotations

import http.client
import socket

from meshlens.lab.addressing import require_loopback

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class HttpError(OSError):
    """A non-2xx answer; ``status`` and ``body`` tell what it was."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status, self.body = status, body


def request(address: str, path: str, *, method: str = "GET", body: bytes | None = None,
            timeout: float = 5.0, headers: dict[str, str] | None = None) -> str:
    """Send one request and return the body (raises :class:`HttpError` for non-2xx answers,
    ``OSError`` when nothing answers)."""
    if address.startswith("/"):
        conn: http.client.HTTPConnection = _UnixConnection(address, timeout)
    else:
        host, _, port = address.rpartition(":")
        conn = http.client.HTTPConnection(require_loopback(host.strip("[]")), int(port),
                                          timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
    except http.client.HTTPException as exc:
        raise OSError(f"bad answer from {address}: {exc}") from exc
    finally:
        conn.close()
    if not 200 <= resp.status < 300:
        raise HttpError(resp.status, text)
    return text
