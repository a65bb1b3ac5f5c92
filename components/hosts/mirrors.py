"""A host's mirror step (`mirrors.sh`): preflight of every mirror the host has, then apt sources,
snap files and registry configuration pointing at them. The first step on the host: nothing is
installed until every artifact it needs was found (docs/airgap.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi


@dataclass
class MirrorSetup:
    params: Mapping[str, str]
    """mirrors.sh's parameters: the mirrors' URLs and keys, and what the host needs from each."""
    stdin: pulumi.Output[str] | None = None
    """Registry CAs and credentials (`ca|auth <registry> <base64>` lines), a Pulumi secret."""


STAGED_CERTS_D = "/etc/hybrid-ai/certs.d"
"""Where the step leaves each registry's hosts.toml (and CA) for MicroK8s' containerd: the step
itself puts them into MicroK8s' certs.d where MicroK8s is installed (so a changed registry reaches
containerd when the step re-runs), microk8s-install.sh right after it installs the snap."""
STAGED_SNAPS = "/var/lib/hybrid-ai/snaps"
"""Where the step leaves the acked snap files microk8s-install.sh installs."""
