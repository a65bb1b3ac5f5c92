"""The stack config schema: what a `Pulumi.<stack>.yaml` may say, and what it must not.

Each top-level field is one Pulumi config key in the project namespace (`hybrid-ai:hosts`,
`hybrid-ai:vpn`, ...). Keys are camelCase in YAML, as Pulumi users expect. Secrets never
live in this model: hosts name the config key that holds their SSH private key, and the
loader reads that key as a Pulumi secret (see `stacks/load.py`).

One module per section: `hosts` (sites and hosts), `vpn`, `cluster`, `gpu_sharing`
(timeSlicing), `models` (models, tfServing, registry), `ingress`, `openstack`; `types` holds
the value types they share, `stack` the whole `StackConfig`. Rules within a section sit in
its `model_validator`s; rules across sections in one place, `consistency/`. Every rejection is
`ValueError("<key path>: <what is wrong>; <what would be right>")`, naming the key to fix.
"""

from __future__ import annotations

from stacks.config.cluster import (
    Cluster,
)
from stacks.config.gpu_sharing import (
    TimeSlicing,
    TimeSlicingProfile,
)
from stacks.config.hosts import (
    ExistingHost,
    Gpu,
    Host,
    HostSize,
    NvidiaSetup,
    OpenStackHost,
    Role,
    Site,
    SshConfig,
    Taint,
)
from stacks.config.ingress import (
    Ingress,
)
from stacks.config.models import (
    Model,
    Registry,
    TfModel,
    TfServing,
)
from stacks.config.openstack import (
    OpenStack,
)
from stacks.config.stack import (
    StackConfig,
)
from stacks.config.types import (
    BUILTIN_SERVICES,
    CONFIG_KEY,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    HOSTNAME,
    LABEL_NAME,
    MANAGED_LABELS,
    MODEL_BASE_PATH,
    PINNED_IMAGE,
    SSH_KEY_TYPES,
    ConfigKeyName,
    DnsLabel,
    Email,
    HostAddress,
    HostKey,
    IpAddress,
    IPv4Network,
    LabelKey,
    LabelValue,
    ModelBasePath,
    PinnedImage,
    Port,
    Schema,
    SshUser,
    WireGuardPublicKey,
)
from stacks.config.vpn import (
    NETMAKER_MIN_MEMORY_MB,
    NetmakerConfig,
    Vpn,
    derived_vpn_address,
)

__all__ = [
    "BUILTIN_SERVICES",
    "CONFIG_KEY",
    "DNS_LABEL",
    "DNS_SUBDOMAIN",
    "HOSTNAME",
    "LABEL_NAME",
    "MANAGED_LABELS",
    "MODEL_BASE_PATH",
    "NETMAKER_MIN_MEMORY_MB",
    "PINNED_IMAGE",
    "SSH_KEY_TYPES",
    "Cluster",
    "ConfigKeyName",
    "DnsLabel",
    "Email",
    "ExistingHost",
    "Gpu",
    "Host",
    "HostAddress",
    "HostKey",
    "HostSize",
    "IPv4Network",
    "Ingress",
    "IpAddress",
    "LabelKey",
    "LabelValue",
    "Model",
    "ModelBasePath",
    "NetmakerConfig",
    "NvidiaSetup",
    "OpenStack",
    "OpenStackHost",
    "PinnedImage",
    "Port",
    "Registry",
    "Role",
    "Schema",
    "Site",
    "SshConfig",
    "SshUser",
    "StackConfig",
    "Taint",
    "TfModel",
    "TfServing",
    "TimeSlicing",
    "TimeSlicingProfile",
    "Vpn",
    "WireGuardPublicKey",
    "derived_vpn_address",
]
