"""The post-deploy verification: what it checks (nodes, GPUs, the public API), and the TLS roots
it trusts (Let's Encrypt's staging roots on staging stacks, the system store otherwise), and
verify-cluster.sh under recording stubs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from components.kit.kube import GPU_CAPACITY_LABEL, VPN_ADDRESS_LABEL
from components.kit.shell import split_command
from tests.support.cluster_scripts import sleeps
from tests.support.cluster_stubs import ClusterHost
from tests.support.helpers import evaluate_config, stack_config
from tools.render.evaluate import Evaluation

LABELS = {"VPN_LABEL": VPN_ADDRESS_LABEL, "CAPACITY_LABEL": GPU_CAPACITY_LABEL}


@pytest.fixture(scope="module")
def dev() -> Evaluation:
    return evaluate_config(stack_config("dev"))


def test_post_deploy_verification_checks_nodes_gpus_and_the_api(dev: Evaluation) -> None:
    check = dev.by_name("cluster-verify-check")
    _, params = split_command(check.inputs["create"])
    assert params.pop("PROBE_CA").startswith("-----BEGIN CERTIFICATE-----")  # dev: the staging roots
    assert params == {"PROBE_URL": "https://api.example.com/receipt/healthz", "INGRESS_ADDRESS": "203.0.113.11", "VOTERS": "1", **LABELS}
    by_urn = {r.urn: r.name for r in dev.resources}
    deps = {by_urn[d] for d in check.dependencies}
    assert {"cluster-ws-1-ready", "cluster-ws-2-ready", "cluster-interface-ready"} <= deps  # after every node joined
    # Each node's expectations are on the node itself, for the cluster-wide check.
    labels = dev.by_name("cluster-ws-1-labels").inputs["metadata"]["labels"]
    assert labels[VPN_ADDRESS_LABEL] == "100.64.1.1"
    assert labels[GPU_CAPACITY_LABEL] == "4"  # 1 GPU x 4 time-slicing replicas
    assert GPU_CAPACITY_LABEL not in dev.by_name("cluster-receipt-labels").inputs["metadata"]["labels"]
    assert dev.outputs["verification"]  # exported


STAGING_FINGERPRINTS = {  # as Let's Encrypt publishes them (docs/staging-environment)
    "(STAGING) Pretend Pear X1": "E7:05:70:A9:89:F8:56:5A:AB:DF:7C:AE:27:AB:D1:62:18:72:D6:A3:F8:11:E3:FE:F2:7E:3D:BA:02:91:21:98",
    "(STAGING) Bogus Broccoli X2": "9B:2A:33:9F:E6:A3:E8:55:85:C4:CD:75:53:6C:B8:C1:CF:7C:D6:03:B9:A6:4B:EC:25:21:85:8A:E4:8D:A8:5D",
}


def pem_blocks(pem: str) -> list[str]:
    return [b + "-----END CERTIFICATE-----\n" for b in pem.split("-----END CERTIFICATE-----\n") if "BEGIN" in b]


def test_shipped_staging_roots_are_lets_encrypts() -> None:
    from components.cluster.verify import staging_roots
    found = {}
    for block in pem_blocks(staging_roots()):
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-fingerprint", "-sha256", "-nameopt", "multiline"],
                             input=block, capture_output=True, text=True, check=True).stdout
        cn = next(line.split("=", 1)[1].strip() for line in out.splitlines() if "commonName" in line)
        found[cn] = out.rsplit("=", 1)[1].strip()
    assert found == STAGING_FINGERPRINTS


def test_staging_stacks_probe_with_the_staging_roots_prod_with_the_system_store(dev: Evaluation) -> None:
    from components.cluster.verify import staging_roots
    check = dev.by_name("cluster-verify-check").inputs
    assert split_command(check["create"])[1]["PROBE_CA"] == staging_roots()
    prod = evaluate_config(stack_config("prod")).by_name("cluster-verify-check").inputs
    assert split_command(prod["create"])[1]["PROBE_CA"] == ""  # the system store
    assert "-k" not in split_command(prod["create"])[0].split() and "--insecure" not in split_command(prod["create"])[0]


# curl as it behaves on TLS: the served chain ends at STAGING_ROOT; without that root in the
# trusted set, exit 60 ("SSL certificate problem"), as a real curl does.
TLS_CURL = """
case " $* " in *" -k "*|*" --insecure "*) echo "curl -k used" >&2; exit 98;; esac
ca=/etc/ssl/certs/ca-certificates.crt prev=
for a in "$@"; do [ "$prev" = --cacert ] && ca=$a; prev=$a; done
grep -qF "$(sed -n 2p "$STATE/served-root")" "$ca" 2>/dev/null || { echo "curl: (60) SSL certificate problem: unable to get local issuer certificate" >&2; exit 60; }
"""


def test_verify_trusts_the_given_roots_and_only_then(tmp_path: Path) -> None:
    from components.cluster.verify import staging_roots
    from tests.support.cluster_stubs import ClusterHost
    from tests.support.stubs import PROLOGUE
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    cp.add_node("receipt", "100.64.0.2")
    api_server_args(cp)
    (cp.bin / "curl").write_text(PROLOGUE + TLS_CURL)
    (cp.state / "served-root").write_text(pem_blocks(staging_roots())[0])
    probe = {"PROBE_URL": "https://api.example.com/receipt/healthz", "INGRESS_ADDRESS": "203.0.113.11", "WAIT_S": "10", **LABELS}
    trusted = cp.run("verify-cluster.sh", PROBE_CA=staging_roots(), **probe)
    assert trusted.returncode == 0, trusted.stderr
    system = cp.run("verify-cluster.sh", PROBE_CA="", **probe)
    assert system.returncode == 1 and "does not answer through the Gateway" in system.stderr
    garbage = cp.run("verify-cluster.sh", PROBE_CA="not a certificate", **probe)
    assert garbage.returncode == 1 and "PROBE_CA is not a PEM certificate bundle" in garbage.stderr


# --- Post-deploy verification -----------------------------------------------------------

VERIFY = {"PROBE_URL": "https://api.example.com/receipt/healthz", "INGRESS_ADDRESS": "203.0.113.11", "WAIT_S": "30", **LABELS}


def api_server_args(cp: ClusterHost) -> None:
    """The control plane's kube-apiserver args as the install leaves them (tests/cluster/test_verify_api_server.py)."""
    (cp.snap_data / "args").mkdir(parents=True)
    (cp.snap_data / "args/kube-apiserver").write_text("--authorization-mode=RBAC,Node\n--enable-admission-plugins=EventRateLimit,NodeRestriction\n")


def cluster_for_verify(tmp_path: Path, api_up: bool = True) -> ClusterHost:
    cp = ClusterHost(tmp_path, "receipt", "100.64.0.2")
    api_server_args(cp)
    cp.add_node("receipt", "100.64.0.2")
    cp.add_node("ws-1", "100.64.1.1")
    (cp.state / "gpus").mkdir()
    (cp.state / "gpus" / "ws-1").write_text("4")
    if api_up:
        (cp.state / "api-up").touch()
    return cp


def test_verify_passes_on_a_working_deployment(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "verified: nodes=2 probe=https://api.example.com/receipt/healthz"
    assert "curl -fsS -o /dev/null --max-time 10 --resolve api.example.com:443:203.0.113.11 https://api.example.com/receipt/healthz" in cp.calls()
    assert cp.state_changes() == []


def _label_fields(jsonpath: str) -> set[str]:
    """The label names a kubectl JSONPath reads, as client-go's parser takes them (util/jsonpath
    parser.go parseField: a field runs to the next unescaped terminator, then drops its backslashes)."""
    return {m.replace("\\", "") for m in re.findall(r"\.metadata\.labels\.((?:\\.|[^.,\[\]$@{}\s])+)", jsonpath)}


def test_verify_reads_the_programs_labels_by_their_full_names(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    assert cp.run("verify-cluster.sh", **VERIFY).returncode == 0
    listing = next(c for c in cp.calls() if c.startswith(f"microk8s kubectl get nodes -l {VPN_ADDRESS_LABEL} -o jsonpath="))
    assert _label_fields(listing) == {VPN_ADDRESS_LABEL, GPU_CAPACITY_LABEL}


def test_verify_names_everything_missing_after_its_bound(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path, api_up=False)
    (cp.state / "vpn").mkdir()
    (cp.state / "vpn" / "ws-1").write_text("100.64.1.1")
    (cp.state / "nodes" / "ws-1").write_text("198.51.100.11")  # joined on its LAN address
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 1
    assert "node ws-1 has address '198.51.100.11', not its VPN address 100.64.1.1" in result.stderr
    assert "https://api.example.com/receipt/healthz does not answer through the Gateway at 203.0.113.11" in result.stderr
    assert len(sleeps(cp)) == 2


def test_verify_checks_each_gpu_node_against_its_capacity_label(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    (cp.state / "want-gpus").mkdir()
    (cp.state / "want-gpus" / "ws-1").write_text("4")
    assert cp.run("verify-cluster.sh", **VERIFY).returncode == 0
    (cp.state / "gpus" / "ws-1").write_text("1")  # the plugin did not pick up time-slicing
    result = cp.run("verify-cluster.sh", **VERIFY)
    assert result.returncode == 1
    assert "node ws-1 advertises 1 nvidia.com/gpu, expected 4 (GPUs x time-slicing replicas)" in result.stderr


def test_verify_with_three_control_planes_needs_high_availability_formed(tmp_path: Path) -> None:
    cp = cluster_for_verify(tmp_path)
    result = cp.run("verify-cluster.sh", **{**VERIFY, "WAIT_S": "10"}, VOTERS="3")
    assert result.returncode == 1
    assert "high availability not formed: microk8s status does not say 'high-availability: yes' with 3 control planes" in result.stderr
    (cp.state / "ha").write_text("yes")
    assert cp.run("verify-cluster.sh", **VERIFY, VOTERS="3").returncode == 0
    assert cp.run("verify-cluster.sh", **VERIFY, VOTERS="1").returncode == 0  # one control plane: never HA
