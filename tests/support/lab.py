"""Shared by the end-to-end tests: waiting for the lab's overlay to be complete."""

from __future__ import annotations

import time

import pytest

from tools.lab.netlab import Lab
from tools.lab.reference import VPN


def wait_for_full_mesh(lab: Lab, hosts: list[str], timeout: float) -> float:
    """Seconds until every host pings every other over the overlay; fail after `timeout`."""
    start = time.monotonic()
    missing: list[tuple[str, str]] = [(a, b) for a in hosts for b in hosts if a != b]
    while missing:
        missing = [(a, b) for a, b in missing if not lab.ping(a, VPN[b])]
        if missing and time.monotonic() - start > timeout:
            pytest.fail(f"no overlay reachability after {timeout}s: {missing}")
    return time.monotonic() - start
