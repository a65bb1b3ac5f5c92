"""The lab control plane's PKI, made fresh for each lab (Python `cryptography`): one CA for
serving and client certificates (as MicroK8s has one `ca.crt` for both), the API server's
serving certificate, a client certificate per component and per kubelet, and the
service-account signing key. Nothing is kept once the lab is down."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LIFETIME = datetime.timedelta(days=1)  # a lab lives for minutes


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Pki:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._ca = (
            x509.CertificateBuilder().subject_name(_name("hybrid-ai-lab-ca")).issuer_name(_name("hybrid-ai-lab-ca"))
            .public_key(self._ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca = root / "ca.crt"
        self.ca.write_bytes(self._ca.public_bytes(serialization.Encoding.PEM))
        sa = ec.generate_private_key(ec.SECP256R1())
        self.service_account_key = root / "serviceaccount.key"
        self.service_account_key.write_bytes(_key_pem(sa))
        self.service_account_pub = root / "serviceaccount.pub"
        self.service_account_pub.write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def ca_key_pem(self) -> bytes:
        """The CA's key (the controller-manager signs kubelet serving certificates with it)."""
        return _key_pem(self._ca_key)

    def issue(self, file: str, cn: str, orgs: tuple[str, ...] = (), *, server_names: tuple[str, ...] = ()) -> Pair:
        """A leaf certificate: a client one (CN = user, O = groups), or a serving one for `server_names`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder().subject_name(_name(cn, orgs)).issuer_name(self._ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + LIFETIME).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(server_names)), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        pair = Pair(self.root / f"{file}.crt", self.root / f"{file}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(_key_pem(key))
        pair.key.chmod(0o600)
        return pair


def sign(ca_dir: Path, cn: str, orgs: tuple[str, ...] = (), server_names: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(certificate, key) PEM issued by the lab's CA kept in `ca_dir` (ca.crt, ca.key): what a
    cluster's CA signs later (a kubelet's client certificate at its join, a re-issued server.crt)."""
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(cn, orgs)).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if server_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(server_names)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    return sans


def subject(cert: Path) -> tuple[str, list[str]]:
    """(CN, [O...]) of a certificate."""
    name = x509.load_pem_x509_certificate(cert.read_bytes()).subject
    return (str(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value),
            [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])


def write_kubeconfig(path: Path, server: str, ca: Path, pair: Pair) -> None:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": "lab", "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
    }))


def inline_kubeconfig(path: Path) -> str:
    """A kubeconfig with its certificates and key inline (what a provider is given)."""
    doc = json.loads(path.read_text())
    c, u = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    c["certificate-authority-data"] = base64.b64encode(Path(c.pop("certificate-authority")).read_bytes()).decode()
    for key in ("client-certificate", "client-key"):
        u[f"{key}-data"] = base64.b64encode(Path(u.pop(key)).read_bytes()).decode()
    return json.dumps(doc)
