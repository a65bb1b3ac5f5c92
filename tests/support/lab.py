"""Shared by the end-to-end tests: waiting for the lab's overlay to be complete."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.support.helpers import stop_processes
from tools.lab.netlab import Lab
from tools.lab.reference import VPN


def unanswered(lab: Lab, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (from, to) pairs whose one overlay ping gets no answer within 1 s. All are pinged
    at once, so a round takes ~1 s however many pairs are missing (one by one, a round of 30
    lost pings took 30 s, and a recovery was seen up to a round late)."""
    deadline = time.monotonic() + 10  # `ping -W 1` ends in ~1 s; this only bounds a stuck one
    pings: list[tuple[tuple[str, str], subprocess.Popen[bytes]]] = []
    try:
        for a, b in pairs:
            pings.append(((a, b), subprocess.Popen(lab.ping_command(a, VPN[b]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        missing = []
        for pair, ping in pings:
            try:
                answered = ping.wait(timeout=max(0.0, deadline - time.monotonic())) == 0
            except subprocess.TimeoutExpired:
                answered = False
            if not answered:
                missing.append(pair)
        return missing
    finally:
        stop_processes(ping for _, ping in pings)  # `ip netns exec` execs ping: this reaches the ping itself


def wait_for_full_mesh(lab: Lab, hosts: list[str], timeout: float) -> float:
    """Seconds until every host pings every other over the overlay; fail after `timeout`."""
    start = time.monotonic()
    missing: list[tuple[str, str]] = [(a, b) for a in hosts for b in hosts if a != b]
    while missing:
        missing = unanswered(lab, missing)
        if missing and time.monotonic() - start > timeout:
            pytest.fail(f"no overlay reachability after {timeout}s: {missing}")
        if missing:
            time.sleep(0.2)  # a ping refused at once (no route yet) must not make this a busy loop
    return time.monotonic() - start
