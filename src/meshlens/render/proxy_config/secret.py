"""``proxy-config secret``: istioctl's SDS table (``writer/compare/sds``).

Layer: L6. Imports: dump, errors, render.proxy_config.

Warming secrets first (``WARMING``), then active ones (``ACTIVE``), each in dump order. The
columns come from the *first* PEM block of the certificate chain, the trusted CA, or each
trust bundle of a SPIFFE validator (one row per trust domain). ``VALID CERT`` compares the
certificate's validity with the clock, so callers pass ``now``; istioctl uses the current time.
A final ``TRUST DOMAIN`` column appears only when every row has one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_spiffe_validator_config_pb2 as spiffe_pb2

from meshlens.dump import ConfigDump
from meshlens.render.proxy_config.common import check_format, missing_section
from meshlens.render.proxy_config.jsonfmt import json_to_yaml, jsonpb
from meshlens.render.proxy_config.table import render_table

SPIFFE_VALIDATOR = ("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
                    "SPIFFECertValidatorConfig")


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What istioctl reads from a certificate (``secretMetaFromCert``)."""

    is_ca: bool
    serial: int
    not_before: _dt.datetime
    not_after: _dt.datetime
    spiffe_trust_domain: str  # host of the last spiffe:// URI SAN, or ""


@dataclass(frozen=True, slots=True)
class SecretRow:
    name: str
    state: str
    type: str = ""
    valid: bool = False
    serial: str = ""
    not_after: str = ""
    not_before: str = ""
    trust_domain: str = ""


# --- a small DER reader: just enough of X.509 for istioctl's columns ------------------------


class _DerError(ValueError):
    pass


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise _DerError("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _DerError("high tag numbers are not used in certificates")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise _DerError("bad length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise _DerError("truncated")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, vs, ve = _tlv(data, start)
        out.append((tag, vs, ve))
        start = ve
    return out


def _time(data: bytes, tag: int, vs: int, ve: int) -> _dt.datetime:
    text = data[vs:ve].decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        m = re.fullmatch(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z", text)
        if not m:
            raise _DerError("bad UTCTime")
        yy = int(m[1])
        year = 1900 + yy if yy >= 50 else 2000 + yy
        parts = [year] + [int(m[i]) for i in range(2, 7)]
    elif tag == 0x18:  # GeneralizedTime YYYYMMDDHHMMSS[.f]Z
        m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.\d+)?Z", text)
        if not m:
            raise _DerError("bad GeneralizedTime")
        parts = [int(m[i]) for i in range(1, 7)]
    else:
        raise _DerError("bad time")
    year, month, day, hour, minute, second = parts
    return _dt.datetime(year, month, day, hour, minute, second, tzinfo=_dt.UTC)


_OID_BASIC_CONSTRAINTS = bytes([0x55, 0x1D, 0x13])
_OID_SUBJECT_ALT_NAME = bytes([0x55, 0x1D, 0x11])


def parse_certificate(der: bytes) -> CertInfo:
    """Read the fields istioctl shows from a DER certificate; ValueError if it is not one."""
    tag, vs, ve = _tlv(der, 0)
    if tag != 0x30:
        raise _DerError("not a certificate")
    cert = _children(der, vs, ve)
    if len(cert) != 3 or cert[0][0] != 0x30:
        raise _DerError("not a certificate")
    tbs = _children(der, cert[0][1], cert[0][2])
    i = 1 if tbs and tbs[0][0] == 0xA0 else 0  # [0] EXPLICIT version
    if len(tbs) < i + 6 or tbs[i][0] != 0x02:
        raise _DerError("malformed tbsCertificate")
    serial = int.from_bytes(der[tbs[i][1]:tbs[i][2]], "big", signed=True)
    if serial < 0:
        raise _DerError("negative serial number")  # Go >= 1.23 rejects these
    validity = _children(der, tbs[i + 3][1], tbs[i + 3][2])
    if len(validity) != 2:
        raise _DerError("malformed validity")
    not_before = _time(der, *validity[0])
    not_after = _time(der, *validity[1])
    is_ca = False
    trust_domain = ""
    for tag, evs, eve in tbs[i + 6:]:
        if tag != 0xA3:
            continue
        (_, xs, xe), = _children(der, evs, eve)
        for _, s, e in _children(der, xs, xe):
            parts = _children(der, s, e)
            oid = der[parts[0][1]:parts[0][2]]
            value = der[parts[-1][1]:parts[-1][2]]
            if oid == _OID_BASIC_CONSTRAINTS:
                _, bs, be = _tlv(value, 0)
                inner = _children(value, bs, be)
                is_ca = bool(inner) and inner[0][0] == 0x01 and value[inner[0][1]] != 0
            elif oid == _OID_SUBJECT_ALT_NAME:
                _, ss, se = _tlv(value, 0)
                for gtag, gs, ge in _children(value, ss, se):
                    if gtag == 0x86:  # uniformResourceIdentifier
                        uri = urlsplit(value[gs:ge].decode("ascii", "replace"))
                        if uri.scheme == "spiffe":
                            trust_domain = uri.netloc.rpartition("@")[2]
    return CertInfo(is_ca, serial, not_before, not_after, trust_domain)


def _first_pem_block(data: bytes) -> bytes:
    """Go's ``pem.Decode``: the body of the first PEM block."""
    m = re.search(rb"-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----", data, re.S)
    if not m:
        raise _DerError("failed to parse certificate PEM")
    body = b"".join(line for line in m[2].splitlines() if b":" not in line)
    try:
        return base64.b64decode(body, validate=False)
    except binascii.Error as exc:
        raise _DerError("bad base64") from exc


def _rfc3339(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(name: str, state: str, data: bytes, trust_domain: str, now: _dt.datetime) -> SecretRow:
    if not data:
        return SecretRow(name, state)
    try:
        info = parse_certificate(_first_pem_block(data))
    except (ValueError, IndexError, UnicodeDecodeError):
        return SecretRow(name, state)
    return SecretRow(
        name, state,
        type="CA" if info.is_ca else "Cert Chain",
        valid=info.not_before < now < info.not_after,
        serial=f"{info.serial:032x}",
        not_after=_rfc3339(info.not_after), not_before=_rfc3339(info.not_before),
        trust_domain=trust_domain or info.spiffe_trust_domain)


def secret_rows(dump: ConfigDump, *, now: _dt.datetime) -> list[SecretRow]:
    """istioctl's ``GetEnvoySecrets``: warming then active secrets, one row per certificate."""
    if dump.secrets is None:
        raise missing_section("SecretsConfigDump")
    rows: list[SecretRow] = []
    for entries, state in ((dump.secrets.dynamic_warming_secrets, "WARMING"),
                           (dump.secrets.dynamic_active_secrets, "ACTIVE")):
        for entry in entries:
            # istioctl computes UNINITIALIZED for version "uninitialized" but assigns it to a
            # copy, so it never shows: the state stays as it is.
            secret = secret_pb2.Secret()
            secret.ParseFromString(entry.secret.value)
            chain = secret.tls_certificate.certificate_chain.inline_bytes
            ca = secret.validation_context.trusted_ca.inline_bytes
            if chain:
                rows.append(_row(entry.name, state, chain, "", now))
            elif ca:
                rows.append(_row(entry.name, state, ca, "", now))
            else:
                custom = secret.validation_context.custom_validator_config
                if custom.typed_config.type_url == SPIFFE_VALIDATOR:
                    spiffe = spiffe_pb2.SPIFFECertValidatorConfig()
                    spiffe.ParseFromString(custom.typed_config.value)
                    for td in spiffe.trust_domains:
                        rows.append(_row(secret.name, state, td.trust_bundle.inline_bytes,
                                         td.name, now))
                else:
                    rows.append(_row(entry.name, state, b"", "", now))
    return rows


def render_secrets(dump: ConfigDump, *, output: str = "short", with_names: bool = False,
                   now: _dt.datetime | None = None) -> str:
    """Render ``proxy-config secret``; ``now`` defaults to the current time (as istioctl)."""
    check_format(output)
    if dump.secrets is None:
        raise missing_section("SecretsConfigDump")
    if output != "short":
        text = jsonpb(dump.secrets, indent="    ")
        return (json_to_yaml(text) if output == "yaml" else text) + "\n"
    if not dump.secrets.dynamic_active_secrets and not dump.secrets.dynamic_warming_secrets:
        return "No active or warming secrets found.\n"
    rows = secret_rows(dump, now=now or _dt.datetime.now(_dt.UTC))
    if not rows:
        return "No secret items to show.\n"
    with_trust_domain = all(r.trust_domain for r in rows)
    header = ["RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER",
              "NOT BEFORE"] + (["TRUST DOMAIN"] if with_trust_domain else [])
    table = [header]
    for r in rows:
        row = [f"secret/{r.name}" if with_names else r.name, r.type, r.state,
               "true" if r.valid else "false", r.serial, r.not_after, r.not_before]
        table.append(row + ([r.trust_domain] if with_trust_domain else []))
    return render_table(table, padding=5)

