"""`hybrid-ai:mirrors` and a site's `mirrors`: where hosts install from instead of the internet.

A site's `mirrors` replaces the stack-wide one for that site's hosts as a whole (an office may
have its own mirror on its LAN, a cloud site may use the internet: `mirrors: {}`). Keys are
given in config, never fetched; registry CAs and credentials are secret config keys, named here.
Charts and the Gateway API bundle have their own source settings (`docs/airgap.md`).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from stacks.config.types import ConfigKeyName, Schema, strict

# http(s)://host[:port][/path], plain path characters only: written into apt sources and hosts.toml.
MirrorUrl = Annotated[str, strict(
    r"https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*",
    "not a mirror URL; use http(s)://host[:port][/path] with letters, digits, '.', '_', '~', '-' in the path and no trailing '/' (e.g. 'http://mirror.lan/ubuntu')",
)]
ArmoredKey = Annotated[str, strict(
    r"-----BEGIN PGP PUBLIC KEY BLOCK-----\n[A-Za-z0-9+/=:., \n-]+\n-----END PGP PUBLIC KEY BLOCK-----\n?",
    "not an ASCII-armored OpenPGP public key; paste the whole block from `gpg --armor --export KEYID` "
    "('-----BEGIN PGP PUBLIC KEY BLOCK-----' ... '-----END PGP PUBLIC KEY BLOCK-----')",
)]
AptComponent = Annotated[str, strict(r"[a-z][a-z0-9-]{0,30}", "not an apt component; use e.g. 'main' or 'universe'")]
Registry = Annotated[str, strict(
    r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?",
    "not a registry host; use the host as images name it, e.g. 'docker.io', 'ghcr.io', 'registry.k8s.io'",
)]


class AptMirror(Schema):
    url: MirrorUrl = Field(description="The Ubuntu archive mirror, the equivalent of `http://archive.ubuntu.com/ubuntu` (it also serves the `-security` suite).")
    signed_by: ArmoredKey = Field(description="The mirror's signing key (ASCII-armored OpenPGP public key), written to `/etc/apt/keyrings/`; never fetched.")
    components: list[AptComponent] = Field(default=["main", "restricted", "universe", "multiverse"], min_length=1, description="Archive components the mirror serves.")


class NvidiaAptMirror(Schema):
    url: MirrorUrl = Field(description="Mirror of NVIDIA's container toolkit repository, the equivalent of `https://nvidia.github.io/libnvidia-container/stable/deb` (a flat repository per architecture under it).")
    signed_by: ArmoredKey = Field(description="NVIDIA's repository signing key (ASCII-armored), as published at nvidia.github.io/libnvidia-container/gpgkey; never fetched by a host.")


class SnapFiles(Schema):
    url: MirrorUrl = Field(description="Base URL holding `<snap>_<revision>.snap` and `<snap>_<revision>.assert` (from `snap download`) for snapd, MicroK8s' base snap and MicroK8s.")
    microk8s_revision: int = Field(ge=1, alias="microk8sRevision", description="The MicroK8s revision installed and held (`snap info microk8s` lists each channel's); it must belong to `cluster.channel`.")
    base: Literal["core20", "core22", "core24"] = Field(default="core20", description="MicroK8s' base snap (core20 for the 1.32 track, per its snapcraft.yaml).")
    base_revision: int = Field(ge=1, description="The base snap's revision (installed where the base is missing).")
    snapd_revision: int = Field(ge=1, description="The snapd snap's revision, installed first where the snapd snap is missing (else snapd would fetch it from the store as a prerequisite).")

    def files(self) -> list[str]:
        """`<snap>_<revision>` of each snap installed from files, in install order: snapd, the base, MicroK8s."""
        return [f"snapd_{self.snapd_revision}", f"{self.base}_{self.base_revision}", f"microk8s_{self.microk8s_revision}"]


class SnapStoreProxy(Schema):
    url: MirrorUrl = Field(description="The Snap Store Proxy's URL; its store assertion is acked from it (`/v2/auth/store/assertions`).")
    store_id: Annotated[str, strict(r"[A-Za-z0-9]{8,64}", "not a store ID; use the proxy's ID as `snap-proxy status` prints it")] = Field(
        description="The proxy's store ID, set as `snap set core proxy.store=<id>`.")


class RegistryMirror(Schema):
    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not url.startswith("https://"):
            raise ValueError("a registry mirror is reached over https:// only (over http images could be swapped on the LAN and "
                             "its credentials read); use https:// and `caConfig` for a private CA")
        return url

    upstream: Registry = Field(description="The registry images name, e.g. `docker.io` (also images without a registry), `ghcr.io`, `nvcr.io`.")
    url: MirrorUrl = Field(description="The mirror's OCI endpoint; with a path (`https://mirror.lan:5000/ghcr.io`) repositories live under it (containerd's `override_path`).")
    ca_config: ConfigKeyName | None = Field(default=None, description="Secret config key holding the mirror's private CA (PEM), when its certificate is not publicly trusted.")
    credentials_config: ConfigKeyName | None = Field(default=None, description="Secret config key holding `user:password` for the mirror (sent as basic auth by containerd).")


class Mirrors(Schema):
    apt: AptMirror | None = Field(default=None, description="The Ubuntu archive mirror; unset: the hosts' own apt sources.")
    nvidia_apt: NvidiaAptMirror | None = Field(default=None, description="The NVIDIA container toolkit repository mirror (GPU hosts).")
    snaps: SnapFiles | None = Field(default=None, description="MicroK8s from files on a mirror, never the Snap Store: acked, installed at the exact revision, refreshes held.")
    snap_store_proxy: SnapStoreProxy | None = Field(default=None, description="A Snap Store Proxy instead of the Snap Store (an alternative to `snaps`).")
    registries: list[RegistryMirror] = Field(default_factory=list, description="One mirror per upstream registry, written as MicroK8s' containerd `hosts.toml` with the mirror as the only server.")
    files: MirrorUrl | None = Field(default=None, description="Base URL for model files: a `tfServing` model's `source` is fetched from `<files>/<its file name>` (the mirrors of the sites with GPU hosts; those sites must agree).")
    files_ca_config: ConfigKeyName | None = Field(default=None, description="Secret config key holding the `files` mirror's private CA (PEM), when its certificate is not publicly trusted; the model fetcher and the GPU hosts' preflight trust it.")
    files_addresses: list[ipaddress.IPv4Address] = Field(default_factory=list, description="The `files` mirror's address(es) as the GPU hosts resolve its name: written as the fetcher pod's `hostAliases` (the pod otherwise asks cluster DNS, which runs on cloud nodes); required on an on-prem site with GPU nodes whose `files` names a host.")

    @model_validator(mode="after")
    def _one_snap_source(self) -> Mirrors:
        if self.snaps is not None and self.snap_store_proxy is not None:
            raise ValueError("set one of `snaps` (files from the mirror) or `snapStoreProxy`, not both")
        if self.files is not None and (not self.files.startswith("https://") or self.files.split("/")[2].partition(":")[2] not in ("", "443")):
            # TF-Serving's download NetworkPolicy lets the fetcher out on TCP 443 only.
            raise ValueError("files: model downloads go out on HTTPS (port 443) only; give an https:// base URL without another port")
        if self.files_ca_config is not None and self.files is None:
            raise ValueError("filesCaConfig: names the CA of the `files` mirror, but `files` is unset; set `files` or remove `filesCaConfig`")
        if self.files_addresses and self.files is None:
            raise ValueError("filesAddresses: gives the address of the `files` mirror, but `files` is unset; set `files` or remove `filesAddresses`")
        seen = [r.upstream for r in self.registries]
        if dupes := sorted({u for u in seen if seen.count(u) > 1}):
            raise ValueError(f"registries: {', '.join(dupes)} listed more than once; give each upstream one mirror")
        return self

    @property
    def empty(self) -> bool:
        return self == Mirrors()

    def model_source(self, url: str | None) -> str | None:
        """A model file's URL: from `files` when set (same file name), else as given."""
        if url is None or self.files is None:
            return url
        return f"{self.files}/{url.split('?', 1)[0].rstrip('/').rsplit('/', 1)[-1]}"

    def files_host(self) -> str | None:
        """The `files` mirror's host name (None without `files`)."""
        return self.files.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0] if self.files else None

    def registry_hosts(self) -> set[str]:
        """The mirrors' own host names (what a host may reach)."""
        urls = [m.url for m in (self.apt, self.nvidia_apt, self.snaps, self.snap_store_proxy) if m is not None]
        urls += [r.url for r in self.registries] + ([self.files] if self.files else [])
        return {u.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0] for u in urls}


def qualified(image: str) -> str:
    """The image with its registry (and Docker Hub's `library/`) spelled out, as registries store it."""
    registry = registry_of(image)
    name = image.removeprefix(registry + "/") if image.startswith(registry + "/") else image
    # Docker Hub's official images live under `library/`, also when named `docker.io/<name>`.
    return f"{registry}/{'library/' + name if registry == 'docker.io' and '/' not in name else name}"


def mirror_secrets(stack_wide: Mirrors, sites: list[tuple[str, Mirrors | None]]) -> list[tuple[str, str, str]]:
    """(config path, secret key, kind) of every registry CA and credential the mirrors name."""
    uses = []
    for path, m in [("mirrors", stack_wide), *((f"{p}.mirrors", m) for p, m in sites if m is not None)]:
        for j, r in enumerate(m.registries):
            if r.ca_config:
                uses.append((f"{path}.registries[{j}].caConfig", r.ca_config, "mirrorCa"))
            if r.credentials_config:
                uses.append((f"{path}.registries[{j}].credentialsConfig", r.credentials_config, "mirrorCredentials"))
        if m.files_ca_config:
            uses.append((f"{path}.filesCaConfig", m.files_ca_config, "mirrorCa"))
    return uses


def registry_of(image: str) -> str:
    """The registry an image reference names (Docker's rule: a first part with a '.' or ':', or
    'localhost', is a registry; anything else is on docker.io)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


__all__ = ["AptMirror", "Mirrors", "NvidiaAptMirror", "RegistryMirror", "SnapFiles", "SnapStoreProxy", "mirror_secrets", "registry_of"]
