"""The stack config schema: what a `Pulumi.<stack>.yaml` may say, and what it must not.

Each top-level field is one Pulumi config key in the project namespace (`hybrid-ai:hosts`,
`hybrid-ai:vpn`, ...). Keys are camelCase in YAML, as Pulumi users expect. Secrets never
live in this model: hosts name the config key that holds their SSH private key, and the
loader reads that key as a Pulumi secret (see `stacks/load.py`).

One module per section: `hosts` (sites and hosts), `vpn`, `cluster`, `gpu_sharing`
(timeSlicing), `models` (models, tfServing, registry), `ingress`, `openstack`; `types` holds
the value types they share, `stack` the whole `StackConfig`. Rules within a section sit in
its `model_validator`s; rules across sections in one place, `consistency/`, which the loader
runs on the built `StackConfig` (nothing here imports it). Every rejection is
`ValueError("<key path>: <what is wrong>; <what would be right>")`, naming the key to fix.
"""

from __future__ import annotations

from stacks.config.cluster import Cluster
from stacks.config.gpu_sharing import TimeSlicing
from stacks.config.hosts import Host, Role, Site
from stacks.config.ingress import Ingress
from stacks.config.models import Model, Registry, TfServing
from stacks.config.openstack import OpenStack
from stacks.config.stack import StackConfig
from stacks.config.types import BUILTIN_SERVICES
from stacks.config.vpn import NETMAKER_MIN_MEMORY_MB, Vpn, derived_vpn_address

# The names the wiring, the loader and the tools use; the value types stay in `types`.
__all__ = [
    "BUILTIN_SERVICES", "NETMAKER_MIN_MEMORY_MB", "Cluster", "Host", "Ingress", "Model", "OpenStack", "Registry",
    "Role", "Site", "StackConfig", "TfServing", "TimeSlicing", "Vpn", "derived_vpn_address",
]
