"""An airgapped site in network namespaces: a host with no default route, only a link to a
mirror namespace running a real OCI registry (Debian's docker-registry: TLS from a private CA,
htpasswd; a read-only instance for the hosts, a writable one for the loader) and a plain HTTP server for an apt repository (stand-in packages, signed with a
stand-in key by apt-ftparchive and gpg), a flat NVIDIA-style repository and snap files
(stand-ins). Everything the host runs is the real tool (apt-get, curl); the namespace is what
keeps it from any address but the mirror's."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.helpers import PROJECT, stop_processes

with warnings.catch_warnings():  # bcrypt for docker-registry's htpasswd (libxcrypt); deprecated, still in 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

MIRROR, HOST = "203.0.113.1", "203.0.113.2"
CODENAME = "noble"  # what the stand-in /etc/os-release says
CREDENTIALS = "mirror-user:stand-in-password"
"""The site's pull credential, on the read-only instance (port 5000) the hosts use."""
ROTATED = "mirror-user2:rotated-stand-in-password"
"""Another pull credential of the site (a rotation's new one)."""
LOADER = "mirror-loader:loader-stand-in-password"
"""Whoever carries the images in: it pushes on the writable instance (port 5002), on the same storage."""
WRITABLE = f"https://{MIRROR}:5002"
SNAPS = "snapd_21759 core20_2379 microk8s_7394"
"""The snap files the mirror serves (stand-ins), as the program names them: snapd, the base, MicroK8s."""
REQUIREMENTS = ("docker-registry", "apt-ftparchive", "gpg", "dpkg-deb", "openssl", "curl", "apt-get")


def missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    absent = [t for t in REQUIREMENTS if shutil.which(t) is None]
    return f"missing {', '.join(absent)}" if absent else None


def htpasswd_line(credentials: str) -> str:
    """`user:<bcrypt>` for docker-registry's htpasswd, bcrypt at its lowest cost: the registry
    checks it on every request of a push or a preflight."""
    user, password = credentials.split(":", 1)
    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n"


def run(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, **kw)


def deb(pool: Path, name: str, depends: str = "", version: str = "1.0") -> None:
    """A stand-in package (no contents) into `pool`."""
    root = pool.parent / "build" / name
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: hybrid-ai tests <tests@example.com>\n"
        + (f"Depends: {depends}\n" if depends else "") + "Description: hybrid-ai stand-in package (no contents)\n")
    run("dpkg-deb", "--build", "--root-owner-group", str(root), str(pool / f"{name}_{version}_all.deb"))


def release(folder: Path, gnupg: Path, *opts: str) -> None:
    release = run("apt-ftparchive", *opts, "release", ".", cwd=folder).stdout
    (folder / "Release").write_text(release)
    run("gpg", "--homedir", str(gnupg), "--batch", "--yes", "--clearsign", "-o", str(folder / "InRelease"), str(folder / "Release"))


@dataclass
class AirgapSite:
    root: Path
    ns_host: str = field(default_factory=lambda: f"hai-ag-h{os.getpid()}")
    ns_mirror: str = field(default_factory=lambda: f"hai-ag-m{os.getpid()}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    key: str = ""

    @property
    def files(self) -> Path:
        return self.root / "www"

    def __enter__(self) -> AirgapSite:
        try:
            self._network()
            self._apt()
            self._snaps()
            self._registry()
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns_mirror, sys.executable, "-m", "http.server", "8080",
                                                "--bind", MIRROR, "--directory", str(self.files)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self._wait(f"http://{MIRROR}:8080/")
            for port in (5000, 5002):
                self._wait(f"https://{MIRROR}:{port}/v2/", "--cacert", str(self.root / "ca.crt"), ok=("401", "200"))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        stop_processes(self.procs)
        for ns in (self.ns_host, self.ns_mirror):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)

    def _network(self) -> None:
        for ns in (self.ns_host, self.ns_mirror):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", f"agh{os.getpid()}", "netns", self.ns_host, "type", "veth", "peer", "name", f"agm{os.getpid()}", "netns", self.ns_mirror)
        for ns, dev, addr in ((self.ns_host, f"agh{os.getpid()}", HOST), (self.ns_mirror, f"agm{os.getpid()}", MIRROR)):
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")

    def _apt(self) -> None:
        gnupg = self.root / "gnupg"
        gnupg.mkdir(mode=0o700)
        run("gpg", "--homedir", str(gnupg), "--batch", "--passphrase", "", "--quick-gen-key", "hybrid-ai stand-in mirror key", "ed25519", "sign", "never")
        self.key = run("gpg", "--homedir", str(gnupg), "--armor", "--export").stdout
        ubuntu = self.files / "ubuntu"
        pool = ubuntu / "pool" / "main"
        pool.mkdir(parents=True)
        deb(pool, "standin-tool", "standin-lib")
        deb(pool, "standin-lib")
        deb(pool, "standin-broken", "standin-nowhere")  # a dependency the mirror lacks
        arch = run("dpkg", "--print-architecture").stdout.strip()
        for suite in (CODENAME, f"{CODENAME}-updates", f"{CODENAME}-security"):
            index = ubuntu / "dists" / suite / "main" / f"binary-{arch}"
            index.mkdir(parents=True)
            (index / "Packages").write_text(run("apt-ftparchive", "packages", "pool", cwd=ubuntu).stdout if suite == CODENAME else "")
            release(ubuntu / "dists" / suite, gnupg, "-o", f"APT::FTPArchive::Release::Suite={suite}", "-o", f"APT::FTPArchive::Release::Codename={suite}",
                     "-o", "APT::FTPArchive::Release::Components=main", "-o", f"APT::FTPArchive::Release::Architectures={arch}")
        flat = self.files / "nvidia" / arch
        flat.mkdir(parents=True)
        deb(flat, "standin-toolkit")
        (flat / "Packages").write_text(run("apt-ftparchive", "packages", ".", cwd=flat).stdout)
        release(flat, gnupg)
        # gpg started an agent for the signing key: stop it, or it outlives the test.
        run("gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent")
        shutil.rmtree(self.files / "ubuntu" / "pool" / "build")
        shutil.rmtree(self.files / "nvidia" / "build")

    def snap_sha3(self, snaps: str, over: str = "") -> str:
        """SNAP_SHA3_384 as the program passes it, of the files this mirror serves; `over`'s pins replace theirs."""
        served = [s for s in snaps.split() if (self.files / "snaps" / f"{s}.snap").exists()]
        pins = {s: hashlib.sha3_384((self.files / "snaps" / f"{s}.snap").read_bytes()).hexdigest() for s in served}
        return " ".join(f"{s}={d}" for s, d in (pins | dict(p.split("=", 1) for p in over.split())).items())

    def _snaps(self) -> None:
        snaps = self.files / "snaps"
        snaps.mkdir()
        for name in SNAPS.split():
            (snaps / f"{name}.snap").write_bytes(b"hybrid-ai stand-in snap file " + name.encode())
            (snaps / f"{name}.assert").write_text(f"type: snap-revision\nsnap-revision: {name.rsplit('_', 1)[1]}\n(stand-in assertion)\n")
        # A pair whose assertion is of another revision than its name says.
        (snaps / "microk8s_7600.snap").write_bytes(b"hybrid-ai stand-in snap file microk8s_7600")
        (snaps / "microk8s_7600.assert").write_text("type: snap-revision\nsnap-revision: 7394\n(stand-in assertion)\n")

    def _registry(self) -> None:
        r = self.root
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=hybrid-ai stand-in mirror CA", "-keyout", str(r / "ca.key"), "-out", str(r / "ca.crt"))
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={MIRROR}",
            "-keyout", str(r / "registry.key"), "-out", str(r / "registry.csr"))
        (r / "san.ext").write_text(f"subjectAltName=IP:{MIRROR}\n")
        run("openssl", "x509", "-req", "-in", str(r / "registry.csr"), "-CA", str(r / "ca.crt"), "-CAkey", str(r / "ca.key"),
            "-CAcreateserial", "-days", "1", "-extfile", str(r / "san.ext"), "-out", str(r / "registry.crt"))
        # docs/airgap.md, "Registry credentials": the hosts pull from a read-only instance
        # (`storage.maintenance.readonly`), the loader pushes on a writable one, both on one storage.
        (r / "htpasswd").write_text(htpasswd_line(CREDENTIALS) + htpasswd_line(ROTATED) + htpasswd_line(LOADER))
        (r / "htpasswd-loader").write_text(htpasswd_line(LOADER))
        for name, port, readonly, users in (("registry", 5000, "true", "htpasswd"), ("registry-loader", 5002, "false", "htpasswd-loader")):
            (r / f"{name}.yml").write_text(f"""version: 0.1
storage:
  filesystem: {{rootdirectory: {r / 'registry-data'}}}
  maintenance: {{readonly: {{enabled: {readonly}}}}}
http:
  addr: {MIRROR}:{port}
  tls: {{certificate: {r / 'registry.crt'}, key: {r / 'registry.key'}}}
auth:
  htpasswd: {{realm: hybrid-ai-lab, path: {r / users}}}
""")
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns_mirror, "docker-registry", "serve", str(r / f"{name}.yml")],
                                               stdout=subprocess.DEVNULL, stderr=open(r / f"{name}.log", "wb")))  # noqa: SIM115

    def _wait(self, url: str, *opts: str, ok: tuple[str, ...] = ("200",)) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            code = self.on_host("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", *opts, url).stdout
            if code in ok:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the stand-in mirror did not answer on {url}")

    def serve_files_https(self, directory: Path, port: int = 8443) -> str:
        """An HTTPS `files` mirror of `directory` under the registry's private-CA certificate; its URL."""
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns_mirror, sys.executable, "-m", "tests.support.https_files", MIRROR,
                                            str(port), str(directory), str(self.root / "registry.crt"), str(self.root / "registry.key")],
                                           cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(f"https://{MIRROR}:{port}/", "--cacert", str(self.root / "ca.crt"))
        return f"https://{MIRROR}:{port}"

    def on_host(self, *argv: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns_host, *argv], capture_output=True, text=True, timeout=180, input=stdin,
                              check=False, cwd=PROJECT, env=env)

    def push(self, repo: str, tag: str) -> str:
        result = self.on_host(sys.executable, "-m", "tests.support.oci_push", f"{WRITABLE}/v2", repo, tag, str(self.root / "ca.crt"), LOADER)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

