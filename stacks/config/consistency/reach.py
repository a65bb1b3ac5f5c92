"""What the machine running `pulumi up` must reach: every host over SSH (directly, or through
a jump host on the host's own site) and the API server at the kubeconfig's address."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stacks.config.hosts import Role

if TYPE_CHECKING:
    from stacks.config.stack import StackConfig


def deployer_reach(cfg: StackConfig) -> list[str]:
    errors: list[str] = []
    sites = {s.name: s for s in cfg.sites}
    by_name = {h.name: h for h in cfg.hosts}
    for i, h in enumerate(cfg.hosts):
        site = sites.get(h.site)
        jump = by_name.get(h.ssh.jump_host or "")
        # Only a host whose SSH address is its LAN address needs a jump host on its own LAN.
        if site is None or not site.nat or jump is None or h.existing is None or str(cfg.lan_address(h)) != str(h.existing.address):
            continue
        if jump.site != h.site:
            errors.append(f"hosts[{i}].ssh.jumpHost: '{h.name}' is reached on its LAN address in NAT'd site '{site.name}'; "
                          f"its jump host must sit on that site, not on '{jump.site}'")
    if cfg.cluster.api_server_address == "vpn" and cfg.vpn.backend == "wireguard" and cfg.vpn.operator_public_key is None:
        errors.append("cluster.apiServerAddress: 'vpn' but the deployer is no VPN peer; set vpn.operatorPublicKey "
                      "for the machine that runs `pulumi up`, or use 'public'")
    public_cps = [h for h in cfg.hosts if Role.CONTROL_PLANE.value in h.roles and cfg.has_public_endpoint(h)]
    if (cfg.firewall.enabled and cfg.cluster.api_server_address == "public"
            and public_cps and not cfg.admin_cidrs()):
        errors.append("firewall.adminCidrs: the kubeconfig reaches the API server at the control plane's public address "
                      "(cluster.apiServerAddress: public), which the host firewall opens only to these networks; list the "
                      "networks `pulumi up` and kubectl run from, or use apiServerAddress 'vpn'")
    return errors
