"""Stand-in "upstream" sources for `make mirror LAYOUT=...` in the lab: a network namespace with
only its loopback (no route anywhere else), running a real registry (Debian's docker-registry,
plain HTTP) holding a STAND-IN image for every image the stack names, and a plain HTTP server
with a STAND-IN Ubuntu archive and NVIDIA flat repository (tiny packages named as the real ones,
each saying it is a stand-in, signed with a stand-in "upstream" key), stand-in charts (the lab's
chart mirror's stand-in charts), a stand-in Gateway API bundle and stand-in snap files. `sources` maps
each upstream to them, as an operator's `SOURCES=` would."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from stacks.charts import GATEWAY_API_VERSION, pinned
from tests.support import chart_mirror
from tests.support.airgap_site import deb, release, run
from tests.support.helpers import PROJECT, stop_processes

REGISTRY, FILES = "127.0.0.1:5001", "http://127.0.0.1:8080"
UBUNTU_PACKAGES = {  # name: depends (the base packages' stand-ins, one with a dependency)
    "wireguard-tools": "standin-libwg", "standin-libwg": "", "iproute2": "", "iptables": "", "ca-certificates": "", "curl": "",
    "nftables": "", "standin-unrelated": "",  # in the archive, needed by nothing: not carried
    # ws-1's driver branch 550, as ubuntu-drivers installs it: the driver, the signed modules for a
    # generic kernel and, their dependency, the modules of that kernel's ABI.
    "nvidia-driver-550": "", "linux-modules-nvidia-550-generic": "linux-modules-nvidia-550-6.8.0-45-generic",
    "linux-modules-nvidia-550-6.8.0-45-generic": "",
}
TOOLKIT = {"libnvidia-container1": "", "libnvidia-container-tools": "libnvidia-container1",
           "nvidia-container-toolkit-base": "", "nvidia-container-toolkit": "nvidia-container-toolkit-base"}


@dataclass
class Upstream:
    root: Path
    ns: str = field(default_factory=lambda: f"hai-up{os.getpid()}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def www(self) -> Path:
        return self.root / "www"

    @property
    def keyring(self) -> Path:
        return self.root / "upstream-key.asc"

    def sources(self) -> list[str]:
        registries = ("docker.io", "ghcr.io", "nvcr.io", "quay.io", "registry.k8s.io")
        return [f"{r}=http://{REGISTRY}/{r}" for r in registries] + [
            f"archive.ubuntu.com/ubuntu={FILES}/ubuntu", f"nvidia.github.io/libnvidia-container/stable/deb={FILES}/nvidia",
            f"traefik.github.io/charts={FILES}/charts", f"nvidia.github.io/k8s-device-plugin={FILES}/charts",
            f"charts.jetstack.io={FILES}/charts", f"api.snapcraft.io/snaps={FILES}/snaps",
            f"github.com/kubernetes-sigs/gateway-api/releases/download={FILES}/gateway-api"]

    def __enter__(self) -> Upstream:
        try:
            run("ip", "netns", "add", self.ns)
            run("ip", "-n", self.ns, "link", "set", "lo", "up")
            self._files()
            (self.root / "registry.yml").write_text(
                f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {self.root / 'registry-data'}}}}}\nhttp: {{addr: {REGISTRY}}}\n")
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, "docker-registry", "serve", str(self.root / "registry.yml")],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, sys.executable, "-m", "http.server", "8080",
                                                "--bind", "127.0.0.1", "--directory", str(self.www)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self._wait(f"http://{REGISTRY}/v2/")
            self._wait(f"{FILES}/")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        stop_processes(self.procs)
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)

    def _wait(self, url: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.inside("curl", "-fs", "-o", "/dev/null", "--max-time", "2", url).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the stand-in upstream did not answer on {url}")

    def inside(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True, timeout=900, check=False,
                              cwd=PROJECT, env={**os.environ, **(env or {})})

    def push(self, images: list[str]) -> None:
        """A stand-in image at each `registry/repository:tag`, under the registry's own path."""
        script = ("import sys\nfrom tests.support.oci_push import push\nfor ref in sys.argv[1:]:\n"
                  f"    print(ref, push('http://{REGISTRY}/v2', *ref.rsplit(':', 1)))\n")
        result = self.inside(sys.executable, "-c", script, *images)  # one process: the imports once
        assert result.returncode == 0, result.stderr
        self.digests.update(tuple(line.split(maxsplit=1)) for line in result.stdout.splitlines())  # type: ignore[misc]

    def _files(self) -> None:
        gnupg = self.root / "upstream-gnupg"
        gnupg.mkdir(mode=0o700)
        run("gpg", "--homedir", str(gnupg), "--batch", "--passphrase", "", "--quick-gen-key", "hybrid-ai stand-in upstream key", "ed25519", "sign", "never")
        self.keyring.write_text(run("gpg", "--homedir", str(gnupg), "--armor", "--export").stdout)
        arch = run("dpkg", "--print-architecture").stdout.strip()
        ubuntu = self.www / "ubuntu"
        (ubuntu / "pool" / "main").mkdir(parents=True)
        for name, depends in UBUNTU_PACKAGES.items():
            deb(ubuntu / "pool" / "main", name, depends)
        for suite in ("noble", "noble-updates", "noble-security"):
            index = ubuntu / "dists" / suite / "main" / f"binary-{arch}"
            index.mkdir(parents=True)
            (index / "Packages").write_text(run("apt-ftparchive", "packages", "pool", cwd=ubuntu).stdout if suite == "noble" else "")
            release(ubuntu / "dists" / suite, gnupg, "-o", f"APT::FTPArchive::Release::Suite={suite}", "-o", "APT::FTPArchive::Release::Components=main",
                    "-o", f"APT::FTPArchive::Release::Architectures={arch}")
        flat = self.www / "nvidia" / arch
        flat.mkdir(parents=True)
        for name, depends in TOOLKIT.items():
            deb(flat, name, depends, "1.20.0-1")
        (flat / "Packages").write_text(run("apt-ftparchive", "packages", ".", cwd=flat).stdout)
        release(flat, gnupg)
        run("gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent")
        shutil.rmtree(ubuntu / "pool" / "build")
        shutil.rmtree(self.www / "nvidia" / "build")
        snaps = self.www / "snaps"
        snaps.mkdir()
        for name in ("snapd_21759", "core20_2379", "microk8s_7394"):
            (snaps / f"{name}.snap").write_bytes(b"hybrid-ai stand-in snap file " + name.encode())
            (snaps / f"{name}.assert").write_text(f"type: snap-revision\nsnap-revision: {name.rsplit('_', 1)[1]}\n(stand-in assertion)\n")
        charts = self.www / "charts"
        charts.mkdir()
        entries = {}
        for name in ("traefik", "nvidia-device-plugin"):  # what the airgap stack installs (no CRDs)
            file, data = chart_mirror.stand_in_chart(name, PROJECT / ".engine" / "crds")
            (charts / file).write_bytes(data)
            spec = pinned(name)
            entries[spec.chart] = [{"apiVersion": "v2", "name": spec.chart, "version": spec.version, "urls": [f"{FILES}/charts/{file}"],
                                    "digest": hashlib.sha256(data).hexdigest(), "annotations": {chart_mirror.STAND_IN: "true"}}]
        (charts / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": entries}))
        bundle = self.www / "gateway-api" / GATEWAY_API_VERSION / "standard-install.yaml"
        bundle.parent.mkdir(parents=True)
        bundle.write_text("# STAND-IN for the Gateway API bundle in the hybrid-ai test lab (its bytes are carried as they are)\n")
