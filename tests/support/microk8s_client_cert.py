"""The joiner's side of cluster-agent's sign-cert for the lab's MicroK8s stand-in (tests only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def signed(post: Callable[[str, str, dict[str, Any]], dict[str, Any]], address: str, token: str, subject: x509.Name) -> tuple[bytes, bytes]:
    """join.py get_client_cert @ v1.32: a fresh key, its CSR signed by the seed's agent (POSTed
    with `post`); the key and the certificate, PEM."""
    key, pem = ec.generate_private_key(ec.SECP256R1()), serialization.Encoding.PEM
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    answer = post(address, "/cluster/api/v1.0/sign-cert", {"token": token, "request": csr.public_bytes(pem).decode()})
    return key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), str(answer["certificate"]).encode()
