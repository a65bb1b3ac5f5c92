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

from stacks.monitoring_config import Monitoring

IPv4Network = ipaddress.IPv4Network

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")
# Pulumi config key names as accepted by `pulumi config set` (no namespace).
CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
# A label key's prefix: a lowercase DNS subdomain (Kubernetes IsDNS1123Subdomain), at most 253.
DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
# Every pattern above is applied with fullmatch: `$` alone also matches before a final newline.
# Local or object-store paths of plain path characters; they are written into models.config.
MODEL_BASE_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+|(s3|gs)://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[A-Za-z0-9._-]+)*")
# Node labels the program sets from the rest of the config.
MANAGED_LABELS = ("nvidia.com/device-plugin.config", "nvidia.com/gpu.present")
# Services the stack always runs; models may name them in `talksTo` but not reuse the names.
BUILTIN_SERVICES = ("redis", "tf-serving")
SSH_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
# An image reference pinned by tag or digest: "repo[:port]/path:tag" or "...@sha256:<64 hex>".
PINNED_IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*(/[a-z0-9._-]+)?(:[A-Za-z0-9._-]{1,128}|@sha256:[0-9a-f]{64})$")


def _dns_label(value: str) -> str:
    if not DNS_LABEL.fullmatch(value):
        raise ValueError(
            "not a DNS label; use 1-63 lowercase letters, digits and '-', "
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
    if not CONFIG_KEY.fullmatch(value):
        raise ValueError("not a config key name; use letters, digits, '-' and '_' (e.g. 'sshPrivateKey')")
    return value


def _unscoped(value: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # Python accepts any text as an IPv6 zone ('fe80::1%<anything>'), newlines included.
    if getattr(value, "scope_id", None) is not None:
        raise ValueError("scoped IPv6 addresses ('%zone') are not supported; give the address without its zone")
    return value


def _hostname_or_ip(value: str) -> str:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        addr = None
    if addr is not None:
        _unscoped(addr)
        return value
    if not HOSTNAME.fullmatch(value):
        raise ValueError("neither an IP address nor a host name; use e.g. '203.0.113.10' or 'host.example.com'")
    return value


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if (prefix and not DNS_SUBDOMAIN.fullmatch(prefix)) or not LABEL_NAME.fullmatch(name):
        raise ValueError("not a Kubernetes label key; use [prefix/]name: prefix a lowercase DNS subdomain, "
                         "name up to 63 of [A-Za-z0-9-_.] starting and ending alphanumeric (e.g. 'example.com/team')")
    if prefix == "hybrid-ai" or value in MANAGED_LABELS:
        raise ValueError(f"'{value}' is set by hybrid-ai itself; remove it")
    return value


def _label_value(value: str) -> str:
    if value and not LABEL_NAME.fullmatch(value):
        raise ValueError("not a Kubernetes label value; up to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric")
    return value


def _pinned_image(value: str) -> str:
    if not PINNED_IMAGE.fullmatch(value) or value.endswith(":latest"):
        raise ValueError(
            "image not pinned; add a version tag other than 'latest' or a digest "
            "(e.g. 'ghcr.io/acme/receipt-api:1.4.2' or '...@sha256:<digest>')"
        )
    return value


def _model_base_path(value: str) -> str:
    if not MODEL_BASE_PATH.fullmatch(value) or ".." in value.split("/"):
        raise ValueError("not a model path; use '/models/<name>', 's3://<bucket>/<path>' or 'gs://<bucket>/<path>' "
                         "with letters, digits, '.', '_', '-' between slashes and no '..'")
    return value


def _strict(pattern: str, what: str) -> AfterValidator:
    """A value that must fully match `pattern`, rejected with `what` it should be (never echoed)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(what)
        return value
    return AfterValidator(check)


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
HostKey = Annotated[str, AfterValidator(_host_key)]
WireGuardPublicKey = Annotated[str, AfterValidator(_wireguard_key)]
ConfigKeyName = Annotated[str, AfterValidator(_config_key)]
HostAddress = Annotated[str, AfterValidator(_hostname_or_ip)]
PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Port = Annotated[int, Field(ge=1, le=65535)]
IpAddress = Annotated[IPvAnyAddress, AfterValidator(_unscoped)]
ModelBasePath = Annotated[str, AfterValidator(_model_base_path)]
SshUser = Annotated[str, _strict(r"[a-z_][a-z0-9_-]{0,31}", "not a login name; use up to 32 of lowercase letters, digits, '_' and '-', starting with a letter or '_' (e.g. 'ubuntu')")]
Email = Annotated[str, _strict(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+", "not an e-mail address; use e.g. 'ops@example.com'")]


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
    user: SshUser = Field(default="ubuntu", description="SSH login user; it must be root or have password-less sudo.")
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
    public_address: IpAddress | None = Field(
        default=None, description="Public address other VPN peers can reach this host on (hosts in NAT'd sites have none)."
    )
    lan_address: IpAddress | None = Field(
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
    base_path: ModelBasePath = Field(description="Where TF-Serving finds the model versions (`/models/...`, `s3://`, `gs://`).")
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
    acme_email: Email | None = Field(default=None, description="E-mail for Let's Encrypt.")
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
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Prometheus, Grafana, GPU and mesh metrics, alerts and dashboards.")

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
        from stacks.consistency import cross_checks  # it imports this module

        if errors := cross_checks(self):
            raise ValueError("\n".join(errors))
        return self

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

