"""The stack config schema: what a `Pulumi.<stack>.yaml` may say, and what it must not.

Each top-level field is one Pulumi config key in the project namespace (`hybrid-ai:hosts`,
`hybrid-ai:vpn`, ...). Keys are camelCase in YAML, as Pulumi users expect. Secrets never
live in this model: hosts name the config key that holds their SSH private key, and the
loader reads that key as a Pulumi secret (see `stacks/load.py`).

Cross-field rules sit in `model_validator`s and raise `ValueError("<key path>: <what is
wrong>; <what would be right>")`, so that every rejection names the config key to fix.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections import Counter
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    model_validator,
)
from pydantic.alias_generators import to_camel

IPv4Network = ipaddress.IPv4Network

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
# Pulumi config key names as accepted by `pulumi config set` (no namespace).
CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
# Node labels the program sets from the rest of the config.
MANAGED_LABELS = ("nvidia.com/device-plugin.config", "nvidia.com/gpu.present")
# Services the stack always runs; models may name them in `talksTo` but not reuse the names.
BUILTIN_SERVICES = ("redis", "tf-serving")
SSH_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
# An image reference pinned by tag or digest: "repo[:port]/path:tag" or "...@sha256:<64 hex>".
PINNED_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*(/[a-z0-9._-]+)?(:[A-Za-z0-9._-]{1,128}|@sha256:[0-9a-f]{64})$")


def _dns_label(value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a DNS label; use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. 'gpu-ws-1')"
        )
    return value


def _host_key(value: str) -> str:
    """An OpenSSH public host key line: '<type> <base64>' with an optional comment."""
    parts = value.split()
    hint = "use the host's key line as printed by `ssh-keyscan -t ed25519 HOST` without the host name, e.g. 'ssh-ed25519 AAAAC3Nza...'"
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(f"not an SSH public key line; {hint}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise ValueError(f"the key is not valid base64; {hint}") from None
    # The blob starts with the key type as an SSH string: 4-byte length, then the name.
    name_len = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + name_len].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"the key data does not match its type '{parts[0]}'; {hint}")
    return " ".join(parts[:2])


def _wireguard_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("not a WireGuard public key; use the 44-character base64 key printed by `wg pubkey`")
    return value


def _config_key(value: str) -> str:
    if not CONFIG_KEY.match(value):
        raise ValueError(f"'{value}' is not a config key name; use letters, digits, '-' and '_' (e.g. 'sshPrivateKey')")
    return value


def _hostname_or_ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not HOSTNAME.match(value):
        raise ValueError(f"'{value}' is neither an IP address nor a host name")
    return value


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if (prefix and not HOSTNAME.match(prefix)) or not LABEL_NAME.match(name):
        raise ValueError(f"'{value}' is not a Kubernetes label key; use [prefix/]name, name up to 63 of [A-Za-z0-9-_.]")
    if prefix == "hybrid-ai" or value in MANAGED_LABELS:
        raise ValueError(f"'{value}' is set by hybrid-ai itself; remove it")
    return value


def _label_value(value: str) -> str:
    if value and not LABEL_NAME.match(value):
        raise ValueError(f"'{value}' is not a Kubernetes label value; up to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric")
    return value


def _pinned_image(value: str) -> str:
    if not PINNED_IMAGE.match(value) or value.endswith(":latest"):
        raise ValueError(
            f"image '{value}' is not pinned; add a version tag other than 'latest' or a digest "
            "(e.g. 'ghcr.io/acme/receipt-api:1.4.2' or '...@sha256:<digest>')"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
HostKey = Annotated[str, AfterValidator(_host_key)]
WireGuardPublicKey = Annotated[str, AfterValidator(_wireguard_key)]
ConfigKeyName = Annotated[str, AfterValidator(_config_key)]
HostAddress = Annotated[str, AfterValidator(_hostname_or_ip)]
PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Schema(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=True
    )


class Role(StrEnum):
    VPN_HUB = "vpn-hub"
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"
    INGRESS = "ingress"


class Site(Schema):
    name: DnsLabel = Field(description="Site name, referenced by hosts' `site`.")
    kind: Literal["cloud", "on-prem"] = Field(description="Where the site is: `cloud` or `on-prem`.")
    nat: bool = Field(
        default=False,
        description="True when the site's hosts have no public address (behind NAT); they then keep their VPN tunnels alive and reach other NAT'd sites through the hub.",
    )
    lan_cidr: IPv4Network | None = Field(
        default=None,
        description="The site's LAN, e.g. `198.51.100.0/24`. Hosts of one site talk to each other directly over it.",
    )


class SshConfig(Schema):
    user: str = Field(default="ubuntu", description="SSH login user; it must be root or have password-less sudo.")
    port: Port = Field(default=22, description="SSH port.")
    private_key_config: ConfigKeyName = Field(
        default="sshPrivateKey",
        description="Name of the (secret) config key that holds this host's SSH private key, set with `pulumi config set --secret <name> < key`.",
    )
    public_key: str | None = Field(
        default=None,
        description="OpenSSH public key matching the private key; required for OpenStack hosts (installed as the VM's key pair).",
    )
    host_key: HostKey | None = Field(
        default=None,
        description="The host's SSH public host key (`ssh-ed25519 AAAA...`), pinned in every connection. Required for existing hosts; generated by the program for OpenStack VMs.",
    )
    jump_host: DnsLabel | None = Field(
        default=None, description="Name of another host to reach this one through (SSH jump host)."
    )


class ExistingHost(Schema):
    address: HostAddress = Field(description="Address the program connects to over SSH (on-prem: often the LAN address, reached through a jump host).")
    public_address: IPvAnyAddress | None = Field(
        default=None, description="Public address other VPN peers can reach this host on (hosts in NAT'd sites have none)."
    )
    lan_address: IPvAnyAddress | None = Field(
        default=None, description="Address on the site's LAN; defaults to `address` when that lies in the site's `lanCidr`."
    )


class OpenStackHost(Schema):
    flavor: str = Field(description="OpenStack flavor name, e.g. `m1.medium`.")
    image: str = Field(description="Image name, e.g. `ubuntu-22.04`.")
    public_ip: bool = Field(default=True, description="Attach a floating IP (needed for the VPN hub and ingress nodes).")
    volume_size_gb: int | None = Field(default=None, ge=10, description="Boot volume size; the flavor's disk when unset.")


class Gpu(Schema):
    model: DnsLabel = Field(description="GPU kind, e.g. `rtx-3090`; becomes the node label `hybrid-ai/gpu-model`.")
    count: int = Field(default=1, ge=1, le=16, description="Physical GPUs in the host.")
    profile: DnsLabel | None = Field(
        default=None, description="Time-slicing profile (from `timeSlicing.profiles`); defaults to the GPU model name."
    )


class NvidiaSetup(Schema):
    install_driver: bool = Field(default=True, description="Install the NVIDIA driver; false on machines that already have it.")
    driver_version: str | None = Field(
        default=None, pattern=r"^[0-9]{3}(-server)?$", description="Driver branch, e.g. `535`; the distribution's recommended one when unset."
    )
    install_toolkit: bool = Field(default=True, description="Install the NVIDIA container toolkit.")


class Taint(Schema):
    key: LabelKey = Field(description="Taint key, e.g. `hybrid-ai.example.com/gpu`.")
    value: LabelValue = Field(default="", description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(description="What the taint does to pods that do not tolerate it.")


class Host(Schema):
    name: DnsLabel = Field(description="Host name; also the Kubernetes node name.")
    site: DnsLabel = Field(description="Name of the site the host is in.")
    roles: list[Role] = Field(min_length=1, description="Any of `vpn-hub`, `control-plane`, `worker`, `ingress`.")
    existing: ExistingHost | None = Field(default=None, description="An existing machine, reached by address (no cloud API).")
    openstack: OpenStackHost | None = Field(default=None, description="A VM the program creates on OpenStack.")
    ssh: SshConfig = Field(default_factory=SshConfig, description="How to reach the host over SSH.")
    vpn_address: ipaddress.IPv4Address | None = Field(
        default=None, description="Overlay address; derived stably from the host name when unset."
    )
    gpu: Gpu | None = Field(default=None, description="The host's GPUs, if any.")
    nvidia: NvidiaSetup = Field(default_factory=NvidiaSetup, description="NVIDIA driver and toolkit set-up on GPU hosts.")
    size: HostSize | None = Field(default=None, description="The machine's size, where a step must check it (the Netmaker hub).")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Extra Kubernetes node labels. The program itself sets `hybrid-ai/site`, `hybrid-ai/location`, `hybrid-ai/gpu-model` and `nvidia.com/device-plugin.config`.",
    )
    taints: list[Taint] = Field(default_factory=list, description="Kubernetes node taints.")

    @model_validator(mode="after")
    def _one_provisioner(self) -> Host:
        if (self.existing is None) == (self.openstack is None):
            raise ValueError("set exactly one of `existing` (a machine you have) or `openstack` (a VM to create)")
        return self

    @property
    def in_cluster(self) -> bool:
        return Role.CONTROL_PLANE in self.roles or Role.WORKER in self.roles


NETMAKER_MIN_MEMORY_MB = 2048


class NetmakerConfig(Schema):
    version: str = Field(default="v0.90.0", pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$", description="Netmaker server and netclient version (pinned).")
    domain: HostAddress = Field(description="Domain of the Netmaker server; `api.`, `broker.` and `dashboard.` under it must resolve to the hub's public address.")
    network: DnsLabel = Field(default="hybrid-ai", description="Netmaker network name.")
    enrollment_key_ttl_hours: int = Field(default=24, ge=1, le=720, description="Lifetime of the stack's enrollment key.")
    spare_enrollments: int = Field(default=2, ge=0, le=100, description="Uses of the enrollment key beyond one per host (re-joins).")


class HostSize(Schema):
    cpus: int = Field(ge=1, description="CPU cores.")
    memory_mb: int = Field(ge=256, description="Memory in MB.")


class Vpn(Schema):
    backend: Literal["wireguard", "netmaker"] = Field(default="wireguard", description="VPN implementation: WireGuard declared by the program, or a Netmaker server on the hub.")
    netmaker: NetmakerConfig | None = Field(default=None, description="Netmaker settings; required with `backend: netmaker`.")
    overlay_cidr: IPv4Network = Field(
        default=IPv4Network("100.64.0.0/16"), description="Overlay network for VPN addresses; must not overlap pod, service or LAN CIDRs."
    )
    port: Port = Field(default=51820, description="WireGuard UDP listen port on every host.")
    mtu: int = Field(
        default=1380, ge=1280, le=1420,
        description="Tunnel MTU. The cluster network uses 50 bytes less (VXLAN inside WireGuard).",
    )
    keepalive_seconds: int = Field(default=25, ge=1, le=300, description="PersistentKeepalive of NAT'd hosts.")
    operator_public_key: WireGuardPublicKey | None = Field(
        default=None, description="WireGuard public key of the operator's laptop; adds it as a peer of the hub."
    )
    operator_address: ipaddress.IPv4Address | None = Field(
        default=None, description="The operator peer's overlay address; the last usable address of the overlay when unset."
    )


class Cluster(Schema):
    channel: str = Field(default="1.32/stable", pattern=r"^[0-9]+\.[0-9]+(-[a-z]+)?/(stable|candidate|beta|edge)$", description="MicroK8s snap channel.")
    pod_cidr: IPv4Network = Field(default=IPv4Network("10.1.0.0/16"), description="Pod network (Calico).")
    service_cidr: IPv4Network = Field(default=IPv4Network("10.152.183.0/24"), description="Service network.")
    join_token_ttl_seconds: int = Field(default=3600, ge=300, le=86400, description="Lifetime of the one join token all nodes use.")
    image_pull_timeout: str = Field(
        default="30m", pattern=r"^[1-9][0-9]*[smh]$",
        description="Kubelet runtime request timeout, so multi-GB model images on slow on-prem links are not cut off.",
    )
    namespace: DnsLabel = Field(default="hybrid-ai", description="Namespace of the workloads (Pod Security `restricted`).")
    api_server_address: Literal["public", "vpn"] = Field(
        default="public",
        description="Server address in the exported kubeconfig: the control plane's public address, or its VPN address when the operator is a VPN peer.",
    )


class TimeSlicingProfile(Schema):
    name: DnsLabel = Field(description="Profile name; nodes select it by label `nvidia.com/device-plugin.config`.")
    replicas: int = Field(ge=1, description="Pods that may share one GPU.")


class TimeSlicing(Schema):
    profiles: list[TimeSlicingProfile] = Field(default_factory=list, description="One profile per GPU kind.")
    default_profile: DnsLabel | None = Field(default=None, description="Profile for GPU nodes that name none.")
    max_replicas: int = Field(default=8, ge=1, le=64, description="Upper bound on any profile's replicas (no memory isolation between sharers).")


class TfModel(Schema):
    base_path: str = Field(pattern=r"^(gs|s3|/)", description="Where TF-Serving finds the model versions (`/models/...`, `s3://`, `gs://`).")
    version: int = Field(ge=1, description="Pinned model version, so no model is unloaded by accident.")
    source: str | None = Field(default=None, pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/%+=&?-]*$", description="HTTPS URL of a .tar.gz of this version's SavedModel (saved_model.pb, variables/); fetched into `<basePath>/<version>` of the models volume before TF-Serving starts. Needs `sha256` and a basePath under `/models/`.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the `source` archive; a download that does not match is refused.")

    @model_validator(mode="after")
    def _source_fields(self) -> TfModel:
        if self.source is not None and self.sha256 is None:
            raise ValueError("`source` needs `sha256` (of the archive), so a changed download is refused")
        if self.source is not None and not re.fullmatch(r"/models/[A-Za-z0-9._-]+", self.base_path):
            raise ValueError("with `source`, `basePath` must be `/models/<name>` (the models volume)")
        return self


class Model(Schema):
    name: DnsLabel = Field(description="Model or service name; becomes the Deployment, Service and TF model name.")
    kind: Literal["service", "tf-model"] = Field(default="service", description="`service` runs its own image; `tf-model` is served by TF-Serving.")
    image: PinnedImage | None = Field(default=None, description="Container image pinned by tag or digest (kind `service`).")
    placement: Literal["cloud", "gpu"] = Field(default="cloud", description="Run on cloud nodes or on GPU workstations.")
    port: Port = Field(default=8080, description="Container port.")
    replicas: int = Field(default=1, ge=0, le=100, description="Desired replicas (the minimum when autoscaled).")
    gpus: int = Field(default=0, ge=0, description="`nvidia.com/gpu` per pod (placement `gpu`); at most 1 with time-slicing.")
    cpu: str = Field(default="250m", pattern=r"^[0-9]+m?$", description="CPU request.")
    memory: str = Field(default="512Mi", pattern=r"^[0-9]+(Mi|Gi)$", description="Memory request and limit.")
    public_path: str | None = Field(default=None, pattern=r"^/[a-z0-9/_-]*$", description="Path on the ingress host that routes here; internal only when unset.")
    health_path: str = Field(default="/healthz", pattern=r"^/[A-Za-z0-9/_.-]*$", description="HTTP path of the liveness/readiness/startup probes.")
    cpu_limit: str = Field(default="2", pattern=r"^[0-9]+m?$", description="CPU limit.")
    max_replicas: int | None = Field(default=None, ge=1, le=100, description="Autoscaling ceiling for public models; 3 x replicas when unset.")
    talks_to: list[DnsLabel] = Field(default_factory=list, description="Models (or `redis`) this one calls; the network policies allow only these.")
    tf: TfModel | None = Field(default=None, description="TF-Serving model settings (kind `tf-model`).")

    @model_validator(mode="after")
    def _kind_fields(self) -> Model:
        if self.kind == "service" and self.image is None:
            raise ValueError("a `service` model needs `image`")
        if self.kind == "tf-model" and self.tf is None:
            raise ValueError("a `tf-model` needs `tf` (basePath and version)")
        if self.gpus and self.placement != "gpu":
            raise ValueError("`gpus` needs `placement: gpu`")
        if self.kind == "tf-model" and self.placement != "gpu":
            raise ValueError("a `tf-model` is served by TF-Serving on the GPU nodes; use `placement: gpu`")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError("`maxReplicas` is below `replicas`")
        return self


class Ingress(Schema):
    domain: HostAddress | None = Field(default=None, description="Public host name of the API, e.g. `api.example.com`.")
    acme_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="E-mail for Let's Encrypt.")
    tls: Literal["letsencrypt", "letsencrypt-staging", "byo", "none"] = Field(
        default="none", description="TLS mode: Let's Encrypt (production or staging; needs `domain` and `acmeEmail`), bring-your-own secret, or none."
    )
    tls_cert_config: ConfigKeyName | None = Field(
        default=None, description="With `tls: byo`: secret config key holding the PEM certificate and key."
    )

    @model_validator(mode="after")
    def _tls_inputs(self) -> Ingress:
        if self.tls.startswith("letsencrypt") and (self.domain is None or self.acme_email is None):
            raise ValueError(f"tls '{self.tls}' needs `domain` and `acmeEmail`; set both or use `tls: none`")
        if self.tls == "byo" and self.tls_cert_config is None:
            raise ValueError("tls 'byo' needs `tlsCertConfig`, the secret config key holding the certificate")
        return self


class TfServing(Schema):
    image: PinnedImage = Field(default="tensorflow/serving:2.18.0-gpu", description="TF-Serving image (GPU build), pinned.")
    gpus: int = Field(default=1, ge=1, le=1, description="`nvidia.com/gpu` for the server (1 with time-slicing).")
    memory: str = Field(default="8Gi", pattern=r"^[0-9]+(Mi|Gi)$", description="Memory request and limit.")
    poll_seconds: int = Field(default=30, ge=5, le=3600, description="How often TF-Serving re-reads its model list.")
    storage_size: str = Field(default="50Gi", pattern=r"^[0-9]+(Mi|Gi|Ti)$", description="Size of the volume holding local models (`/models/...`).")
    storage_class: str | None = Field(default=None, description="Storage class of that volume; MicroK8s' `microk8s-hostpath` (addon hostpath-storage) when unset.")


class Registry(Schema):
    server: HostAddress = Field(description="Private registry host, e.g. `ghcr.io`.")
    username: str = Field(description="Registry user.")
    password_config: ConfigKeyName = Field(description="Secret config key holding the registry password or token.")


class OpenStack(Schema):
    external_network: str = Field(description="Name of the external network floating IPs come from.")
    network_cidr: IPv4Network = Field(default=IPv4Network("192.0.2.0/24"), description="CIDR of the private network the program creates.")
    dns_nameservers: list[ipaddress.IPv4Address] = Field(default_factory=list, description="DNS servers for the private subnet.")
    admin_cidrs: list[IPv4Network] = Field(min_length=1, description="Networks allowed to SSH in; never `0.0.0.0/0`.")

    @model_validator(mode="after")
    def _no_world_ssh(self) -> OpenStack:
        for i, cidr in enumerate(self.admin_cidrs):
            if cidr.prefixlen == 0:
                raise ValueError(f"adminCidrs[{i}]: SSH open to the world; list your admin networks instead")
        return self


def derived_vpn_address(name: str, overlay: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """A stable overlay address from the host name alone, so adding a host never moves another."""
    usable = overlay.num_addresses - 3  # network, broadcast and the operator's last address
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return overlay.network_address + 1 + digest % usable


class StackConfig(Schema):
    """The whole stack: one field per `hybrid-ai:<key>` config key."""

    sites: list[Site] = Field(min_length=1, description="Where hosts live.")
    hosts: list[Host] = Field(min_length=1, description="Every machine of the stack.")
    vpn: Vpn = Field(default_factory=Vpn, description="The VPN mesh.")
    cluster: Cluster = Field(default_factory=Cluster, description="The MicroK8s cluster.")
    time_slicing: TimeSlicing = Field(default_factory=TimeSlicing, description="GPU sharing profiles.")
    models: list[Model] = Field(default_factory=list, description="The model catalog.")
    ingress: Ingress = Field(default_factory=Ingress, description="Public entry and TLS.")
    tf_serving: TfServing = Field(default_factory=TfServing, description="TensorFlow Serving for the catalog's `tf-model` entries.")
    registry: Registry | None = Field(default=None, description="Private registry credentials (an image pull secret for every workload).")
    openstack: OpenStack | None = Field(default=None, description="OpenStack settings; required when any host has `openstack`.")

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def vpn_address(self, host: Host) -> ipaddress.IPv4Address:
        return host.vpn_address or derived_vpn_address(host.name, self.vpn.overlay_cidr)

    def operator_address(self) -> ipaddress.IPv4Address:
        return self.vpn.operator_address or self.vpn.overlay_cidr.broadcast_address - 1

    def hosts_with(self, role: Role) -> list[Host]:
        return [h for h in self.hosts if role.value in h.roles]

    def profile_of(self, host: Host) -> str | None:
        if host.gpu is None:
            return None
        return host.gpu.profile or self.time_slicing.default_profile or host.gpu.model

    def replicas_of(self, host: Host) -> int:
        """Pods sharing each of the host's GPUs (1 without a time-slicing profile)."""
        profile = self.profile_of(host)
        return next((p.replicas for p in self.time_slicing.profiles if p.name == profile), 1)

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        errors: list[str] = []
        errors += _unique("sites", [s.name for s in self.sites])
        errors += _unique("hosts", [h.name for h in self.hosts])
        errors += _unique("models", [m.name for m in self.models])
        errors += _unique("timeSlicing.profiles", [p.name for p in self.time_slicing.profiles])
        errors += self._check_networks()
        errors += self._check_hosts()
        errors += self._check_roles()
        errors += self._check_gpus_and_models()
        errors += self._check_deployer_reach()
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _check_networks(self) -> list[str]:
        named = [("vpn.overlayCidr", self.vpn.overlay_cidr), ("cluster.podCidr", self.cluster.pod_cidr),
                 ("cluster.serviceCidr", self.cluster.service_cidr)]
        named += [(f"sites[{i}].lanCidr", s.lan_cidr) for i, s in enumerate(self.sites) if s.lan_cidr]
        if self.openstack:
            named.append(("openstack.networkCidr", self.openstack.network_cidr))
        errors = []
        for i, (key_a, net_a) in enumerate(named):
            for key_b, net_b in named[i + 1:]:
                # LANs of different sites may reuse private ranges; only the cluster/overlay ranges must be unique.
                if key_a.startswith("sites") and key_b.startswith(("sites", "openstack")):
                    continue
                if net_a.overlaps(net_b):
                    errors.append(f"{key_b}: {net_b} overlaps {key_a} {net_a}; choose ranges that do not overlap")
        return errors

    def _check_hosts(self) -> list[str]:
        errors = []
        names = {h.name for h in self.hosts}
        site_names = {s.name for s in self.sites}
        seen_vpn: dict[ipaddress.IPv4Address, str] = {}
        looped: set[str] = set()
        for i, h in enumerate(self.hosts):
            key = f"hosts[{i}]"
            if h.site not in site_names:
                errors.append(f"{key}.site: unknown site '{h.site}'; use one of: {', '.join(sorted(site_names))}")
                continue
            site = self.site(h.site)
            if h.openstack is not None:
                if site.kind != "cloud":
                    errors.append(f"{key}.openstack: site '{site.name}' is on-prem; OpenStack VMs belong to a `kind: cloud` site")
                if self.openstack is None:
                    errors.append(f"{key}.openstack: needs the `hybrid-ai:openstack` config key (externalNetwork, adminCidrs)")
                if h.ssh.public_key is None:
                    errors.append(f"{key}.ssh.publicKey: OpenStack hosts need the public half of the SSH key to install")
            if h.existing is not None:
                if h.ssh.host_key is None:
                    errors.append(f"{key}.ssh.hostKey: existing hosts need their pinned host key; get it with `ssh-keyscan -t ed25519 {h.existing.address}`")
                if h.existing.public_address is not None and site.nat:
                    errors.append(f"{key}.existing.publicAddress: site '{site.name}' is behind NAT; remove the public address or set the site's `nat: false`")
                lan = self.lan_address(h)
                if h.existing.lan_address is not None and site.lan_cidr and lan not in site.lan_cidr:
                    errors.append(f"{key}.existing.lanAddress: {lan} is outside site '{site.name}' lanCidr {site.lan_cidr}")
            if h.ssh.jump_host is not None:
                if h.ssh.jump_host == h.name:
                    errors.append(f"{key}.ssh.jumpHost: a host cannot be its own jump host")
                elif h.ssh.jump_host not in names:
                    errors.append(f"{key}.ssh.jumpHost: unknown host '{h.ssh.jump_host}'; use one of the `hosts` names")
                elif h.name not in looped and (loop := self._jump_loop(h)):
                    looped |= loop
                    errors.append(f"{key}.ssh.jumpHost: jump hosts loop back to '{h.name}'; one host in the chain must be reachable directly")
            addr = self.vpn_address(h)
            if addr not in self.vpn.overlay_cidr or addr in (self.vpn.overlay_cidr.network_address, self.vpn.overlay_cidr.broadcast_address):
                errors.append(f"{key}.vpnAddress: {addr} is not a usable address of vpn.overlayCidr {self.vpn.overlay_cidr}")
            elif addr == self.operator_address():
                errors.append(f"{key}.vpnAddress: {addr} is the operator peer's address; pick another")
            elif addr in seen_vpn:
                errors.append(f"{key}.vpnAddress: {addr} is already used by host '{seen_vpn[addr]}'; set `vpnAddress` explicitly on one of them")
            else:
                seen_vpn[addr] = h.name
        return errors

    def _check_roles(self) -> list[str]:
        errors = []
        control = self.hosts_with(Role.CONTROL_PLANE)
        if len(control) != 1:
            errors.append(f"hosts: {len(control)} hosts have role `control-plane`; exactly one must (the one that mints the join token)")
        elif self.cluster.api_server_address == "public" and not self.has_public_endpoint(control[0]):
            errors.append(f"cluster.apiServerAddress: 'public' but the control plane '{control[0].name}' has no public address; give it one or use 'vpn'")
        hubs = self.hosts_with(Role.VPN_HUB)
        if len(hubs) > 1:
            errors.append(f"hosts: {len(hubs)} hosts have role `vpn-hub`; at most one may")
        for h in hubs:
            i = self.hosts.index(h)
            if not self.has_public_endpoint(h):
                errors.append(f"hosts[{i}].roles: the `vpn-hub` '{h.name}' needs a public address (`existing.publicAddress` or `openstack.publicIp: true`)")
        nat_sites = [s.name for s in self.sites if s.nat and any(h.site == s.name for h in self.hosts)]
        if nat_sites and not hubs:
            errors.append(f"hosts: site(s) {', '.join(nat_sites)} are behind NAT but no host with a public address has role `vpn-hub`; give one public host the `vpn-hub` role")
        for h in self.hosts_with(Role.INGRESS):
            if not self.has_public_endpoint(h):
                errors.append(f"hosts[{self.hosts.index(h)}].roles: ingress host '{h.name}' needs a public address")
            if not h.in_cluster:
                errors.append(f"hosts[{self.hosts.index(h)}].roles: ingress host '{h.name}' must also be `control-plane` or `worker`")
        if self.vpn.operator_public_key and not hubs:
            errors.append("vpn.operatorPublicKey: the operator peer connects through the `vpn-hub`; add a hub host")
        errors += self._check_netmaker(hubs)
        return errors

    def _check_netmaker(self, hubs: list[Host]) -> list[str]:
        vpn = self.vpn
        if vpn.backend != "netmaker":
            return ["vpn.netmaker: only used with `backend: netmaker`; set the backend or remove the section"] if vpn.netmaker else []
        errors = []
        if vpn.netmaker is None:
            errors.append("vpn.netmaker: `backend: netmaker` needs this section (at least `domain`)")
        if not hubs:
            errors.append("hosts: the Netmaker server runs on the `vpn-hub`; give one host with a public address that role")
        if vpn.operator_public_key:
            errors.append("vpn.operatorPublicKey: not used with Netmaker; give the operator a Netmaker remote-access client instead")
        for hub in hubs:
            i = self.hosts.index(hub)
            if hub.size is None:
                errors.append(f"hosts[{i}].size: declare the hub's size (cpus, memoryMb) so it can be checked for the Netmaker server")
            elif hub.size.memory_mb < NETMAKER_MIN_MEMORY_MB:
                errors.append(f"hosts[{i}].size.memoryMb: {hub.size.memory_mb} MB is too small for the Netmaker server; it needs at least {NETMAKER_MIN_MEMORY_MB} MB")
        return errors

    def _check_gpus_and_models(self) -> list[str]:
        errors = []
        profiles = {p.name for p in self.time_slicing.profiles}
        for i, p in enumerate(self.time_slicing.profiles):
            if p.replicas > self.time_slicing.max_replicas:
                errors.append(f"timeSlicing.profiles[{i}].replicas: {p.replicas} is above timeSlicing.maxReplicas {self.time_slicing.max_replicas}")
        if self.time_slicing.default_profile and self.time_slicing.default_profile not in profiles:
            errors.append(f"timeSlicing.defaultProfile: unknown profile '{self.time_slicing.default_profile}'; define it under timeSlicing.profiles")
        gpu_hosts = [h for h in self.hosts if h.gpu and h.in_cluster]
        for h in gpu_hosts:
            profile = self.profile_of(h)
            if profiles and profile not in profiles:
                errors.append(f"hosts[{self.hosts.index(h)}].gpu.profile: unknown time-slicing profile '{profile}'; use one of: {', '.join(sorted(profiles))}")
        model_names = {m.name for m in self.models} | set(BUILTIN_SERVICES)
        if any(m.public_path for m in self.models) and self.ingress.domain is None:
            i = next(i for i, m in enumerate(self.models) if m.public_path)
            errors.append(f"models[{i}].publicPath: public models need `ingress.domain`")
        if any(m.public_path for m in self.models) and not self.hosts_with(Role.INGRESS):
            errors.append("hosts: public models need a host with role `ingress`")
        sharing = bool(profiles)
        gpu_models = [(i, m.name) for i, m in enumerate(self.models) if m.placement == "gpu"]
        if gpu_models and not gpu_hosts:
            names = ", ".join(name for _, name in gpu_models)
            errors.append(f"models[{gpu_models[0][0]}].placement: {names} ask for GPU nodes but no cluster host has `gpu`; add a GPU host or use `placement: cloud`")
        for i, m in enumerate(self.models):
            if sharing and m.gpus > 1:
                errors.append(f"models[{i}].gpus: {m.gpus} GPUs per pod with time-slicing on (failRequestsGreaterThanOne); request 1")
            if m.name in BUILTIN_SERVICES:
                errors.append(f"models[{i}].name: '{m.name}' is a built-in service; pick another name")
            for j, peer in enumerate(m.talks_to):
                if peer not in model_names:
                    errors.append(f"models[{i}].talksTo[{j}]: unknown model '{peer}'")
        return errors

    def _check_deployer_reach(self) -> list[str]:
        """`pulumi up` runs on one machine that must reach every host over SSH (directly or
        through a jump host on the host's own site) and the API server at the kubeconfig's address."""
        errors: list[str] = []
        sites = {s.name: s for s in self.sites}
        by_name = {h.name: h for h in self.hosts}
        for i, h in enumerate(self.hosts):
            site = sites.get(h.site)
            jump = by_name.get(h.ssh.jump_host or "")
            # Only a host whose SSH address is its LAN address needs a jump host on its own LAN.
            if site is None or not site.nat or jump is None or h.existing is None or str(self.lan_address(h)) != str(h.existing.address):
                continue
            if jump.site != h.site:
                errors.append(f"hosts[{i}].ssh.jumpHost: '{h.name}' is reached on its LAN address in NAT'd site '{site.name}'; "
                              f"its jump host must sit on that site, not on '{jump.site}'")
        if self.cluster.api_server_address == "vpn" and self.vpn.backend == "wireguard" and self.vpn.operator_public_key is None:
            errors.append("cluster.apiServerAddress: 'vpn' but the deployer is no VPN peer; set vpn.operatorPublicKey "
                          "for the machine that runs `pulumi up`, or use 'public'")
        return errors

    def _jump_loop(self, host: Host) -> set[str]:
        """The hosts of the jump-host loop `host` starts, or an empty set when the chain ends."""
        by_name = {h.name: h for h in self.hosts}
        seen = {host.name}
        current = host
        while current.ssh.jump_host is not None and current.ssh.jump_host in by_name:
            if current.ssh.jump_host in seen:
                return seen
            seen.add(current.ssh.jump_host)
            current = by_name[current.ssh.jump_host]
        return set()

    def has_public_endpoint(self, host: Host) -> bool:
        if host.openstack is not None:
            return host.openstack.public_ip
        return host.existing is not None and host.existing.public_address is not None

    def lan_address(self, host: Host) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host's LAN address, used as the VPN endpoint by peers in the same site."""
        if host.existing is None:
            return None
        if host.existing.lan_address is not None:
            return host.existing.lan_address
        site = self.site(host.site)
        try:
            addr = ipaddress.ip_address(host.existing.address)
        except ValueError:
            return None
        return addr if site.lan_cidr and addr in site.lan_cidr else None


def _unique(key: str, names: list[str]) -> list[str]:
    return [
        f"{key}[{names.index(name, names.index(name) + 1)}].name: '{name}' is used twice; names must be unique"
        for name, n in Counter(names).items()
        if n > 1
    ]
