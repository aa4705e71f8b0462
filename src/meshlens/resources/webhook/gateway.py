"""istiod's validating webhook for Istio's ``Gateway`` (``ValidateGateway``).

Layer: L2 (package meshlens.resources.webhook).

Rules, each named after the Go function it mirrors (pkg/config/validation/validation.go and
validation/agent): the object name is a DNS-1123 label; at least one server; per server
(``validateServer``) at least one host, each ``ValidateNamespaceSlashWildcardHostname`` with
isGateway (``ns/host``, ``./host``, ``*/host``; IPs allowed), ``validateServerPort`` (a known
protocol, port 1..65535 unless bound to a unix socket, no targetPort, a name),
``validateServerBind`` (unix socket or IP), ``validateTLSOptions``; HTTPS/TLS ports need
``tls``, plain HTTP ports allow only ``httpsRedirect``; port names unique across servers.
"""

from __future__ import annotations

from typing import Any

from meshlens.resources.webhook.core import Collector as _V
from meshlens.resources.webhook.core import as_list as _list
from meshlens.resources.webhook.core import as_obj as _obj
from meshlens.resources.webhook.core import as_str as _str
from meshlens.resources.webhook.core import quote as _q
from meshlens.resources.webhook.fields import is_ip as _is_ip
from meshlens.resources.webhook.fields import protocol as _protocol
from meshlens.resources.webhook.fields import validate_ip as _validate_ip
from meshlens.resources.webhook.fields import validate_port as _validate_port
from meshlens.resources.webhook.fields import validate_unix_address as _validate_unix_address
from meshlens.resources.webhook.names import is_label as _is_label
from meshlens.resources.webhook.names import validate_wildcard_domain
from meshlens.source import FieldPath

UNIX_PREFIX = "unix://"
_HTTP = ("HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web")
#: security.ValidCipherSuites
VALID_CIPHERS = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
})  # fmt: skip


def _valid_cipher(cs: str) -> bool:
    """security.IsValidCipherSuite: "", ALL, expressions starting with an operator, or a known name."""
    return cs in ("", "ALL") or not cs[0].isalnum() or cs in VALID_CIPHERS


def _hostname_part(hostname: str) -> list[str]:
    """agent.validateSidecarOrGatewayHostnamePart with isGateway: IPs are allowed."""
    errors = []
    if hostname != "*" and "." not in hostname:
        errors.append("short names (non FQDN) are not allowed")
    error = validate_wildcard_domain(hostname)
    if error and not _is_ip(hostname):
        errors.append(error)
    if "*" in hostname and len(hostname) != 1 and not hostname.startswith("*."):
        errors.append(f"partial wildcard {_q(hostname)} not allowed")
    return errors


def namespace_slash_host(hostname: str) -> list[str]:
    """agent.ValidateNamespaceSlashWildcardHostname(hostname, isGateway=true, gatewaySemantics=false)."""
    ns, slash, name = hostname.partition("/")
    if not slash:
        return _hostname_part(hostname)
    errors = []
    if not ns or not name:
        errors.append("config namespace and dnsName in host entry cannot be empty")
    if ns not in ("*", ".") and not _is_label(ns):
        errors.append(f"invalid namespace value {_q(ns)} in gateway")
    return errors + _hostname_part(name)


def _tls_options(v: _V, path: FieldPath, tls: dict[str, Any]) -> None:
    """validateTLSOptions."""
    mode = _str(tls.get("mode")) or "PASSTHROUGH"
    ciphers = [_str(c) for c in _list(tls.get("cipherSuites"))]
    if _str(tls.get("minProtocolVersion")) in ("TLSV1_0", "TLSV1_1") and not ciphers:
        v.warn(path, "TLS version below TLSV1_2 require setting compatible ciphers as by default "
                     "they no longer include compatible ciphers.")
    invalid = sorted({c for c in ciphers if not _valid_cipher(c)})
    valid = [c for c in ciphers if _valid_cipher(c)]
    dupes = sorted({c for c in valid if valid.count(c) > 1})
    if invalid:
        v.warn(path, f"ignoring invalid cipher suites: [{' '.join(invalid)}]")
    if dupes:
        v.warn(path, f"ignoring duplicate cipher suites: [{' '.join(dupes)}]")
    cert, key, ca, crl, cred = (_str(tls.get(k)) for k in (
        "serverCertificate", "privateKey", "caCertificates", "caCrl", "credentialName"))
    creds = _list(tls.get("credentialNames"))
    certs = _list(tls.get("tlsCertificates"))
    if mode == "ISTIO_MUTUAL":
        for present, what in ((cert, "server certificate"), (key, "private key"), (ca, "CA bundle"),
                              (certs, "tlsCertificates"), (cred, "credentialName"),
                              (creds, "credentialNames")):
            if present:
                v.err(path, f"ISTIO_MUTUAL TLS cannot have associated {what}")
        return
    if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and (crl or cert or key or ca or certs or cred or creds):
        v.warn(path, f"{mode} mode does not use certificates, they will be ignored")
    sources = sum((bool(cert and key), bool(cred), bool(creds), bool(certs)))
    if sources > 1:
        v.err(path, "only one of credential_name, credential_names, server_certificate/private_key, "
                    "tls_certificates should be specified")
    terminating = mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")
    if terminating and (cred or creds):
        return
    if terminating:
        prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
        if mode != "SIMPLE" and not ca:
            v.err(path, f"{prefix} requires a client CA bundle")
        if len(certs) > 2:
            v.warn(path, f"{prefix} can support up to 2 server certificates")
        pairs = [(_str((_obj(c) or {}).get("serverCertificate")), _str((_obj(c) or {}).get("privateKey")))
                 for c in certs] or [(cert, key)]
        for c, k in pairs:
            if not c:
                v.err(path, f"{prefix} requires a server certificate")
            if not k:
                v.err(path, f"{prefix} requires a private key")
    if crl:
        if cred:
            v.err(path, "CRL is not supported with credentialName. CRL has to be specified in the credential")
        if mode == "SIMPLE":
            v.err(path, "CRL is not supported with SIMPLE TLS")


def _server(v: _V, path: FieldPath, server: dict[str, Any]) -> None:
    """validateServer (with validateServerPort and validateServerBind)."""
    hosts = _list(server.get("hosts"))
    if not hosts:
        v.err(path + ("hosts",), "server config must contain at least one host")
    for i, h in enumerate(hosts):
        v.errs(path + ("hosts", i), namespace_slash_host(_str(h)))
    port = _obj(server.get("port"))
    bind = _str(server.get("bind"))
    port_ok = True
    if port is None:
        v.err(path, "port is required")
        port_ok = False
    else:
        pp = path + ("port",)
        proto, number = _str(port.get("protocol")), int(port.get("number") or 0)
        before = len(v.findings)
        if not _protocol(proto):
            v.err(pp + ("protocol",), f"invalid protocol {_q(proto)}, supported protocols are HTTP, "
                                      "HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP")
        if number > 0 or not bind.startswith(UNIX_PREFIX):
            v.err(pp + ("number",), _validate_port(number))
        if int(port.get("targetPort") or 0) > 0:
            v.err(pp + ("targetPort",), "targetPort has no impact on Gateways")
        if not _str(port.get("name")):
            v.err(pp + ("name",), f"port name must be set: {_port_text(port)}")
        port_ok = len(v.findings) == before
    if bind.startswith(UNIX_PREFIX):
        v.err(path + ("bind",), _validate_unix_address(bind[len(UNIX_PREFIX):]))
        if port is not None and int(port.get("number") or 0) != 0:
            v.err(path + ("bind",), f"port number must be 0 for unix domain socket: {_port_text(port)}")
    elif bind:
        v.err(path + ("bind",), _validate_ip(bind))
    tls = _obj(server.get("tls"))
    if tls is not None:
        _tls_options(v, path + ("tls",), tls)
    if port_ok and port is not None:
        proto = _protocol(_str(port.get("protocol")))
        if proto in ("HTTPS", "TLS") and tls is None:
            v.err(path, "server must have TLS settings for HTTPS/TLS protocols")
        elif proto not in ("HTTPS", "TLS") and tls is not None:
            if proto in _HTTP:
                passthrough = (_str(tls.get("mode")) or "PASSTHROUGH") == "PASSTHROUGH"
                if not passthrough or any(_str(tls.get(k)) for k in (
                        "caCertificates", "privateKey", "serverCertificate")):
                    v.err(path + ("tls",), "server cannot have TLS settings for plain text HTTP ports")
            else:
                v.err(path + ("tls",), "server cannot have TLS settings for non HTTPS/TLS ports")


def _port_text(port: dict[str, Any]) -> str:
    """Go's ``%v`` of a networking.Port message (its text format)."""
    parts = []
    if port.get("number"):
        parts.append(f"number:{int(port['number'])}")
    for key in ("protocol", "name"):
        if _str(port.get(key)):
            parts.append(f"{key}:{_q(_str(port[key]))}")
    return " ".join(parts)


def validate_name(v: _V, name: str) -> None:
    """ValidateGateway's name rule: a DNS-1123 label (no dots)."""
    if not _is_label(name):
        v.err(("metadata", "name"), f"invalid gateway name: {_q(name)}")


def validate(v: _V, spec: dict[str, Any], labels: Any = None) -> None:
    """ValidateGateway (the name rule is :func:`validate_name`, as the check gets no metadata)."""
    servers = _list(spec.get("servers"))
    if not servers:
        v.err(("spec", "servers"), "gateway must have at least one server")
    for i, s in enumerate(servers):
        if _obj(s) is None:
            v.err(("spec", "servers", i), "cannot have nil server")
            continue
        _server(v, ("spec", "servers", i), s)
    names: set[str] = set()
    for i, s in enumerate(servers):
        s = _obj(s)
        if s is None:
            v.err(("spec", "servers", i), "server may not be nil")
            continue
        port = _obj(s.get("port"))
        if port is None:
            continue
        pname = _str(port.get("name"))
        if pname in names:
            v.err(("spec", "servers", i, "port", "name"),
                  f"port names in servers must be unique: duplicate name {pname}")
        names.add(pname)
        tls = _obj(s.get("tls")) or {}
        if _protocol(_str(port.get("protocol"))) not in _HTTP and tls.get("httpsRedirect") is True:
            v.warn(("spec", "servers", i, "tls", "httpsRedirect"),
                   "tls.httpsRedirect should only be used with http servers")
