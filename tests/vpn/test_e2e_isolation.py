"""End-to-end: two labs at once leave each other and the machine alone (root). (A workstation
printing hostile output is tested on the reference lab under the real CLI: tests/vpn/test_e2e_mesh.py.)"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.support.helpers import unavailable
from tools.lab.base import ROOT_BASHRC, STOCK_BASHRC, missing_requirements
from tools.lab.netlab import Lab
from tools.lab.reference import HOSTS, SITES

pytestmark = pytest.mark.e2e


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


def test_a_hosts_ssh_session_reads_a_stock_root_bashrc_not_this_machines(tmp_path: Path) -> None:
    """sshd's `bash -c` reads root's ~/.bashrc; this machine's may run anything (pyenv's init
    costs ~50 processes a session), a fresh Debian or Ubuntu host's (base-files') is comments."""
    why = missing_requirements()
    if why:
        unavailable(f"end-to-end lab: {why}")
    with Lab(tmp_path, copy.deepcopy(SITES[:1]), copy.deepcopy([h for h in HOSTS if h.name == "vpn-hub"])) as lab:
        seen = lab.ssh("vpn-hub", "cat ~/.bashrc 2>/dev/null; echo \"PATH=$PATH\"").stdout
    # A machine with no root ~/.bashrc leaves its hosts none either (bash then reads nothing).
    stock = STOCK_BASHRC.read_text() if STOCK_BASHRC.exists() and ROOT_BASHRC.exists() else ""
    assert seen == f"{stock}PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
