"""`make mirror STACK=<name> RESOLVE=1`: the stack's image lock (`stacks/locks/<stack>.yaml`, stacks/images.py).

Read from the stack's config alone (the render refuses a mirrored stack until its images are
locked): every tag-only image the render would deploy, each resolved to the digest its registry
(or the operator's source for it) serves now. Images already given by digest stay as they are.
Each chart archive and the bundle are locked by sha256, each snap file by sha3-384.
Only image references and digests are written: nothing of the config's secrets is read.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path

from stacks.charts import GATEWAY_API_CRDS, chart_images, pinned
from stacks.config import StackConfig
from stacks.config.mirrors import qualified
from stacks.fetched import digest, fetch, wanted
from stacks.images import charts_used, deployed_images
from tools.mirror.layout import snaps
from tools.mirror.sources_map import crane, locate


def to_lock(cfg: StackConfig) -> list[str]:
    """The fully qualified tag references the stack deploys without a digest."""
    refs = {i for _, i in deployed_images(cfg) if "@" not in i}
    refs |= {i for name in charts_used(cfg) for i, *_ in chart_images(name) or []}
    return sorted(qualified(r) for r in refs)


def resolve(refs: list[str], sources: Mapping[str, str]) -> dict[str, str]:
    """{ref: digest}, each digest as the source serves it (an index's own digest for multi-arch)."""
    pins = {}
    for ref in refs:
        digest = crane("digest", ref=locate(ref, sources))
        if not digest.startswith("sha256:"):
            raise RuntimeError(f"crane digest {ref}: answered no sha256 digest")
        pins[ref] = digest
    return pins


def resolve_files(cfg: StackConfig, sources: Mapping[str, str]) -> dict[str, str]:
    """{file: sha256} of each chart archive and the Gateway API bundle the stack applies, as their
    upstreams serve them (each chart from its own repository, the bundle from the release)."""
    files = {}
    for name, _ in wanted(cfg, charts_used(cfg)).items():
        upstream = GATEWAY_API_CRDS if not name.startswith("charts/") else next(
            pinned(c).repository for c in charts_used(cfg) if name.startswith(f"charts/{pinned(c).chart}-"))
        files[name] = digest(fetch(name, locate(upstream, sources)))
    return files | resolve_snaps(cfg, sources)


def resolve_snaps(cfg: StackConfig, sources: Mapping[str, str]) -> dict[str, str]:
    """{snaps/<snap>_<rev>.snap: sha3-384} of each snap file a cluster node installs from its
    mirror, hashed as snapd does (tools/mirror/layout.py fetches them the same way)."""
    stems = sorted({s for h in cfg.hosts if h.in_cluster and (m := cfg.mirrors_of(h).snaps) for s in m.files()})
    with tempfile.TemporaryDirectory() as tmp:
        snaps(stems, Path(tmp), sources)
        return {f"snaps/{s}.snap": "sha3-384:" + hashlib.sha3_384((Path(tmp) / "snaps" / f"{s}.snap").read_bytes()).hexdigest() for s in stems}
