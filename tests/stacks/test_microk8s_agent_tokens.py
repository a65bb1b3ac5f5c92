"""The cluster-agent stand-in (tests/support/microk8s_agent.py) checks and removes tokens as
cluster-agent 1.32 does (pkg/util/token.go IsValidToken, RemoveToken; pkg/snap/snap.go
ConsumeClusterToken, ConsumeCertificateRequestToken; docs/upstream.md): only the empty token is
refused outright; a token is trimmed and compared with the first field of each line of the file
split on "\\n", so the "" after the file's final newline matches a whitespace-only token. Removal
drops the first line that starts with the token as sent, untrimmed, and nothing else. So a
whitespace-only token joins (as a control plane too) and gets certificates signed wherever the
tokens file exists: the agent guard, not the token, keeps callers out (docs/security.md)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import microk8s_agent as agent
from tools.lab.pki import Pki

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def snap_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "current"
    for folder in ("credentials", "certs", "args", "var/kubernetes/backend"):
        (data / folder).mkdir(parents=True)
    pki = Pki(tmp_path / "pki")
    (data / "certs" / "ca.crt").write_bytes(pki.ca.read_bytes())
    (data / "certs" / "ca.key").write_bytes(pki.ca_key_pem())
    (data / "certs" / "serviceaccount.key").write_text("SA-SIGNING-KEY\n")
    (data / "args" / "kube-apiserver").write_text("--secure-port=16443\n")
    (data / "args" / "kubelet").write_text("--node-ip=100.64.0.2\n")
    backend = data / "var" / "kubernetes" / "backend"
    (backend / "cluster.crt").write_text("DQLITE-CERT\n")
    (backend / "cluster.key").write_text("DQLITE-KEY\n")
    (backend / "cluster.yaml").write_text("- Address: 100.64.0.2:19001\n  ID: 1\n")
    monkeypatch.setattr(agent, "SNAP_DATA", data)
    monkeypatch.setattr(agent, "TOKENS", data / "credentials" / "cluster-tokens.txt")
    monkeypatch.setattr(agent, "REQUEST_TOKENS", data / "credentials" / "certs-request-tokens.txt")
    return data


@pytest.mark.parametrize("token", [" ", "\t", "\n", "  \r\n"])
def test_a_whitespace_only_token_is_valid_against_a_tokens_file_ending_in_a_newline(snap_data: Path, token: str) -> None:
    tokens = snap_data / "credentials" / "cluster-tokens.txt"
    assert agent.is_valid(token, tokens) == (False, False)  # no file: nothing is valid
    tokens.write_text(f"{TOKEN}|{int(time.time()) + 600}\n")  # as add-node writes it
    assert agent.is_valid(token, tokens) == (True, False)
    assert agent.is_valid("", tokens) == (False, False)  # the one token refused before trimming
    tokens.write_text("")  # every token consumed: the file stays, empty
    assert agent.is_valid(token, tokens) == (True, False)
    tokens.write_text(f"{TOKEN}|{int(time.time()) + 600}")  # no final newline (never written so): no empty line
    assert agent.is_valid(token, tokens) == (False, False)


def test_a_whitespace_token_joins_as_a_control_plane_and_gets_certificates_signed(snap_data: Path) -> None:
    """Join.go answers any valid token as the request asks; ConsumeClusterToken removes nothing
    for " " (no line starts with it), so it works again; sign-cert takes it as well."""
    tokens = snap_data / "credentials" / "cluster-tokens.txt"
    tokens.write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    request = {"token": " ", "hostname": "x", "port": "25000", "worker": False, "can_handle_x509_auth": True}
    for _ in range(2):
        answer = agent.join(request, "100.64.1.1", "100.64.0.2")
        assert answer["ca_key"] == (snap_data / "certs" / "ca.key").read_text()
        assert answer["service_account_key"] == "SA-SIGNING-KEY\n" and answer["cluster_key"] == "DQLITE-KEY\n"
    assert tokens.read_text() == f"{TOKEN}|{tokens.read_text().split('|')[1]}"  # the live token untouched
    # A worker join writes certs-request-tokens.txt (" -kubelet", " -proxy"): from then on " " signs.
    agent.join({**request, "worker": True}, "100.64.1.1", "100.64.0.2")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"), x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
    for _ in range(2):
        signed = agent.sign_cert({"token": " ", "request": csr.decode()})
        assert x509.load_pem_x509_certificate(str(signed["certificate"]).encode()).subject == subject


def test_a_revoked_token_is_refused_and_only_the_first_line_starting_with_it_is_removed(snap_data: Path) -> None:
    tokens = snap_data / "credentials" / "cluster-tokens.txt"
    tokens.write_text(f"{TOKEN}\n{TOKEN}\n")
    agent.join({"token": TOKEN, "port": "25000", "worker": True}, "100.64.1.1", "100.64.0.2")
    assert tokens.read_text() == f"{TOKEN}\n"  # RemoveToken breaks after the first line
    agent.join({"token": TOKEN, "port": "25000", "worker": True}, "100.64.1.1", "100.64.0.2")
    assert tokens.read_text() == ""
    with pytest.raises(agent.Refused) as err:  # consumed: refused
        agent.join({"token": TOKEN, "port": "25000", "worker": True}, "100.64.1.1", "100.64.0.2")
    assert err.value.status == 500
    # HasPrefix on the untrimmed line, with the token as sent: a prefix removes a longer token's
    # line; a token with a trailing space (valid once trimmed) removes nothing.
    tokens.write_text("abcdef|99\nabc\nabc\n")
    agent.remove("abc", tokens)
    assert tokens.read_text() == "abc\nabc\n"
    agent.remove("abc ", tokens)
    assert tokens.read_text() == "abc\nabc\n"
    assert agent.is_valid("abc ", tokens) == (True, False)
    agent.remove(" ", tokens)
    assert tokens.read_text() == "abc\nabc\n"


def test_concurrent_joins_and_signings_lose_no_request_token(snap_data: Path) -> None:
    """Joins are served at once (a goroutine, here a thread, each); the request tokens' appends
    and their consumption are serialised (snap.certTokensMu), so none is lost to another's
    rewrite of the file: each worker that joined signs its kubelet and proxy certificates."""
    tokens = [f"{n:032x}" for n in range(24)]
    (snap_data / "credentials" / "cluster-tokens.txt").write_text("".join(f"{t}|{int(time.time()) + 600}\n" for t in tokens))
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n")]))
    request = csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    failed: list[str] = []

    def worker(token: str) -> None:
        try:
            agent.join({"token": token, "hostname": token, "port": "25000", "worker": True}, "100.64.1.1", "100.64.0.2")
            for part in ("kubelet", "proxy"):
                agent.sign_cert({"token": f"{token}-{part}", "request": request})
        except agent.Refused as err:
            failed.append(f"{token}: {err}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failed == []
    assert (snap_data / "credentials" / "certs-request-tokens.txt").read_text().strip() == ""
