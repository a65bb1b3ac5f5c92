"""The certificate-rotation runbook (docs/operations.md) names only what `microk8s refresh-certs` offers
at 1.32 (canonical/microk8s scripts/wrappers/refresh_certs.py @ v1.32: argument CA_DIR, options
-u/--undo, -c/--check, -e/--cert with the choices of `certs`), and says what it cannot do."""

from __future__ import annotations

import datetime
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.helpers import PROJECT

OPTIONS = {"--undo", "-u", "--check", "-c", "--cert", "-e", "--help", "-h"}
CERTS = {"ca.crt", "server.crt", "front-proxy-client.crt"}


def runbook() -> str:
    doc = (PROJECT / "docs" / "operations.md").read_text()
    start = doc.index("## Rotating keys and certificates")
    return doc[start:doc.index("\n## ", start)]


def test_the_runbook_uses_only_refresh_certs_options_of_1_32() -> None:
    text = runbook()
    certs = text[text.index("Cluster certificates"):]
    flags = set(re.findall(r"(?<![\w-])--[a-z-]+", certs)) - {"--replace", "--show-urns"}  # pulumi's own
    assert flags and flags <= OPTIONS, flags - OPTIONS
    named = set(re.findall(r"--cert ([a-z.-]+\.crt)", certs)) | set(re.findall(r"`([a-z-]+\.crt)`", certs))
    assert named and named <= CERTS, named - CERTS
    assert "CA_DIR" in certs


def _ca(key: ec.EllipticCurvePrivateKey, serial: int) -> x509.Certificate:
    """`openssl req -x509 -new -key ca.key -subj /CN=10.152.183.1` (produce_certs @ v1.32)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "10.152.183.1")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False).sign(key, hashes.SHA256()))


def test_a_ca_remade_from_the_same_key_still_accepts_what_a_stolen_key_signed() -> None:
    """`refresh-certs --cert ca.crt` removes ca.crt and remakes it from the ca.key it keeps
    (reproduce_all_root_ca_certs, produce_certs @ v1.32): a certificate minted with a stolen key
    still verifies, so the runbook and docs/security.md say to rebuild or bring a new key."""
    key = ec.generate_private_key(ec.SECP256R1())
    old, new = _ca(key, 1), _ca(key, 2)
    minted = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                                                                x509.NameAttribute(NameOID.COMMON_NAME, "intruder")]))
              .issuer_name(old.subject).public_key(ec.generate_private_key(ec.SECP256R1()).public_key()).serial_number(3)
              .not_valid_before(old.not_valid_before_utc).not_valid_after(old.not_valid_after_utc)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
              .sign(key, hashes.SHA256()))
    minted.verify_directly_issued_by(new)  # same name, same key: the new CA vouches for it
    text = runbook()
    assert "keeps `ca.key`" in text and "refresh-certs CA_DIR" in text
    security = (PROJECT / "docs" / "security.md").read_text()
    assert "keeps `ca.key`" in security and "test_a_ca_remade_from_the_same_key_still_accepts_what_a_stolen_key_signed" in security
