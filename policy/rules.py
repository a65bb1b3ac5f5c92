"""hybrid-ai's policies. Each validation is a plain function of (args, report_violation), so
tests call it directly. During preview some values are unknown: reading one raises
UnknownValueError, on which CrossGuard skips the check for that resource (it runs again on
`up`, when the value is known). No validation catches that error.

Policy config (policy/config.json, or `--policy-pack-config`): `vpnPort` (51820),
`maxTimeSlicingReplicas` (8), `productionStacks` (["prod"]).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

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

WORLD = ("0.0.0.0/0", "::/0")
LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
DEFAULTS: dict[str, Any] = {"vpnPort": 51820, "maxTimeSlicingReplicas": 8, "productionStacks": ["prod"]}

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def _config(args: ResourceValidationArgs | StackValidationArgs, key: str) -> Any:
    return (args.get_config() or {}).get(key, DEFAULTS[key])


def _stack_of(urn: str) -> str:
    return urn.split("::")[0].removeprefix("urn:pulumi:")


# --- SSH ----------------------------------------------------------------------------------

def ssh_host_key_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in ("command:remote:Command", "command:remote:CopyToRemote"):
        return
    connection = args.props.get("connection") or {}
    if not connection.get("hostKey"):
        report(f"{args.name}: the SSH connection does not pin a host key (connection.hostKey); without it, any host answering "
               "on that address is trusted. Pin it (ssh-keyscan -t ed25519 HOST).", None)


# --- Secrets in logs ----------------------------------------------------------------------

def secrets_kept_out_of_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Secrets reach commands only on stdin; such a command must not log its stdout."""
    if args.resource_type != "command:remote:Command" or args.props.get("stdin") is None:
        return
    logging = args.props.get("logging") or "stdoutAndStderr"
    if logging not in ("none", "stderr"):
        report(f"{args.name}: takes a secret on stdin but logs '{logging}'; set logging to 'none' (or 'stderr' when the script "
               "never prints the secret) and mark stdout a secret output.", None)


# --- Images ---------------------------------------------------------------------------------

def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and not name.endswith(":latest")


def _pod_spec(kind: str, spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template's spec inside a workload's spec."""
    path = {"Pod": [], "CronJob": ["jobTemplate", "spec", "template", "spec"]}.get(kind, ["template", "spec"])
    for key in path:
        spec = spec.get(key) or {}
    return spec


def images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:") or args.resource_type.rsplit(":", 1)[-1] not in WORKLOAD_KINDS:
        return
    pod = _pod_spec(args.resource_type.rsplit(":", 1)[-1], args.props.get("spec") or {})
    containers: Sequence[Mapping[str, Any]] = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    for container in containers:
        image = str(container.get("image") or "")
        if not _image_pinned(image):
            report(f"{args.name}: container '{container.get('name')}' uses image '{image}' without a version tag or digest; "
                   "pin it (e.g. repo/image:1.4.2 or repo/image@sha256:...)", None)


# --- TLS --------------------------------------------------------------------------------------

def production_issuer_only_on_production(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:cert-manager.io/v1:ClusterIssuer":
        return
    acme = (args.props.get("spec") or {}).get("acme") or {}
    stack = _stack_of(args.urn)
    if acme.get("server") == LETSENCRYPT_PRODUCTION and stack not in _config(args, "productionStacks"):
        report(f"{args.name}: Let's Encrypt production issuer on stack '{stack}'; use `ingress.tls: letsencrypt-staging` outside "
               "production (its rate limits are easy to hit while testing)", None)


# --- GPU sharing ----------------------------------------------------------------------------

def time_slicing_replicas_bounded(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:core/v1:ConfigMap":
        return
    if ((args.props.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component") != "gpu-sharing":
        return
    limit = int(_config(args, "maxTimeSlicingReplicas"))
    for profile, text in (args.props.get("data") or {}).items():
        config = yaml.safe_load(text) or {}
        for resource in config.get("sharing", {}).get("timeSlicing", {}).get("resources", []):
            if int(resource.get("replicas", 1)) > limit:
                report(f"{args.name}: profile '{profile}' shares each GPU among {resource['replicas']} pods, more than the "
                       f"configured maximum of {limit} (time-slicing gives no memory isolation)", None)


# --- Security groups (stack-wide: a rule's group is known by its dependency) ------------------

def no_world_open_ports(args: StackValidationArgs, report: ReportViolation) -> None:
    vpn_port = int(_config(args, "vpnPort"))
    for rule in args.resources:
        if rule.resource_type != "openstack:networking/secGroupRule:SecGroupRule":
            continue
        if rule.props.get("remoteIpPrefix") not in WORLD:
            continue
        proto, low, high = rule.props.get("protocol"), rule.props.get("portRangeMin"), rule.props.get("portRangeMax")
        if proto == "udp" and low == high == vpn_port:
            continue
        groups = [d for d in rule.dependencies if d.resource_type == "openstack:networking/secGroup:SecGroup"]
        if proto == "tcp" and low == high and low in (80, 443) and groups and all(g.name.endswith("-ingress") for g in groups):
            continue
        report(f"{rule.name}: opens {proto} {_port(low)}-{_port(high)} to the world; only the VPN's UDP port {vpn_port} may be, and 80/443 "
               "on the ingress nodes' security group. Restrict remoteIpPrefix (SSH: openstack.adminCidrs).", rule.urn)


def _port(value: Any) -> str:
    """Numbers come as floats over the wire."""
    return str(int(value)) if isinstance(value, float | int) else str(value)


def _resource_policy(name: str, description: str, validate: Validation, schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY, config_schema=schema)


POLICIES = [
    _resource_policy("ssh-host-key-pinned", "Every SSH connection pins the host's key.", ssh_host_key_pinned),
    _resource_policy("secrets-kept-out-of-logs", "Commands that take secrets do not log them.", secrets_kept_out_of_logs),
    _resource_policy("images-pinned", "Every container image has a version tag or digest.", images_pinned),
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
