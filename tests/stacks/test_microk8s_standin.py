"""The lab's MicroK8s stand-in refuses what MicroK8s 1.32 refuses (docs/upstream.md): its
cluster-agent (tests/support/microk8s_agent.py) answers a join and a certificate request as
cluster-agent 1.32 does, and its `microk8s` command (tests/support/microk8s_standin.py) issues
tokens and removes nodes as the 1.32 wrappers do. The joins that succeed run in the engine lab
(tests/stacks/test_engine_lab.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import microk8s_agent as agent
from tests.support import microk8s_standin as standin
from tools.lab.pki import Pki

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def snap_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "current"
    for folder in ("credentials", "certs", "args"):
        (data / folder).mkdir(parents=True)
    pki = Pki(tmp_path / "pki")
    (data / "certs" / "ca.crt").write_bytes(pki.ca.read_bytes())
    (data / "certs" / "ca.key").write_bytes(pki.ca_key_pem())
    (data / "args" / "kube-apiserver").write_text("--secure-port=16443\n")
    (data / "args" / "kubelet").write_text("--node-ip=100.64.0.2\n")
    monkeypatch.setattr(agent, "SNAP_DATA", data)
    monkeypatch.setattr(agent, "TOKENS", data / "credentials" / "cluster-tokens.txt")
    monkeypatch.setattr(agent, "REQUEST_TOKENS", data / "credentials" / "certs-request-tokens.txt")
    monkeypatch.setattr(standin, "SNAP_DATA", data)
    return data


def join(token: str, remote: str = "100.64.1.1", port: str = "25000") -> dict[str, object]:
    return agent.join({"token": token, "hostname": "ws-1", "port": port, "worker": True}, remote, "100.64.0.2")


def refused(token: str, **kwargs: str) -> tuple[int, str]:
    with pytest.raises(agent.Refused) as err:
        join(token, **kwargs)
    return err.value.status, str(err.value)


def test_a_join_needs_a_token_add_node_wrote_and_that_has_not_expired(snap_data: Path) -> None:
    tokens = snap_data / "credentials" / "cluster-tokens.txt"
    assert refused(TOKEN) == (500, "Invalid token")  # no tokens file at all
    tokens.write_text(f"{'f' * 32}|{int(time.time()) + 600}\n")
    assert refused(TOKEN) == (500, "Invalid token")  # another token
    tokens.write_text(f"{TOKEN}|{int(time.time()) - 1}\n")
    assert refused(TOKEN) == (500, "Invalid token")  # expired
    tokens.write_text(f"{TOKEN}|{int(time.time()) - 1}\n{TOKEN}|{int(time.time()) + 600}\n")
    assert refused(TOKEN) == (500, "Invalid token")  # the first line with the token decides


def test_a_token_with_a_ttl_stays_and_one_without_is_consumed(snap_data: Path) -> None:
    tokens = snap_data / "credentials" / "cluster-tokens.txt"
    tokens.write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    assert join(TOKEN)["apiport"] == "16443"
    assert join(TOKEN)["ca"] == (snap_data / "certs" / "ca.crt").read_text()  # still valid: it has a TTL
    tokens.write_text(f"{TOKEN}\n")
    join(TOKEN)
    assert refused(TOKEN) == (500, "Invalid token")  # consumed by its one join


def test_a_join_from_the_contacted_address_or_another_agent_port_is_refused(snap_data: Path) -> None:
    (snap_data / "credentials" / "cluster-tokens.txt").write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    assert refused(TOKEN, port="25001")[0] == 502
    assert refused(TOKEN, remote="100.64.0.2")[0] == 503


def test_sign_cert_signs_any_subject_once_per_request_token(snap_data: Path) -> None:
    (snap_data / "credentials" / "cluster-tokens.txt").write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"), x509.NameAttribute(NameOID.COMMON_NAME, "anyone")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(agent.Refused):
        agent.sign_cert({"token": f"{TOKEN}-kubelet", "request": csr})  # no join yet: no request token
    join(TOKEN)
    signed = agent.sign_cert({"token": f"{TOKEN}-kubelet", "request": csr})
    assert x509.load_pem_x509_certificate(str(signed["certificate"]).encode()).subject == subject
    with pytest.raises(agent.Refused):
        agent.sign_cert({"token": f"{TOKEN}-kubelet", "request": csr})  # one use


def test_add_node_appends_a_token_with_its_expiry_and_prints_it_alone(snap_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert standin.add_node(["--token-ttl", "600", "--format", "token"]) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) == 32 and int(token, 16) >= 0
    line = (snap_data / "credentials" / "cluster-tokens.txt").read_text().strip()
    saved, expiry = line.split("|")
    assert saved == token and abs(int(expiry) - (time.time() + 600)) < 5
    assert agent.is_valid(token, snap_data / "credentials" / "cluster-tokens.txt") == (True, True)


def test_a_join_marks_the_contacted_node_and_leave_there_is_refused(snap_data: Path, capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """cluster-agent 1.32 writes no-cert-reissue on the node a join goes through (a worker's join
    too); `microk8s leave` there would reset a control plane's datastore: the stand-in refuses it."""
    (snap_data / "credentials" / "cluster-tokens.txt").write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    monkeypatch.setattr(standin, "installed", lambda: True)
    assert standin.microk8s(["leave"]) == 1  # not part of a cluster yet (the wrapper's check)
    assert "not acting as a node in a cluster" in capsys.readouterr().err
    join(TOKEN)
    assert (snap_data / "var" / "lock" / "no-cert-reissue").exists()
    assert standin.microk8s(["leave"]) == 2 and "does not leave as a control plane" in capsys.readouterr().err
    assert (snap_data / "var" / "lock" / "no-cert-reissue").exists()
