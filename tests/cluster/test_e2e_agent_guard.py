"""End-to-end: the agent guard with the real `nft`, in a lab of three hosts joined by WireGuard
(wireguard-go): the guarded control plane, another control plane and a worker. Over wg0 the
worker's connection to cluster-agent's port (25000) gets no answer unless its address is in
`joiners`, and to dqlite's (19001) none even then (a worker's join never needs dqlite); the other
control plane's gets both; a re-run keeps a pending joiner; removing it leaves no table and no
file. A pod behind the other control plane (a `cali*` veth, masqueraded on its way out as
Calico's natOutgoing does) reaches neither port once that control plane has its guard, while the
control plane itself and the pod's other traffic still pass (root)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from components.kit.shell import command_line, compose
from tests.hosts.test_e2e_firewall import SERVER, answers, reaches
from tests.support.helpers import stop_processes, unavailable
from tools.lab.base import Host, missing_requirements, sh
from tools.lab.netlab import Lab

pytestmark = pytest.mark.e2e

CP, CP2, WORKER = "cp", "cp2", "worker"
VPN = {CP: "100.64.9.1", CP2: "100.64.9.2", WORKER: "100.64.9.3"}
PUBLIC = {CP: "203.0.113.51", CP2: "203.0.113.52", WORKER: "203.0.113.53"}
POD_CIDR, POD, POD_GATEWAY, KUBELET = "100.96.0.0/16", "100.96.1.5", "100.96.1.1", 10250
PARAMS = {"CONTROL_PLANES": f"{VPN[CP]} {VPN[CP2]}", "PORTS": "25000 19001", "JOIN_PORTS": "25000", "POD_CIDR": POD_CIDR}


def wg_up(lab: Lab, name: str, keys: dict[str, tuple[str, str]]) -> None:
    key_file = lab.hosts[name].dir / "wg.key"
    key_file.write_text(keys[name][0] + "\n")
    peers = " ".join(f"peer {keys[p][1]} endpoint {PUBLIC[p]}:51820 allowed-ips {VPN[p]}/32" for p in VPN if p != name)
    lab.exec(name, "bash", "-c", f"set -e; wireguard-go wg0; wg set wg0 private-key {key_file} listen-port 51820 {peers}; "
                                 f"ip addr add {VPN[name]}/24 dev wg0; ip link set wg0 up")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = missing_requirements() or (None if sh("sh", "-c", "command -v nft || test -x /usr/sbin/nft", check=False).returncode == 0
                                     else "missing tools: nft (apt-get install nftables)")
    if why:
        unavailable(f"end-to-end lab: {why}")
    hosts = [Host(CP, "192.0.2.51", public=PUBLIC[CP], overlays=("/etc",)), Host(CP2, "192.0.2.52", public=PUBLIC[CP2], overlays=("/etc",)),
             Host(WORKER, "192.0.2.53", public=PUBLIC[WORKER])]
    servers: list[subprocess.Popen[bytes]] = []
    with Lab(tmp_path_factory.mktemp("lab"), [], hosts) as running:
        pod = running.ns("pod")
        try:
            pod_network(running.hosts[CP2].ns, pod)
            for port in (25000, 19001, KUBELET):
                servers.append(subprocess.Popen(["ip", "netns", "exec", running.hosts[CP].ns, sys.executable, "-c", SERVER, str(port)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            keys: dict[str, tuple[str, str]] = {}
            for name in VPN:
                private = sh("wg", "genkey").stdout.strip()
                keys[name] = (private, sh("wg", "pubkey", input=private + "\n").stdout.strip())
            for name in VPN:
                wg_up(running, name, keys)
            yield running
        finally:
            stop_processes(servers)
            sh("ip", "netns", "del", pod, check=False)


def pod_network(host: str, pod: str) -> None:
    """A pod as Calico wires one (its namespace behind a `cali*` veth of the host) and Calico's
    natOutgoing: traffic from the pool to anywhere outside it leaves with the host's address."""
    sh("ip", "netns", "add", pod)
    sh("ip", "-n", host, "link", "add", "calitest0", "type", "veth", "peer", "name", "eth0", "netns", pod)
    sh("ip", "-n", host, "addr", "add", f"{POD_GATEWAY}/24", "dev", "calitest0")
    sh("ip", "-n", host, "link", "set", "calitest0", "up")
    for args in (("addr", "add", f"{POD}/24", "dev", "eth0"), ("link", "set", "eth0", "up"), ("link", "set", "lo", "up"),
                 ("route", "add", "default", "via", POD_GATEWAY)):
        sh("ip", "-n", pod, *args)
    sh("ip", "netns", "exec", host, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    sh("ip", "netns", "exec", host, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", POD_CIDR, "!", "-d", POD_CIDR, "-j", "MASQUERADE")


def run(lab: Lab, script: str, params: dict[str, str], host: str = CP) -> subprocess.CompletedProcess[str]:
    return lab.ssh(host, command_line(script, compose(script, params), sudo=False), check=False, timeout=120)


def nft(lab: Lab, *args: str, host: str = CP) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", lab.hosts[host].ns, "nft", *args, check=False)


def test_only_control_planes_reach_dqlite_and_a_pending_joiner_only_cluster_agent(lab: Lab) -> None:
    # Without the guard the worker reaches both over the overlay: the test can fail.
    assert reaches(lab, WORKER, VPN[CP], 25000) and reaches(lab, WORKER, VPN[CP], 19001)
    first = run(lab, "agent-guard-apply.sh", PARAMS)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == "changed=ruleset rules-file unit enabled"
    for port in (25000, 19001):
        assert not answers(lab, WORKER, VPN[CP], port)
        assert not answers(lab, WORKER, PUBLIC[CP], port)  # nor outside the overlay
        assert reaches(lab, CP2, VPN[CP], port)
    # The register step's command lets the joiner in; a re-run keeps it; the ready step's lets it out.
    assert nft(lab, "add", "element", "inet", "hybrid_ai_agent", "joiners", f"{{ {VPN[WORKER]} timeout 3600s }}").returncode == 0
    assert reaches(lab, WORKER, VPN[CP], 25000)
    assert not answers(lab, WORKER, VPN[CP], 19001)  # the joiner's token gets dqlite's certificate (docs/security.md): not its port
    again = run(lab, "agent-guard-apply.sh", PARAMS)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == "changed=none", again.stdout + again.stderr
    assert reaches(lab, WORKER, VPN[CP], 25000) and not answers(lab, WORKER, VPN[CP], 19001)
    assert reaches(lab, CP2, VPN[CP], 19001)  # a joining control plane is in control_planes: dqlite stays open to it
    assert nft(lab, "delete", "element", "inet", "hybrid_ai_agent", "joiners", f"{{ {VPN[WORKER]} }}").returncode == 0
    assert not answers(lab, WORKER, VPN[CP], 25000)
    assert lab.ssh(CP, "test -s /etc/hybrid-ai/agent-guard.nft && test -s /etc/systemd/system/hybrid-ai-agent-guard.service").returncode == 0

    removed = run(lab, "agent-guard-remove.sh", {})
    assert removed.returncode == 0, removed.stderr
    assert "hybrid_ai_agent" not in nft(lab, "list", "tables").stdout
    assert lab.ssh(CP, "test ! -e /etc/hybrid-ai/agent-guard.nft && test ! -e /etc/systemd/system/hybrid-ai-agent-guard.service").returncode == 0
    assert reaches(lab, WORKER, VPN[CP], 25000)


def test_a_pod_on_a_control_plane_is_dropped_before_it_is_masqueraded_to_another_control_planes_agent(lab: Lab) -> None:
    """cluster-agent 1.32 takes a whitespace-only token (docs/upstream.md): whoever the guard
    admits needs no token. A pod on cp2 leaves masqueraded to cp2's VPN address, which cp admits."""
    assert run(lab, "agent-guard-apply.sh", PARAMS).returncode == 0
    try:
        assert reaches(lab, "pod", VPN[CP], 25000) and reaches(lab, "pod", VPN[CP], 19001)  # the hole: the test can fail
        first = run(lab, "agent-guard-apply.sh", PARAMS, host=CP2)
        assert first.returncode == 0, first.stderr
        assert "ip saddr 100.96.0.0/16 tcp dport { 19001, 25000 } drop" in nft(lab, "list", "chain", "inet", "hybrid_ai_agent", "forward",
                                                                               host=CP2).stdout
        for port in (25000, 19001):
            assert not answers(lab, "pod", VPN[CP], port)
            assert reaches(lab, CP2, VPN[CP], port)  # the control plane's own connections pass
        assert reaches(lab, "pod", VPN[CP], KUBELET)  # the pod's other traffic is forwarded and masqueraded still
        again = run(lab, "agent-guard-apply.sh", PARAMS, host=CP2)
        assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == "changed=none", again.stdout + again.stderr
        assert not answers(lab, "pod", VPN[CP], 25000)
        removed = run(lab, "agent-guard-remove.sh", {}, host=CP2)
        assert removed.returncode == 0, removed.stderr
        assert "hybrid_ai_agent" not in nft(lab, "list", "tables", host=CP2).stdout
        assert reaches(lab, "pod", VPN[CP], 25000)  # the forward chain went with the table
    finally:
        for host in (CP2, CP):
            run(lab, "agent-guard-remove.sh", {}, host=host)
