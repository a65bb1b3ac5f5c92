"""The program's layers below the cluster under the real Pulumi CLI, on a lab stack shaped like
Pulumi.dev.yaml (tests/support/engine_lab.py): the host scripts run unchanged over real SSH
through the pulumi-command stand-in (tools/lab/command-standin).

What runs: `preview` of the whole program (with the pulumi-kubernetes provider `make engine`
builds), and preview, up, a second up and destroy of the layers below the cluster: the hosts
(reachability, base bootstrap, the GPU driver check under the NVIDIA stand-in), the WireGuard
mesh and the host firewalls. What does not yet: `up` of the cluster layer and everything above
it. The program registers a Kubernetes provider with the cluster, and the CLI loads and
configures that provider even for resources left out by `--target` or `--exclude`; the cluster
layer needs a MicroK8s stand-in that joins the lab's hosts into one cluster whose `microk8s
config` prints the lab control plane's kubeconfig.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.hosts.ssh import DIAL_ERROR_LIMIT, refused_dial_budget_s
from tests.support.engine_lab import KUBERNETES_PROVIDER, OFFICE, ProgramStack, lab_config, lab_hosts, place_standins
from tests.support.helpers import unavailable
from tests.support.lab import wait_for_full_mesh
from tests.support.standin import require_built
from tools.lab.base import missing_requirements, sh
from tools.lab.netlab import Lab

pytestmark = [pytest.mark.e2e, pytest.mark.engine]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_built()
    why = missing_requirements() or (None if Path("/usr/sbin/nft").exists() else "missing tools: nft (apt-get install nftables)")
    if why:
        unavailable(f"end-to-end lab: {why}")
    with Lab(tmp_path_factory.mktemp("lab"), [OFFICE], lab_hosts()) as running:
        place_standins(running)
        yield running


def host_state(lab: Lab) -> dict[str, str]:
    """Every file of every host's own folders (mounts, /etc layer, lab state) by digest, and each
    host's network devices and nftables tables: what `up` changes and `destroy` must put back."""
    found: dict[str, str] = {}
    for h in lab.hosts.values():
        for path in sorted(h.dir.rglob("*")):
            if path.is_file() and path.suffix != ".log":
                found[str(path.relative_to(lab.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        found[f"{h.name}:links"] = " ".join(sorted(re.findall(r"^\d+: ([^:@]+)", sh("ip", "-n", h.ns, "link").stdout, re.M)))
        found[f"{h.name}:nft"] = sh("ip", "netns", "exec", h.ns, "nft", "list", "tables").stdout
    return found


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


def step(stack: ProgramStack, op: str, config: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, int]]:
    before = sessions(stack.lab)
    result = stack.run(op, config)
    assert result["ok"], "\n".join(result["log"][-40:]) + result["error"][-3000:]
    after = sessions(stack.lab)
    return result, summary(result, op), {h: after[h] - before[h] for h in after}


def test_preview_up_again_destroy(lab: Lab, tmp_path: Path) -> None:
    config = lab_config(lab)
    stack = ProgramStack(lab, tmp_path)
    first = host_state(lab)

    result, text, opened = step(stack, "preview", config)
    total = result["changes"]["create"]
    assert f"+ {total} to create" in text
    assert total >= 40, result["changes"]  # five hosts' commands and components, the mesh, the firewalls
    assert opened == dict.fromkeys(lab.hosts, 0), f"preview logged in to a host: {opened}"
    assert host_state(lab) == first

    result, text, opened = step(stack, "up", config)
    assert result["changes"] == {"create": total} and f"+ {total} created" in text
    assert all(opened.values()), opened  # every host ran its commands (ws-2 through ws-1)
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
    applied = host_state(lab)
    assert applied != first
    for h in ("vpn-hub", "receipt", "interface"):
        assert "table inet hybrid_ai" in applied[f"{h}:nft"], h  # the host firewall, on hosts with a public address
    for h in lab.hosts:
        assert "wg0" in applied[f"{h}:links"].split(), h

    assert_no_secret_in_state(lab, stack)

    first_up = result["elapsed"]
    result, text, opened = step(stack, "up", config)
    assert result["changes"] == {"same": total} and f"{total} unchanged" in text
    print(f"second up / first up: {result['elapsed'] / first_up:.2f}", flush=True)
    assert opened == dict.fromkeys(lab.hosts, 0), f"the second up logged in to a host: {opened}"
    assert host_state(lab) == applied

    remove_and_add_back(stack, config, total, first, result["resources"])

    result, text, opened = step(stack, "destroy", config)
    assert result["changes"] == {"delete": total} and f"- {total} deleted" in text
    assert host_state(lab) == first


def assert_no_secret_in_state(lab: Lab, stack: ProgramStack) -> None:
    """Neither the SSH private key (the stack's secret) nor any WireGuard private key (made on
    its host, never to leave it) is in the state file in plaintext."""
    state = stack.state_file()
    key = lab.client_key.read_text()
    body = "".join(key.splitlines()[1:-1])
    assert body[:40] not in state and body[-40:] not in state, "the SSH private key is in the state in plaintext"
    assert '"ciphertext"' in state and stack.passphrase not in state
    for host in lab.hosts.values():  # WireGuard private keys never leave their host
        conf = (host.dir / "etc-wireguard" / "wg0.conf").read_text()
        private = re.search(r"^PrivateKey\s*=\s*(\S+)", conf, re.M)
        assert private and private.group(1) not in state, host.name


def remove_and_add_back(stack: ProgramStack, config: dict[str, Any], total: int, first: dict[str, str], resources: list[dict[str, str]]) -> None:
    """A workstation removed: only its resources go, its peers' mesh configs change, its host is
    as before the first up and the others still reach each other; then added back."""
    lab = stack.lab
    kept = lab_config(lab)
    kept["hosts"] = [h for h in kept["hosts"] if h["name"] != "ws-2"]
    before = {r["urn"] for r in resources}
    result, text, opened = step(stack, "up", kept)
    gone = before - {r["urn"] for r in result["resources"]}
    removed = result["changes"]["delete"]
    assert gone and all(re.search(r"::ws-2(-|$)|::mesh-ws-2-", urn) for urn in gone), sorted(gone)
    assert len(gone) == removed and f"- {removed} deleted" in text
    updated = set(re.findall(r"^\s*~\s+command:remote:Command (\S+) update", "\n".join(result["log"]), re.M))
    assert updated and updated <= {f"mesh-{h}-wg" for h in lab.hosts if h != "ws-2"}, updated
    assert set(result["changes"]) == {"delete", "update", "same"}, result["changes"]
    now = host_state(lab)
    assert {k: v for k, v in now.items() if "ws-2" in k} == {k: v for k, v in first.items() if "ws-2" in k}
    wait_for_full_mesh(lab, [h for h in lab.hosts if h != "ws-2"], timeout=30)

    # Added back: only its resources are created and the same peers' configs updated.
    result, text, opened = step(stack, "up", config)
    assert result["changes"] == {"create": removed, "update": len(updated), "same": total - removed - len(updated)}, result["changes"]
    assert {h for h, n in opened.items() if n} <= {"ws-2", "ws-1"} | {u.removeprefix("mesh-").removesuffix("-wg") for u in updated}
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)


def test_preview_of_the_whole_program_logs_in_nowhere(lab: Lab, tmp_path: Path) -> None:
    """The program unchanged, every layer: the real CLI with the stand-in and the real
    pulumi-kubernetes provider plans it all, Kubernetes objects included, and no host is dialed."""
    if not KUBERNETES_PROVIDER.exists():
        unavailable(f"the pulumi-kubernetes provider is not built ({KUBERNETES_PROVIDER}): run `make engine`")
    before = sessions(lab)
    result = ProgramStack(lab, tmp_path).run("preview", lab_config(lab), layers="all")
    assert result["ok"], "\n".join(result["log"][-40:]) + result["error"][-3000:]
    text = summary(result, "preview (the whole program)")
    total = result["changes"]["create"]
    assert f"+ {total} to create" in text and total >= 100, result["changes"]
    planned = "\n".join(result["log"])
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Namespace", "command:remote:Command cluster-kubeconfig"):
        assert kind in planned, kind
    assert sessions(lab) == before, "preview logged in to a host"


def test_unreachable_host_and_changed_host_key_fail_naming_the_host(lab: Lab, tmp_path: Path) -> None:
    """The hub's SSH port refuses (sshd listens elsewhere): its first step fails after the
    program's dial budget (DIAL_ERROR_LIMIT failed dials and their pauses), naming it. Every other
    host presents a host key other than the one pinned: refused, and nothing runs anywhere."""
    config = lab_config(lab)
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
