"""An airgapped site (network namespaces, root): the host's mirror step, as the program composes
it, checks every mirror with the real tools (apt-get on the stand-in repositories, curl on the
real registry with its private CA and credentials) and configures them; one missing artifact
fails the preflight naming it and its mirror, with nothing changed. The host reaches nothing
but the mirror: it has no route anywhere else."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.kit.shell import compose
from tests.support.airgap_site import CODENAME, CREDENTIALS, LOADER, MIRROR, SNAPS, AirgapSite, missing
from tests.support.dpkg import SERVER_KERNEL, admindir
from tests.support.helpers import PROJECT, unavailable

pytestmark = pytest.mark.e2e
MIRROR_HTTP = f"http://{MIRROR}:8080"
REGISTRY = f"https://{MIRROR}:5000/ghcr.io"
IMAGE = "ghcr.io/example/receipt-api:1.4.2"


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """containerd's resolver and hosts.toml reader (v1.7.29, MicroK8s 1.32's), built from its module."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.path.exists(go):
        unavailable("Go, to build containerd's resolver")
    out = tmp_path_factory.mktemp("resolver") / "hostsresolve"
    subprocess.run([go, "build", "-o", str(out), "."], cwd=PROJECT / "tests/support/hostsresolve", check=True, timeout=600)
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirgapSite]:
    if why := missing():
        unavailable(f"airgap lab: {why}")
    with AirgapSite(tmp_path_factory.mktemp("airgap")) as running:
        running.push("ghcr.io/example/receipt-api", "1.4.2")
        running.push("library/standin", "1.0")  # docker.io's, at the registry's root
        yield running


def _host(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "os-release").write_text(f"NAME=Ubuntu\nVERSION_CODENAME={CODENAME}\n")
    apt = tmp_path / "etc-apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb http://archive.ubuntu.com/ubuntu noble main\n")
    return {"APT_DIR": str(apt), "STAGED_CERTS_D": str(tmp_path / "certs.d"), "STAGED_SNAPS": str(tmp_path / "snaps"),
            "OS_RELEASE": str(tmp_path / "os-release"), "SNAP_DATA": str(tmp_path / "microk8s"), "MICROK8S_DEFAULTS": str(tmp_path / "defaults")}


def _params(site: AirgapSite, tmp_path: Path, **over: str) -> dict[str, str]:
    return {"HOST_NAME": "ws-1", "APT_URL": f"{MIRROR_HTTP}/ubuntu", "APT_KEY": site.key, "APT_COMPONENTS": "main",
            "APT_PACKAGES": "standin-tool", "NVIDIA_APT_URL": f"{MIRROR_HTTP}/nvidia", "NVIDIA_APT_KEY": site.key,
            "NVIDIA_PACKAGES": "standin-toolkit=1.0", "SNAP_URL": f"{MIRROR_HTTP}/snaps", "SNAPS": SNAPS,
            "REGISTRIES": f"ghcr.io={REGISTRY} docker.io=https://{MIRROR}:5000", "IMAGES": f"{IMAGE} docker.io/library/standin:1.0", "SECRETS_ON_STDIN": "true", **_host(tmp_path), **over,
            "SNAP_SHA3_384": site.snap_sha3(over.get("SNAPS", SNAPS), over.get("SNAP_SHA3_384", ""))}


def _secrets(site: AirgapSite, credentials: str = CREDENTIALS) -> str:
    ca = base64.b64encode((site.root / "ca.crt").read_bytes()).decode()
    auth = base64.b64encode(credentials.encode()).decode()
    return "".join(f"ca {r} {ca}\nauth {r} {auth}\n" for r in ("ghcr.io", "docker.io"))


def _mirrors(site: AirgapSite, params: dict[str, str], stdin: str):  # type: ignore[no-untyped-def]
    return site.on_host("bash", "-c", compose("mirrors.sh", params), stdin=stdin)


def test_the_host_reaches_nothing_but_the_mirror(site: AirgapSite) -> None:
    assert site.on_host("ip", "route", "get", "192.0.2.80").returncode != 0  # no route: nothing is sent
    assert site.on_host("curl", "-s", "--max-time", "3", f"{MIRROR_HTTP}/").returncode == 0


def test_mirror_config_and_preflight_succeed_then_change_nothing(site: AirgapSite, tmp_path: Path) -> None:
    params = _params(site, tmp_path)
    result = _mirrors(site, params, _secrets(site))
    assert result.returncode == 0, result.stderr
    apt = Path(params["APT_DIR"])
    assert (apt / "sources.list.d/hybrid-ai-mirrors.list").read_text().splitlines() == [
        f"deb [signed-by={apt}/keyrings/hybrid-ai-ubuntu-mirror.asc] {MIRROR_HTTP}/ubuntu {s} main"
        for s in (CODENAME, f"{CODENAME}-updates", f"{CODENAME}-security")
    ] + [f"deb [signed-by={apt}/keyrings/hybrid-ai-nvidia-mirror.asc] {MIRROR_HTTP}/nvidia/amd64 /"]
    assert not (apt / "sources.list").exists() and (apt / "sources.list.hybrid-ai-off").exists()
    hosts = (Path(params["STAGED_CERTS_D"]) / "ghcr.io" / "hosts.toml").read_text()
    assert f'server = "https://{MIRROR}:5000/v2/ghcr.io"' in hosts and f'[host."https://{MIRROR}:5000/v2/ghcr.io"]' in hosts
    assert "override_path = true" in hosts and 'ca = "ca.crt"' in hosts
    assert f'authorization = "Basic {base64.b64encode(CREDENTIALS.encode()).decode()}"' in hosts
    assert (Path(params["STAGED_CERTS_D"]) / "ghcr.io" / "hosts.toml").stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in Path(params["STAGED_SNAPS"]).iterdir()) == [
        "core20_2379.assert", "core20_2379.snap", "microk8s_7394.assert", "microk8s_7394.snap", "snapd_21759.assert", "snapd_21759.snap"]
    assert "stand-in-password" not in result.stdout + result.stderr
    again = _mirrors(site, params, _secrets(site))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "changed=none"


def test_a_mirror_taken_out_of_the_config_puts_the_host_back(site: AirgapSite, tmp_path: Path) -> None:
    params = _params(site, tmp_path)
    apt, certs = Path(params["APT_DIR"]), Path(params["STAGED_CERTS_D"])
    (apt / "sources.list.d/nvidia-container-toolkit.list").write_text("deb https://nvidia.github.io/libnvidia-container/stable/deb/amd64 /\n")
    assert _mirrors(site, params, _secrets(site)).returncode == 0
    assert (certs / "ghcr.io").is_dir() and not (apt / "sources.list").exists()
    # The NVIDIA mirror and ghcr.io's go: NVIDIA's own source is back, its key and ghcr.io's configuration gone.
    fewer = {**params, "NVIDIA_APT_URL": "", "NVIDIA_PACKAGES": "", "REGISTRIES": f"docker.io=https://{MIRROR}:5000",
             "IMAGES": "docker.io/library/standin:1.0"}
    result = _mirrors(site, fewer, _secrets(site))
    assert result.returncode == 0, result.stderr
    assert (apt / "sources.list.d/nvidia-container-toolkit.list").exists() and not (apt / "keyrings/hybrid-ai-nvidia-mirror.asc").exists()
    assert not (certs / "ghcr.io").exists() and (certs / "docker.io" / "hosts.toml").exists()
    assert (apt / "sources.list.d/hybrid-ai-mirrors.list").read_text().count(f"{MIRROR_HTTP}/ubuntu") == 3
    assert "nvidia" not in (apt / "sources.list.d/hybrid-ai-mirrors.list").read_text()
    # No apt mirror at all: the distribution's sources.list is back and the mirrors' list gone.
    none = {**fewer, "APT_URL": "", "APT_PACKAGES": ""}
    result = _mirrors(site, none, _secrets(site))
    assert result.returncode == 0, result.stderr
    assert (apt / "sources.list").read_text() == "deb http://archive.ubuntu.com/ubuntu noble main\n"
    assert not (apt / "sources.list.hybrid-ai-off").exists() and not (apt / "sources.list.d/hybrid-ai-mirrors.list").exists()
    assert not list((apt / "keyrings").glob("hybrid-ai-*"))
    assert _mirrors(site, none, _secrets(site)).stdout.strip() == "changed=none"


def test_destroy_puts_the_host_back_and_keeps_a_source_written_since(site: AirgapSite, tmp_path: Path) -> None:
    params = _params(site, tmp_path)
    apt, certs = Path(params["APT_DIR"]), Path(params["STAGED_CERTS_D"])
    (apt / "sources.list.d/ubuntu.sources").write_text("Types: deb\nURIs: http://archive.ubuntu.com/ubuntu\n")
    assert _mirrors(site, params, _secrets(site)).returncode == 0
    (apt / "sources.list").write_text("deb http://apt.example.lan/ubuntu noble main\n")  # the operator's, since
    teardown = {k: params[k] for k in ("APT_DIR", "STAGED_CERTS_D", "STAGED_SNAPS")}
    result = site.on_host("bash", "-c", compose("mirrors-teardown.sh", teardown))
    assert result.returncode == 0, result.stderr
    assert (apt / "sources.list").read_text() == "deb http://apt.example.lan/ubuntu noble main\n"
    assert (apt / "sources.list.hybrid-ai-off").exists() and "both kept" in result.stderr + result.stdout
    assert (apt / "sources.list.d/ubuntu.sources").read_text().startswith("Types: deb")
    assert not (apt / "sources.list.d/hybrid-ai-mirrors.list").exists() and not certs.exists()


@pytest.mark.parametrize(("case", "over", "named"), [
    ("snap-file", {"SNAPS": "snapd_21759 core20_2379 microk8s_7500"}, f"snap file microk8s_7500.snap (on {MIRROR_HTTP}/snaps)"),
    ("snapd-file", {"SNAPS": "snapd_21800 core20_2379 microk8s_7394"}, f"snap file snapd_21800.snap (on {MIRROR_HTTP}/snaps)"),
    ("snap-assertion", {"SNAPS": "snapd_21759 core20_2379 microk8s_7600"}, f"snap assertion of revision 7600 in microk8s_7600.assert (on {MIRROR_HTTP}/snaps)"),
    ("snap-digest", {"SNAP_SHA3_384": f"microk8s_7394={'0' * 96}"},  # not the file the lock pins (another, validly signed revision)
     f"snap file microk8s_7394.snap with sha3-384 {'0' * 96} (on {MIRROR_HTTP}/snaps: its file has sha3-384 "),
    ("image", {"IMAGES": f"{IMAGE} ghcr.io/example/ocr-engine:2.1.0"}, f"image ghcr.io/example/ocr-engine:2.1.0 (on {REGISTRY}"),
    ("apt-package", {"APT_PACKAGES": "standin-tool standin-absent"}, f"apt package standin-absent (on {MIRROR_HTTP}/ubuntu)"),
    ("dependency", {"APT_PACKAGES": "standin-broken"}, "Depends: standin-nowhere but it is not installable"),
    ("nvidia-version", {"NVIDIA_PACKAGES": "standin-toolkit=2.0"}, f"apt package standin-toolkit=2.0 (on {MIRROR_HTTP}/nvidia)"),
], ids=lambda v: v if isinstance(v, str) and "/" not in v and " " not in v else "")
def test_one_missing_artifact_fails_naming_it_with_nothing_changed(site: AirgapSite, tmp_path: Path, case: str, over: dict[str, str], named: str) -> None:
    params = _params(site, tmp_path, **over)
    result = _mirrors(site, params, _secrets(site))
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(error) == 1 and named in error[0] and "nothing was changed" in error[0], result.stderr
    apt = Path(params["APT_DIR"])
    assert sorted(p.name for p in apt.rglob("*")) == ["sources.list", "sources.list.d"]
    assert not Path(params["STAGED_CERTS_D"]).exists() and not Path(params["STAGED_SNAPS"]).exists()


def test_a_third_party_apt_source_fails_the_preflight_naming_it_with_nothing_changed(site: AirgapSite, tmp_path: Path) -> None:
    params = _params(site, tmp_path)
    apt = Path(params["APT_DIR"])
    cuda = apt / "sources.list.d/cuda-ubuntu2404-x86_64.list"
    cuda.write_text("deb https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/ /\n")
    result = _mirrors(site, params, _secrets(site))
    assert result.returncode == 1
    assert f"no other apt source: {cuda}" in result.stderr
    assert (apt / "sources.list").exists() and not (apt / "sources.list.d/hybrid-ai-mirrors.list").exists()
    assert not Path(params["STAGED_CERTS_D"]).exists()
    cuda.unlink()
    assert _mirrors(site, params, _secrets(site)).returncode == 0


def test_wrong_registry_credentials_fail_the_preflight(site: AirgapSite, tmp_path: Path) -> None:
    result = _mirrors(site, _params(site, tmp_path), _secrets(site, "mirror-user:wrong"))
    assert result.returncode == 1
    assert f"registry mirror {REGISTRY} for ghcr.io (its /v2/ answered 401, not 200)" in result.stderr
    assert "wrong" not in result.stderr


def test_containerd_pulls_through_the_written_hosts_toml(site: AirgapSite, resolver: Path, tmp_path: Path) -> None:
    """containerd's own resolver reads the hosts.toml the step wrote (mirror as the only server, CA,
    credentials header; with and without a path prefix) and fetches each manifest from the mirror."""
    params = _params(site, tmp_path)
    assert _mirrors(site, params, _secrets(site)).returncode == 0
    for image in (IMAGE, "docker.io/library/standin:1.0"):
        pulled = site.on_host(str(resolver), params["STAGED_CERTS_D"], image)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.split()[1] == "application/vnd.oci.image.manifest.v1+json"
    absent = site.on_host(str(resolver), params["STAGED_CERTS_D"], "ghcr.io/example/ocr-engine:2.1.0")
    assert absent.returncode == 1 and "not found" in absent.stderr, absent.stderr
    # Without the step's hosts.toml containerd goes to the upstream, which this host cannot reach.
    upstream = site.on_host(str(resolver), str(tmp_path / "no-hosts"), IMAGE)
    assert upstream.returncode == 1 and "203.0.113" not in upstream.stderr, upstream.stderr


def test_an_image_missing_under_its_prefix_is_not_taken_from_the_registry_root(site: AirgapSite, resolver: Path, tmp_path: Path) -> None:
    """containerd tries `server` last: with the registry's root there, an image missing under
    /ghcr.io/ would resolve to whatever the root holds under that name (another upstream's)."""
    params = _params(site, tmp_path)
    assert _mirrors(site, params, _secrets(site)).returncode == 0
    site.push("example/shadow-api", "3.0")  # at the registry's root, where docker.io's images live
    shadowed = site.on_host(str(resolver), params["STAGED_CERTS_D"], "ghcr.io/example/shadow-api:3.0")
    assert shadowed.returncode == 1 and "not found" in shadowed.stderr, shadowed.stdout + shadowed.stderr


def test_a_site_credential_on_a_read_only_registry_pulls_and_cannot_push(site: AirgapSite, tmp_path: Path) -> None:
    """docs/airgap.md, "Registry credentials": htpasswd gives every user push, so the site's nodes
    pull from an instance of Debian's docker-registry in read-only mode (`storage.maintenance.readonly`)
    on the loader's storage (the lab's port 5000). The host's preflight passes with it, and no push
    goes through that instance, with the site's credential or the loader's: the tag keeps its digest."""
    manifest = f"https://{MIRROR}:5000/v2/ghcr.io/example/receipt-api/manifests/1.4.2"
    head = ("curl", "-fsS", "--cacert", str(site.root / "ca.crt"), "-u", CREDENTIALS, "-I", "-H", "Accept: application/vnd.oci.image.manifest.v1+json")
    before = site.on_host(*head, manifest)
    assert before.returncode == 0, before.stderr
    result = _mirrors(site, _params(site, tmp_path, REGISTRIES=f"ghcr.io={REGISTRY}", IMAGES=IMAGE), _secrets(site))
    assert result.returncode == 0, result.stderr
    for credentials in (CREDENTIALS, LOADER):
        pushed = site.on_host(sys.executable, "-m", "tests.support.oci_push", f"https://{MIRROR}:5000/v2", "ghcr.io/example/receipt-api",
                              "1.4.2", str(site.root / "ca.crt"), credentials, "a replaced image")
        assert pushed.returncode != 0 and "405" in pushed.stderr, pushed.stderr
    after = site.on_host(*head, manifest)
    digest = [line for line in before.stdout.splitlines() if line.lower().startswith("docker-content-digest")]
    assert digest and digest == [line for line in after.stdout.splitlines() if line.lower().startswith("docker-content-digest")]


def test_a_kernel_of_another_flavour_than_listed_fails_the_preflight_naming_its_modules(site: AirgapSite, tmp_path: Path) -> None:
    """The driver's signed modules were listed for `generic`; this host runs the HWE kernel
    (dpkg's own database says so, read by the real dpkg-query): the preflight names the package
    ubuntu-drivers would install here and the key to set, with nothing changed."""
    hwe = {**SERVER_KERNEL, "linux-image-generic-hwe-24.04": "linux-image-6.11.0-19-generic", "linux-image-6.11.0-19-generic": ""}
    env = {**os.environ, "DPKG_ADMINDIR": str(admindir(tmp_path / "dpkg", hwe))}
    params = _params(site, tmp_path, DRIVER_BRANCH="550", KERNEL_FLAVOUR="generic")
    before = sorted(p.name for p in Path(params["APT_DIR"]).rglob("*"))
    result = site.on_host("bash", "-c", compose("mirrors.sh", params), stdin=_secrets(site), env=env)
    assert result.returncode == 1
    assert ("linux-modules-nvidia-550-generic-hwe-24.04 for this host's kernel (flavour generic-hwe-24.04; nvidia.kernelFlavour is "
            "generic): set kernelFlavour: generic-hwe-24.04 on ws-1") in result.stderr, result.stderr
    assert sorted(p.name for p in Path(params["APT_DIR"]).rglob("*")) == before
    # The flavour listed (on a GA kernel): the preflight passes.
    (tmp_path / "ga").mkdir()
    env["DPKG_ADMINDIR"] = str(admindir(tmp_path / "dpkg-ga", SERVER_KERNEL))
    result = site.on_host("bash", "-c", compose("mirrors.sh", _params(site, tmp_path / "ga", DRIVER_BRANCH="550", KERNEL_FLAVOUR="generic")),
                          stdin=_secrets(site), env=env)
    assert result.returncode == 0, result.stderr


def test_a_host_with_no_time_daemon_needs_chrony_on_the_mirror(site: AirgapSite, tmp_path: Path) -> None:
    """No systemd-timesyncd to start and no time daemon running: base-bootstrap.sh will install
    chrony, so the preflight asks the mirror for it (the stand-in archive has none), by the same
    `needs_chrony`; with timesyncd there it does not. systemctl is a stand-in answering as systemd
    does: `is-active` 3 for a unit not active, `list-unit-files <unit>` 0 when the unit file
    exists, 1 when not."""
    def run(name: str, timesyncd: bool) -> str:
        (tmp_path / name / "bin").mkdir(parents=True)
        stub = tmp_path / name / "bin" / "systemctl"
        stub.write_text(f"#!/bin/sh\ncase $1 in is-active) exit 3 ;; list-unit-files) exit {0 if timesyncd else 1} ;; esac\nexit 1\n")
        stub.chmod(0o755)
        env = {**os.environ, "PATH": f"{stub.parent}:{os.environ['PATH']}"}
        result = site.on_host("bash", "-c", compose("mirrors.sh", _params(site, tmp_path / name)), stdin=_secrets(site), env=env)
        return result.stderr if result.returncode else ""
    # (Named by apt's own resolution: `apt-cache show` also answers for a name the host's dpkg
    # database only mentions.)
    assert "Package 'chrony' has no installation candidate" in run("bare", timesyncd=False)
    assert run("timesyncd", timesyncd=True) == ""
