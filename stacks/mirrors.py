"""What each host must find on its mirrors, and the bootstrap step that checks and uses them.

The step's parameters name every artifact the host needs from each mirror it has (apt packages,
snap files, images), so its preflight can fail naming the missing one before anything is
installed. Registry CAs and credentials go on the step's stdin, as one Pulumi secret.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping

import pulumi

from components.cluster.nvidia import TOOLKIT_PACKAGES, TOOLKIT_VERSION, driver_packages
from components.hosts.bootstrap import BASE_PACKAGES
from components.hosts.mirrors import MirrorSetup
from stacks.config import Host, Role, StackConfig
from stacks.config.mirrors import Mirrors, registry_of
from stacks.images import all_images, lock_path, read_files
from stacks.load import Stack


def apt_packages(cfg: StackConfig, h: Host) -> list[str]:
    """Debian packages a host's steps install: the base set, nftables where the host firewall goes
    (as `build_firewalls` decides) and on every control plane (agent-guard-apply.sh), s3cmd on the
    control plane that backs up to object storage (datastore-backup-install.sh), and on GPU hosts
    the driver as `ubuntu-drivers install` picks it (its branch is required on a mirrored site,
    stacks/config/consistency/mirrored.py). Not chrony: base-bootstrap.sh installs it only on a
    host without systemd-timesyncd, so the preflight adds it on the host by the same test
    (`needs_chrony`, components/kit/scripts/timesync.sh)."""
    packages = BASE_PACKAGES.split()
    control_planes = cfg.hosts_with(Role.CONTROL_PLANE)
    if (cfg.firewall.enabled and cfg.vpn.backend == "wireguard" and cfg.has_public_endpoint(h)) or h in control_planes:
        packages.append("nftables")
    if cfg.backup.enabled and cfg.backup.object_storage is not None and control_planes and h is control_planes[0]:
        packages.append("s3cmd")
    if branch := driver_branch(h):
        packages += driver_packages(branch, h.nvidia.kernel_flavour)
    return packages


def driver_branch(h: Host) -> str:
    """The driver branch the host's GPU set-up installs; "" when it installs none (or the
    distribution's recommended one, which a mirrored site refuses)."""
    return h.nvidia.driver_version or "" if h.gpu is not None and h.in_cluster and h.nvidia.install_driver else ""


def toolkit_packages(h: Host) -> list[str]:
    if h.gpu is None or not h.in_cluster or not h.nvidia.install_toolkit:
        return []
    return [f"{p}={TOOLKIT_VERSION}" for p in TOOLKIT_PACKAGES]


def snap_files(m: Mirrors) -> str:
    """`<snap>_<revision>` of each snap installed from files, snapd and the base first (install order)."""
    return " ".join(m.snaps.files()) if m.snaps is not None else ""


def snap_digests(m: Mirrors, files: Mapping[str, str]) -> str:
    """`<snap>_<revision>=<sha3-384 hex>` of each snap file, from the lock's `files:` (load() refuses a missing one)."""
    return " ".join(f"{s}={files[f'snaps/{s}.snap'].removeprefix('sha3-384:')}" for s in snap_files(m).split() if f"snaps/{s}.snap" in files)


def _secret_line(kind: str, upstream: str) -> Callable[[str], str]:
    """`<kind> <upstream> <base64 of the value>`: one line of the mirror step's stdin."""
    return lambda value: f"{kind} {upstream} {base64.b64encode(value.strip().encode()).decode()}\n"


def model_files(cfg: StackConfig, h: Host, m: Mirrors) -> str:
    """`<file name>=<sha256>` of each file a GPU node's TF-Serving fetches from its site's `files`
    mirror, the digest fetch-model.sh requires (the model's `sha256`)."""
    if m.files is None or h.gpu is None or not h.in_cluster:
        return ""
    sources = [(m.model_source(model.tf.source) or "", model.tf.sha256) for model in cfg.models if model.kind == "tf-model" and model.tf and model.tf.source]
    return " ".join(sorted({f"{url.removeprefix(f'{m.files}/')}={sha}" for url, sha in sources}))


def mirror_setup(stack: Stack, h: Host) -> MirrorSetup | None:
    """The host's mirror step, or None when its site installs from the internet."""
    cfg = stack.config
    m = cfg.mirrors_of(h)
    if m.empty:
        return None
    registries = {r.upstream: r for r in m.registries}
    images = [i for i in all_images(cfg, stack.pins) if registry_of(i) in registries] if h.in_cluster else []
    params = {
        "HOST_NAME": h.name,
        "APT_URL": m.apt.url if m.apt else "", "APT_KEY": m.apt.signed_by if m.apt else "",
        "APT_COMPONENTS": " ".join(m.apt.components) if m.apt else "",
        "APT_PACKAGES": " ".join(apt_packages(cfg, h)) if m.apt else "",
        "DRIVER_BRANCH": driver_branch(h) if m.apt else "", "KERNEL_FLAVOUR": h.nvidia.kernel_flavour if m.apt and driver_branch(h) else "",
        "NVIDIA_APT_URL": m.nvidia_apt.url if m.nvidia_apt and toolkit_packages(h) else "",
        "NVIDIA_APT_KEY": m.nvidia_apt.signed_by if m.nvidia_apt and toolkit_packages(h) else "",
        "NVIDIA_PACKAGES": " ".join(toolkit_packages(h)) if m.nvidia_apt else "",
        "SNAP_URL": m.snaps.url if m.snaps and h.in_cluster else "",
        "SNAPS": snap_files(m) if h.in_cluster else "",
        "SNAP_SHA3_384": snap_digests(m, read_files(lock_path(pulumi.get_stack()))) if m.snaps and h.in_cluster else "",
        # Outside the cluster the step itself holds the host's snaps (microk8s-install.sh does on nodes).
        "SNAP_HOLD": "true" if m.snaps and not h.in_cluster else "false",
        # The proxy only where snaps are installed: a host outside the cluster keeps its own store.
        "SNAP_PROXY_URL": m.snap_store_proxy.url if m.snap_store_proxy and h.in_cluster else "",
        "SNAP_STORE_ID": m.snap_store_proxy.store_id if m.snap_store_proxy and h.in_cluster else "",
        "REGISTRIES": " ".join(f"{r.upstream}={r.url}" for r in m.registries) if h.in_cluster else "",
        "CREDENTIAL_KEYS": " ".join(f"{r.upstream}={r.credentials_config}" for r in m.registries if r.credentials_config) if h.in_cluster else "",
        "IMAGES": " ".join(images),
        "FILES_URL": (m.files or "") if model_files(cfg, h, m) else "", "FILES": model_files(cfg, h, m),
        "FILES_ADDRESSES": " ".join(map(str, m.files_addresses)) if model_files(cfg, h, m) else "",
        "SECRETS_ON_STDIN": "true" if (any(r.ca_config or r.credentials_config for r in m.registries) and h.in_cluster)
        or (m.files_ca_config and model_files(cfg, h, m)) else "false",
    }
    secrets: list[pulumi.Output[str]] = []
    for r in m.registries if h.in_cluster else []:
        for kind, key in (("ca", r.ca_config), ("auth", r.credentials_config)):
            if key:
                secrets.append(stack.secret(key).apply(_secret_line(kind, r.upstream)))
    if m.files_ca_config and model_files(cfg, h, m):
        secrets.append(stack.secret(m.files_ca_config).apply(_secret_line("files-ca", "files")))
    stdin: pulumi.Output[str] | None = None
    if secrets:
        stdin = pulumi.Output.secret(pulumi.Output.all(*secrets).apply(lambda lines: "".join(lines)))
    return MirrorSetup(params=params, stdin=stdin)
