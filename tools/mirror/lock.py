"""`make mirror STACK=<name> RESOLVE=1`: the stack's image lock (`stacks/locks/<stack>.yaml`, stacks/images.py).

Read from the stack's config alone (the render refuses a mirrored stack until its images are
locked): every tag-only image the render would deploy, each resolved to the digest its registry
(or the operator's source for it) serves now. Images already given by digest stay as they are.
Only image references and digests are written: nothing of the config's secrets is read.
"""

from __future__ import annotations

from collections.abc import Mapping

from stacks.charts import chart_images
from stacks.config import StackConfig
from stacks.config.mirrors import qualified
from stacks.images import charts_used, deployed_images
from tools.mirror.sources_map import crane, locate


def to_lock(cfg: StackConfig) -> list[str]:
    """The fully qualified tag references the stack deploys without a digest."""
    refs = {i for _, i in deployed_images(cfg) if "@" not in i}
    refs |= {i for name in charts_used(cfg) for i, _ in chart_images(name) or []}
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
