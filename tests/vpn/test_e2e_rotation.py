"""End to end: raising `vpn.keyEpoch` rotates every host's WireGuard key while traffic flows.

Every host pings every other over the overlay (5 pings a second, one `ping` per ordered pair)
while `pulumi up` runs the rotation; the longest gap between two answers is that pair's
outage. Goal (issue 15): under 30 s for every pair, and every pair answering at the end.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.helpers import stop_processes
from tests.support.lab import wait_for_full_mesh
from tools.lab.engine import Engine
from tools.lab.netlab import Lab
from tools.lab.reference import VPN, lab_config

pytestmark = pytest.mark.e2e

OUTAGE_GOAL_SECONDS = 30.0
REPLY = re.compile(r"^\[(?P<at>[0-9]+\.[0-9]+)\] [0-9]+ bytes from ", re.M)


def with_epoch(lab: Lab, epoch: int) -> dict[str, object]:
    raw = lab_config(lab)
    raw["vpn"] = {**raw.get("vpn", {}), "keyEpoch": epoch}
    return raw


class Pingers:
    """One `ping` per ordered pair, each in its host's namespace; stopped by PID."""

    def __init__(self, lab: Lab, out: Path):
        self.procs: dict[tuple[str, str], tuple[subprocess.Popen[bytes], Path]] = {}
        for a in lab.hosts:
            for b in lab.hosts:
                if a != b:
                    log = out / f"ping-{a}-{b}.log"
                    with log.open("wb") as sink:
                        proc = subprocess.Popen(
                            ["ip", "netns", "exec", lab.hosts[a].ns, "ping", "-D", "-n", "-i", "0.2", "-W", "1", VPN[b]],
                            stdout=sink, stderr=subprocess.STDOUT,
                        )
                    self.procs[(a, b)] = (proc, log)

    def stop(self) -> None:
        stop_processes(proc for proc, _ in self.procs.values())

    def outages(self, start: float, end: float) -> dict[tuple[str, str], float]:
        """Per pair, the longest time in [start, end] without an answer."""
        worst = {}
        for pair, (_, log) in self.procs.items():
            answers = [float(m["at"]) for m in REPLY.finditer(log.read_text(errors="replace"))]
            points = [start, *[t for t in answers if start < t < end], end]
            worst[pair] = max(b - a for a, b in itertools.pairwise(points))
        return worst


def test_raising_the_key_epoch_rotates_every_key_with_short_outages(lab: Lab, engine: Engine, tmp_path: Path) -> None:
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
    old_public = {n: k.strip() for n, k in engine.last.outputs["vpn"]["publicKeys"].items()}  # type: ignore[union-attr]
    old_private = {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text() for h in lab.hosts.values()}
    daemons = {h: lab.pids(h, "wireguard-go") for h in lab.hosts}
    pingers = Pingers(lab, tmp_path)
    try:
        time.sleep(3)  # every pair answering before the rotation starts
        start = time.time()
        runs = engine.up(with_epoch(lab, 1))
        wait_for_full_mesh(lab, list(lab.hosts), timeout=OUTAGE_GOAL_SECONDS)
        time.sleep(3)
        end = time.time()
    finally:
        pingers.stop()
    outages = pingers.outages(start, end)
    report = "\n".join(f"{a} -> {b}: {s:.1f} s" for (a, b), s in sorted(outages.items(), key=lambda kv: -kv[1]))
    print(f"\nlongest outage per pair during key rotation (rotation took {end - start:.1f} s):\n{report}")
    assert {r.name for r in runs} == {f"mesh-{h}-{s}" for h in lab.hosts for s in ("wg-key", "wg")}
    new_public = {n: k.strip() for n, k in engine.last.outputs["vpn"]["publicKeys"].items()}  # type: ignore[union-attr]
    assert all(new_public[h] != old_public[h] for h in lab.hosts) and len(set(new_public.values())) == len(lab.hosts)
    for h in lab.hosts.values():
        key_file = h.dir / "etc-wireguard" / "wg0.key"
        assert key_file.read_text() != old_private[h.name] and key_file.stat().st_mode & 0o777 == 0o600
    assert {h: lab.pids(h, "wireguard-go") for h in lab.hosts} == daemons  # keys swapped live, no restart
    assert max(outages.values()) < OUTAGE_GOAL_SECONDS, report


def test_the_same_epoch_again_changes_nothing(lab: Lab, engine: Engine) -> None:
    keys = {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text() for h in lab.hosts.values()}
    assert engine.up(with_epoch(lab, 1)) == []
    runs = engine.up(with_epoch(lab, 1), force=True)
    assert all(r.stdout.strip().endswith("changed=none") for r in runs if r.name.endswith("-wg")), runs
    assert {h.name: (h.dir / "etc-wireguard" / "wg0.key").read_text() for h in lab.hosts.values()} == keys
    wait_for_full_mesh(lab, list(lab.hosts), timeout=30)
