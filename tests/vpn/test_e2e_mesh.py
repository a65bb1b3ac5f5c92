"""End to end: the program's own commands build the WireGuard mesh on real hosts.

The lab is the reference deployment plus one workstation: a hub and two cloud hosts with
public addresses; site A with two NAT'd workstations; site B with one. Commands come from
the same mock evaluation `make render` uses and run over real SSH in dependency order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.lab import wait_for_full_mesh
from tools.lab.base import sh
from tools.lab.engine import CommandFailed, Engine
from tools.lab.netlab import Lab
from tools.lab.reference import VPN, lab_config
from tools.render.write import reveal, write_all

pytestmark = pytest.mark.e2e

def wg_show(lab: Lab, host: str, what: str) -> dict[str, str]:
    """`wg show wg0 <what>` as {public key: value}."""
    out = lab.exec(host, "wg", "show", "wg0", what).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def config_digests(lab: Lab) -> dict[str, str]:
    return {
        h.name: hashlib.sha256((h.dir / "etc-wireguard" / "wg0.conf").read_bytes()).hexdigest()
        for h in lab.hosts.values() if (h.dir / "etc-wireguard" / "wg0.conf").exists()
    }


def test_every_host_reaches_every_other_over_the_overlay(lab: Lab, engine: Engine) -> None:
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)


def test_same_site_is_direct_and_cross_site_goes_through_the_hub(lab: Lab, engine: Engine) -> None:
    keys = {name: key.strip() for name, key in engine.last.outputs["vpn"]["publicKeys"].items()}  # type: ignore[union-attr]
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
    ws1_endpoints = wg_show(lab, "ws-1", "endpoints")
    assert ws1_endpoints[keys["ws-2"]] == "198.51.100.12:51820"  # same site: over the LAN
    assert ws1_endpoints[keys["vpn-hub"]] == "203.0.113.10:51820"
    assert keys["ws-3"] not in ws1_endpoints  # other site: no direct peer ...
    allowed = wg_show(lab, "ws-1", "allowed-ips")
    assert "100.64.2.1/32" in allowed[keys["vpn-hub"]].split()  # ... it is routed through the hub
    # The hub sees the workstations from behind their sites' NAT routers.
    hub_endpoints = wg_show(lab, "vpn-hub", "endpoints")
    assert hub_endpoints[keys["ws-1"]].startswith("203.0.113.201:")
    assert hub_endpoints[keys["ws-3"]].startswith("203.0.113.202:")


def test_every_tunnel_comes_back_after_a_reboot(lab: Lab, engine: Engine) -> None:
    # The unit that brings wg0 up at boot is enabled on every host (the lab's systemd records it).
    for h in lab.hosts.values():
        assert (h.dir / "labstate" / "enabled" / "wg-quick@wg0").exists(), h.name


def test_mesh_config_depends_on_exactly_the_topology_peers(lab: Lab, engine: Engine) -> None:
    ev = engine.last
    assert ev is not None
    by_urn = {r.urn: r for r in ev.resources}
    key_deps = {
        r.name: {by_urn[d].name for d in r.dependencies if by_urn[d].name.endswith("-wg-key")}
        for r in ev.resources if r.name.endswith("-wg")
    }
    everyone = {f"mesh-{h}-wg-key" for h in lab.hosts}
    assert key_deps["mesh-ws-1-wg"] == everyone - {"mesh-ws-3-wg-key"}
    assert key_deps["mesh-ws-3-wg"] == everyone - {"mesh-ws-1-wg-key", "mesh-ws-2-wg-key"}
    assert key_deps["mesh-vpn-hub-wg"] == everyone


def test_running_everything_again_changes_nothing(lab: Lab, engine: Engine) -> None:
    before = config_digests(lab)
    daemons = {h: lab.pids(h, "wireguard-go") for h in lab.hosts}
    assert all(len(p) == 1 for p in daemons.values()), daemons
    for h in lab.hosts.values():
        (h.dir / "labstate" / "calls.log").write_text("")
    runs = engine.up(lab_config(lab), force=True)
    assert len(runs) == 4 * len(lab.hosts)  # probe, base, key, config per host
    assert config_digests(lab) == before
    assert {h: lab.pids(h, "wireguard-go") for h in lab.hosts} == daemons  # no restart
    for run in runs:
        if run.name.endswith(("-bootstrap-base", "-wg")):
            assert run.stdout.strip().endswith("changed=none"), (run.name, run.stdout)
    for h in lab.hosts.values():
        calls = (h.dir / "labstate" / "calls.log").read_text().splitlines()
        assert not [c for c in calls if c.split()[1] in ("start", "restart", "stop", "enable")], (h.name, calls)


def test_no_key_material_in_plan_artifacts_state_or_logs(lab: Lab, engine: Engine, tmp_path: Path) -> None:
    private = {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text().strip() for h in lab.hosts.values()}
    for h in lab.hosts.values():
        key_file = h.dir / "etc-wireguard" / "wg0.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
    ssh_key = lab.client_key.read_text()
    ev = engine.last
    assert ev is not None
    write_all(ev, tmp_path / "render")
    forbidden = set(private.values()) | {line for line in ssh_key.splitlines() if "PRIVATE KEY" not in line and line}
    forbidden |= {base64.b64encode(k.encode()).decode() for k in private.values()}
    texts = [p.read_text() for p in (tmp_path / "render").rglob("*") if p.is_file()]
    texts.append(json.dumps(engine.stdout))  # the state's command outputs
    texts += [run.stdout + run.stderr for run in engine.runs]  # what `pulumi up` would log
    for text in texts:
        for secret in forbidden:
            assert secret not in text


def test_hub_failure_recovers_within_30_seconds(lab: Lab, engine: Engine) -> None:
    (pid,) = lab.pids("vpn-hub", "wireguard-go")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lab.exec("vpn-hub", "ip", "link", "show", "wg0", check=False).returncode == 0:
        assert time.monotonic() < deadline, "hub interface still up after its daemon was killed"
        time.sleep(0.2)
    assert not lab.ping("ws-1", VPN["ws-3"])
    restored = time.monotonic()
    run = engine.run_again("mesh-vpn-hub-wg")  # what `pulumi up` (or the unit's restart) does
    assert "started" in run.stdout
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
    assert time.monotonic() - restored <= 30


def test_removing_a_workstation_removes_its_peer_everywhere(lab: Lab, engine: Engine) -> None:
    keys = {name: key.strip() for name, key in engine.last.outputs["vpn"]["publicKeys"].items()}  # type: ignore[union-attr]
    daemons = {h: lab.pids(h, "wireguard-go") for h in lab.hosts if h != "ws-3"}
    runs = engine.up(lab_config(lab, without=("ws-3",)))
    deleted = [r.name for r in runs if r.phase == "delete"]
    assert deleted[:2] == ["mesh-ws-3-wg", "mesh-ws-3-wg-key"]
    for h in lab.hosts:
        if h != "ws-3":
            assert keys["ws-3"] not in wg_show(lab, h, "endpoints"), h
    assert {h: lab.pids(h, "wireguard-go") for h in daemons} == daemons  # peers synced, not restarted
    ws3 = lab.hosts["ws-3"].dir / "etc-wireguard"
    assert not (ws3 / "wg0.conf").exists() and not (ws3 / "wg0.key").exists()
    assert lab.exec("ws-3", "ip", "link", "show", "wg0", check=False).returncode != 0
    wait_for_full_mesh(lab, [h for h in lab.hosts if h != "ws-3"], timeout=30)


def dial_budget(engine: Engine, name: str) -> tuple[int, float]:
    """(dials, worst-case seconds) the plan's own connection settings give command `name`."""
    assert engine.last is not None
    conn = reveal(engine.last.by_name(name).inputs["connection"])
    dials = int(conn["dialErrorLimit"]) + 1  # pulumi-command: `limit` failed dials, then one more ends it
    pauses = sum(min(0.1 * 1.5**n, 5.0) for n in range(dials - 1))
    return dials, dials * float(conn["perDialTimeout"]) + pauses


def test_an_unreachable_host_fails_quickly_with_its_name(lab: Lab, engine: Engine) -> None:
    raw = lab_config(lab, without=("ws-3",))
    ghost = dict(raw["hosts"][-1], name="ws-9", vpnAddress="100.64.1.9")
    ghost["existing"] = {"address": "192.0.2.99", "lanAddress": "198.51.100.19"}  # nobody answers there
    raw["hosts"].append(ghost)
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="ws-9-reachable"):
        engine.up(raw)
    dials, budget = dial_budget(engine, "ws-9-reachable")
    assert dials == 5, "the plan's dial settings changed: update step 1 of What `pulumi up` does in docs/architecture.md"
    assert engine.runs[-1].name == "ws-9-reachable" and engine.runs[-1].dials == dials
    assert time.monotonic() - started < budget + 10


def test_a_changed_host_key_fails_with_the_hosts_name(lab: Lab, engine: Engine) -> None:
    raw = lab_config(lab, without=("ws-3",))
    other = lab.root / "other_host_key"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(other))
    entry = next(h for h in raw["hosts"] if h["name"] == "ws-2")
    entry["ssh"]["hostKey"] = " ".join(other.with_suffix(".pub").read_text().split()[:2])  # not what ws-2 presents
    probe = Engine(lab, engine.secrets, scope=lambda name: name == "ws-2-reachable")
    with pytest.raises(CommandFailed, match=r"(?s)ws-2-reachable .*Host key verification failed"):
        probe.up(raw)
    dials, _ = dial_budget(probe, "ws-2-reachable")
    assert [r.dials for r in probe.runs] == [dials]  # retried as the provider retries, then given up


def test_lab_changed_nothing_machine_wide(lab: Lab, engine: Engine) -> None:
    assert lab.global_sysctls() == lab.global_sysctls_before



def test_a_jump_host_is_dialled_with_its_own_pinned_key(lab: Lab, engine: Engine) -> None:
    raw = lab_config(lab, without=("ws-3",))
    entry = next(h for h in raw["hosts"] if h["name"] == "ws-2")
    entry["ssh"]["jumpHost"] = "ws-1"
    through = Engine(lab, engine.secrets, scope=lambda name: name == "ws-2-reachable")
    through.up(raw)  # through ws-1, both keys pinned
    assert through.last is not None
    assert reveal(through.last.by_name("ws-2-reachable").inputs["connection"])["proxy"]["hostKey"] == lab.hosts["ws-1"].host_key
    other = lab.root / "other_jump_key"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(other))
    next(h for h in raw["hosts"] if h["name"] == "ws-1")["ssh"]["hostKey"] = " ".join(other.with_suffix(".pub").read_text().split()[:2])
    wrong_jump = Engine(lab, engine.secrets, scope=lambda name: name == "ws-2-reachable")
    with pytest.raises(CommandFailed, match=r"(?s)ws-2-reachable .*Host key verification failed"):
        wrong_jump.up(raw)  # ws-2's own key is right; the jump host's is not


# --- A compromised workstation ---------------------------------------------------------------
