"""OpenStack VMs: one shared network (`OpenStackNetwork`) and one `OpenStackNode` per VM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls
from pulumi_openstack import compute, networking

from components.hosts import cloud_init
from components.hosts.host import HostNode
from components.hosts.ssh import SshLogin


@dataclass
class OpenStackNetworkArgs:
    external_network: pulumi.Input[str]
    """Name of the external network (floating IPs, router gateway)."""
    cidr: pulumi.Input[str]
    """CIDR of the private subnet."""
    admin_cidrs: Sequence[str]
    """Networks allowed to SSH in, and to the control plane's API server (where `pulumi up` runs)."""
    vpn_port: int
    """WireGuard UDP port, open to the world (peers behind NAT have no fixed address)."""
    api_port: int
    """The control plane's API server port (the cluster layer's), open to the admin CIDRs."""
    ssh_public_key: pulumi.Input[str]
    """Public key installed as the instances' key pair."""
    dns_nameservers: Sequence[str] = ()
    """DNS servers for the subnet."""


class OpenStackNetwork(pulumi.ComponentResource):
    """Network, subnet, router, security groups and key pair shared by a stack's VMs."""

    network_id: pulumi.Output[str]
    """The private network's ID."""
    base_group: pulumi.Output[str]
    """ID of the security group every VM gets: SSH from admin CIDRs and the VPN port."""
    ingress_group: pulumi.Output[str]
    """ID of the security group for ingress nodes: 80 and 443 from anywhere."""
    api_group: pulumi.Output[str]
    """ID of the security group of the control plane: the API server port from the admin CIDRs."""
    key_pair: pulumi.Output[str]
    """Name of the key pair."""

    def __init__(self, name: str, args: OpenStackNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:openstack:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        external = networking.get_network_output(name=args.external_network, external=True, opts=pulumi.InvokeOutputOptions(parent=self))
        network = networking.Network(f"{name}-net", admin_state_up=True, opts=child)
        subnet = networking.Subnet(
            f"{name}-subnet", network_id=network.id, cidr=args.cidr, ip_version=4,
            dns_nameservers=list(args.dns_nameservers), opts=child,
        )
        router = networking.Router(f"{name}-router", external_network_id=external.id, opts=child)
        networking.RouterInterface(f"{name}-router-if", router_id=router.id, subnet_id=subnet.id, opts=child)

        # Hosts talk to each other only over the VPN (cluster traffic included), so besides
        # SSH from the admins, the VPN's UDP port is all that is open.
        base = networking.SecGroup(f"{name}-base", description="hybrid-ai: SSH from admins, the VPN port", opts=child)
        rules: list[tuple[str, str, int, int, pulumi.Input[str]]] = [
            *[("tcp", f"ssh-{i}", 22, 22, cidr) for i, cidr in enumerate(args.admin_cidrs)],
            ("udp", "vpn", args.vpn_port, args.vpn_port, "0.0.0.0/0"),
        ]
        for proto, role, low, high, cidr in rules:
            networking.SecGroupRule(
                f"{name}-base-{role}", security_group_id=base.id, direction="ingress", ethertype="IPv4",
                protocol=proto, port_range_min=low, port_range_max=high, remote_ip_prefix=cidr, opts=child,
            )
        ingress = networking.SecGroup(f"{name}-ingress", description="hybrid-ai: HTTP(S) on ingress nodes", opts=child)
        for port in (80, 443):
            networking.SecGroupRule(
                f"{name}-ingress-{port}", security_group_id=ingress.id, direction="ingress", ethertype="IPv4",
                protocol="tcp", port_range_min=port, port_range_max=port, remote_ip_prefix="0.0.0.0/0", opts=child,
            )
        # The deployer's Kubernetes provider talks to the API server from an admin network.
        api = networking.SecGroup(f"{name}-api", description="hybrid-ai: Kubernetes API from admins", opts=child)
        for i, cidr in enumerate(args.admin_cidrs):
            networking.SecGroupRule(
                f"{name}-api-{i}", security_group_id=api.id, direction="ingress", ethertype="IPv4",
                protocol="tcp", port_range_min=args.api_port, port_range_max=args.api_port, remote_ip_prefix=cidr, opts=child,
            )
        key_pair = compute.Keypair(f"{name}-keypair", public_key=args.ssh_public_key, opts=child)

        self.network_id = network.id
        self.subnet_id = subnet.id
        self.external_network = pulumi.Output.from_input(args.external_network)
        self.base_group = base.id
        self.ingress_group = ingress.id
        self.api_group = api.id
        self.key_pair = key_pair.name
        self.register_outputs({"networkId": self.network_id, "keyPair": self.key_pair})


@dataclass
class OpenStackNodeArgs:
    network: OpenStackNetwork
    """The shared network the VM joins."""
    flavor: pulumi.Input[str]
    """Flavor name."""
    image: pulumi.Input[str]
    """Image name."""
    login: SshLogin
    """How the program logs in."""
    public_ip: bool = True
    """Attach a floating IP."""
    ingress: bool = False
    """Open 80/443 (ingress nodes)."""
    control_plane: bool = False
    """Open the API server port to the admin CIDRs."""
    volume_size_gb: int | None = None
    """Boot volume size; the flavor's disk when unset."""


class OpenStackNode(HostNode):
    """A VM with a program-generated SSH host key, installed by cloud-init and pinned from the first login."""

    def __init__(self, name: str, args: OpenStackNodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hybridai:openstack:Node", name, args.login, opts)
        child = pulumi.ResourceOptions(parent=self)
        host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
        groups = [args.network.base_group] + ([args.network.ingress_group] if args.ingress else []) \
            + ([args.network.api_group] if args.control_plane else [])
        port = networking.Port(
            f"{name}-port", network_id=args.network.network_id, security_group_ids=groups, opts=child,
            fixed_ips=[networking.PortFixedIpArgs(subnet_id=args.network.subnet_id)],
        )
        # Secret as a whole: it carries the host's private key.
        document: pulumi.Output[str] = pulumi.Output.all(host_key.private_key_openssh, host_key.public_key_openssh).apply(
            lambda keys: cloud_init.user_data(name, keys[0], keys[1].strip())
        )
        user_data: pulumi.Output[str] = pulumi.Output.secret(document)
        block_devices = None
        if args.volume_size_gb:
            block_devices = [compute.InstanceBlockDeviceArgs(
                source_type="image", destination_type="volume", boot_index=0,
                volume_size=args.volume_size_gb, delete_on_termination=True, uuid=None,
            )]
        instance = compute.Instance(
            f"{name}-vm", name=name, flavor_name=args.flavor, image_name=args.image,
            key_pair=args.network.key_pair, user_data=user_data,
            networks=[compute.InstanceNetworkArgs(port=port.id)], block_devices=block_devices,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["image_name"]),
        )
        address: pulumi.Output[str] = instance.access_ip_v4
        self.lan_address = instance.access_ip_v4
        self.public_address = None
        if args.public_ip:
            fip = networking.FloatingIp(f"{name}-fip", pool=args.network.external_network, opts=child)
            assoc = networking.FloatingIpAssociate(f"{name}-fip-assoc", floating_ip=fip.address, port_id=port.id, opts=pulumi.ResourceOptions(parent=self, depends_on=[instance]))
            # The association's address: usable for SSH only once it is bound to the VM's port.
            address = assoc.floating_ip
            self.public_address = assoc.floating_ip
        self._probe(name, address, host_key.public_key_openssh.apply(str.strip))
        self._register()
