"""The session of tests/vpn/test_e2e_mesh.py: the reference lab `make lab-up` builds and the
program's stack on it (tests/support/mesh_lab.py), one per module, removed by `make lab-down`
(the last test runs it; should a test fail first, the fixture runs it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.helpers import unavailable
from tests.support.mesh_lab import Session, attach, lab_cli
from tests.support.standin import require_built
from tools.lab.base import missing_requirements
from tools.lab.netlab import Lab


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_built()
    why = missing_requirements() or (None if Path("/usr/sbin/nft").exists() else "missing tools: nft (apt-get install nftables)")
    if why:
        unavailable(f"end-to-end lab: {why}")
    state = tmp_path_factory.mktemp("mesh") / "lab.json"
    sysctls = Lab.global_sysctls()
    try:
        up = lab_cli("up", state)
        print(*[line for line in up.stdout.splitlines() if line.startswith(("Resources:", "    +", "Duration", "lab:"))], sep="\n")
        assert up.returncode == 0, up.stderr[-3000:] + up.stdout[-3000:]
        yield Session(attach(state), up.stdout, sysctls, state)
    finally:
        if state.exists():  # a failed test still leaves nothing behind
            lab_cli("down", state)
