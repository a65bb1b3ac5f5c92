"""End-to-end, in labs of their own: a workstation printing hostile output changes nothing on
other hosts; two labs at once leave each other and the machine alone (root)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.kit.shell import compose
from tests.support.helpers import unavailable
from tests.support.lab import wait_for_full_mesh
from tools.lab.base import SHIMS, missing_requirements
from tools.lab.engine import Engine, ProgramFailed
from tools.lab.netlab import Lab
from tools.lab.reference import HOSTS, SITES, in_mesh_layers, lab_config

pytestmark = pytest.mark.e2e


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
