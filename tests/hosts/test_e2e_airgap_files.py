"""An airgapped site's `files` mirror (network namespaces, root): HTTPS under a private CA. A GPU
node's mirror step checks each model file's SHA-256 with that CA, and a missing or different one
fails the preflight naming it and the mirror, with nothing changed; the model fetcher (fetch-model.sh, real curl)
downloads through the same CA and is refused without it."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.kit.shell import compose
from components.workloads.tf_serving import FETCH_SCRIPT
from tests.support.airgap_site import CODENAME, AirgapSite, missing
from tests.support.helpers import unavailable

pytestmark = pytest.mark.e2e
MODELS = ("ocr-detector-3.tar.gz", "ocr-recognizer-1.tar.gz")


def _archive() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("saved_model.pb")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"GRAPH"))
    return out.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirgapSite, str]]:
    if why := missing():
        unavailable(f"airgap lab: {why}")
    with AirgapSite(tmp_path_factory.mktemp("airgap-files")) as running:
        models = running.root / "models"
        models.mkdir()
        (models / MODELS[0]).write_bytes(_archive())  # MODELS[1] is missing
        yield running, running.serve_files_https(models)


def _files(site: AirgapSite, *names: str) -> str:
    """FILES as the program passes it: each name with the SHA-256 the fetcher requires (the served
    archive's; a missing one's is any)."""
    served = site.root / "models"
    return " ".join(f"{n}={hashlib.sha256((served / n).read_bytes()).hexdigest() if (served / n).exists() else 'f' * 64}" for n in names)


def _preflight(site: AirgapSite, url: str, tmp_path: Path, files: str, with_ca: bool = True, addresses: str = ""):  # type: ignore[no-untyped-def]
    (tmp_path / "os-release").write_text(f"NAME=Ubuntu\nVERSION_CODENAME={CODENAME}\n")
    params = {"HOST_NAME": "ws-1", "FILES_URL": url, "FILES": files, "FILES_ADDRESSES": addresses, "SECRETS_ON_STDIN": "true" if with_ca else "false",
              "APT_DIR": str(tmp_path / "etc-apt"), "STAGED_CERTS_D": str(tmp_path / "certs.d"), "STAGED_SNAPS": str(tmp_path / "snaps"),
              "OS_RELEASE": str(tmp_path / "os-release")}
    ca = base64.b64encode((site.root / "ca.crt").read_bytes()).decode()
    return site.on_host("bash", "-c", compose("mirrors.sh", params), stdin=f"files-ca files {ca}\n" if with_ca else "")


def test_each_model_file_on_the_files_mirror_passes_the_preflight(site: tuple[AirgapSite, str], tmp_path: Path) -> None:
    lab, url = site
    result = _preflight(lab, url, tmp_path, _files(lab, MODELS[0]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "changed=none"


def test_a_model_file_with_other_bytes_than_its_sha256_fails_the_preflight_naming_both_digests(site: tuple[AirgapSite, str], tmp_path: Path) -> None:
    # A rebuilt archive under the right name (gzip stamps its time): the fetcher would refuse it after the install.
    lab, url = site
    served = hashlib.sha256((lab.root / "models" / MODELS[0]).read_bytes()).hexdigest()
    pinned = hashlib.sha256(_archive() + b"rebuilt").hexdigest()
    result = _preflight(lab, url, tmp_path, f"{MODELS[0]}={pinned}")
    assert result.returncode != 0
    assert f"model file {MODELS[0]} with sha256 {pinned} (on {url}: its file has sha256 {served})" in result.stderr, result.stderr
    assert "nothing was changed" in result.stderr
    assert not any(p.exists() for p in (tmp_path / "etc-apt", tmp_path / "certs.d", tmp_path / "snaps"))


def test_a_missing_model_file_fails_the_preflight_naming_it_and_the_mirror(site: tuple[AirgapSite, str], tmp_path: Path) -> None:
    lab, url = site
    result = _preflight(lab, url, tmp_path, _files(lab, *MODELS))
    assert result.returncode != 0
    assert f"model file {MODELS[1]} (on {url})" in result.stderr and f"model file {MODELS[0]}" not in result.stderr
    assert "nothing was changed" in result.stderr
    assert not any(p.exists() for p in (tmp_path / "etc-apt", tmp_path / "certs.d", tmp_path / "snaps"))


def test_the_preflight_fails_where_the_host_resolves_the_files_mirror_elsewhere_than_its_pods(site: tuple[AirgapSite, str], tmp_path: Path) -> None:
    lab, url = site
    host = url.split("://")[1].split(":")[0]  # what this host's resolver (getent) answers for it
    assert _preflight(lab, url, tmp_path, _files(lab, MODELS[0]), addresses=host).returncode == 0
    result = _preflight(lab, url, tmp_path, _files(lab, MODELS[0]), addresses=f"{host} 198.51.100.99")
    assert result.returncode != 0
    assert f"files mirror {host} at 198.51.100.99 as filesAddresses gives it to the model fetcher (here it resolves to {host})" in result.stderr
    assert f"at {host} as" not in result.stderr and "nothing was changed" in result.stderr


def test_without_the_files_mirrors_ca_the_preflight_fails(site: tuple[AirgapSite, str], tmp_path: Path) -> None:
    lab, url = site
    result = _preflight(lab, url, tmp_path, _files(lab, MODELS[0]), with_ca=False)
    assert result.returncode != 0 and f"model file {MODELS[0]} (on {url})" in result.stderr


def test_the_fetcher_downloads_through_the_private_ca_and_is_refused_without_it(site: tuple[AirgapSite, str], tmp_path: Path) -> None:
    lab, url = site
    sha = hashlib.sha256((lab.root / "models" / MODELS[0]).read_bytes()).hexdigest()  # as served (gzip stamps its time)
    env = {"PATH": "/usr/bin:/bin", "SOURCE": f"{url}/{MODELS[0]}", "SHA256": sha}
    refused = lab.on_host("sh", str(FETCH_SCRIPT), env={**env, "TARGET": str(tmp_path / "a" / "3")})
    assert refused.returncode == 1 and "could not download" in refused.stderr
    fetched = lab.on_host("sh", str(FETCH_SCRIPT), env={**env, "TARGET": str(tmp_path / "b" / "3"), "CACERT": str(lab.root / "ca.crt")})
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "b" / "3" / "saved_model.pb").read_bytes() == b"GRAPH"
