"""The laid-out apt repositories' Release expires (`Valid-Until`): a copy replayed on the site's LAN
after that is refused by apt, so a compromised host cannot hold the others on old packages."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from tests.support.helpers import unavailable
from tools.mirror.layout import VALID_DAYS, _sign


def _field(text: str, name: str) -> str:
    found = re.search(rf"^{name}: (.+)$", text, re.M)
    assert found, f"no {name} in {text[:400]}"
    return found[1]


@pytest.mark.parametrize("days", [VALID_DAYS, 7])
def test_the_signed_release_is_valid_for_the_given_days_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, days: int) -> None:
    if shutil.which("gpg") is None or shutil.which("apt-ftparchive") is None:
        unavailable("gpg and apt-ftparchive")
    gnupg = tmp_path / "gnupg"
    gnupg.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(gnupg))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "hybrid-ai stand-in <mirror@example.com>", "ed25519", "sign", "1d"],
                   check=True, capture_output=True, timeout=60)
    folder = tmp_path / "dists" / "noble"
    (folder / "main" / "binary-amd64").mkdir(parents=True)
    (folder / "main" / "binary-amd64" / "Packages").write_text("")
    _sign(folder, "mirror@example.com", valid_days=days)
    signed = (folder / "InRelease").read_text()
    assert signed.startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    until, date = (parsedate_to_datetime(_field(signed, f)) for f in ("Valid-Until", "Date"))
    assert until - date == timedelta(days=days)
    assert VALID_DAYS == 30
