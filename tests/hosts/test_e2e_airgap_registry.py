"""The airgap lab (tests/support/airgap_site.py), registries: a mirror's change reaches MicroK8s'
containerd in the mirror step itself (a new credential, a new URL, a registry removed, the site's
mirrors removed), read back by containerd's own resolver; and a credential that can push fails
the preflight, leaving no upload behind."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.kit.shell import compose
from tests.hosts.test_e2e_airgap import IMAGE, REGISTRY, _mirrors, _params, _secrets, resolver  # noqa: F401
from tests.support.airgap_site import CREDENTIALS, LOADER, MIRROR, ROTATED, WRITABLE, AirgapSite, missing
from tests.support.helpers import unavailable
from tests.support.microk8s_host import DEFAULT_CERTS_D

pytestmark = pytest.mark.e2e


# MicroK8s' certs.d as its install hook leaves it (the snap's folder names, `:` for `__`).
DEFAULTS = {name.replace("__", ":"): text for name, text in DEFAULT_CERTS_D.items()}

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirgapSite]:
    if why := missing():
        unavailable(f"airgap lab: {why}")
    with AirgapSite(tmp_path_factory.mktemp("airgap-registry")) as running:
        running.push("ghcr.io/example/receipt-api", "1.4.2")
        running.push("library/standin", "1.0")  # docker.io's, at the registry's root
        running.push("docker.io/library/standin", "1.0")  # and under a prefix of its own
        yield running


def _microk8s(tmp_path: Path) -> Path:
    """MicroK8s' certs.d as its install leaves it; the snap's own default-args beside it."""
    for name, text in DEFAULTS.items():
        for folder in (tmp_path / "defaults" / name.replace(":", "__"), tmp_path / "microk8s/args/certs.d" / name):
            folder.mkdir(parents=True)
            (folder / "hosts.toml").write_text(text)
    return tmp_path / "microk8s/args/certs.d"


def _matches(certs: Path, staged: Path, registries: str) -> None:
    for upstream in (e.split("=", 1)[0] for e in registries.split()):
        assert {f.name: f.read_bytes() for f in (certs / upstream).iterdir()} == {f.name: f.read_bytes() for f in (staged / upstream).iterdir()}


def test_a_new_credential_url_or_removed_registry_reaches_containerd_in_the_mirror_step(site: AirgapSite, resolver: Path,  # noqa: F811
                                                                                        tmp_path: Path) -> None:
    certs = _microk8s(tmp_path)
    params = _params(site, tmp_path)
    staged = Path(params["STAGED_CERTS_D"])
    assert _mirrors(site, params, _secrets(site)).returncode == 0
    _matches(certs, staged, params["REGISTRIES"])
    assert site.on_host(str(resolver), str(certs), IMAGE).returncode == 0
    # The credential rotated: containerd's copy holds the new one only, and pulls with it.
    rotated = _mirrors(site, params, _secrets(site, ROTATED))
    assert rotated.returncode == 0, rotated.stderr
    assert "containerd-registry-ghcr.io" in rotated.stdout
    _matches(certs, staged, params["REGISTRIES"])
    hosts = (certs / "ghcr.io/hosts.toml").read_text()
    assert base64.b64encode(ROTATED.encode()).decode() in hosts and base64.b64encode(CREDENTIALS.encode()).decode() not in hosts
    assert site.on_host(str(resolver), str(certs), IMAGE).returncode == 0
    # docker.io's mirror moves under a prefix: containerd pulls from there.
    moved = {**params, "REGISTRIES": f"ghcr.io={REGISTRY} docker.io=https://{MIRROR}:5000/docker.io"}
    assert _mirrors(site, moved, _secrets(site, ROTATED)).returncode == 0
    _matches(certs, staged, moved["REGISTRIES"])
    assert f'server = "https://{MIRROR}:5000/v2/docker.io"' in (certs / "docker.io/hosts.toml").read_text()
    pulled = site.on_host(str(resolver), str(certs), "docker.io/library/standin:1.0")
    assert pulled.returncode == 0, pulled.stderr
    # docker.io no longer mirrored: MicroK8s' own default is back, byte for byte; the rest stays.
    fewer = {**params, "REGISTRIES": f"ghcr.io={REGISTRY}", "IMAGES": IMAGE}
    assert _mirrors(site, fewer, _secrets(site, ROTATED)).returncode == 0
    assert sorted(p.name for p in certs.iterdir()) == ["docker.io", "ghcr.io", "localhost:32000"]
    assert {n: (certs / n / "hosts.toml").read_text() for n in DEFAULTS} == DEFAULTS
    assert sorted(p.name for p in (certs / "docker.io").iterdir()) == ["hosts.toml"]
    _matches(certs, staged, fewer["REGISTRIES"])
    assert _mirrors(site, fewer, _secrets(site, ROTATED)).stdout.strip() == "changed=none"
    # The site's mirrors removed (`mirrors: {}`): the step's delete leaves MicroK8s' own files only.
    teardown = {k: params[k] for k in ("APT_DIR", "STAGED_CERTS_D", "STAGED_SNAPS", "SNAP_DATA", "MICROK8S_DEFAULTS")}
    result = site.on_host("bash", "-c", compose("mirrors-teardown.sh", teardown))
    assert result.returncode == 0, result.stderr
    assert {p.name: (p / "hosts.toml").read_text() for p in certs.iterdir()} == DEFAULTS
    upstream = site.on_host(str(resolver), str(certs), IMAGE)
    assert upstream.returncode == 1 and "203.0.113" not in upstream.stderr, upstream.stderr


def test_a_credential_that_can_push_fails_the_preflight_and_leaves_no_upload(site: AirgapSite, tmp_path: Path) -> None:
    """distribution answers an upload's start with 202 and its Location on a writable instance,
    405 on a read-only one (registry/handlers/blobupload.go): the loader's credential fails the
    preflight naming its config key, the upload it started is cancelled; the site's passes."""
    def uploads() -> list[Path]:
        # A session is its `startedat` and `data` under _uploads/<uuid>/ (distribution's storage layout).
        # Cancelled, distribution 2.8 writes back only the empty upload's hash state, which knows no
        # session (a GET of it answers 404) and which its upload purging removes.
        return sorted(p for p in (site.root / "registry-data").rglob("_uploads/*/*") if p.name in ("startedat", "data"))
    ca = base64.b64encode((site.root / "ca.crt").read_bytes()).decode()
    (tmp_path / "w").mkdir()
    (tmp_path / "r").mkdir()
    writable = _params(site, tmp_path / "w", REGISTRIES=f"ghcr.io={WRITABLE}/ghcr.io", IMAGES=IMAGE, CREDENTIAL_KEYS="ghcr.io=officeMirrorCredentials")
    result = _mirrors(site, writable, f"ca ghcr.io {ca}\nauth ghcr.io {base64.b64encode(LOADER.encode()).decode()}\n")
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(error) == 1 and "can push" in error[0] and "config key officeMirrorCredentials" in error[0], result.stderr
    assert "nothing was changed" in error[0] and LOADER.split(":")[1] not in result.stderr
    assert not Path(writable["STAGED_CERTS_D"]).exists()
    assert uploads() == [] and "could not cancel" not in result.stderr
    read_only = _params(site, tmp_path / "r", REGISTRIES=f"ghcr.io={REGISTRY}", IMAGES=IMAGE, CREDENTIAL_KEYS="ghcr.io=officeMirrorCredentials")
    passed = _mirrors(site, read_only, _secrets(site))
    assert passed.returncode == 0, passed.stderr
    assert uploads() == []
