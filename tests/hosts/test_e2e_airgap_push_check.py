"""The airgap lab (tests/support/airgap_site.py), the push check against a stand-in registry
(tests/support/stub_registry.py) answering an upload's start as other registries and proxies do:
any 4xx is a refusal and passes, a 2xx fails, anything else is asked once more and then fails
saying it could not tell; an upload's cancel goes only to the mirror itself, never, with the
credential, to another origin its `Location` names."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.kit.shell import compose
from tests.support.airgap_site import CODENAME, CREDENTIALS, MIRROR, AirgapSite, missing
from tests.support.helpers import PROJECT, stop_processes, unavailable

pytestmark = pytest.mark.e2e
PORT, FOREIGN = 5010, 5011


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirgapSite]:
    if why := missing():
        unavailable(f"airgap lab: {why}")
    with AirgapSite(tmp_path_factory.mktemp("airgap-push")) as running:
        yield running


def _preflight(site: AirgapSite, tmp_path: Path, codes: str, location: str = "") -> tuple[subprocess.CompletedProcess[str], list[str], list[str]]:
    """mirrors.sh with one registry, the stand-in answering POSTs with `codes`; its result, the
    requests the stand-in and a second server on another port (the foreign origin) received."""
    logs = {port: tmp_path / f"requests-{port}" for port in (PORT, FOREIGN)}
    procs = [subprocess.Popen(["ip", "netns", "exec", site.ns_mirror, sys.executable, "-m", "tests.support.stub_registry", MIRROR, str(port),
                               str(site.root / "registry.crt"), str(site.root / "registry.key"), str(log), codes if port == PORT else "202", location],
                              cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port, log in logs.items()]
    try:
        for port in logs:
            site._wait(f"https://{MIRROR}:{port}/v2/", "--cacert", str(site.root / "ca.crt"))
        for log in logs.values():
            log.write_text("")  # the readiness checks' requests
        (tmp_path / "os-release").write_text(f"NAME=Ubuntu\nVERSION_CODENAME={CODENAME}\n")
        params = {"HOST_NAME": "ws-1", "REGISTRIES": f"ghcr.io=https://{MIRROR}:{PORT}", "CREDENTIAL_KEYS": "ghcr.io=officeMirrorCredentials",
                  "SECRETS_ON_STDIN": "true", "APT_DIR": str(tmp_path / "etc-apt"), "STAGED_CERTS_D": str(tmp_path / "certs.d"),
                  "STAGED_SNAPS": str(tmp_path / "snaps"), "OS_RELEASE": str(tmp_path / "os-release"), "SNAP_DATA": str(tmp_path / "microk8s"),
                  "HOLDS": str(tmp_path / "holds")}
        ca, auth = (base64.b64encode(v).decode() for v in ((site.root / "ca.crt").read_bytes(), CREDENTIALS.encode()))
        result = site.on_host("bash", "-c", compose("mirrors.sh", params), stdin=f"ca ghcr.io {ca}\nauth ghcr.io {auth}\n")
    finally:
        stop_processes(procs)
    return result, logs[PORT].read_text().splitlines(), logs[FOREIGN].read_text().splitlines()


def test_an_upload_whose_location_names_another_origin_is_not_cancelled_there(site: AirgapSite, tmp_path: Path) -> None:
    result, requests, foreign = _preflight(site, tmp_path, "202", f"http://{MIRROR}:{FOREIGN}/v2/hybrid-ai-push-check/blobs/uploads/abc")
    assert result.returncode == 1 and "config key officeMirrorCredentials can push" in result.stderr, result.stderr
    assert foreign == []  # neither the DELETE nor the credential reached the other port
    assert f"did not cancel the upload it started on https://{MIRROR}:{PORT}: its Location points elsewhere (http://{MIRROR}:{FOREIGN})" in result.stderr
    assert [r.split()[0] for r in requests] == ["GET", "POST"]


def test_an_upload_whose_location_is_on_the_mirror_is_cancelled_there(site: AirgapSite, tmp_path: Path) -> None:
    result, requests, foreign = _preflight(site, tmp_path, "202", "/v2/hybrid-ai-push-check/blobs/uploads/abc")  # relative: on the mirror
    assert result.returncode == 1 and foreign == []
    assert requests[-1] == "DELETE /v2/hybrid-ai-push-check/blobs/uploads/abc auth"
    assert "could not cancel" not in result.stderr and "did not cancel" not in result.stderr


def test_a_refusal_other_than_401_403_404_405_passes(site: AirgapSite, tmp_path: Path) -> None:
    result, requests, _ = _preflight(site, tmp_path, "400")  # 400 UNSUPPORTED: a POST on a proxy repository
    assert result.returncode == 0, result.stderr
    assert [r.split()[0] for r in requests] == ["GET", "POST"]


@pytest.mark.parametrize("code", ["302", "502"])
def test_a_redirect_or_bad_gateway_twice_fails_saying_it_could_not_tell(site: AirgapSite, tmp_path: Path, code: str) -> None:
    # An authenticating proxy's 302 to its login page, a load balancer's transient 502: no answer to the question.
    result, requests, _ = _preflight(site, tmp_path, code, "/login")
    assert result.returncode == 1
    assert f"could not tell whether the credential can push (its upload check answered {code} twice; a refusal is any 4xx" in result.stderr, result.stderr
    assert [r.split()[0] for r in requests] == ["GET", "POST", "POST"] and "nothing was changed" in result.stderr
    assert CREDENTIALS.split(":")[1] not in result.stderr


def test_a_transient_bad_gateway_then_a_refusal_passes(site: AirgapSite, tmp_path: Path) -> None:
    result, requests, _ = _preflight(site, tmp_path, "502,405")
    assert result.returncode == 0, result.stderr
    assert [r.split()[0] for r in requests] == ["GET", "POST", "POST"]
