"""The lab's MicroK8s stand-in refuses what MicroK8s 1.32 refuses (docs/upstream.md): its
cluster-agent (tests/support/microk8s_agent.py) answers a join and a certificate request as
cluster-agent 1.32 does, and its `microk8s` command (tests/support/microk8s_standin.py) issues
tokens and removes nodes as the 1.32 wrappers do. The joins that succeed run in the engine lab
(tests/stacks/test_engine_lab.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import microk8s_agent as agent
from tests.support import microk8s_host
from tests.support import microk8s_standin as standin
from tests.support.helpers import PROJECT
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


@pytest.mark.parametrize("addresses", [[{"type": "Hostname", "address": "ws-1"}], []])
def test_remove_node_refuses_a_node_that_posts_no_internal_ip(snap_data: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch, addresses: list[dict[str, str]]) -> None:
    """remove_node.py @ v1.32 remove_dqlite_node: no InternalIP among the Node's addresses (a
    kubelet posts its own) prints "not part of the cluster" and exits 1 before deleting it."""
    calls: list[list[str]] = []

    def kubectl(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        node = {"metadata": {"name": "ws-1"}, "status": {"addresses": addresses}}
        return subprocess.CompletedProcess(argv, 0, json.dumps(node), "")
    monkeypatch.setattr(standin, "installed", lambda: True)
    monkeypatch.setattr(standin, "kubectl", kubectl)
    assert standin.microk8s(["remove-node", "ws-1"]) == 1
    assert capsys.readouterr().out.strip() == "Node ws-1 is not part of the cluster."
    assert not [c for c in calls if c[0] == "delete"]
    addresses.append({"type": "InternalIP", "address": "100.64.1.1"})
    assert standin.microk8s(["remove-node", "ws-1"]) == 0
    assert calls[-1] == ["delete", "node", "ws-1"]


def test_any_token_holder_who_asks_as_a_control_plane_gets_the_ca_and_service_account_keys(snap_data: Path) -> None:
    """pkg/api/v2/join.go @ 1.32: the token is bound to no role; `worker` is the joiner's word.
    Not a worker: the CA key, the service-account key, dqlite's certificate and key, the voters
    (docs/security.md: what a workstation's token gets while its join window is open)."""
    tokens = snap_data / "credentials" / "cluster-tokens.txt"
    tokens.write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    (snap_data / "certs" / "serviceaccount.key").write_text("SA-SIGNING-KEY\n")
    backend = snap_data / "var" / "kubernetes" / "backend"
    backend.mkdir(parents=True)
    (backend / "cluster.crt").write_text("DQLITE-CERT\n")
    (backend / "cluster.key").write_text("DQLITE-KEY\n")
    (backend / "cluster.yaml").write_text("- Address: 100.64.0.2:19001\n  ID: 1\n- Address: 100.64.0.4:19001\n  ID: 2\n  Role: 1\n")
    request = {"token": TOKEN, "hostname": "ws-1", "port": "25000", "can_handle_x509_auth": True}
    for worker in (False, "as-master", 1, None):  # anything but true / "as-worker" is a control-plane join
        answer = agent.join({**request, "worker": worker}, "100.64.1.1", "100.64.0.2")
        assert answer["ca_key"] == (snap_data / "certs" / "ca.key").read_text()
        assert answer["service_account_key"] == "SA-SIGNING-KEY\n"
        assert (answer["cluster_cert"], answer["cluster_key"]) == ("DQLITE-CERT\n", "DQLITE-KEY\n")
        assert answer["voters"] == ["100.64.0.2:19001"] and answer["control_plane_nodes"] is None
    assert not (snap_data / "credentials" / "certs-request-tokens.txt").exists()
    # With the CA key the holder mints any identity the API server trusts, system:masters included.
    ca = x509.load_pem_x509_certificate((snap_data / "certs" / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key(str(answer["ca_key"]).encode(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    minted = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                                                                x509.NameAttribute(NameOID.COMMON_NAME, "intruder")]))
              .issuer_name(ca.subject).public_key(key.public_key()).serial_number(1)
              .not_valid_before(ca.not_valid_before_utc).not_valid_after(ca.not_valid_after_utc).sign(ca_key, hashes.SHA256()))
    minted.verify_directly_issued_by(ca)
    # A worker's join of the same token gets none of it; a joiner that cannot use x509 is refused.
    as_worker = agent.join({**request, "worker": True}, "100.64.1.1", "100.64.0.2")
    assert as_worker["ca_key"] is None and as_worker["service_account_key"] == "" and "cluster_key" not in as_worker
    with pytest.raises(agent.Refused) as err:
        agent.join({**request, "worker": False, "can_handle_x509_auth": False}, "100.64.1.1", "100.64.0.2")
    assert err.value.status == 500 and "requires x509 authentication" in str(err.value)


def test_a_worker_join_replaces_its_kubelet_args_with_the_seeds(snap_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """join.py @ v1.32 join_dqlite_worker_node: store_base_kubelet_args (the seed's args over the
    worker's), update_kubelet_node_ip (the address the seed saw), update_kubelet_hostname_override
    (removed), then the worker's labels: a per-node kubelet arg of the worker's own is gone."""
    (snap_data / "credentials" / "cluster-tokens.txt").write_text(f"{TOKEN}|{int(time.time()) + 600}\n")
    (snap_data / "args" / "kubelet").write_text("--node-ip=100.64.0.2\n--hostname-override=receipt\n--cluster-dns=10.152.183.10\n")
    worker = tmp_path / "worker"
    for folder in ("args", "certs", "credentials", "var/lock"):
        (worker / folder).mkdir(parents=True)
    (worker / "args" / "kubelet").write_text("--node-ip=100.64.1.1\n--runtime-request-timeout=45m\n")
    for module in (standin, microk8s_host):
        monkeypatch.setattr(module, "SNAP_DATA", worker)
    monkeypatch.setattr(standin, "hostname", lambda: "ws-1")
    monkeypatch.setattr(standin, "kubelet_posts", lambda: None)

    def post(address: str, path: str, body: dict[str, object]) -> dict[str, object]:  # the seed's agent, seeing ws-1's address
        assert address == "100.64.0.2:25000"
        return agent.join(body, "198.51.100.11", "100.64.0.2") if path.endswith("/join") else agent.sign_cert(body)
    monkeypatch.setattr(standin, "agent_post", post)
    assert standin.join([f"100.64.0.2:25000/{TOKEN}", "--worker"]) == 0
    # Both certificate-request tokens of the join are used up (join.py asks for kube-proxy's too).
    assert (snap_data / "credentials" / "certs-request-tokens.txt").read_text() == ""
    proxy = yaml.safe_load((worker / "credentials" / "proxy.config").read_text())["users"][0]["user"]["client-certificate-data"]
    subject = x509.load_pem_x509_certificate(base64.b64decode(proxy)).subject.rfc4514_string()
    assert subject == "CN=system:kube-proxy"
    assert sorted((worker / "args" / "kubelet").read_text().splitlines()) == sorted([
        "--node-ip=198.51.100.11", "--cluster-dns=10.152.183.10", "--client-ca-file=${SNAP_DATA}/certs/ca.remote.crt",
        f'--node-labels="{microk8s_host.WORKER_LABELS}"'])


def test_the_standin_imports_nothing_of_the_program() -> None:
    """Every `snap` and `microk8s` call of a host script on a lab host starts the stand-in as a
    fresh process: with the program's modules (pulumi, pulumi_kubernetes) it cost 0.4 s of CPU
    per call, a cost of the lab's hosts a MicroK8s host does not have (docs/performance.md). Nor,
    for its common calls (`microk8s kubectl`, `status`, `snap list`), what only install, join and
    the kubelet's posts need: cryptography, yaml, urllib (0.1 s of CPU a call)."""
    code = "import sys, tests.support.microk8s_standin; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT).stdout.split()
    assert "tests.support.microk8s_standin" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("pulumi", "pulumi_kubernetes", "pulumi_command", "components", "grpc",
                                                           "cryptography", "yaml", "ssl"))
    assert "urllib.request" not in loaded
    assert not heavy, heavy


def test_the_kubelet_registers_again_after_a_refusal_as_the_kubelet_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """registerWithAPIServer @ 1.32: a refused Node create is tried again, 0.1 s then doubling
    (docs/upstream.md); a just-created admission binding may refuse for a moment."""
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "kubelet.config").write_text("")
    monkeypatch.setattr(microk8s_host, "SNAP_DATA", tmp_path)
    monkeypatch.setattr(microk8s_host, "args_of", lambda _: {"--node-ip": "100.64.1.1"})
    monkeypatch.setattr(microk8s_host, "hostname", lambda: "ws-1")
    monkeypatch.setattr(microk8s_host, "wiring", lambda: {})
    answers = iter([1, 1, 1, 0])  # the get (no Node yet), two refused creates, then in
    calls: list[list[str]] = []

    def kubectl(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, next(answers), "", "denied: params not yet synced")
    pauses: list[float] = []
    monkeypatch.setattr(microk8s_host, "kubectl", kubectl)
    monkeypatch.setattr("tests.support.microk8s_host.time.sleep", pauses.append)
    microk8s_host.kubelet_posts()
    assert [c[2] for c in calls] == ["get", "create", "create", "create"] and pauses == [0.1, 0.2]
