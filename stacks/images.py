"""Images by digest on mirrored sites: the stack's image lock and what the render deploys.

On a stack whose cluster nodes pull through a registry mirror, every image the render deploys
(the catalog's, the program's own, the charts') is a digest reference, so the mirror serves
exactly the bytes that were reviewed. A tag-only image is pinned from the stack's lock,
`stacks/locks/<stack>.yaml` (written by `make mirror STACK=<stack> RESOLVE=1` on a connected machine):

    images:
      docker.io/library/redis:7.4.1-alpine: sha256:<64 hex digits>

One line per image, the fully qualified tag reference and its digest, nothing else: the file
holds no key a secret could go into, and the loader refuses any other shape. An image not
pinned either way refuses the render, naming its config key (or chart) and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from components.workloads.tf_serving import FETCH_IMAGE
from stacks.charts import chart_images, pinned
from stacks.config import StackConfig
from stacks.config.mirrors import qualified
from stacks.config.vllm import VLLM_IMAGE
from stacks.llm import queue_autoscaled

LOCKS = Path(__file__).resolve().parent / "locks"
REDIS_IMAGE = "redis:7.4.1-alpine"
TAG_REF = re.compile(r"[a-z0-9][a-z0-9._:-]*(/[a-z0-9][a-z0-9._-]*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
FILE_NAME = re.compile(r"charts/[a-z0-9][a-z0-9-]*-[0-9][A-Za-z0-9.+-]*\.tgz|gateway-api/v[0-9.]+/standard-install\.yaml")
# A snap file is pinned by its SHA3-384, the digest snapd itself matches against the acked
# `snap-revision` assertions to tell which revision a file is (docs/upstream.md).
SNAP_FILE, SHA3_384 = re.compile(r"snaps/[a-z0-9][a-z0-9-]*_[0-9]+\.snap"), re.compile(r"sha3-384:[0-9a-f]{96}")


def lock_path(stack: str) -> Path:
    return LOCKS / f"{stack}.yaml"


def read_lock(path: Path) -> dict[str, str]:
    """The lock's `{tag reference: digest}`; {} when there is none. ValueError names what is wrong
    (never a value: a line that is not an image reference is not shown)."""
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    where = f"{path.parent.name}/{path.name}"
    if not isinstance(doc, dict) or set(doc) - {"images", "files"} or not all(isinstance(doc.get(k) or {}, dict) for k in ("images", "files")):
        raise ValueError(f"{where}: holds only `images:` and `files:`, maps of image reference or file to digest; "
                         "write it again with `make mirror RESOLVE=1`")
    images: dict[Any, Any] = doc.get("images") or {}
    for n, (ref, digest) in enumerate(images.items(), 1):
        if not isinstance(ref, str) or not TAG_REF.fullmatch(ref):
            raise ValueError(f"{where}: entry {n} is not a fully qualified `registry/repository:tag`")
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise ValueError(f"{where}: {ref}: not a `sha256:<64 hex digits>` digest")
    return dict(images)


def read_files(path: Path) -> dict[str, str]:
    """The lock's `{file: digest}`: the sha256 of the charts and the Gateway API bundle
    (stacks/fetched.py), the sha3-384 of the snap files (mirrors.sh); {} when none."""
    read_lock(path)  # the same shape checks
    files: dict[Any, Any] = ((yaml.safe_load(path.read_text()) or {}).get("files") or {}) if path.exists() else {}
    for name, digest in files.items():
        snap = isinstance(name, str) and SNAP_FILE.fullmatch(name)
        if not isinstance(name, str) or not (snap or FILE_NAME.fullmatch(name)):
            raise ValueError(f"{path.parent.name}/{path.name}: `files:` entry is not a `charts/<chart>-<version>.tgz`, "
                             "`snaps/<snap>_<revision>.snap` or the bundle's name")
        if not isinstance(digest, str) or not (SHA3_384 if snap else DIGEST).fullmatch(digest):
            kind = "sha3-384:<96 hex digits>" if snap else "sha256:<64 hex digits>"
            raise ValueError(f"{path.parent.name}/{path.name}: {name}: not a `{kind}` digest")
    return dict(files)


def snap_problems(cfg: StackConfig, files: Mapping[str, str], stack: str) -> list[str]:
    """One line per snap file a site installs from its mirror without a sha3-384 in the lock."""
    sites = [("mirrors", cfg.mirrors)] + [(f"sites[{i}].mirrors", s.mirrors) for i, s in enumerate(cfg.sites) if s.mirrors is not None]
    used = {id(cfg.mirrors_of(h)) for h in cfg.hosts if h.in_cluster}
    return [f"{key}.snaps: snaps/{name}.snap has no sha3-384 in stacks/locks/{stack}.yaml (`files:`); run `make mirror STACK={stack} "
            "RESOLVE=1` on a connected machine (it hashes the files the snaps source serves)"
            for key, m in sites if m.snaps is not None and id(m) in used for name in m.snaps.files() if f"snaps/{name}.snap" not in files]


def write_lock(path: Path, stack: str, pins: Mapping[str, str], files: Mapping[str, str] | None = None) -> None:
    lines = [f"# Image and file digests of stack {stack}: `make mirror STACK={stack} RESOLVE=1` resolved each tag and",
             "# hashed each chart, bundle and snap file on a connected machine. Review a change like a version bump.", "images:"]
    lines += [f"  {ref}: {pins[ref]}" for ref in sorted(pins)]
    if files:
        lines += ["files:"] + [f"  {name}: {files[name]}" for name in sorted(files)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# What MicroK8s itself pulls, by tag, per track: the sandbox (`sandbox_image` in its
# containerd-template.toml), Calico (its cni.yaml, from upgrade-scripts/000-switch-to-calico)
# and the images of the addons the control plane enables (rbac has none; dns, metrics-server,
# hostpath-storage from microk8s-core-addons at the track's branch), as upstream's own
# build-scripts/images.txt lists them (docs/upstream.md).
MICROK8S_IMAGES = {
    "1.32": ("docker.io/calico/cni:v3.28.1", "docker.io/calico/kube-controllers:v3.28.1", "docker.io/calico/node:v3.28.1",
             "docker.io/cdkbot/hostpath-provisioner:1.5.0", "docker.io/coredns/coredns:1.10.1", "docker.io/library/busybox:1.28.4",
             "registry.k8s.io/metrics-server/metrics-server:v0.6.3", "registry.k8s.io/pause:3.10"),
}


def microk8s_images(cfg: StackConfig) -> tuple[str, ...] | None:
    """MicroK8s' own images for the stack's channel; None for a track not listed above."""
    return MICROK8S_IMAGES.get(cfg.cluster.channel.split("/", 1)[0])


def all_images(cfg: StackConfig, pins: Mapping[str, str]) -> list[str]:
    """Every image the cluster pulls, fully qualified, by digest where pinned: what a mirror holds."""
    images = {qualified(pin(i, pins)) for _, i in deployed_images(cfg)}
    images |= {qualified(pin(i, pins)) for name in charts_used(cfg) for i, *_ in chart_images(name) or []}
    return sorted(images | set(microk8s_images(cfg) or ()))


def mirrored(cfg: StackConfig) -> bool:
    """Whether some cluster node pulls through a registry mirror."""
    return any(h.in_cluster and cfg.mirrors_of(h).registries for h in cfg.hosts)


def charts_used(cfg: StackConfig) -> list[str]:
    """The charts the render installs (as stacks/workloads.py and stacks/monitoring.py decide)."""
    has_gpus = any(h.gpu is not None and h.in_cluster for h in cfg.hosts)
    used = ["traefik"] + (["nvidia-device-plugin"] if has_gpus else [])
    used += ["cert-manager"] if cfg.ingress.tls in ("letsencrypt", "letsencrypt-staging") else []
    if cfg.monitoring.enabled:
        used += ["kube-prometheus-stack"] + (["dcgm-exporter"] if has_gpus else []) + (["prometheus-adapter"] if queue_autoscaled(cfg) else [])
    return used


def deployed_images(cfg: StackConfig) -> list[tuple[str, str]]:
    """(where it comes from, image) of every image the render deploys outside the charts."""
    found = [(f"models[{i}].image", m.image or VLLM_IMAGE) for i, m in enumerate(cfg.models) if m.kind != "tf-model"]
    if any("redis" in m.talks_to for m in cfg.models):
        found.append(("the program's Redis (stacks/images.py)", REDIS_IMAGE))
    tf = [m.tf for m in cfg.models if m.kind == "tf-model" and m.tf is not None]
    if tf:
        found.append(("tfServing.image", cfg.tf_serving.image))
    if any(t.source for t in tf):
        found.append(("TF-Serving's model fetcher (components/workloads/tf_serving.py)", FETCH_IMAGE))
    return found


def pin(image: str, pins: Mapping[str, str]) -> str:
    """The image by digest from the lock (`<qualified>:<tag>@sha256:...`); as given when it already
    has a digest or the lock does not hold it."""
    if "@" in image or qualified(image) not in pins:
        return image
    return f"{qualified(image)}@{pins[qualified(image)]}"


def pin_problems(cfg: StackConfig, pins: Mapping[str, str], stack: str) -> list[str]:
    """One line per image a mirrored stack would deploy by tag alone."""
    if not mirrored(cfg):
        return []
    fix = f"run `make mirror STACK={stack} RESOLVE=1` on a connected machine (it writes stacks/locks/{stack}.yaml)"
    problems = [f"{where}: {image} is a tag on a mirrored site; give it by digest (`...@sha256:<digest>`) or {fix}"
                for where, image in deployed_images(cfg) if "@" not in image and qualified(image) not in pins]
    if microk8s_images(cfg) is None:
        problems.append(f"cluster.channel: {cfg.cluster.channel}: MicroK8s' own images on that track are not listed (stacks/images.py "
                        f"lists {', '.join(MICROK8S_IMAGES)}), so its mirror cannot be checked; use a listed track or add the track's images there")
    for name in charts_used(cfg):
        images = chart_images(name)
        if images is None:
            problems.append(f"chart {name}: charts/{name}/chart.yaml lists no `images:`, so a mirrored site cannot pin them by digest; "
                            f"list the chart's images at {pinned(name).version} there, or turn off what installs it on this stack")
            continue
        problems += [f"chart {name}: {qualified(image)} is a tag on a mirrored site; {fix}" for image, *_ in images if qualified(image) not in pins]
    return problems
