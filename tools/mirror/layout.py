"""`make mirror LAYOUT=DIR`: every artifact of a stack's mirror manifest fetched into DIR, laid
out to carry to the site (docs/airgap.md), on a machine that reaches the sources:

- images/<registry>/<repository>/<tag>/: one OCI image layout per image (`crane pull --format=oci`,
  by digest where the lock pins it, every platform), listed in images/images.txt as
  `<directory> <reference>` lines; `crane push <directory> <site registry>/<reference>` loads it;
- charts/: each chart's archive from its upstream repository (its index's digest checked) and an
  index.yaml as `helm repo index` writes it (the upstream entry, its URL made relative);
- gateway-api/<version>/standard-install.yaml: the bundle;
- snaps/: `<snap>_<rev>.snap` and `.assert` (`snap download`, or a `snaps` source's files);
- apt/ubuntu/ (an archive: pool/ and dists/<release>{,-updates,-security}) and apt/nvidia/<arch>/
  (a flat repository): the hosts' packages with their whole dependency closure, as apt resolves
  it against the upstream repositories, indexed by apt-ftparchive and signed with `--sign-key`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from stacks.charts import GATEWAY_API_VERSION
from tools.mirror.sources_map import crane, locate

UBUNTU = "http://archive.ubuntu.com/ubuntu"
NVIDIA = "https://nvidia.github.io/libnvidia-container/stable/deb"
SNAPS = "https://api.snapcraft.io/snaps"
"""Where snaps come from: a source for this prefix serves `<snap>_<rev>.snap/.assert` files;
without one, `snap download` fetches them from the Snap Store."""


def _get(url: str, to: Path | None = None) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        data: bytes = response.read()
    if to is not None:
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_bytes(data)
    return data


def images(refs: list[str], out: Path, sources: Mapping[str, str]) -> None:
    lines = []
    for ref in refs:
        repo, _, digest = ref.partition("@")
        name, tag = repo.rsplit(":", 1) if ":" in repo.rsplit("/", 1)[-1] else (repo, digest.replace(":", "-"))
        where = out / "images" / name / tag
        if where.exists():
            shutil.rmtree(where)
        crane("pull", "--format=oci", str(where), ref=locate(f"{name}@{digest}" if digest else ref, sources))
        lines.append(f"{where.relative_to(out)} {ref}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "images" / "images.txt").write_text("".join(f"{line}\n" for line in lines))


def charts(pins: list[dict[str, Any]], out: Path, sources: Mapping[str, str]) -> None:
    entries: dict[str, list[dict[str, Any]]] = {}
    for c in pins:
        base = locate(str(c["upstream"]), sources)
        index = yaml.safe_load(_get(f"{base}/index.yaml"))
        entry = next((e for e in index.get("entries", {}).get(c["chart"], []) if str(e.get("version")) == str(c["version"])), None)
        if entry is None:
            raise RuntimeError(f"chart {c['chart']} {c['version']} is not in {base}/index.yaml")
        archive = f"{c['chart']}-{c['version']}.tgz"
        data = _get(locate(urllib.parse.urljoin(base + "/", entry["urls"][0]), sources), out / "charts" / archive)
        digest = hashlib.sha256(data).hexdigest()
        if entry.get("digest") and entry["digest"] != digest:
            raise RuntimeError(f"chart {archive}: its digest is not the one {base}/index.yaml gives")
        entries[c["chart"]] = [{**entry, "urls": [archive], "digest": digest}]
    (out / "charts").mkdir(parents=True, exist_ok=True)
    (out / "charts" / "index.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "entries": entries}, sort_keys=True))


def snaps(files: list[str], out: Path, sources: Mapping[str, str]) -> None:
    """`<snap>_<rev>.snap` and `.assert` of each name (`<snap>_<rev>`, with or without an extension)."""
    target = out / "snaps"
    target.mkdir(parents=True, exist_ok=True)
    base = locate(SNAPS, sources)
    for stem in sorted({f.removesuffix(".snap").removesuffix(".assert") for f in files}):
        if base != SNAPS:
            for ext in ("snap", "assert"):
                _get(f"{base}/{stem}.{ext}", target / f"{stem}.{ext}")
            continue
        name, revision = stem.rsplit("_", 1)
        subprocess.run(["snap", "download", name, f"--revision={revision}", f"--target-directory={target}"], check=True, timeout=1800)


VALID_DAYS = 30
"""How long a laid-out apt Release stays valid (`Valid-Until`): apt refuses an older copy replayed
on the LAN after that, so the mirror is re-signed (laid out again) before it (docs/airgap.md)."""


def _sign(folder: Path, key: str | None, *opts: str, valid_days: int = VALID_DAYS) -> None:
    # apt-ftparchive writes `Valid-Until` from ValidTime (seconds after `Date`).
    release = subprocess.run(["apt-ftparchive", "-o", f"APT::FTPArchive::Release::ValidTime={valid_days * 86400}", *opts, "release", "."],
                             cwd=folder, check=True, capture_output=True, text=True).stdout
    (folder / "Release").write_text(release)
    if key:
        subprocess.run(["gpg", "--batch", "--yes", "--local-user", key, "--clearsign", "-o", str(folder / "InRelease"), str(folder / "Release")], check=True)


def apt(packages: list[str], out: Path, sources: Mapping[str, str], release: str, keyring: Path | None, key: str | None,
        valid_days: int = VALID_DAYS) -> None:
    """The packages and their dependency closure (apt resolves it against an empty system)."""
    arch = subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True, text=True).stdout.strip()
    ubuntu, nvidia = locate(UBUNTU, sources), locate(NVIDIA, sources)
    signed = f"[signed-by={keyring}] " if keyring else ""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for d in ("lists/partial", "archives/partial"):
            (work / d).mkdir(parents=True)
        (work / "status").write_text("")
        (work / "sources.list").write_text(f"deb {signed}{ubuntu} {release} main restricted universe multiverse\n"
                                           f"deb {signed}{ubuntu} {release}-updates main restricted universe multiverse\n"
                                           f"deb {signed}{ubuntu} {release}-security main restricted universe multiverse\n"
                                           + (f"deb {signed}{nvidia}/{arch} /\n" if any("=" in p for p in packages) else ""))
        opts = ["-o", f"Dir::Etc::SourceList={work}/sources.list", "-o", "Dir::Etc::SourceParts=/dev/null", "-o", f"Dir::State::Lists={work}/lists",
                "-o", f"Dir::State::status={work}/status", "-o", f"Dir::Cache::archives={work}/archives", "-o", "Dir::Cache::pkgcache=",
                "-o", "Dir::Cache::srcpkgcache=", "-o", "APT::Sandbox::User=root", "-o", f"APT::Architecture={arch}"]
        subprocess.run(["apt-get", *opts, "-q", "update"], check=True, capture_output=True, timeout=900)
        uris = subprocess.run(["apt-get", *opts, "-qq", "--print-uris", "--no-install-recommends", "install", *packages],
                              check=True, capture_output=True, text=True, timeout=900).stdout
        subprocess.run(["apt-get", *opts, "-q", "-y", "--download-only", "--no-install-recommends", "install", *packages],
                       check=True, capture_output=True, timeout=3600)
        pool, flat = out / "apt" / "ubuntu" / "pool" / "main", out / "apt" / "nvidia" / arch
        for line in uris.splitlines():
            url, name = line.split()[0].strip("'"), line.split()[1]
            target = flat if url.startswith(nvidia) else pool
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / "archives" / name, target / name)
    root = out / "apt" / "ubuntu"
    pool.mkdir(parents=True, exist_ok=True)
    for suite in (release, f"{release}-updates", f"{release}-security"):
        index = root / "dists" / suite / "main" / f"binary-{arch}"
        index.mkdir(parents=True, exist_ok=True)
        listed = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=root, check=True, capture_output=True, text=True).stdout
        (index / "Packages").write_text(listed if suite == release else "")
        _sign(root / "dists" / suite, key, "-o", f"APT::FTPArchive::Release::Suite={suite}", "-o", f"APT::FTPArchive::Release::Codename={suite}",
              "-o", "APT::FTPArchive::Release::Components=main", "-o", f"APT::FTPArchive::Release::Architectures={arch}", valid_days=valid_days)
    if flat.exists():
        (flat / "Packages").write_text(subprocess.run(["apt-ftparchive", "packages", "."], cwd=flat, check=True, capture_output=True, text=True).stdout)
        _sign(flat, key, valid_days=valid_days)


def lay_out(doc: dict[str, Any], out: Path, sources: Mapping[str, str], release: str,
            keyring: Path | None = None, sign_key: str | None = None, valid_days: int = VALID_DAYS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    images(doc["images"], out, sources)
    charts(doc["charts"], out, sources)
    for bundle in doc["bundles"]:
        _get(locate(bundle["upstream"], sources), out / "gateway-api" / GATEWAY_API_VERSION / "standard-install.yaml")
    snaps(sorted({s[k] for h in doc["hosts"].values() for s in h["snaps"] for k in ("file", "assertion") if k in s}), out, sources)
    packages = sorted({p for h in doc["hosts"].values() for p in h["apt"] if not p.startswith("(")})
    if packages:
        apt(packages, out, sources, release, keyring, sign_key, valid_days)
