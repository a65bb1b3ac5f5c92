"""The bad configs of the config tests: each a mutation of the dev stack, the config key path its
rejection must name, and the fix it must say. `BAD` holds them all; `CROSS` those the
cross-section checks (`stacks/config/consistency/`) catch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Raw = dict[str, Any]
P = "hybrid-ai.node-restriction.kubernetes.io"


def host(raw: Raw, name: str) -> dict[str, Any]:
    return next(h for h in raw["hosts"] if h["name"] == name)


def set_in(path: list[Any], value: Any) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        node: Any = raw
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return mutate


def _duplicate_host(raw: Raw) -> None:
    raw["hosts"].append(dict(host(raw, "ws-2"), vpnAddress="100.64.1.9"))


def _duplicate_model(raw: Raw) -> None:
    raw["models"].append(dict(raw["models"][0]))


def _no_hub(raw: Raw) -> None:
    raw["hosts"] = [h for h in raw["hosts"] if h["name"] != "vpn-hub"]


def _hub_without_public(raw: Raw) -> None:
    del host(raw, "vpn-hub")["existing"]["publicAddress"]


def _gpu_model_without_gpu_hosts(raw: Raw) -> None:
    for h in raw["hosts"]:
        h.pop("gpu", None)


def _both_provisioners(raw: Raw) -> None:
    host(raw, "receipt")["openstack"] = {"flavor": "m1.small", "image": "ubuntu-22.04"}


def _openstack_without_section(raw: Raw) -> None:
    h = host(raw, "receipt")
    del h["existing"]
    h["openstack"] = {"flavor": "m1.small", "image": "ubuntu-22.04"}
    h["ssh"]["publicKey"] = "ssh-ed25519 AAAA"


def _jump_chain(raw: Raw) -> None:
    host(raw, "ws-1")["ssh"]["jumpHost"] = "receipt"
    host(raw, "ws-2")["ssh"]["jumpHost"] = "ws-1"


def _jump_loop(raw: Raw) -> None:
    host(raw, "ws-1")["ssh"]["jumpHost"] = "ws-2"
    host(raw, "ws-2")["ssh"]["jumpHost"] = "ws-1"


def _two_control_planes(raw: Raw) -> None:
    host(raw, "interface")["roles"] = ["control-plane"]


def _nat_voters(raw: Raw) -> None:
    """Three voters, one of them a workstation in the NAT'd office."""
    host(raw, "interface")["roles"] = ["control-plane", "ingress"]
    host(raw, "ws-1")["roles"] = ["control-plane"]


def _private_control_plane(raw: Raw) -> None:
    del host(raw, "receipt")["existing"]["publicAddress"]
    host(raw, "receipt")["roles"] = ["control-plane"]


def _netmaker(size: dict[str, int] | None, hub_public: bool = True, operator: bool = False) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        raw["vpn"] |= {"backend": "netmaker", "netmaker": {"domain": "nm.example.com"}}
        hub = host(raw, "vpn-hub")
        if size is not None:
            hub["size"] = size
        if not hub_public:
            del hub["existing"]["publicAddress"]
        if operator:
            raw["vpn"]["operatorPublicKey"] = "aGVsbG8taHlicmlkLWFpLW9wZXJhdG9yLWtleS0xMjM="
    return mutate


def _ingress_on_prem(raw: Raw) -> None:
    """ws-1 public (its office no longer behind NAT) and an ingress host: a valid host otherwise."""
    raw["sites"][1]["nat"] = False
    ws = host(raw, "ws-1")
    ws["existing"]["publicAddress"] = "198.51.100.21"
    ws["roles"] = ["worker", "ingress"]


def _netmaker_without_section(raw: Raw) -> None:
    raw["vpn"]["backend"] = "netmaker"
    host(raw, "vpn-hub")["size"] = {"cpus": 1, "memoryMb": 4096}


BAD: list[tuple[str, Callable[[Raw], None], str, str]] = [
    # (case, mutation, config key path expected in the message, fix expected in the message)
    ("duplicate host", _duplicate_host, "hybrid-ai:hosts[5].name", "used twice"),
    ("duplicate model", _duplicate_model, "hybrid-ai:models[5].name", "used twice"),
    ("overlay overlaps pods", set_in(["cluster", "podCidr"], "100.64.128.0/20"), "hybrid-ai:cluster.podCidr", "do not overlap"),
    ("overlay overlaps services", set_in(["cluster", "serviceCidr"], "100.64.200.0/24"), "hybrid-ai:cluster.serviceCidr", "do not overlap"),
    ("overlay overlaps a LAN", set_in(["sites", 1, "lanCidr"], "100.64.1.0/24"), "hybrid-ai:sites[1].lanCidr", "do not overlap"),
    ("invalid CIDR", set_in(["vpn", "overlayCidr"], "100.64.0.0/33"), "hybrid-ai:vpn.overlayCidr", "IPv4 network"),
    ("bad upgrade batch", set_in(["cluster", "upgrade"], {"fromChannel": "1.31/stable", "maxUnavailable": 0}), "hybrid-ai:cluster.upgrade.maxUnavailable", "greater than or equal to 1"),
    ("CIDR with host bits", set_in(["cluster", "podCidr"], "10.1.2.3/16"), "hybrid-ai:cluster.podCidr", "IPv4 network"),
    ("chart source not a repository", set_in(["sources"], {"charts": "ftp://mirror.example.com/charts"}), "hybrid-ai:sources.charts", "oci://"),
    ("CRD bundle neither URL nor file", set_in(["sources"], {"gatewayApiCrds": "standard install"}), "hybrid-ai:sources.gatewayApiCrds", ".yaml file"),
    ("invalid port", set_in(["vpn", "port"], 70000), "hybrid-ai:vpn.port", "less than or equal to 65535"),
    ("invalid SSH port", set_in(["hosts", 0, "ssh", "port"], 0), "hybrid-ai:hosts[0].ssh.port", "greater than or equal to 1"),
    ("no control plane", set_in(["hosts", 1, "roles"], ["worker", "ingress"]), "hybrid-ai:hosts:", "use an odd number"),
    ("two control planes", _two_control_planes, "hybrid-ai:hosts:", "use an odd number"),
    ("control plane behind NAT", _nat_voters, "hybrid-ai:hosts[3].roles", "make it a `worker`"),
    ("NAT site without hub", _no_hub, "hybrid-ai:hosts:", "give one public host the `vpn-hub` role"),
    ("hub without public address", _hub_without_public, "hybrid-ai:hosts[0].roles", "needs a public address"),
    ("GPU model without GPU host", _gpu_model_without_gpu_hosts, "hybrid-ai:models[1].placement", "add a GPU host"),
    ("replicas below 1", set_in(["timeSlicing", "profiles", 0, "replicas"], 0), "hybrid-ai:timeSlicing.profiles[0].replicas", "greater than or equal to 1"),
    ("replicas above maximum", set_in(["timeSlicing", "profiles", 0, "replicas"], 40), "hybrid-ai:timeSlicing.profiles[0].replicas", "maxReplicas"),
    ("model name not a DNS label", set_in(["models", 0, "name"], "Receipt_API"), "hybrid-ai:models[0].name", "not a DNS label"),
    ("host name not a DNS label", set_in(["hosts", 3, "name"], "ws.1"), "hybrid-ai:hosts[3].name", "not a DNS label"),
    ("unknown role", set_in(["hosts", 3, "roles"], ["gpu"]), "hybrid-ai:hosts[3].roles[0]", "'vpn-hub', 'control-plane', 'worker' or 'ingress'"),
    ("malformed host key", set_in(["hosts", 2, "ssh", "hostKey"], "ssh-ed25519 not-base64!"), "hybrid-ai:hosts[2].ssh.hostKey", "ssh-keyscan"),
    ("host key of wrong type", set_in(["hosts", 2, "ssh", "hostKey"], "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIMWthFm+5gLOBm2qZ7ys3zjmEDvNG8PqNXi/99hZoqqh"), "hybrid-ai:hosts[2].ssh.hostKey", "does not match its type"),
    ("existing host without host key", set_in(["hosts", 2, "ssh", "hostKey"], None), "hybrid-ai:hosts[2].ssh.hostKey", "ssh-keyscan"),
    ("unknown site", set_in(["hosts", 3, "site"], "garage"), "hybrid-ai:hosts[3].site", "use one of: cloud, office"),
    ("VPN address outside overlay", set_in(["hosts", 3, "vpnAddress"], "100.65.0.1"), "hybrid-ai:hosts[3].vpnAddress", "not a usable address"),
    ("VPN address used twice", set_in(["hosts", 4, "vpnAddress"], "100.64.1.1"), "hybrid-ai:hosts[4].vpnAddress", "already used by host 'ws-1'"),
    ("MTU too large", set_in(["vpn", "mtu"], 1500), "hybrid-ai:vpn.mtu", "less than or equal to 1420"),
    ("unknown jump host", set_in(["hosts", 3, "ssh", "jumpHost"], "bastion"), "hybrid-ai:hosts[3].ssh.jumpHost", "unknown host 'bastion'"),
    ("jump host loop", _jump_loop, "hybrid-ai:hosts[3].ssh.jumpHost", "reachable directly"),
    ("jump host chain", _jump_chain, "hybrid-ai:hosts[4].ssh.jumpHost", "'ws-1' is itself reached through 'receipt'"),
    ("both provisioners", _both_provisioners, "hybrid-ai:hosts[1]", "set exactly one of"),
    ("OpenStack host without openstack section", _openstack_without_section, "hybrid-ai:hosts[1].openstack", "needs the `hybrid-ai:openstack` config key"),
    ("public address in a NAT'd site", set_in(["hosts", 3, "existing", "publicAddress"], "203.0.113.50"), "hybrid-ai:hosts[3].existing.publicAddress", "behind NAT"),
    ("typo in a key", set_in(["vpn", "mut"], 1300), "hybrid-ai:vpn.mut", "did you mean `mtu`?"),
    ("image without a tag", set_in(["models", 0, "image"], "ghcr.io/example/receipt-api"), "hybrid-ai:models[0].image", "not pinned"),
    ("image pinned to latest", set_in(["models", 0, "image"], "ghcr.io/example/receipt-api:latest"), "hybrid-ai:models[0].image", "not pinned"),
    ("unknown talksTo", set_in(["models", 0, "talksTo"], ["billing"]), "hybrid-ai:models[0].talksTo[0]", "unknown model 'billing'"),
    ("Let's Encrypt without e-mail", set_in(["ingress", "acmeEmail"], None), "hybrid-ai:ingress", "needs `domain` and `acmeEmail`"),
    ("unknown time-slicing profile", set_in(["hosts", 3, "gpu", "profile"], "a100"), "hybrid-ai:hosts[3].gpu.profile", "use one of: rtx-3090"),
    ("two GPUs per pod with time-slicing", set_in(["models", 1, "gpus"], 2), "hybrid-ai:models[1].gpus", "request 1"),
    ("bad MicroK8s channel", set_in(["cluster", "channel"], "latest"), "hybrid-ai:cluster.channel", "e.g. `1.32/stable`"),
    ("latest MicroK8s track", set_in(["cluster", "channel"], "latest/stable"), "hybrid-ai:cluster.channel", "not `latest`"),
    ("latest track to roll from", set_in(["cluster", "upgrade"], {"fromChannel": "latest/edge"}), "hybrid-ai:cluster.upgrade.fromChannel", "not `latest`"),
    ("maintenance window hour out of range", set_in(["cluster", "upgrade"], {"window": "Sat 25:00-06:00"}), "hybrid-ai:cluster.upgrade.window", "`<days> HH:MM-HH:MM` in UTC"),
    ("maintenance window on no known day", set_in(["cluster", "upgrade"], {"window": "Sat,Sab 02:00-06:00"}), "hybrid-ai:cluster.upgrade.window", "days as `Mon`..`Sun`"),
    ("maintenance window that never opens", set_in(["cluster", "upgrade"], {"window": "Sun 02:00-02:00"}), "hybrid-ai:cluster.upgrade.window", "give an end after the start"),
    ("driver branch to roll from malformed", set_in(["hosts", 3, "nvidia"], {"driverVersion": "550", "fromDriverVersion": "535.183"}), "hybrid-ai:hosts[3].nvidia.fromDriverVersion", "not a driver branch; three digits, optionally with '-server'"),
    ("storage class with a newline", set_in(["tfServing"], {"storageClass": "a\nb: c"}), "hybrid-ai:tfServing.storageClass", "not a storage class name"),
    ("storage class with upper case", set_in(["tfServing"], {"storageClass": "Fast"}), "hybrid-ai:tfServing.storageClass", "lowercase DNS subdomain"),
    ("label key owned by hybrid-ai", set_in(["hosts", 3, "labels"], {"hybrid-ai/site": "x"}), "hybrid-ai:hosts[3].labels.hybrid-ai/site", "set by hybrid-ai itself"),
    ("label under the program's prefix", set_in(["hosts", 3, "labels"], {f"{P}/location": "cloud"}), f"hybrid-ai:hosts[3].labels.{P}/location", "set by hybrid-ai itself"),
    ("bad label value", set_in(["hosts", 3, "labels"], {"team": "a b"}), "hybrid-ai:hosts[3].labels.team", "not a Kubernetes label value"),
    ("Kubernetes' own taint", set_in(["hosts", 3, "taints"], [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]), "hybrid-ai:hosts[3].taints[0].key", "a taint key of Kubernetes itself"),
    ("bad taint effect", set_in(["hosts", 3, "taints"], [{"key": "gpu", "effect": "Never"}]), "hybrid-ai:hosts[3].taints[0].effect", "'NoSchedule', 'PreferNoSchedule' or 'NoExecute'"),
    ("public API address without a public control plane", _private_control_plane, "hybrid-ai:cluster.apiServerAddress", "use 'vpn'"),
    ("tf-model on cloud nodes", set_in(["models", 3, "placement"], "cloud"), "hybrid-ai:models[3]", "use `placement: gpu`"),
    ("public model without a domain", set_in(["ingress"], {"tls": "none"}), "hybrid-ai:models[0].publicPath", "need `ingress.domain`"),
    ("maxReplicas below replicas", set_in(["models", 0, "maxReplicas"], 1), "hybrid-ai:models[0]", "`maxReplicas` is below `replicas`"),
    ("netmaker without its section", _netmaker_without_section, "hybrid-ai:vpn.netmaker", "needs this section"),
    ("netmaker section with wireguard", set_in(["vpn", "netmaker"], {"domain": "nm.example.com"}), "hybrid-ai:vpn.netmaker", "only used with `backend: netmaker`"),
    ("netmaker hub without a size", _netmaker(size=None), "hybrid-ai:hosts[0].size", "declare the hub's size"),
    ("netmaker hub too small", _netmaker(size={"cpus": 1, "memoryMb": 1024}), "hybrid-ai:hosts[0].size.memoryMb", "needs at least 2048 MB"),
    ("netmaker without a public hub", _netmaker(size={"cpus": 1, "memoryMb": 4096}, hub_public=False), "hybrid-ai:hosts[0].roles", "needs a public address"),
    ("netmaker with an operator key", _netmaker(size={"cpus": 1, "memoryMb": 4096}, operator=True), "hybrid-ai:vpn.operatorPublicKey", "remote-access client"),
    ("kubelet expansion in args", set_in(["models", 1, "args"], ["--token", "$(HF_TOKEN)"]), "hybrid-ai:models[1].args[1]", "write `$$(` for a literal"),
    ("kubelet expansion in command", set_in(["models", 1, "command"], ["sh", "-c", "x $$$(HOME)"]), "hybrid-ai:models[1].command[2]", "is expanded by Kubernetes"),
    ("kubelet expansion in env", set_in(["models", 1, "env"], {"URL": "https://x/$(TOKEN)"}), "hybrid-ai:models[1].env.URL", "secrets included"),
    ("ingress host not in the cluster", set_in(["hosts", 2, "roles"], ["ingress"]), "hybrid-ai:hosts[2].roles", "must also be `control-plane` or `worker`"),
    ("ingress host on-prem", _ingress_on_prem, "hybrid-ai:hosts[3].roles", "give `ingress` to a host at a cloud site"),
]


# --- Cross-field consistency (stacks/config/consistency/) ---

def _receipt_on_openstack(keep_host_key: bool) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        h = host(raw, "receipt")
        del h["existing"]
        h["openstack"] = {"flavor": "m1.small", "image": "ubuntu-22.04"}
        h["ssh"]["publicKey"] = "ssh-ed25519 AAAA"
        if not keep_host_key:
            del h["ssh"]["hostKey"]
        raw["openstack"] = {"externalNetwork": "public", "networkCidr": "10.20.0.0/24", "adminCidrs": ["198.51.100.0/26"]}
    return mutate


def _sizes(gpu_mb: int, cloud_mb: int) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        for h in raw["hosts"]:
            if h["name"] != "vpn-hub":
                h["size"] = {"cpus": 8, "memoryMb": gpu_mb if "gpu" in h else cloud_mb}
    return mutate


def _without_vpn_addresses(raw: Raw) -> None:
    for h in raw["hosts"]:
        h.pop("vpnAddress")


def _both(*mutations: Callable[[Raw], None]) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        for m in mutations:
            m(raw)
    return mutate


def _no_time_slicing(raw: Raw) -> None:
    del raw["timeSlicing"]


def _second_public_model(path: str) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        raw["models"].append({"name": "billing", "image": "ghcr.io/example/billing:1.0.0", "publicPath": path})
    return mutate


CROSS: list[tuple[str, Callable[[Raw], None], str, str]] = [
    # the workloads' namespace (restricted, default-deny) is no namespace of the system or of a chart
    *((f"workloads in {ns}", set_in(["cluster", "namespace"], ns), "hybrid-ai:cluster.namespace", "a namespace of their own")
      for ns in ("kube-system", "default", "kube-node-lease", "kube-public", "traefik")),
    ("workloads in the monitoring charts' namespace", set_in(["cluster", "namespace"], "monitoring"), "hybrid-ai:cluster.namespace", "the program creates it for the dcgm-exporter and kube-prometheus-stack and prometheus-adapter chart"),
    ("roll to the channel already run", set_in(["cluster", "upgrade"], {"fromChannel": "1.32/stable"}), "hybrid-ai:cluster.upgrade.fromChannel", "nothing to roll; remove it"),
    ("channel downgrade", _both(set_in(["cluster", "channel"], "1.31/stable"), set_in(["cluster", "upgrade"], {"fromChannel": "1.32/stable"})), "hybrid-ai:cluster.channel", "MicroK8s is not downgraded by a refresh; set a newer channel, or go back node by node with `snap revert microk8s`"),
    ("channel roll skipping a minor", set_in(["cluster", "upgrade"], {"fromChannel": "1.30/stable"}), "hybrid-ai:cluster.channel", "one minor at a time; roll to 1.31/stable first"),
    ("driver roll without a branch to roll to", set_in(["hosts", 3, "nvidia"], {"fromDriverVersion": "535"}), "hybrid-ai:hosts[3].nvidia.fromDriverVersion", "only used with `installDriver: true` and a `driverVersion`"),
    ("driver roll on a host whose driver is its own", set_in(["hosts", 4, "nvidia"], {"installDriver": False, "driverVersion": "550", "fromDriverVersion": "535"}), "hybrid-ai:hosts[4].nvidia.fromDriverVersion", "set them or remove it"),
    ("driver downgrade", set_in(["hosts", 3, "nvidia"], {"driverVersion": "535", "fromDriverVersion": "550"}), "hybrid-ai:hosts[3].nvidia.driverVersion", "does not downgrade a driver; set a newer driverVersion"),
    ("driver roll to the branch already run", set_in(["hosts", 3, "nvidia"], {"driverVersion": "535-server", "fromDriverVersion": "535"}), "hybrid-ai:hosts[3].nvidia.fromDriverVersion", "nothing to roll; remove it"),
    # uniqueness
    ("SSH address used twice", set_in(["hosts", 4, "existing", "address"], "198.51.100.21"), "hybrid-ai:hosts[4].existing.address", "already the address of host 'ws-1'; give each host its own address or SSH port"),
    ("public endpoint used twice", set_in(["hosts", 2, "existing", "publicAddress"], "203.0.113.11"), "hybrid-ai:hosts[2].existing.publicAddress", "each host needs its own"),
    ("LAN address used twice in a site", set_in(["hosts", 2, "existing", "lanAddress"], "192.0.2.11"), "hybrid-ai:hosts[2].existing.lanAddress", "already the lanAddress of host 'receipt'"),
    ("public path used twice", _second_public_model("/receipt"), "hybrid-ai:models[5].publicPath", "already routes to 'receipt-api'"),
    ("public path used twice with a trailing slash", _second_public_model("/receipt/"), "hybrid-ai:models[5].publicPath", "its own path"),
    ("talksTo lists a peer twice", set_in(["models", 0, "talksTo"], ["redis", "redis"]), "hybrid-ai:models[0].talksTo", "list each peer once"),
    ("duplicate site", lambda raw: raw["sites"].append(dict(raw["sites"][1])), "hybrid-ai:sites[2].name", "used twice"),
    ("duplicate time-slicing profile", lambda raw: raw["timeSlicing"]["profiles"].append({"name": "rtx-3090", "replicas": 2}), "hybrid-ai:timeSlicing.profiles[1].name", "used twice"),
    ("SSH key and TLS bundle in one key", set_in(["ingress"], {"domain": "api.example.com", "tls": "byo", "tlsCertConfig": "sshPrivateKey"}), "hybrid-ai:ingress.tlsCertConfig", "keep each secret in its own key"),
    ("secret key named like a section", set_in(["hosts", 0, "ssh", "privateKeyConfig"], "vpn"), "hybrid-ai:hosts[0].ssh.privateKeyConfig", "is a config section"),
    # ranges
    ("operator address outside the overlay", _both(set_in(["vpn", "operatorPublicKey"], "aGVsbG8taHlicmlkLWFpLW9wZXJhdG9yLWtleS0xMjM="), set_in(["vpn", "operatorAddress"], "10.9.9.9")), "hybrid-ai:vpn.operatorAddress", "pick one inside it"),
    ("operator address is the overlay's broadcast", _both(set_in(["vpn", "operatorPublicKey"], "aGVsbG8taHlicmlkLWFpLW9wZXJhdG9yLWtleS0xMjM="), set_in(["vpn", "operatorAddress"], "100.64.255.255")), "hybrid-ai:vpn.operatorAddress", "not a usable address"),
    ("operator address taken by a host", _both(set_in(["vpn", "operatorPublicKey"], "aGVsbG8taHlicmlkLWFpLW9wZXJhdG9yLWtleS0xMjM="), set_in(["vpn", "operatorAddress"], "100.64.1.2")), "hybrid-ai:hosts[4].vpnAddress", "operator peer's address"),
    ("host address inside the overlay", set_in(["hosts", 3, "existing", "address"], "100.64.9.9"), "hybrid-ai:hosts[3].existing.address", "inside vpn.overlayCidr"),
    ("host address inside the pod network", set_in(["hosts", 3, "existing", "address"], "10.1.2.3"), "hybrid-ai:hosts[3].existing.address", "inside cluster.podCidr"),
    ("loopback public address", set_in(["hosts", 1, "existing", "publicAddress"], "127.0.0.1"), "hybrid-ai:hosts[1].existing.publicAddress", "loopback"),
    ("LAN address outside the site LAN", set_in(["hosts", 2, "existing", "lanAddress"], "192.0.2.200"), "hybrid-ai:hosts[2].existing.lanAddress", "outside site 'cloud' lanCidr"),
    ("IPv6 LAN address on an IPv4 LAN", set_in(["hosts", 2, "existing", "lanAddress"], "2001:db8::12"), "hybrid-ai:hosts[2].existing.lanAddress", "outside site 'cloud' lanCidr"),
    ("overlay too small for the hosts", _both(set_in(["vpn", "overlayCidr"], "100.64.0.0/30"), _without_vpn_addresses), "hybrid-ai:vpn.overlayCidr", "use a larger range"),
    ("VPN address is the overlay's network address", set_in(["hosts", 3, "vpnAddress"], "100.64.0.0"), "hybrid-ai:hosts[3].vpnAddress", "not a usable address"),
    ("pods overlap services", set_in(["cluster", "serviceCidr"], "10.1.200.0/24"), "hybrid-ai:cluster.serviceCidr", "overlaps cluster.podCidr"),
    ("pods overlap an office LAN", set_in(["cluster", "podCidr"], "198.51.100.0/24"), "hybrid-ai:sites[1].lanCidr", "overlaps cluster.podCidr"),
    ("services overlap the OpenStack network", _both(_receipt_on_openstack(False), set_in(["cluster", "serviceCidr"], "10.20.0.0/24")), "hybrid-ai:openstack.networkCidr", "overlaps cluster.serviceCidr"),
    # ports
    ("WireGuard on Calico's VXLAN port", set_in(["vpn", "port"], 4789), "hybrid-ai:vpn.port", "Calico's VXLAN port"),
    ("SSH on the API server port", set_in(["hosts", 3, "ssh", "port"], 16443), "hybrid-ai:hosts[3].ssh.port", "MicroK8s' API server port"),
    ("SSH on the cluster-agent port", set_in(["hosts", 1, "ssh", "port"], 25000), "hybrid-ai:hosts[1].ssh.port", "cluster-agent"),
    ("SSH on the ingress HTTPS port", set_in(["hosts", 2, "ssh", "port"], 443), "hybrid-ai:hosts[2].ssh.port", "ingress controller's"),
    # requests within limits
    ("CPU request above its limit", set_in(["models", 0, "cpu"], "3000m"), "hybrid-ai:models[0].cpu", "above `cpuLimit` 2"),
    ("more GPUs per pod than any host has", _both(_no_time_slicing, set_in(["models", 1, "gpus"], 2)), "hybrid-ai:models[1].gpus", "request at most 1"),
    ("GPU requests above capacity", set_in(["models", 2, "replicas"], 7), "hybrid-ai:models:", "the GPU hosts offer 8"),
    ("model memory above every GPU node", _both(_sizes(8192, 4096), set_in(["models", 1, "memory"], "16Gi")), "hybrid-ai:models[1].memory", "more than any gpu node has"),
    ("TF-Serving memory above every GPU node", _both(_sizes(4096, 4096), set_in(["models", 1, "memory"], "1Gi"), set_in(["models", 2, "memory"], "1Gi")), "hybrid-ai:tfServing.memory", "more than any gpu node has"),
    ("cloud model memory above every cloud node", _both(_sizes(32768, 1024), set_in(["models", 0, "memory"], "2Gi")), "hybrid-ai:models[0].memory", "more than any cloud node has"),
    # a model's cache
    ("cache with two replicas", set_in(["models", 1, "replicas"], 2), "hybrid-ai:models[1].cache", "use `replicas: 1` or remove `cache`"),
    ("hostpath cache on tainted GPU hosts", set_in(["hosts", 3, "taints"], [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]), "hybrid-ai:models[1].cache.storageClass", "set a storage class whose provisioner runs there"),
    ("explicit hostpath cache on tainted GPU hosts", _both(set_in(["hosts", 3, "taints"], [{"key": "gpu", "value": "true", "effect": "NoExecute"}]), set_in(["models", 1, "cache", "storageClass"], "microk8s-hostpath")), "hybrid-ai:models[1].cache.storageClass", "no tolerations"),
    # settings that would be ignored or overridden
    ("host key on an OpenStack VM", _receipt_on_openstack(True), "hybrid-ai:hosts[1].ssh.hostKey", "overrides this one"),
    ("public key on an existing host", set_in(["hosts", 1, "ssh", "publicKey"], "ssh-ed25519 AAAA"), "hybrid-ai:hosts[1].ssh.publicKey", "only used to create OpenStack VMs"),
    ("NVIDIA settings on a host without GPU", set_in(["hosts", 1, "nvidia"], {"installDriver": False}), "hybrid-ai:hosts[1].nvidia", "only used on hosts with `gpu`"),
    ("GPU on a host outside the cluster", set_in(["hosts", 0, "gpu"], {"model": "rtx-3090"}), "hybrid-ai:hosts[0].gpu", "add role `worker`"),
    ("labels on a host outside the cluster", set_in(["hosts", 0, "labels"], {"team": "ops"}), "hybrid-ai:hosts[0].labels", "so this is ignored"),
    ("GPU profile without time-slicing", _both(_no_time_slicing, set_in(["hosts", 3, "gpu"], {"model": "rtx-3090", "count": 2, "profile": "rtx-3090"})), "hybrid-ai:hosts[3].gpu.profile", "no timeSlicing.profiles"),
    ("maxReplicas on an internal model", set_in(["models", 1, "maxReplicas"], 3), "hybrid-ai:models[1].maxReplicas", "only public models autoscale"),
    ("image on a tf-model", set_in(["models", 3, "image"], "ghcr.io/example/x:1.0.0"), "hybrid-ai:models[3].image", "tfServing.image"),
    ("gpus on a tf-model", set_in(["models", 3, "gpus"], 1), "hybrid-ai:models[3].gpus", "tfServing.gpus"),
    ("tf settings on a service", set_in(["models", 0, "tf"], {"basePath": "/models/x", "version": 1, "source": "https://models.example.com/x.tar.gz", "sha256": "1" * 64}), "hybrid-ai:models[0].tf", "only used with `kind: tf-model`"),
    ("ACME e-mail without Let's Encrypt", set_in(["ingress", "tls"], "none"), "hybrid-ai:ingress.acmeEmail", "remove it or change `tls`"),
    ("TLS bundle key with Let's Encrypt", set_in(["ingress", "tlsCertConfig"], "tlsBundle"), "hybrid-ai:ingress.tlsCertConfig", "only used with `tls: byo`"),
    ("operator address without operator key", set_in(["vpn", "operatorAddress"], "100.64.200.1"), "hybrid-ai:vpn.operatorAddress", "only used with vpn.operatorPublicKey"),
    ("OpenStack section without OpenStack hosts", set_in(["openstack"], {"externalNetwork": "public", "networkCidr": "10.20.0.0/24", "adminCidrs": ["198.51.100.0/26"]}), "hybrid-ai:openstack:", "this section is unused"),
]
BAD += CROSS
