"""The lab CA: a root and one SPIFFE workload certificate per service account, as Secrets.

Layer: L7 (lab). Imports: lab.statedir, cryptography, xDS protos.

Istio's agent serves each sidecar two SDS secrets: ``default`` (the workload's certificate chain
and key, URI SAN ``spiffe://<trust domain>/ns/<namespace>/sa/<service account>``) and ``ROOTCA``
(the mesh root, used to verify peers). The lab makes the same two with an EC P-256 root of its own
(valid one day) and serves them over ADS. Keys never leave memory except as PEM files in the lab's
private folder (mode 0700, files 0600, removed at exit; see :mod:`meshlens.lab.statedir`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from meshlens.lab.statedir import write_private


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """Istio's workload identity.

    Example:
        >>> spiffe_id("cluster.local", "mesh-demo", "llm-server")
        'spiffe://cluster.local/ns/mesh-demo/sa/llm-server'
    """
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(slots=True)
class LabCA:
    """A root CA that issues SPIFFE workload certificates (cached per identity)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    issued: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str = "meshlens lab root") -> LabCA:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshlens-lab"),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                             crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    @property
    def root_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, identity: str) -> tuple[bytes, bytes]:
        """(certificate chain PEM, key PEM) for a SPIFFE URI; the same pair for the same URI."""
        if identity in self.issued:
            return self.issued[identity]
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshlens-lab")]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=12))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(identity)]), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                             key_cert_sign=False, crl_sign=False,
                                             content_commitment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        pair = (cert.public_bytes(serialization.Encoding.PEM) + self.root_pem, _pem_key(key))
        self.issued[identity] = pair
        return pair

    def secrets(self, identity: str) -> list[secret_pb2.Secret]:
        """Istio's two SDS secrets for one workload: ``default`` and ``ROOTCA``."""
        chain, key = self.issue(identity)
        default = secret_pb2.Secret(name="default")
        default.tls_certificate.certificate_chain.inline_bytes = chain
        default.tls_certificate.private_key.inline_bytes = key
        root = secret_pb2.Secret(name="ROOTCA")
        root.validation_context.trusted_ca.inline_bytes = self.root_pem
        return [default, root]

    def write(self, directory: Path) -> list[Path]:
        """Write the root and every issued pair as PEM files into a private directory."""
        directory.mkdir(mode=0o700)
        out = [directory / "root-cert.pem"]
        write_private(out[0], self.root_pem)
        for identity, (chain, key) in self.issued.items():
            stem = identity.rsplit("/ns/", 1)[-1].replace("/", "_")
            write_private(directory / f"{stem}.cert.pem", chain)
            write_private(directory / f"{stem}.key.pem", key)
            out += [directory / f"{stem}.cert.pem", directory / f"{stem}.key.pem"]
        return out
