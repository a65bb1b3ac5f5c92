"""The certificate-rotation runbook (docs/operations.md) names only what `microk8s refresh-certs` offers
at 1.32 (canonical/microk8s scripts/wrappers/refresh_certs.py @ v1.32: argument CA_DIR, options
-u/--undo, -c/--check, -e/--cert with the choices of `certs`)."""

from __future__ import annotations

import re

from tests.support.helpers import PROJECT

OPTIONS = {"--undo", "-u", "--check", "-c", "--cert", "-e", "--help", "-h"}
CERTS = {"ca.crt", "server.crt", "front-proxy-client.crt"}


def runbook() -> str:
    doc = (PROJECT / "docs" / "operations.md").read_text()
    start = doc.index("## Rotating keys and certificates")
    return doc[start:doc.index("\n## ", start)]


def test_the_runbook_uses_only_refresh_certs_options_of_1_32() -> None:
    text = runbook()
    certs = text[text.index("Cluster certificates"):]
    flags = set(re.findall(r"(?<![\w-])--[a-z-]+", certs)) - {"--replace", "--show-urns"}  # pulumi's own
    assert flags and flags <= OPTIONS, flags - OPTIONS
    named = set(re.findall(r"--cert ([a-z.-]+\.crt)", certs)) | set(re.findall(r"`([a-z-]+\.crt)`", certs))
    assert named and named <= CERTS, named - CERTS
    assert "CA_DIR" in certs
