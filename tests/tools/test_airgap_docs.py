"""docs/airgap.md says what an operator of a mirrored site must know and the code cannot enforce:
`microk8s inspect` tarballs hold the registry credential, the laid-out apt Release expires and is
re-signed before then, and apt on a LAN with workstations goes over https."""

from __future__ import annotations

import re

from tests.support.helpers import PROJECT
from tools.mirror.layout import VALID_DAYS

AIRGAP = " ".join((PROJECT / "docs" / "airgap.md").read_text().split())


def test_the_inspect_tarball_warning_names_what_to_redact() -> None:
    # canonical/microk8s scripts/inspect.sh @ 1.32: store_args copies ${SNAP_DATA}/args whole (docs/upstream.md).
    section = AIRGAP.split("## Registry credentials", 1)[1].split("## ", 1)[0]
    assert "`microk8s inspect`" in section and "`args/certs.d`" in section and "hosts.toml" in section


def test_the_release_expiry_and_its_default_are_documented() -> None:
    assert f"`VALID_DAYS=<n>` (default {VALID_DAYS})" in AIRGAP
    assert re.search(r"`Valid-Until`.{0,200}re-sign", AIRGAP), "docs/airgap.md must say the mirror is re-signed before Valid-Until"


def test_https_is_recommended_for_apt_on_a_lan_with_workstations() -> None:
    assert "On a LAN shared with workstations, serve the apt mirrors over `https://`" in AIRGAP
