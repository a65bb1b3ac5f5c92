"""End to end: the program's own commands build the WireGuard mesh on real hosts.

The lab is the reference deployment plus one workstation: a hub and two cloud hosts with
public addresses; site A with two NAT'd workstations; site B with one. Commands come from
the same mock evaluation `make render` uses and run over real SSH in dependency order.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.shell import compose
from stacks.render.write import reveal, write_all
from tests.helpers import stack_config, unavailable
from tests.lab.engine import CommandFailed, Engine, ProgramFailed
from tests.lab.netlab import SHIMS, Host, Lab, Site, missing_requirements, sh

pytestmark = pytest.mark.e2e

SITES = [Site("office-a", "198.51.100.0/26", "203.0.113.201"), Site("office-b", "198.51.100.64/26", "203.0.113.202")]
HOSTS = [
    Host("vpn-hub", "192.0.2.10", public="203.0.113.10"),
    Host("receipt", "192.0.2.11", public="203.0.113.11"),
    Host("interface", "192.0.2.12", public="203.0.113.12"),
    Host("ws-1", "192.0.2.21", lan="198.51.100.11", site="office-a"),
    Host("ws-2", "192.0.2.22", lan="198.51.100.12", site="office-a"),
    Host("ws-3", "192.0.2.23", lan="198.51.100.71", site="office-b"),
]
VPN = {"vpn-hub": "100.64.0.1", "receipt": "100.64.0.2", "interface": "100.64.0.3", "ws-1": "100.64.1.1", "ws-2": "100.64.1.2", "ws-3": "100.64.2.1"}
ROLES = {"vpn-hub": ["vpn-hub"], "receipt": ["control-plane", "ingress"], "interface": ["worker", "ingress"]}


def lab_config(lab: Lab, without: tuple[str, ...] = ()) -> dict[str, Any]:
    raw = stack_config("dev")
    raw["sites"] = [{"name": "cloud", "kind": "cloud"}] + [
        {"name": s.name, "kind": "on-prem", "nat": True, "lanCidr": s.lan_cidr} for s in SITES
    ]
    hosts = []
    for h in lab.hosts.values():
        if h.name in without:
            continue
        existing: dict[str, Any] = {"address": h.mgmt}
        existing |= {"publicAddress": h.public} if h.public else {"lanAddress": h.lan}
        entry: dict[str, Any] = {
            "name": h.name, "site": h.site, "roles": ROLES.get(h.name, ["worker"]), "existing": existing,
            "ssh": {"user": "root", "hostKey": h.host_key}, "vpnAddress": VPN[h.name],
        }
        if h.name.startswith("ws-"):
            entry["gpu"] = {"model": "rtx-3090"}
        hosts.append(entry)
    raw["hosts"] = hosts
    return raw


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    why = missing_requirements()
    if why:
        unavailable(f"end-to-end lab: {why}")
    with Lab(tmp_path_factory.mktemp("lab"), copy.deepcopy(SITES), copy.deepcopy(HOSTS)) as running:
        yield running


# The layers this lab proves: hosts, base bootstrap, the mesh. (GPU drivers and MicroK8s
# need real GPUs and snapd; their scripts are tested under stubs.)
MESH_LAYERS = ("-reachable", "-bootstrap-base", "-wg-key", "-wg")


def in_mesh_layers(name: str) -> bool:
    return name.endswith(MESH_LAYERS)


@pytest.fixture(scope="module")
def engine(lab: Lab) -> Engine:
    eng = Engine(lab, {"sshPrivateKey": lab.client_key.read_text()}, scope=in_mesh_layers)
    eng.up(lab_config(lab))
    return eng


def wait_for_full_mesh(lab: Lab, hosts: list[str], timeout: float) -> float:
    """Seconds until every host pings every other over the overlay; fail after `timeout`."""
    start = time.monotonic()
    missing: list[tuple[str, str]] = [(a, b) for a in hosts for b in hosts if a != b]
    while missing:
        missing = [(a, b) for a, b in missing if not lab.ping(a, VPN[b])]
        if missing and time.monotonic() - start > timeout:
            pytest.fail(f"no overlay reachability after {timeout}s: {missing}")
    return time.monotonic() - start


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
    assert dials == 5, "the plan's dial settings changed: update README step 1 of What `pulumi up` does"
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

HOSTILE_LAB = ("vpn-hub", "receipt", "ws-1", "ws-3")
LAB_LOGS = ("sshd.log", "calls.log", "wg-quick.log", "hostile")


def host_files(lab: Lab, host: str) -> dict[str, bytes]:
    """Every file the host's scripts can write (its mounted folders), but the lab's own logs."""
    root = lab.hosts[host].dir
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in LAB_LOGS and p.parent != root}


def without_peer(config: bytes, name: str) -> bytes:
    """The config with the [Peer] block of `name` taken out (trailing blank lines aside)."""
    head, *blocks = config.decode().split("\n[Peer]\n")
    return "\n[Peer]\n".join([head, *[b for b in blocks if not b.startswith(f"# {name}:")]]).rstrip("\n").encode()


@pytest.fixture
def hostile_lab(tmp_path: Path) -> Iterator[Lab]:
    why = missing_requirements()
    if why:
        unavailable(f"end-to-end lab: {why}")
    hosts = [copy.deepcopy(h) for h in HOSTS if h.name in HOSTILE_LAB]
    (tmp_path / "lab").mkdir()
    with Lab(tmp_path / "lab", copy.deepcopy(SITES), hosts) as running:
        yield running


def test_a_workstation_printing_hostile_output_changes_nothing_on_other_hosts(hostile_lab: Lab) -> None:
    lab = hostile_lab
    engine = Engine(lab, {"sshPrivateKey": lab.client_key.read_text()}, scope=in_mesh_layers)
    raw = lab_config(lab)
    engine.up(raw)
    others = [h for h in lab.hosts if h != "ws-3"]
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
    before = {h: host_files(lab, h) for h in others}
    daemons = {h: lab.pids(h, "wireguard-go") for h in others}
    ws3 = lab.hosts["ws-3"].dir
    (ws3 / "sbin" / "wg").write_bytes((SHIMS / "hostile-wg").read_bytes())  # first in ws-3's PATH
    (ws3 / "sbin" / "wg").chmod(0o755)
    for mode in ("section", "shell", "oversized"):
        (ws3 / "labstate" / "hostile").write_text(mode)
        engine.run_again("mesh-ws-3-wg-key")  # its key step runs again (a script change, a reinstall)
        with pytest.raises(ProgramFailed, match=r"mesh-ws-3-wg-key: host 'ws-3' printed \d+ bytes"):
            engine.up(raw)
        for h in others:
            after = host_files(lab, h)
            assert after.keys() == before[h].keys(), (mode, h)
            for path, content in after.items():
                if path == "etc-wireguard/wg0.conf":  # its own peer entry is gone, and nothing else changed
                    content, expected = content.rstrip(b"\n"), without_peer(before[h][path], "ws-3")
                else:
                    expected = before[h][path]
                assert content == expected, (mode, h, path)
        assert not [p for p in lab.root.rglob("pwned")], mode
        wait_for_full_mesh(lab, others, timeout=30)
        assert {h: lab.pids(h, "wireguard-go") for h in others} == daemons  # never restarted
    _stealing_a_key_cuts_no_one_out(lab, engine, raw, others, daemons)
    # The workstation repaired: it joins again.
    (ws3 / "sbin" / "wg").unlink()
    engine.run_again("mesh-ws-3-wg-key")
    engine.up(raw)
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)


def _stealing_a_key_cuts_no_one_out(lab: Lab, engine: Engine, raw: dict[str, Any], others: list[str], daemons: dict[str, list[int]]) -> None:
    """ws-3 prints the control plane's (public) key: no config holding it twice is sent anywhere,
    and the receiving host itself refuses a config giving its own key to a peer."""
    stolen = lab.exec("receipt", "wg", "show", "wg0", "public-key").stdout.strip()
    before = {h: host_files(lab, h) for h in others}
    (lab.hosts["ws-3"].dir / "labstate" / "hostile").write_text(f"steal {stolen}")
    engine.run_again("mesh-ws-3-wg-key")
    with pytest.raises(ProgramFailed, match=r"'receipt' and 'ws-3' have the same WireGuard public key"):
        engine.up(raw)
    assert {h: host_files(lab, h) for h in others} == before
    wait_for_full_mesh(lab, others, timeout=30)
    assert {h: lab.pids(h, "wireguard-go") for h in others} == daemons
    config = f"[Interface]\nAddress = 100.64.0.2/16\n\n[Peer]\nPublicKey = {stolen}\nAllowedIPs = 100.64.9.9/32\n"
    result = lab.exec("receipt", "bash", "-c", compose("wg-apply.sh", {"WG_CONFIG": config}), check=False)
    assert result.returncode == 1 and "gives this host's own key to a peer" in result.stderr
    assert host_files(lab, "receipt") == before["receipt"]
    (lab.hosts["ws-3"].dir / "labstate" / "hostile").write_text("honest")


def test_two_labs_at_once_leave_each_other_and_the_machine_alone(tmp_path: Path) -> None:
    why = missing_requirements()
    if why:
        unavailable(f"end-to-end lab: {why}")
    shared = [Path(p) for p in ("/run/sshd", "/run/wireguard", "/run/hybrid-ai-lab", "/var/lib/hybrid-ai-lab")]
    present = {p: p.exists() for p in shared}
    hosts = [h for h in HOSTS if h.name in ("vpn-hub", "ws-1")]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = Lab(tmp_path / "a", copy.deepcopy(SITES[:1]), copy.deepcopy(hosts)).up()
    try:
        with Lab(tmp_path / "b", copy.deepcopy(SITES[:1]), copy.deepcopy(hosts)) as second:
            assert not set(first.namespaces) & set(second.namespaces)
            second.ssh("ws-1", "touch /etc/wireguard/mine /run/hybrid-ai-lab/mine")
            assert not (first.hosts["ws-1"].dir / "etc-wireguard" / "mine").exists()
        # The second lab is gone; the first still takes new sessions and keeps its own folders.
        for h in first.hosts.values():
            first.ssh(h.name, "touch /etc/wireguard/still-here /run/wireguard/still-here /run/hybrid-ai-lab/still-here")
            for folder in ("etc-wireguard", "run-wireguard", "labstate"):
                assert (h.dir / folder / "still-here").exists(), (h.name, folder)
    finally:
        first.down()
    assert {p: p.exists() for p in shared} == present
