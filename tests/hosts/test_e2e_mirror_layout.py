"""`make mirror RESOLVE=1 LAYOUT=DIR` on a connected machine, against stand-in upstreams (a
namespace that reaches nothing but them: tests/support/upstream_standin.py), for the airgap
example stack: it locks every image by the digest upstream serves, lays out the OCI layouts,
the chart repository, the bundle, the snap files and the apt repositories (the packages' whole
dependency closure and nothing else, signed with the site's key); and that directory then serves
the airgap site (tests/support/airgap_site.py): the host's preflight passes with the real apt-get
and curl, and containerd's resolver pulls a pinned image by its digest through the mirror."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.kit.shell import compose, split_command
from stacks import images
from stacks.config.mirrors import qualified
from stacks.images import all_images, read_files, read_lock
from stacks.load import secret_keys_of, validate
from tests.hosts.test_e2e_airgap import resolver  # noqa: F401 (the fixture)
from tests.support.airgap_site import CODENAME, CREDENTIALS, LOADER, MIRROR, WRITABLE, AirgapSite, missing
from tests.support.dpkg import SERVER_KERNEL, admindir
from tests.support.helpers import PROJECT, evaluate_config, stack_config, unavailable
from tests.support.upstream_standin import TOOLKIT, UBUNTU_PACKAGES, Upstream
from tools.render.write import reveal

pytestmark = pytest.mark.e2e
CRANE = PROJECT / ".engine" / "bin" / "crane"
REGISTRIES = ("docker.io", "ghcr.io", "nvcr.io", "quay.io", "registry.k8s.io")


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirgapSite, Upstream, Path]]:
    if why := missing():
        unavailable(f"mirror layout lab: {why}")
    if not CRANE.exists():
        unavailable(f"mirror layout lab: no {CRANE}; run `make engine`")
    root = tmp_path_factory.mktemp("layout")
    (root / "site").mkdir()
    (root / "upstream").mkdir()
    with AirgapSite(root / "site") as site, Upstream(root / "upstream") as upstream:
        upstream.push(all_images(validate(stack_config("airgap")), {}))
        out = root / "carry"
        gnupg = site.root / "gnupg"  # the site's apt key signs the laid-out repositories
        result = upstream.inside(
            sys.executable, "-m", "tools.mirror", "--stack", "airgap", "--resolve", "--locks", str(root / "locks"), "--out", str(root / "manifest.json"),
            "--layout", str(out), "--keyring", str(upstream.keyring), "--sign-key", "hybrid-ai stand-in mirror key",
            *(a for s in upstream.sources() for a in ("--source", s)), env={"GNUPGHOME": str(gnupg)})
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"], check=False)  # the agent the signing started
        assert result.returncode == 0, result.stderr
        yield site, upstream, root


def test_the_lock_holds_the_digest_upstream_serves_for_each_tag(laid_out: tuple[AirgapSite, Upstream, Path]) -> None:
    _, upstream, root = laid_out
    lock = read_lock(root / "locks" / "airgap.yaml")
    assert lock and lock == {ref: upstream.digests[ref] for ref in lock}
    assert len(set(lock.values())) == len(lock)  # each stand-in image is its own
    assert (PROJECT / "stacks" / "locks" / "airgap.yaml").read_text().count("example") >= 1  # the project's own lock untouched
    # Each snap file by the sha3-384 of what upstream serves (the digest snapd matches assertions by).
    snaps = {n: d for n, d in read_files(root / "locks" / "airgap.yaml").items() if n.startswith("snaps/")}
    assert snaps == {f"snaps/{s}.snap": "sha3-384:" + hashlib.sha3_384((upstream.www / "snaps" / f"{s}.snap").read_bytes()).hexdigest()
                     for s in ("snapd_21759", "core20_2379", "microk8s_7394")}


def test_the_layout_holds_every_artifact_of_the_manifest(laid_out: tuple[AirgapSite, Upstream, Path]) -> None:
    _, upstream, root = laid_out
    out, doc = root / "carry", json.loads((root / "manifest.json").read_text())
    listed = {ref: folder for folder, ref in (line.split() for line in (out / "images" / "images.txt").read_text().splitlines())}
    assert sorted(listed) == doc["images"]
    for ref, folder in listed.items():
        index = json.loads((out / folder / "index.json").read_text())
        digest = ref.split("@", 1)[1] if "@" in ref else upstream.digests[ref]
        assert [m["digest"] for m in index["manifests"]] == [digest], ref
        assert (out / folder / "blobs" / "sha256" / digest.split(":", 1)[1]).exists()
    charts = yaml.safe_load((out / "charts" / "index.yaml").read_text())["entries"]
    assert {n: [e["version"] for e in v] for n, v in charts.items()} == {"nvidia-device-plugin": ["0.18.2"], "traefik": ["41.3.0"]}
    for name, (entry,) in charts.items():
        assert entry["urls"] == [f"{name}-{entry['version']}.tgz"]
        assert entry["digest"] == hashlib.sha256((out / "charts" / entry["urls"][0]).read_bytes()).hexdigest()
    bundle = out / "gateway-api" / "v1.5.1" / "standard-install.yaml"
    assert bundle.read_bytes() == (upstream.www / "gateway-api" / "v1.5.1" / "standard-install.yaml").read_bytes()
    assert sorted(p.name for p in (out / "snaps").iterdir()) == ["core20_2379.assert", "core20_2379.snap", "microk8s_7394.assert", "microk8s_7394.snap",
                                                                 "snapd_21759.assert", "snapd_21759.snap"]
    pool = sorted(p.name.split("_", 1)[0] for p in (out / "apt" / "ubuntu" / "pool" / "main").iterdir())
    assert pool == sorted(set(UBUNTU_PACKAGES) - {"standin-unrelated"})  # the closure: standin-libwg too, nothing else
    flat = sorted(p.name.split("_", 1)[0] for p in (out / "apt" / "nvidia").rglob("*.deb"))
    assert flat == sorted(TOOLKIT)


def test_the_laid_out_directory_serves_the_airgap_site(laid_out: tuple[AirgapSite, Upstream, Path], resolver: Path,  # noqa: F811
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site, _, root = laid_out
    out = root / "carry"
    shutil.copytree(out, site.files / "carry")
    # The airgap stack's own mirror step for ws-1 (a GPU node), its mirrors pointed at the lab's.
    raw = stack_config("airgap")
    monkeypatch.setattr(images, "LOCKS", root / "locks")  # the lock make mirror wrote
    ev = evaluate_config(raw, {k: f"test-{k}" for k in secret_keys_of(validate(raw))}, stack="airgap")
    params = split_command(reveal(ev.by_name("ws-1-bootstrap-mirrors").inputs["create"]))[1]
    files = f"http://{MIRROR}:8080/carry"
    (tmp_path / "os-release").write_text(f"NAME=Ubuntu\nVERSION_CODENAME={CODENAME}\n")
    (tmp_path / "apt" / "sources.list.d").mkdir(parents=True)
    params |= {"APT_URL": f"{files}/apt/ubuntu", "APT_KEY": site.key, "APT_COMPONENTS": "main", "NVIDIA_APT_URL": f"{files}/apt/nvidia",
               "NVIDIA_APT_KEY": site.key, "SNAP_URL": f"{files}/snaps", "REGISTRIES": " ".join(f"{r}=https://{MIRROR}:5000/{r}" for r in REGISTRIES),
               "APT_DIR": str(tmp_path / "apt"), "STAGED_CERTS_D": str(tmp_path / "certs.d"), "STAGED_SNAPS": str(tmp_path / "snaps"),
               "OS_RELEASE": str(tmp_path / "os-release"), "FILES_URL": f"{files}/models", "FILES_ADDRESSES": MIRROR}
    # Model archives are carried by hand (docs/airgap.md): stand-ins of each file ws-1's preflight checks.
    (site.files / "carry" / "models").mkdir()
    # (The stand-ins' own digests replace the pinned ones, which only the real archives have.)
    assert params["FILES"]
    for name in (entry.split("=")[0] for entry in params["FILES"].split()):
        (site.files / "carry" / "models" / name).write_bytes(b"stand-in model archive")
    params["FILES"] = " ".join(f"{e.split('=')[0]}={hashlib.sha256(b'stand-in model archive').hexdigest()}" for e in params["FILES"].split())
    assert len(params["IMAGES"].split()) == len((out / "images" / "images.txt").read_text().splitlines())
    ca = base64.b64encode((site.root / "ca.crt").read_bytes()).decode()
    auth = base64.b64encode(CREDENTIALS.encode()).decode()
    stdin = "".join(f"ca {r} {ca}\nauth {r} {auth}\n" for r in REGISTRIES)
    # ws-1's kernel: an Ubuntu server's (the flavour the stack lists its driver's modules for).
    kernel = {**os.environ, "DPKG_ADMINDIR": str(admindir(tmp_path / "dpkg", SERVER_KERNEL))}
    # Before the images are carried, the preflight fails on the first: one of MicroK8s' own.
    early = site.on_host("bash", "-c", compose("mirrors.sh", params), stdin=stdin, env=kernel)
    assert early.returncode == 1
    assert f"Missing: image docker.io/calico/cni:v3.28.1 (on https://{MIRROR}:5000/docker.io: its manifest answered 404)" in early.stderr, early.stderr
    # Carry the images into the site's registry: `crane push` of each layout, as docs/airgap.md says.
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {f"{MIRROR}:5002": {"auth": base64.b64encode(LOADER.encode()).decode()}}}))
    env = {**os.environ, "DOCKER_CONFIG": str(docker), "SSL_CERT_FILE": str(site.root / "ca.crt")}
    for line in (out / "images" / "images.txt").read_text().splitlines():
        folder, ref = line.split()
        pushed = site.on_host(str(CRANE), "push", str(out / folder), f"{MIRROR}:5002/{ref.split('@', 1)[0]}", env=env)  # the loader's instance
        assert pushed.returncode == 0, pushed.stderr
    result = site.on_host("bash", "-c", compose("mirrors.sh", params), stdin=stdin, env=kernel)
    assert result.returncode == 0, result.stderr
    receipt = next(i for i in params["IMAGES"].split() if i.startswith("ghcr.io/example/receipt-api"))
    assert "@sha256:" in receipt
    pulled = site.on_host(str(resolver), params["STAGED_CERTS_D"], receipt)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.split()[0] == receipt.split("@", 1)[1] and qualified(receipt) == receipt
    # Whoever can push (the loader's credential, stolen) replaces the tag: the pinned reference
    # still resolves to the reviewed digest.
    other = site.on_host(sys.executable, "-m", "tests.support.oci_push", f"{WRITABLE}/v2", "ghcr.io/example/receipt-api", "1.4.2",
                         str(site.root / "ca.crt"), LOADER, "replaced by a stolen loader credential")
    assert other.returncode == 0, other.stderr
    by_tag = site.on_host(str(resolver), params["STAGED_CERTS_D"], receipt.split("@", 1)[0])
    assert by_tag.stdout.split()[0] == other.stdout.strip() != receipt.split("@", 1)[1]
    pinned = site.on_host(str(resolver), params["STAGED_CERTS_D"], receipt)
    assert pinned.returncode == 0 and pinned.stdout.split()[0] == receipt.split("@", 1)[1], pinned.stderr
