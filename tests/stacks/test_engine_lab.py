"""The whole program under the real Pulumi CLI, on a lab stack shaped like Pulumi.dev.yaml
(tests/support/engine_lab.py, tests/support/cluster_lab.py): the host scripts run unchanged over
real SSH through the pulumi-command stand-in (tools/lab/command-standin); MicroK8s is the
stand-in tests/support/microk8s_standin.py, whose cluster is the lab's real kube-apiserver (with
etcd, controller-manager, scheduler and kwok nodes) in the control-plane host's network
namespace on MicroK8s' port; the Kubernetes layer goes through the real pulumi-kubernetes
provider to it, its charts from the lab's chart mirror (stand-in charts).

One lab for every scenario: preview, up, a second up, a workstation removed, destroy; then an
unreachable host and changed host keys (the layers below the cluster: they fail before it).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.cluster.known_nodes import CONFIGMAP, NAMESPACE
from components.hosts.ssh import DIAL_ERROR_LIMIT, refused_dial_budget_s
from tests.support.cluster_lab import ClusterLab
from tests.support.engine_checks import deployments_where, host_state, misplaced, placements
from tests.support.engine_lab import KUBERNETES_PROVIDER, ProgramStack, lab_config
from tests.support.helpers import unavailable
from tests.support.lab import wait_for_full_mesh
from tests.support.standin import require_built
from tools.lab import kube
from tools.lab.base import missing_requirements, sh
from tools.lab.netlab import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.engine]
# What the API server holds that a stack could have made (events, leases, pods and the
# controllers' endpoints come and go by themselves).
KINDS = ("namespaces,nodes,customresourcedefinitions,clusterroles,clusterrolebindings,storageclasses,runtimeclasses,"
         "priorityclasses,validatingwebhookconfigurations,mutatingwebhookconfigurations,deployments,daemonsets,statefulsets,"
         "services,configmaps,secrets,serviceaccounts,roles,rolebindings,persistentvolumeclaims,networkpolicies")
CLUSTER_HOSTS = {"receipt", "interface", "ws-1", "ws-2"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLab]:
    require_built()
    why = (missing_requirements() or kube.missing_requirements()
           or (None if Path("/usr/sbin/nft").exists() else "missing tools: nft (apt-get install nftables)"))
    if why:
        unavailable(f"end-to-end lab: {why}")
    for needed in (KUBERNETES_PROVIDER, kube.CRDS):
        if not needed.exists():
            unavailable(f"{needed} is not built: run `make engine`")
    with ClusterLab(tmp_path_factory.mktemp("cluster-lab")) as running:
        yield running


@pytest.fixture(scope="module")
def lab(cluster: ClusterLab) -> Lab:
    return cluster.lab


def sessions(lab: Lab) -> dict[str, int]:
    """Logins each host's sshd has accepted so far (its log: one line per authenticated session)."""
    return {h.name: (h.dir / "sshd.log").read_text().count("Accepted publickey") for h in lab.hosts.values()}


def summary(result: dict[str, Any], op: str) -> str:
    """The CLI's own `Resources:` block of the operation, printed with its time."""
    lines: list[str] = result["log"]
    start = max(i for i, line in enumerate(lines) if line.strip() == "Resources:")
    block = []
    for line in lines[start:]:
        if not line.strip() or line.lstrip().startswith("Duration"):
            break
        block.append(line.rstrip())
    print(f"\n$ pulumi {op} ({result['elapsed']:.1f} s)", *block, sep="\n", flush=True)
    return "\n".join(block)


def step(stack: ProgramStack, op: str, config: dict[str, Any], layers: str = "all") -> tuple[dict[str, Any], str, dict[str, int]]:
    before = sessions(stack.lab)
    result = stack.run(op, config, layers)
    assert result["ok"], "\n".join(result["log"][-40:]) + result["error"][-3000:]
    after = sessions(stack.lab)
    return result, summary(result, op), {h: after[h] - before[h] for h in after}


def api_objects(cluster: ClusterLab) -> set[str]:
    out = cluster.kubectl("get", KINDS, "-A", "-o", "json").stdout
    return {f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in json.loads(out)["items"]}


def test_whole_program_preview_up_again_remove_destroy(cluster: ClusterLab, tmp_path: Path) -> None:
    lab, config = cluster.lab, cluster.config()
    stack = ProgramStack(lab, tmp_path)
    first, objects = host_state(lab), api_objects(cluster)

    result, text, opened = step(stack, "preview", config)
    total = result["changes"]["create"]
    assert f"+ {total} to create" in text and total >= 100, result["changes"]
    planned = "\n".join(result["log"])
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Namespace", "command:remote:Command cluster-kubeconfig"):
        assert kind in planned, kind
    assert opened == dict.fromkeys(lab.hosts, 0), f"preview logged in to a host: {opened}"
    assert host_state(lab) == first and api_objects(cluster) == objects

    result, text, opened = step(stack, "up", config)
    # More than planned: the charts' and the Gateway API bundle's objects are known only once
    # the provider has the cluster's kubeconfig, which the preview cannot read.
    created = result["changes"]["create"]
    assert set(result["changes"]) == {"create"} and created > total and f"+ {created} created" in text, result["changes"]
    total = created
    assert all(opened.values()), opened  # every host ran its commands (ws-2 through ws-1)
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
    applied = host_state(lab)
    for h in ("vpn-hub", "receipt", "interface"):
        assert "table inet hybrid_ai" in applied[f"{h}:nft"], h  # the host firewall, on hosts with a public address
    nodes = {n["metadata"]["name"]: n for n in json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]}
    assert set(nodes) == CLUSTER_HOSTS, sorted(nodes)
    for name, node in nodes.items():  # joined over the VPN, pinned to its VPN address, labelled by the program
        address = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        assert address == node["metadata"]["labels"]["hybrid-ai.node-restriction.kubernetes.io/vpn-address"], name
    deployments, where = deployments_where(cluster), placements(config)
    assert len(where) >= 5 and not misplaced(deployments, where), misplaced(deployments, where)
    print(f"{len(deployments)} Deployments ready on their kwok nodes: {deployments}", flush=True)
    assert_no_secret_in_state(lab, stack)
    # The API server runs what the install left on the control plane: its args file's flags
    # (the lab's datastore and paths aside, tools/lab/kube.py LAB_FLAGS) and its server.crt.
    assert cluster.apiserver_drift() == []
    assert cluster.serves_host_certificate(), "the API server does not serve receipt's certs/server.crt"

    first_up = result["elapsed"]
    result, text, opened = step(stack, "up", config)
    assert result["changes"] == {"same": total} and f"{total} unchanged" in text
    print(f"second up / first up: {result['elapsed'] / first_up:.2f}", flush=True)
    assert opened == dict.fromkeys(lab.hosts, 0), f"the second up logged in to a host: {opened}"
    assert host_state(lab) == applied

    remaining = remove_workstation(cluster, stack, total, first, result["resources"])

    result, text, opened = step(stack, "destroy", config)
    assert result["changes"] == {"delete": remaining} and f"- {remaining} deleted" in text
    assert host_state(lab) == first
    # The charts' CRDs stay, as upstream's do: Helm never deletes a chart's `crds/` files
    # (kube-prometheus-stack's) nor a template marked `helm.sh/resource-policy: keep`
    # (cert-manager's); tests/kube/test_e2e_kube.py::test_destroy_leaves_nothing_of_ours.
    now = api_objects(cluster)
    kept = {o for o in now - objects if o.startswith("CustomResourceDefinition//") and o.endswith((".cert-manager.io", ".monitoring.coreos.com"))}
    assert now - kept == objects, f"the API server holds objects of the stack: {sorted(now - kept - objects)}, lost: {sorted(objects - now)}"
    print(f"left by the charts, as upstream's are: {sorted(kept)}", flush=True)


def assert_no_secret_in_state(lab: Lab, stack: ProgramStack) -> None:
    """No secret of the stack is in the state file in plaintext (`lab_secrets`)."""
    state = stack.state_file()
    assert '"ciphertext"' in state and stack.passphrase not in state
    secrets = lab_secrets(lab)
    assert {f"{h} WireGuard private key" for h in lab.hosts} <= set(secrets), sorted(secrets)
    assert "receipt admin client key" in secrets and "receipt join token 0" in secrets, sorted(secrets)
    found = secrets_in_state(state, secrets)
    assert not found, f"in the state in plaintext: {found}"


def lab_secrets(lab: Lab) -> dict[str, str]:
    """The SSH private key (the stack's secret), every WireGuard private key (made on its host,
    never to leave it), the admin kubeconfig's client key (CN=admin,O=system:masters) and every
    join token add-node issued (the stand-in's record: the ready step removes them)."""
    body = "".join(lab.client_key.read_text().splitlines()[1:-1])
    found = {"SSH private key (start)": body[:40], "SSH private key (end)": body[-40:]}
    for host in lab.hosts.values():
        found.update(host_secrets(host.name, host.dir))
    return found


def host_secrets(name: str, folder: Path) -> dict[str, str]:
    """The secrets a lab host's own folder holds (see `lab_secrets`)."""
    found: dict[str, str] = {}
    for conf in folder.rglob("wg0.conf"):
        private = re.search(r"^PrivateKey\s*=\s*(\S+)", conf.read_text(), re.M)
        if private:
            found[f"{name} WireGuard private key"] = private.group(1)
    for config in folder.rglob("credentials/client.config"):
        key = re.search(r"client-key-data:\s*(\S+)", config.read_text())
        if key:
            found[f"{name} admin client key"] = key.group(1)[:60]
    for record in folder.rglob("microk8s/current/lab-issued-tokens"):
        found.update({f"{name} join token {n}": t for n, t in enumerate(record.read_text().split())})
    return found


def secrets_in_state(state: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets whose value is in the state text."""
    return [name for name, value in secrets.items() if value and value in state]


def remove_workstation(cluster: ClusterLab, stack: ProgramStack, total: int, first: dict[str, str], resources: list[dict[str, str]]) -> int:
    """ws-2 removed: only its resources go and its peers' mesh configs change, its host is as
    before the first up, its Node is gone and the others still reach each other. Returns how
    many resources the stack keeps."""
    lab = stack.lab
    kept = cluster.config()
    kept["hosts"] = [h for h in kept["hosts"] if h["name"] != "ws-2"]
    before = {r["urn"] for r in resources}
    # ws-2's kubelet credential as its join left it (cluster-agent signed it; `leave` deletes the file).
    credential = next(lab.hosts["ws-2"].dir.rglob("credentials/kubelet.config"))
    saved = stack.root / "ws-2-kubelet.config"
    saved.write_bytes(credential.read_bytes())
    result, text, opened = step(stack, "up", kept)
    gone = before - {r["urn"] for r in result["resources"]}
    removed = int(result["changes"]["delete"])
    assert gone and all(re.search(r"::(cluster-)?ws-2(-|$)|::mesh-ws-2-", urn) for urn in gone), sorted(gone)
    assert len(gone) == removed and f"- {removed} deleted" in text
    updated = set(re.findall(r"^\s*~\s+command:remote:Command (\S+) update", "\n".join(result["log"]), re.M))
    assert "cluster-known-nodes" in updated and updated - {"cluster-known-nodes"} <= {f"mesh-{h}-wg" for h in lab.hosts if h != "ws-2"}, updated
    assert set(result["changes"]) == {"delete", "update", "same"}, result["changes"]
    # Logged in only where something changed: ws-2 (through ws-1), the control plane (drain,
    # remove-node) and the peers whose mesh config changed.
    assert {h for h, n in opened.items() if n} <= {"ws-2", "ws-1", "receipt"} | {u.removeprefix("mesh-").removesuffix("-wg") for u in updated}
    now = host_state(lab)
    refused = lab.hosts["ws-2"].dir / "labstate" / "standin-errors"
    print(f"ws-2's MicroK8s stand-in refused: {refused.read_text() if refused.exists() else 'nothing'}", flush=True)
    assert {k: v for k, v in now.items() if "ws-2" in k} == {k: v for k, v in first.items() if "ws-2" in k}
    assert cluster.kubectl("get", "node", "ws-2", check=False).returncode != 0, "ws-2 is still a Node"
    # Its kubelet certificate stays valid (10 years, no revocation), but registers no Node again.
    known = json.loads(cluster.kubectl("-n", NAMESPACE, "get", "configmap", CONFIGMAP, "-o", "json").stdout)["data"]
    assert set(known) == CLUSTER_HOSTS - {"ws-2"}, sorted(known)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ws-2"}}
    again = subprocess.run(["ip", "netns", "exec", lab.hosts["receipt"].ns, str(kube.BIN / "kubectl"), f"--kubeconfig={saved}", "create", "-f", "-"],
                           input=json.dumps(node), capture_output=True, text=True, timeout=60, check=False)  # from where the API answers
    assert again.returncode != 0 and "not one of the stack's cluster hosts" in again.stderr, again.stdout + again.stderr
    wait_for_full_mesh(lab, [h for h in lab.hosts if h != "ws-2"], timeout=30)
    return total - removed


def test_unreachable_host_and_changed_host_key_fail_naming_the_host(lab: Lab, tmp_path: Path) -> None:
    """The hub's SSH port refuses (sshd listens elsewhere): its first step fails after the
    program's dial budget (DIAL_ERROR_LIMIT failed dials and their pauses), naming it. Every other
    host presents a host key other than the one pinned: refused, and nothing runs anywhere."""
    config = lab_config(lab)  # the layers below the cluster: they fail first
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(tmp_path / "other"))
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    for host in config["hosts"]:
        if host["name"] == "vpn-hub":
            host["ssh"]["port"] = 2222
        else:
            host["ssh"]["hostKey"] = other
    stack = ProgramStack(lab, tmp_path / "stack")
    before = sessions(lab)
    baseline = stack.run("preview", config)
    result = stack.run("up", config)
    print(f"\n$ pulumi up, hosts unreachable or with changed keys: failed in {result['elapsed']:.1f} s", flush=True)
    assert not result["ok"]
    errors = result["error"]
    hub = lab.hosts["vpn-hub"].mgmt
    assert re.search(rf"vpn-hub-reachable.*\n?.*after {DIAL_ERROR_LIMIT} failed attempts: dial tcp {hub}:2222: connect: connection refused", errors)
    for name in ("receipt", "interface", "ws-1"):
        assert re.search(rf"{name}-reachable.*\n?.*ssh: handshake failed: ssh: host key mismatch", errors), name
    assert "ws-2-reachable" not in errors  # reached through ws-1, it waits for ws-1's check and is never dialed
    assert sessions(lab) == before, "a command ran on a host"
    # The refusals cost the dial budget, not more: measured against the CLI's own preview of the stack.
    assert result["elapsed"] - baseline["elapsed"] <= refused_dial_budget_s(DIAL_ERROR_LIMIT) + 10
    stack.run("destroy", config)

