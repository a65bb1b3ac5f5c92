"""The rolling upgrades' rules: a roll goes forwards only (MicroK8s is not downgraded by a snap
refresh, nor a driver by the roll), one Kubernetes minor at a time, and a driver roll is asked
only where the program installs the driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacks.config.cluster import minor

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig


def upgrades(cfg: StackConfig) -> list[str]:
    return _channel(cfg) + _drivers(cfg) + mirrored_snaps(cfg)


def _channel(cfg: StackConfig) -> list[str]:
    c = cfg.cluster
    if c.upgrade.from_channel is None:
        return []
    (major, to), (from_major, at) = minor(c.channel), minor(c.upgrade.from_channel)
    if (major, to) < (from_major, at):
        return [f"cluster.channel: {c.channel} is older than cluster.upgrade.fromChannel {c.upgrade.from_channel}, and MicroK8s is not "
                "downgraded by a refresh; set a newer channel, or go back node by node with `snap revert microk8s` (docs/operations.md, Rolling upgrades)"]
    if major != from_major or to > at + 1:
        return [f"cluster.channel: {c.channel} skips minors after cluster.upgrade.fromChannel {c.upgrade.from_channel}, and Kubernetes "
                f"is upgraded one minor at a time; roll to {from_major}.{at + 1}/stable first"]
    return []


def _drivers(cfg: StackConfig) -> list[str]:
    errors = []
    for i, h in enumerate(cfg.hosts):
        key, n = f"hosts[{i}].nvidia", h.nvidia
        if n.from_driver_version is None:
            continue
        if not n.install_driver or n.driver_version is None:
            errors.append(f"{key}.fromDriverVersion: only used with `installDriver: true` and a `driverVersion` (the branch to roll to); "
                          "set them or remove it")
        elif branch(n.driver_version) == branch(n.from_driver_version):
            errors.append(f"{key}.fromDriverVersion: '{n.from_driver_version}' is driverVersion's branch already (nvidia-smi tells no "
                          "-server variant apart), so there is nothing to roll; remove it")
        elif branch(n.driver_version) < branch(n.from_driver_version):
            errors.append(f"{key}.driverVersion: {n.driver_version} is older than fromDriverVersion {n.from_driver_version}, and the roll "
                          "does not downgrade a driver; set a newer driverVersion, or remove fromDriverVersion and downgrade by hand")
    return errors


def branch(version: str) -> int:
    """A validated driver branch's number: `535-server` -> 535."""
    return int(version.split("-")[0])


def mirrored_snaps(cfg: StackConfig) -> list[str]:
    """A channel roll refreshes from the Snap Store; hosts on snap files have none to reach."""
    if cfg.cluster.upgrade.from_channel is None:
        return []
    sites = [s.name for s in cfg.sites if (s.mirrors or cfg.mirrors).snaps is not None and any(h.site == s.name and h.in_cluster for h in cfg.hosts)]
    if not sites:
        return []
    return [f"cluster.upgrade.fromChannel: site(s) {', '.join(sites)} install MicroK8s from snap files (mirrors.snaps) and the roll refreshes "
            "from the Snap Store; raise mirrors.snaps.microk8sRevision per node by hand (docs/airgap.md), or remove fromChannel"]
