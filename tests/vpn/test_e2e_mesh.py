"""End to end under the real Pulumi CLI: the program's layers below the cluster (hosts, base
bootstrap, GPU check, WireGuard mesh, host firewalls) on the reference lab (tools/lab/reference.py:
a hub and two cloud hosts with public addresses, two NAT'd workstations in office-a, one in
office-b), their commands run over real SSH by the pulumi-command stand-in.

One lab and one stack for the whole module, in order (each test starts where the last left
off): `make lab-up` (tests/support/mesh_lab.py, run as make runs it) builds the lab and runs
`pulumi up`; the mesh is checked; the hub's tunnel dies and comes back; `vpn.keyEpoch` rotates
every key while every pair pings; every script runs again (a new version of each) and changes
nothing; workstations printing hostile output, then another host's key, change nothing
elsewhere; a workstation removed, then added back; `make lab-down` destroys the stack and
removes the lab.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from components.kit.shell import compose
from tests.support.lab import wait_for_full_mesh
from tests.support.mesh_checks import Pingers, by_name, changed, host_files, public_keys, scripts_changed, wg_show, without_peers
from tests.support.mesh_lab import Session, lab_cli, namespaces
from tools.lab.base import SHIMS, sh
from tools.lab.netlab import Lab
from tools.lab.reference import VPN

pytestmark = [pytest.mark.e2e, pytest.mark.engine]
CLOUD = ("vpn-hub", "receipt", "interface")
OUTAGE_GOAL_SECONDS = 30.0


def failure(result: dict[str, Any]) -> str:
    return "\n".join([*result["log"], result["error"]])


def test_lab_up_applies_the_program_to_every_host(mesh: Session) -> None:
    assert "lab: 6 hosts up" in mesh.up_output
    assert len(mesh.lab.namespaces) == 10 and set(mesh.lab.namespaces) <= namespaces()  # internet, operator, 2 routers, 6 hosts
    created = int(re.findall(r"\+ (\d+) created", mesh.up_output)[-1])
    assert created == mesh.total() >= 50, created
    wait_for_full_mesh(mesh.lab, list(mesh.lab.hosts), timeout=30)
    for h in CLOUD:
        assert "table inet hybrid_ai" in sh("ip", "netns", "exec", mesh.lab.hosts[h].ns, "nft", "list", "tables").stdout, h
    assert Lab.global_sysctls() == mesh.sysctls_before  # nothing machine-wide changed


def test_same_site_is_direct_and_cross_site_goes_through_the_hub(mesh: Session) -> None:
    keys = public_keys(mesh.stack.deployment())
    ws1_endpoints = wg_show(mesh.lab, "ws-1", "endpoints")
    assert ws1_endpoints[keys["ws-2"]] == "198.51.100.12:51820"  # same site: over the LAN
    assert ws1_endpoints[keys["vpn-hub"]] == "203.0.113.10:51820"
    assert keys["ws-3"] not in ws1_endpoints  # other site: no direct peer ...
    assert "100.64.2.1/32" in wg_show(mesh.lab, "ws-1", "allowed-ips")[keys["vpn-hub"]].split()  # ... routed through the hub
    hub_endpoints = wg_show(mesh.lab, "vpn-hub", "endpoints")  # the workstations, from behind their sites' NAT
    assert hub_endpoints[keys["ws-1"]].startswith("203.0.113.201:") and hub_endpoints[keys["ws-3"]].startswith("203.0.113.202:")


def test_every_tunnel_comes_back_after_a_reboot(mesh: Session) -> None:
    for h in mesh.lab.hosts.values():  # the unit bringing wg0 up at boot is enabled (the lab's systemd records it)
        assert (h.dir / "labstate" / "enabled" / "wg-quick@wg0").exists(), h.name


def test_mesh_config_depends_on_exactly_the_topology_peers(mesh: Session) -> None:
    """The engine's own record of each `-wg` step's dependencies: the key steps of its peers."""
    commands = by_name(mesh.stack.deployment())
    names = {r["urn"]: name for name, r in commands.items()}
    deps = {n: {names[d] for d in r.get("dependencies", []) if names.get(d, "").endswith("-wg-key")} for n, r in commands.items()}
    everyone = {f"mesh-{h}-wg-key" for h in mesh.lab.hosts}
    assert deps["mesh-ws-1-wg"] == everyone - {"mesh-ws-3-wg-key"}
    assert deps["mesh-ws-3-wg"] == everyone - {"mesh-ws-1-wg-key", "mesh-ws-2-wg-key"}
    assert deps["mesh-vpn-hub-wg"] == everyone


def test_no_key_material_in_state_or_logs(mesh: Session) -> None:
    private = {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text().strip() for h in mesh.lab.hosts.values()}
    for h in mesh.lab.hosts.values():
        assert (h.dir / "etc-wireguard" / "wg0.key").stat().st_mode & 0o777 == 0o600, h.name
    ssh_key = [line for line in mesh.lab.client_key.read_text().splitlines() if line and "PRIVATE KEY" not in line]
    texts = [mesh.stack.state_text(), mesh.up_output]
    assert '"ciphertext"' in texts[0] and mesh.stack.passphrase not in texts[0]
    for text in texts:
        for secret in [*private.values(), *ssh_key]:
            assert secret not in text


def test_hub_failure_recovers_within_30_seconds(mesh: Session) -> None:
    (pid,) = mesh.lab.pids("vpn-hub", "wireguard-go")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while mesh.lab.exec("vpn-hub", "ip", "link", "show", "wg0", check=False).returncode == 0:
        assert time.monotonic() < deadline, "hub interface still up after its daemon was killed"
        time.sleep(0.2)
    assert not mesh.lab.ping("ws-1", VPN["ws-3"])
    restored = time.monotonic()
    mesh.lab.ssh("vpn-hub", "systemctl start wg-quick@wg0")  # what the unit the program enabled does at boot
    wait_for_full_mesh(mesh.lab, list(mesh.lab.hosts), timeout=30)
    assert time.monotonic() - restored <= 30


def test_raising_the_key_epoch_rotates_every_key_with_short_outages(mesh: Session, tmp_path: Path) -> None:
    lab = mesh.lab
    old_public = public_keys(mesh.stack.deployment())
    old_private = {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text() for h in lab.hosts.values()}
    daemons = {h: lab.pids(h, "wireguard-go") for h in lab.hosts}
    pingers = Pingers(lab, tmp_path)
    try:
        time.sleep(3)  # every pair answering before the rotation starts
        start = time.time()
        mesh.epoch = 1
        result = mesh.up(mesh.config())
        wait_for_full_mesh(lab, list(lab.hosts), timeout=OUTAGE_GOAL_SECONDS)
        time.sleep(3)
        end = time.time()
    finally:
        pingers.stop()
    outages = pingers.outages(start, end)
    report = "\n".join(f"{a} -> {b}: {t:.1f} s" for (a, b), t in sorted(outages.items(), key=lambda kv: -kv[1]))
    print(f"\nlongest outage per pair during key rotation (rotation took {end - start:.1f} s):\n{report}")
    steps = {f"mesh-{h}-{step}" for h in lab.hosts for step in ("wg-key", "wg")}
    assert set(changed(result, "updated")) == steps and result["changes"] == {"update": len(steps), "same": mesh.total() - len(steps)}
    new_public = public_keys(mesh.stack.deployment())
    assert all(new_public[h] != old_public[h] for h in lab.hosts) and len(set(new_public.values())) == len(lab.hosts)
    for h in lab.hosts.values():
        key_file = h.dir / "etc-wireguard" / "wg0.key"
        assert key_file.read_text() != old_private[h.name] and key_file.stat().st_mode & 0o777 == 0o600
    assert {h: lab.pids(h, "wireguard-go") for h in lab.hosts} == daemons  # keys swapped live, no restart
    assert max(outages.values()) < OUTAGE_GOAL_SECONDS, report


def test_every_script_run_again_changes_nothing(mesh: Session) -> None:
    """A new version of every host script: each runs again in place, with the same epoch, and reports `changed=none`."""
    lab, before = mesh.lab, mesh.stack.deployment()
    configs = {h.name: (h.dir / "etc-wireguard" / "wg0.conf").read_bytes() for h in lab.hosts.values()}
    keys = {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text() for h in lab.hosts.values()}
    daemons = {h: lab.pids(h, "wireguard-go") for h in lab.hosts}
    for h in lab.hosts.values():
        (h.dir / "labstate" / "calls.log").write_text("")
    names = set(by_name(before))
    result = mesh.up(mesh.config(), scripts_changed(before, names))
    assert set(changed(result, "updated")) == names and result["changes"] == {"update": len(names), "same": mesh.total() - len(names)}
    reports = {n: r["outputs"]["stdout"] for n, r in by_name(mesh.stack.deployment()).items() if "changed=" in r["outputs"]["stdout"]}
    assert {n for n in names if n.endswith(("-bootstrap-base", "-wg"))} <= set(reports)
    assert all(out.strip().endswith("changed=none") for out in reports.values()), reports
    assert {h.name: (h.dir / "etc-wireguard" / "wg0.conf").read_bytes() for h in lab.hosts.values()} == configs
    assert {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text() for h in lab.hosts.values()} == keys
    assert {h: lab.pids(h, "wireguard-go") for h in lab.hosts} == daemons  # no restart
    for h in lab.hosts.values():
        calls = (h.dir / "labstate" / "calls.log").read_text().splitlines()
        assert not [c for c in calls if c.split()[1] in ("start", "restart", "stop", "enable")], (h.name, calls)


HOSTILE = {"ws-1": "section", "ws-2": "shell", "ws-3": "oversized"}
# What each mode of tools/lab/shims/hostile-wg prints after the key.
PRINTED = {"section": "\n[Interface]\nPostUp = touch /etc/wireguard/pwned", "shell": "$(touch /etc/wireguard/pwned) `touch", "oversized": "A" * 1048576}


def test_workstations_printing_hostile_output_change_nothing_on_other_hosts(mesh: Session) -> None:
    """ws-1, ws-2 and ws-3 print, after their key, a config section, shell, or a megabyte on one
    line when their key steps run again (all three run: the state records what each printed):
    `pulumi up` fails naming one (the engine stops at the first failed step); nothing they
    printed runs anywhere; a cloud host's files stay as they were, but that its config may lose
    those peers (if its step ran first); its tunnels stay up."""
    lab = mesh.lab
    before = {h: host_files(lab, h) for h in CLOUD}
    daemons = {h: lab.pids(h, "wireguard-go") for h in CLOUD}
    for host, mode in HOSTILE.items():
        wg = lab.hosts[host].dir / "sbin" / "wg"  # first in the host's PATH
        wg.write_bytes((SHIMS / "hostile-wg").read_bytes())
        wg.chmod(0o755)
        (lab.hosts[host].dir / "labstate" / "hostile").write_text(mode)
    result = mesh.up(mesh.config(), scripts_changed(mesh.stack.deployment(), {f"mesh-{h}-wg-key" for h in HOSTILE}), ok=False)
    assert set(HOSTILE) >= {h for h in HOSTILE if re.search(rf"mesh-{h}-wg-key: host '{h}' printed \d+ bytes", failure(result))} != set()
    # Each host's step ran and printed its payload (the state records what each printed), so
    # every mode below is exercised, not only the one the failure names.
    printed = {h: by_name(mesh.stack.deployment())[f"mesh-{h}-wg-key"]["outputs"]["stdout"] for h in HOSTILE}
    assert all(PRINTED[HOSTILE[h]] in printed[h] for h in HOSTILE), {h: f"{len(out)} bytes: {out[:120]!r}" for h, out in printed.items()}
    for h in CLOUD:
        after = host_files(lab, h)
        assert after.keys() == before[h].keys(), h
        for path, content in after.items():
            if path == "etc-wireguard/wg0.conf" and content != before[h][path]:  # its step ran: the hostile peers left, nothing else
                assert content.rstrip(b"\n") == without_peers(before[h][path], set(HOSTILE)), h
            else:
                assert content == before[h][path], (h, path)
    assert not list(lab.root.rglob("pwned"))
    wait_for_full_mesh(lab, list(CLOUD), timeout=30)
    assert {h: lab.pids(h, "wireguard-go") for h in CLOUD} == daemons  # never restarted


def test_a_workstation_printing_another_hosts_key_cuts_no_one_out(mesh: Session) -> None:
    """ws-3 prints the control plane's (public) key: no config holding it twice is sent anywhere,
    and the receiving host itself refuses a config giving its own key to a peer."""
    lab = mesh.lab
    stolen = lab.exec("receipt", "wg", "show", "wg0", "public-key").stdout.strip()
    before = {h: host_files(lab, h) for h in CLOUD}
    daemons = {h: lab.pids(h, "wireguard-go") for h in CLOUD}
    for host in ("ws-1", "ws-2"):  # repaired: their `wg` as shipped, their key steps run again below
        (lab.hosts[host].dir / "sbin" / "wg").unlink()
    (lab.hosts["ws-3"].dir / "labstate" / "hostile").write_text(f"steal {stolen}")
    result = mesh.up(mesh.config(), scripts_changed(mesh.stack.deployment(), {f"mesh-{h}-wg-key" for h in HOSTILE}), ok=False)
    assert "'receipt' and 'ws-3' have the same WireGuard public key" in failure(result), failure(result)[-3000:]
    assert {h: host_files(lab, h) for h in CLOUD} == before
    wait_for_full_mesh(lab, list(CLOUD), timeout=30)
    assert {h: lab.pids(h, "wireguard-go") for h in CLOUD} == daemons
    config = f"[Interface]\nAddress = 100.64.0.2/16\n\n[Peer]\nPublicKey = {stolen}\nAllowedIPs = 100.64.9.9/32\n"
    refused = lab.exec("receipt", "bash", "-c", compose("wg-apply.sh", {"WG_CONFIG": config}), check=False)
    assert refused.returncode == 1 and "gives this host's own key to a peer" in refused.stderr
    assert host_files(lab, "receipt") == before["receipt"]


def test_removing_a_workstation_removes_its_peer_everywhere(mesh: Session) -> None:
    """ws-3 (its `wg` as shipped again) removed from the config: its steps are deleted, its mesh
    step before its key; no peer keeps it; nothing restarts; the others mesh."""
    lab = mesh.lab
    (lab.hosts["ws-3"].dir / "sbin" / "wg").unlink()
    before = mesh.stack.deployment()
    ws3 = {n for n in by_name(before) if n.startswith(("ws-3-", "mesh-ws-3-"))}
    daemons = {h: lab.pids(h, "wireguard-go") for h in lab.hosts if h != "ws-3"}
    old_key = lab.exec("ws-3", "bash", "-c", "wg pubkey < /etc/wireguard/wg0.key").stdout.strip()  # not what it printed last
    result = mesh.up(mesh.config(without=("ws-3",)))
    deleted = changed(result, "deleted")
    assert ws3 <= set(deleted) and deleted.index("mesh-ws-3-wg") < deleted.index("mesh-ws-3-wg-key"), deleted
    assert all(re.match(r"(mesh-)?ws-3(-|$)", n) for n in deleted), deleted
    for h in daemons:
        assert old_key not in wg_show(lab, h, "endpoints"), h
    assert {h: lab.pids(h, "wireguard-go") for h in daemons} == daemons  # peers synced, not restarted
    gone = lab.hosts["ws-3"].dir / "etc-wireguard"
    assert not (gone / "wg0.conf").exists() and not (gone / "wg0.key").exists()
    assert lab.exec("ws-3", "ip", "link", "show", "wg0", check=False).returncode != 0
    wait_for_full_mesh(lab, list(daemons), timeout=30)


def test_adding_it_back_meshes_every_host_again(mesh: Session) -> None:
    result = mesh.up(mesh.config())
    assert set(result["changes"]) == {"create", "update", "same"}, result["changes"]
    assert all(re.match(r"(mesh-)?ws-3(-|$)", n) for n in changed(result, "created"))
    wait_for_full_mesh(mesh.lab, list(mesh.lab.hosts), timeout=30)


def test_lab_down_destroys_the_stack_and_removes_the_lab(mesh: Session) -> None:
    private = [(h.dir / "etc-wireguard" / "wg0.key").read_text().strip() for h in mesh.lab.hosts.values()]
    texts = ["\n".join(mesh.logs), mesh.stack.state_text()]  # every operation's output since lab-up, the state after them
    assert not [key for key in private for text in texts if key in text]
    count = mesh.total()
    down = lab_cli("down", mesh.state)
    print(down.stdout)
    assert down.returncode == 0, down.stderr[-3000:]
    assert f"- {count} deleted" in down.stdout
    assert not set(mesh.lab.namespaces) & namespaces() and not mesh.state.exists() and not mesh.lab.root.exists()
