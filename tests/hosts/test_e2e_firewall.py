"""End-to-end: the host firewall with the real `nft`, in a lab of two public hosts joined by a
WireGuard tunnel (wireguard-go) and a pod namespace behind a `cali*` veth of the firewalled
host: a MicroK8s port is closed from outside the overlay and open over wg0 and to the pod,
the API port only from the admin networks, a NodePort and the pod network are closed from
outside while an ingress hostPort (443) is open; the SSH session that applies it survives
even when it closes that session's port; a second run changes nothing; removing it leaves
no table and no file; another table on the host is never touched (root)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.kit.shell import command_line, compose
from tests.support.helpers import stop_processes, unavailable
from tools.lab.base import Host, missing_requirements, sh
from tools.lab.netlab import Lab

pytestmark = pytest.mark.e2e

CP = "cp"
PEER = "peer"
VPN = {CP: "100.64.9.1", PEER: "100.64.9.2"}
PUBLIC = {CP: "203.0.113.41", PEER: "203.0.113.42"}
KUBELET, API, NODE_PORT, POD_PORT = 10250, 16443, 30080, 8080
POD, POD_GATEWAY = "10.1.0.5", "10.1.0.1"
PARAMS = {
    "SSH_PORT": "22", "VPN_PORT": "51820 60000-60010", "VPN_INTERFACE": "wg0", "PUBLIC_TCP": "443", "API_PORT": str(API),
    "ADMIN_CIDRS": f"{PUBLIC[PEER]}/32", "CLUSTER_CIDRS": "10.1.0.0/16 10.152.183.0/24",
}
OTHER_TABLE = "table inet someone_else {\n  chain input {\n    type filter hook input priority 10; policy accept;\n    tcp dport 9 drop\n  }\n}\n"
# A TCP server answering "ok" on every connection, standing in for a MicroK8s listener on 0.0.0.0.
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"ok"); c.close()
"""
CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as c:
        sys.exit(0 if c.recv(2) == b"ok" else 1)
except OSError:
    sys.exit(1)
"""


def wg_up(lab: Lab, name: str, peer: str, keys: dict[str, tuple[str, str]]) -> None:
    private, _ = keys[name]
    key_file = lab.hosts[name].dir / "wg.key"
    key_file.write_text(private + "\n")
    script = (
        "set -e; wireguard-go wg0; "
        f"wg set wg0 private-key {key_file} listen-port 51820 "
        f"peer {keys[peer][1]} endpoint {PUBLIC[peer]}:51820 allowed-ips {VPN[peer]}/32; "
        f"ip addr add {VPN[name]}/24 dev wg0; ip link set wg0 up"
    )
    lab.exec(name, "bash", "-c", script)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = missing_requirements() or (None if Path("/usr/sbin/nft").exists() else "missing tools: nft (apt-get install nftables)")
    if why:
        unavailable(f"end-to-end lab: {why}")
    # The firewall host's /etc is a private layer: its unit and rules file never reach the machine.
    hosts = [Host(CP, "192.0.2.41", public=PUBLIC[CP], overlays=("/etc",)), Host(PEER, "192.0.2.42", public=PUBLIC[PEER])]
    servers: list[subprocess.Popen[bytes]] = []
    with Lab(tmp_path_factory.mktemp("lab"), [], hosts) as running:
        pod = running.ns("pod")
        try:
            cp = running.hosts[CP].ns
            pod_network(cp, pod)
            sh("ip", "-n", running.hosts[PEER].ns, "route", "add", "10.1.0.0/16", "via", PUBLIC[CP])
            for ns, port in ((cp, KUBELET), (cp, API), (pod, POD_PORT)):
                servers.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, str(port)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            sh("ip", "netns", "exec", cp, "nft", "-f", "-", input=OTHER_TABLE)
            yield running
        finally:
            stop_processes(servers)
            sh("ip", "netns", "del", pod, check=False)


def pod_network(cp: str, pod: str) -> None:
    """A pod as Calico wires one: its own namespace behind a `cali*` veth of the host, and the
    DNATs kube-proxy (a NodePort) and the portmap plugin (a hostPort, 443 on ingress nodes) make."""
    sh("ip", "netns", "add", pod)
    sh("ip", "-n", cp, "link", "add", "calitest0", "type", "veth", "peer", "name", "eth0", "netns", pod)
    sh("ip", "-n", cp, "addr", "add", f"{POD_GATEWAY}/24", "dev", "calitest0")
    sh("ip", "-n", cp, "link", "set", "calitest0", "up")
    for args in (("addr", "add", f"{POD}/24", "dev", "eth0"), ("link", "set", "eth0", "up"), ("link", "set", "lo", "up"),
                 ("route", "add", "default", "via", POD_GATEWAY)):
        sh("ip", "-n", pod, *args)
    sh("ip", "netns", "exec", cp, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    for port in (NODE_PORT, 443):
        sh("ip", "netns", "exec", cp, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", str(port),
           "-j", "DNAT", "--to-destination", f"{POD}:{POD_PORT}")


def answers(lab: Lab, source: str, address: str, port: int) -> bool:
    """Whether one new TCP connection from `source` (a lab host, "op": the management LAN, or
    "pod") gets an answer within 2 s: a dropped SYN gets none."""
    ns = lab.ns(source) if source in ("op", "pod") else lab.hosts[source].ns
    return sh("ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, address, str(port), check=False, timeout=10).returncode == 0


def reaches(lab: Lab, source: str, address: str, port: int) -> bool:
    """Whether a connection gets an answer within 20 s of tries (a busy machine, a WireGuard
    handshake first): an open port is never taken for a closed one."""
    deadline = time.monotonic() + 20
    while not answers(lab, source, address, port):
        if time.monotonic() > deadline:
            return False
    return True


def run(lab: Lab, script: str, params: dict[str, str], *, ssh_tail: str = "") -> subprocess.CompletedProcess[str]:
    """The script as the program runs it, over the lab's SSH (so the host's systemctl is the lab's)."""
    line = command_line(script, compose(script, params), sudo=False)
    return lab.ssh(CP, line + ssh_tail, check=False, timeout=120)


def nft(lab: Lab, *args: str) -> str:
    return sh("ip", "netns", "exec", lab.hosts[CP].ns, "nft", *args).stdout


def test_ports_close_outside_the_overlay_open_over_wg0_and_come_back_on_remove(lab: Lab) -> None:
    # Without the firewall everything answers from outside: the test can fail.
    assert reaches(lab, PEER, PUBLIC[CP], KUBELET) and reaches(lab, "op", lab.hosts[CP].mgmt, API)
    assert reaches(lab, PEER, PUBLIC[CP], NODE_PORT) and reaches(lab, PEER, POD, POD_PORT)
    other_before = nft(lab, "list", "table", "inet", "someone_else")

    first = run(lab, "firewall-apply.sh", PARAMS)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1] == "changed=ruleset rules-file unit enabled"
    assert not answers(lab, PEER, PUBLIC[CP], KUBELET)  # outside the overlay: closed
    assert not answers(lab, "op", lab.hosts[CP].mgmt, KUBELET)
    assert not answers(lab, "op", lab.hosts[CP].mgmt, API)  # not an admin network
    assert reaches(lab, PEER, PUBLIC[CP], API)  # the admin network reaches the API port
    assert not answers(lab, PEER, PUBLIC[CP], NODE_PORT)  # a NodePort: DNAT'd, forwarded, dropped
    assert not answers(lab, PEER, POD, POD_PORT)  # the pod network, routed through the host
    assert reaches(lab, PEER, PUBLIC[CP], 443)  # the ingress hostPort
    assert reaches(lab, "pod", POD_GATEWAY, KUBELET)  # a pod reaches its node (on cali*)
    # The tunnel comes up only now: its handshake passes the VPN port, then the port over wg0.
    keys: dict[str, tuple[str, str]] = {}
    for name in (CP, PEER):
        private = sh("wg", "genkey").stdout.strip()
        keys[name] = (private, sh("wg", "pubkey", input=private + "\n").stdout.strip())
    wg_up(lab, CP, PEER, keys)
    wg_up(lab, PEER, CP, keys)
    assert reaches(lab, PEER, VPN[CP], KUBELET)

    ruleset = nft(lab, "list", "table", "inet", "hybrid_ai")
    again = run(lab, "firewall-apply.sh", PARAMS)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == "changed=none", again.stderr
    assert nft(lab, "list", "table", "inet", "hybrid_ai") == ruleset
    assert nft(lab, "list", "table", "inet", "someone_else") == other_before
    assert lab.ssh(CP, "test -s /etc/hybrid-ai/firewall.nft && test -s /etc/systemd/system/hybrid-ai-firewall.service").returncode == 0

    removed = run(lab, "firewall-remove.sh", {})
    assert removed.returncode == 0, removed.stderr
    assert "hybrid_ai" not in nft(lab, "list", "tables")
    assert nft(lab, "list", "table", "inet", "someone_else") == other_before
    assert lab.ssh(CP, "test ! -e /etc/hybrid-ai/firewall.nft && test ! -e /etc/systemd/system/hybrid-ai-firewall.service").returncode == 0
    assert reaches(lab, PEER, PUBLIC[CP], KUBELET)
    assert run(lab, "firewall-remove.sh", {}).stdout.strip().splitlines()[-1] == "changed=none"


def test_the_ssh_session_that_applies_it_survives_even_when_its_port_closes(lab: Lab) -> None:
    # SSH moved to another port: the session on 22 that applies the rules is established, so it
    # carries on (and prints after the rules are in); a new session on 22 is refused.
    params = PARAMS | {"SSH_PORT": "2222"}
    try:
        session = run(lab, "firewall-apply.sh", params, ssh_tail="; sleep 1; nft list table inet hybrid_ai >/dev/null && echo still-here")
        assert session.returncode == 0, session.stderr
        assert session.stdout.strip().splitlines()[-1] == "still-here"
        assert lab.ssh(CP, "true", check=False, timeout=30).returncode != 0
    finally:
        sh("ip", "netns", "exec", lab.hosts[CP].ns, "nft", "delete", "table", "inet", "hybrid_ai", check=False)
    assert lab.ssh(CP, "true").returncode == 0
    assert run(lab, "firewall-remove.sh", {}).returncode == 0
