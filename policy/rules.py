"""hybrid-ai's policies. Each validation is a plain function of (args, report_violation), so
tests call it directly. During preview some values are unknown: reading one raises
UnknownValueError, on which CrossGuard skips the check for that resource (it runs again on
`up`, when the value is known). No validation catches that error.

Policy config (policy/config.json, or `--policy-pack-config`): `vpnPort` (51820),
`maxTimeSlicingReplicas` (8), `productionStacks` (["prod"]), `requireImageDigest` (false; see
workload_rules.py, which holds the policies on images, pods, RBAC and commands).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from workload_rules import (
    CONTAINER_LISTS,
    IMAGE_REFERENCE,
    WORKLOAD_KINDS,
    images_pinned,
    no_cluster_admin,
    no_local_commands,
    no_privileged_or_host_pods,
    secret_on_logged_command_line,
)

__all__ = ["CONTAINER_LISTS", "IMAGE_REFERENCE", "POLICIES", "WORKLOAD_KINDS"]  # the image names tests and callers read here

# A remote prefix wider than this covers a large part of the internet: treated as the world.
WIDEST_IPV4, WIDEST_IPV6 = 8, 32
LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
SSH_KEY_LINE = re.compile(r"(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}( .*)?")
# How the program marks its ingress security group (components/openstack.py); only a group so
# marked and holding nothing but TCP 80/443 rules may open those to the world.
INGRESS_GROUP_DESCRIPTION = "hybrid-ai: HTTP(S) on ingress nodes"
DEFAULTS: dict[str, Any] = {"vpnPort": 51820, "maxTimeSlicingReplicas": 8, "productionStacks": ["prod"]}

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def _config(args: ResourceValidationArgs | StackValidationArgs, key: str) -> Any:
    return (args.get_config() or {}).get(key, DEFAULTS[key])


def _kind(resource_type: str) -> str:
    """The Kubernetes kind of a resource type; a `<Kind>Patch` (server-side apply) is that kind."""
    return resource_type.rsplit(":", 1)[-1].removesuffix("Patch")


def _stack_of(urn: str) -> str:
    return urn.split("::")[0].removeprefix("urn:pulumi:")


# --- SSH ----------------------------------------------------------------------------------

def _pinned_key(key: Any) -> bool:
    return isinstance(key, str) and SSH_KEY_LINE.fullmatch(key.strip()) is not None


def ssh_host_key_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Every connection, and its jump host, pins a host key line (a blank one pins nothing)."""
    # Every remote type that dials: Command, CopyToRemote, and the deprecated CopyFile/Copy.
    if not args.resource_type.startswith("command:remote:"):
        return
    connection = args.props.get("connection") or {}
    if not _pinned_key(connection.get("hostKey")):
        report(f"{args.name}: the SSH connection does not pin a host key (connection.hostKey); without it, any host answering "
               "on that address is trusted. Pin it (ssh-keyscan -t ed25519 HOST).", None)
    proxy = connection.get("proxy")
    if proxy and not _pinned_key(proxy.get("hostKey")):
        report(f"{args.name}: the jump host (connection.proxy) does not pin a host key (proxy.hostKey); pin the jump "
               "host's own key (its hosts[].ssh.hostKey).", None)


# --- Secrets in logs ----------------------------------------------------------------------

def secrets_kept_out_of_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Secrets reach commands only on stdin; such a command must not log its stdout."""
    if args.resource_type not in ("command:remote:Command", "command:local:Command") or args.props.get("stdin") is None:
        return
    logging = args.props.get("logging") or "stdoutAndStderr"
    if logging not in ("none", "stderr"):
        report(f"{args.name}: takes a secret on stdin but logs '{logging}'; set logging to 'none' (or 'stderr' when the script "
               "never prints the secret) and mark stdout a secret output.", None)


def no_command_environment(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """`environment` is sent in the clear to sshd (and dropped without AcceptEnv): parameters go
    at the top of the script, secrets on stdin. A secret cannot be told from a value here, so none."""
    if args.resource_type == "command:remote:Command" and args.props.get("environment"):
        report(f"{args.name}: passes `environment` ({', '.join(sorted(args.props['environment']))}); put parameters in the "
               "script's assignments and secrets on stdin.", None)


# --- TLS --------------------------------------------------------------------------------------

def _same_url(a: str, b: str) -> bool:
    """Equal as URLs: scheme and host in any case, default port, trailing slashes aside."""
    def norm(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            port = -1
        return parts.scheme.lower(), (parts.hostname or "").rstrip("."), None if port == 443 else port, parts.path.rstrip("/")
    return norm(a) == norm(b)


def production_issuer_only_on_production(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Any cert-manager API version, and a Patch of either kind.
    if not args.resource_type.startswith("kubernetes:cert-manager.io/") or _kind(args.resource_type) not in ("ClusterIssuer", "Issuer"):
        return
    acme = (args.props.get("spec") or {}).get("acme") or {}
    stack = _stack_of(args.urn)
    if _same_url(str(acme.get("server") or ""), LETSENCRYPT_PRODUCTION) and stack not in _config(args, "productionStacks"):
        report(f"{args.name}: Let's Encrypt production issuer on stack '{stack}'; use `ingress.tls: letsencrypt-staging` outside "
               "production (its rate limits are easy to hit while testing)", None)


# --- GPU sharing ----------------------------------------------------------------------------

def _time_slicing(text: Any) -> list[Any]:
    """The `sharing.timeSlicing.resources` of a device-plugin config, [] for any other text.
    Recognised by content: the device plugin finds its config by name, not by any label."""
    try:
        config = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        return []
    sharing = config.get("sharing") if isinstance(config, dict) else None
    slicing = sharing.get("timeSlicing") if isinstance(sharing, dict) else None
    resources = slicing.get("resources") if isinstance(slicing, dict) else None
    return resources if isinstance(resources, list) else []


def time_slicing_replicas_bounded(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:core/v1:") or _kind(args.resource_type) != "ConfigMap":
        return
    limit = int(_config(args, "maxTimeSlicingReplicas"))
    for profile, text in (args.props.get("data") or {}).items():
        for resource in _time_slicing(text):
            replicas = resource.get("replicas", 1) if isinstance(resource, dict) else None
            if not isinstance(replicas, int) or replicas > limit:
                report(f"{args.name}: profile '{profile}' shares each GPU among {replicas} pods, more than the "
                       f"configured maximum of {limit} (time-slicing gives no memory isolation)", None)


# --- Security groups (stack-wide: a rule's group is known by its dependency) ------------------

UNION_NOTE = ", with its group's other rules for these ports"
SEC_GROUP, SEC_GROUP_RULE = "openstack:networking/secGroup:SecGroup", "openstack:networking/secGroupRule:SecGroupRule"


def _groups(rule: Any) -> list[Any]:
    return [d for d in rule.dependencies if d.resource_type == SEC_GROUP]


def _web_only(rule: Any) -> bool:
    props = rule.props
    return props.get("protocol") == "tcp" and props.get("portRangeMin") == props.get("portRangeMax") and props.get("portRangeMin") in (80, 443)


def _ingress_group(group: Any, rules: list[Any]) -> bool:
    """The program's ingress group: marked as such, and holding nothing but TCP 80/443 rules."""
    mine = [r for r in rules if any(g.urn == group.urn for g in _groups(r))]
    return group.props.get("description") == INGRESS_GROUP_DESCRIPTION and all(_web_only(r) for r in mine)


def _covers(outer: Mapping[str, Any], inner: Mapping[str, Any]) -> bool:
    """`outer` admits at least the protocol and ports of `inner` (no protocol/ports: all)."""
    if outer.get("protocol") and outer.get("protocol") != inner.get("protocol"):
        return False
    low, high = outer.get("portRangeMin"), outer.get("portRangeMax")
    if low is None and high is None:
        return True
    return inner.get("portRangeMin") is not None and low <= inner["portRangeMin"] and inner.get("portRangeMax", 65535) <= high


def _union_is_world(rule: Any, rules: list[Any]) -> bool:
    """The prefixes of every rule of the same group admitting this rule's traffic, added up
    (256 rules of a /8 are the world)."""
    group = {g.urn for g in _groups(rule)}
    networks = [_network(str(r.props["remoteIpPrefix"])) for r in rules
                if r.props.get("remoteIpPrefix") and {g.urn for g in _groups(r)} == group and _covers(r.props, rule.props)]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return any(_too_wide(n) for n in ipaddress.collapse_addresses(v4)) or any(_too_wide(n) for n in ipaddress.collapse_addresses(v6))


def no_world_open_ports(args: StackValidationArgs, report: ReportViolation) -> None:
    vpn_port = int(_config(args, "vpnPort"))
    rules = [r for r in args.resources if r.resource_type == SEC_GROUP_RULE and r.props.get("direction") != "egress"]
    for rule in rules:
        alone = _open_to_world(rule.props)
        if not alone and not _union_is_world(rule, rules):
            continue
        proto, low, high = rule.props.get("protocol"), rule.props.get("portRangeMin"), rule.props.get("portRangeMax")
        if proto == "udp" and low == high == vpn_port:
            continue
        groups = _groups(rule)
        if _web_only(rule) and groups and all(_ingress_group(g, rules) for g in groups):
            continue
        report(f"{rule.name}: opens {proto} {_port(low)}-{_port(high)} to the world ({rule.props.get('remoteIpPrefix') or 'no remote prefix or group'}{'' if alone else UNION_NOTE}); only the VPN's UDP port {vpn_port} may be, and 80/443 "
               "on the ingress nodes' security group. Restrict remoteIpPrefix (SSH: openstack.adminCidrs).", rule.urn)


def _network(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The prefix as a network; IPv4 shorthand ('0/0', '10.1/16') as Neutron's netaddr reads it."""
    try:
        return ipaddress.ip_network(prefix.strip(), strict=False)
    except ValueError:
        address, _, length = prefix.strip().partition("/")
        octets = address.split(".")
        if length and 1 <= len(octets) <= 4 and all(o.isdigit() for o in octets):
            try:
                return ipaddress.ip_network(".".join(octets + ["0"] * (4 - len(octets))) + "/" + length, strict=False)
            except ValueError:
                return None
        return None


def _open_to_world(props: Mapping[str, Any]) -> bool:
    """Neutron: no remote prefix and no remote group means every address. A prefix wider than
    WIDEST_IPV4/WIDEST_IPV6 (or an IPv4-mapped one as wide), or one we cannot read, counts too."""
    prefix = props.get("remoteIpPrefix")
    if not prefix:
        return not props.get("remoteGroupId")
    network = _network(str(prefix))
    return network is None or _too_wide(network)


def _too_wide(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(ipaddress.IPv6Network("::ffff:0:0/96")):
        return network.prefixlen < 96 + WIDEST_IPV4
    return network.prefixlen < (WIDEST_IPV4 if network.version == 4 else WIDEST_IPV6)


def _port(value: Any) -> str:
    """Numbers come as floats over the wire."""
    return str(int(value)) if isinstance(value, float | int) else str(value)


def _resource_policy(name: str, description: str, validate: Validation, schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY, config_schema=schema)


POLICIES = [
    _resource_policy("ssh-host-key-pinned", "Every SSH connection pins the host's key.", ssh_host_key_pinned),
    _resource_policy("secrets-kept-out-of-logs", "Commands that take secrets do not log them.", secrets_kept_out_of_logs),
    _resource_policy("no-command-environment", "Remote commands take no `environment` (secrets go on stdin).", no_command_environment),
    _resource_policy("images-pinned", "Every container image has a fixed version tag (or a digest, where required).", images_pinned,
                     PolicyConfigSchema(properties={"requireImageDigest": {"type": "boolean"}})),
    _resource_policy("no-privileged-or-host-pods", "No privileged, host-path or host-namespace pods outside the system charts.",
                     no_privileged_or_host_pods),
    _resource_policy("no-cluster-admin", "No cluster-admin binding, and no role granting everything.", no_cluster_admin),
    _resource_policy("no-local-commands", "Nothing of the plan runs on the deployer's machine.", no_local_commands),
    _resource_policy("no-secret-on-logged-command-line", "No secret on a command line that is logged.", secret_on_logged_command_line),
    _resource_policy("letsencrypt-production-only-on-prod", "Let's Encrypt's production issuer only on production stacks.",
                     production_issuer_only_on_production,
                     PolicyConfigSchema(properties={"productionStacks": {"type": "array", "items": {"type": "string"}}})),
    _resource_policy("time-slicing-replicas-bounded", "GPU time-slicing replicas stay within a configured maximum.",
                     time_slicing_replicas_bounded,
                     PolicyConfigSchema(properties={"maxTimeSlicingReplicas": {"type": "integer", "minimum": 1}})),
    StackValidationPolicy(name="no-world-open-ports", description="Nothing is open to the world but the VPN port and 80/443 on ingress.",
                          validate=no_world_open_ports, enforcement_level=EnforcementLevel.MANDATORY,
                          config_schema=PolicyConfigSchema(properties={"vpnPort": {"type": "integer"}})),
]
