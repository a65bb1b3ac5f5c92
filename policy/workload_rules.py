"""hybrid-ai's policies on what runs in the cluster and on the deployer: pinned images, no
privileged or host-path pods outside the program's own system charts, no cluster-admin, no local
commands, no secret on a command line that is logged. Each validation is a plain function of
(args, report_violation), as in rules.py.

Policy config: `requireImageDigest` (false): every image must carry a digest, a tag alone is
mutable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

# name[:tag][@sha256:digest], names lowercase (https://github.com/distribution/reference grammar)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?)/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
# Tags that name a moving target, whatever their case; a tag holding one of the first as a
# part (`latest-gpu`, `main_2`) moves too.
MOVING_PARTS = ("latest", "main", "master", "head", "nightly", "edge", "canary", "rolling")
MOVING_TAGS = (*MOVING_PARTS, "stable", "dev", "develop", "current", "lts", "beta", "alpha", "release", "trunk")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "PodTemplate", "ReplicationController")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# The program's own system charts (charts/<name>/chart.yaml) whose pods need the host: a
# resource a hybridai component's v4 Chart renders into one of these namespaces.
SYSTEM_CHART_NAMESPACES = ("nvidia-device-plugin", "monitoring")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
CHART = "kubernetes:helm.sh/v4:Chart"


def _kind(resource_type: str) -> str:
    """The Kubernetes kind of a resource type; a `<Kind>Patch` (server-side apply) is that kind."""
    return resource_type.rsplit(":", 1)[-1].removesuffix("Patch")


def _workload(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    """The pod spec of a workload of any API version (a Patch included), else None."""
    kind = _kind(args.resource_type)
    if not args.resource_type.startswith("kubernetes:") or kind not in WORKLOAD_KINDS:
        return None
    spec = (args.props.get("template") if kind == "PodTemplate" else args.props.get("spec")) or {}
    path = {"Pod": [], "PodTemplate": ["spec"], "CronJob": ["jobTemplate", "spec", "template", "spec"]}.get(kind, ["template", "spec"])
    for key in path:
        spec = spec.get(key) or {}
    return spec


def _containers(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in CONTAINER_LISTS:
        yield from pod.get(key) or []


# --- Images ---------------------------------------------------------------------------------

def image_problem(image: str, require_digest: bool) -> str | None:
    """Why `image` is not pinned, or None when it is."""
    ref = IMAGE_REFERENCE.fullmatch(image)
    if ref is None:
        return "is not a well-formed image reference"
    if ref["digest"]:
        return None
    if require_digest:
        return "has no digest (the policy requires one: a tag can be moved)"
    tag = (ref["tag"] or "").lower()
    if not tag:
        return "has no tag or digest"
    if tag in MOVING_TAGS or any(part in MOVING_PARTS for part in re.split(r"[-_.]", tag)):
        return f"uses the moving tag '{ref['tag']}'"
    return None


def images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pod = _workload(args)
    if pod is None:
        return
    require = bool((args.get_config() or {}).get("requireImageDigest", False))
    for container in _containers(pod):
        image = str(container.get("image") or "")
        why = image_problem(image, require)
        if why:
            report(f"{args.name}: container '{container.get('name')}' uses image '{image}' without a version tag or digest "
                   f"that stays put (it {why}); pin it (repo/image:1.4.2, or repo/image@sha256:... where the policy requires digests)", None)


# --- Privileged and host-path pods ------------------------------------------------------------

def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _system_chart(args: ResourceValidationArgs) -> bool:
    """Rendered by a hybridai component's v4 Chart into a system chart's namespace."""
    chain = args.urn.split("::")[2].split("$") if args.urn.count("::") >= 3 else []
    namespace = ((args.props.get("metadata") or {}).get("namespace")) or ""
    return len(chain) >= 3 and chain[-2] == CHART and chain[-3].startswith("hybridai:") and namespace in SYSTEM_CHART_NAMESPACES


def host_access(pod: Mapping[str, Any]) -> list[str]:
    found = [f"{key}: true" for key in HOST_NAMESPACES if _truthy(pod.get(key))]
    found += [f"volume '{v.get('name')}' is a hostPath" for v in pod.get("volumes") or [] if v.get("hostPath") is not None]
    for c in _containers(pod):
        ctx = c.get("securityContext") or {}
        if _truthy(ctx.get("privileged")):
            found.append(f"container '{c.get('name')}' is privileged")
        added = {str(a).upper().removeprefix("CAP_") for a in (ctx.get("capabilities") or {}).get("add") or []}
        if added & {"ALL", "SYS_ADMIN"}:
            found.append(f"container '{c.get('name')}' adds {', '.join(sorted(added & {'ALL', 'SYS_ADMIN'}))}")
    return found


def no_privileged_or_host_pods(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A privileged or host-path pod is root on its node (and its kubelet credential)."""
    pod = _workload(args)
    if pod is None or _system_chart(args):
        return
    for what in host_access(pod):
        report(f"{args.name}: {what}; only the program's own system charts ({', '.join(SYSTEM_CHART_NAMESPACES)}) may reach "
               "the host. Drop it.", None)


# --- RBAC -------------------------------------------------------------------------------------

def _wildcard(rules: Sequence[Mapping[str, Any]] | None) -> bool:
    return any("*" in (r.get("verbs") or []) and "*" in (r.get("resources") or []) for r in rules or [])


def no_cluster_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No binding to cluster-admin (in any API version, as a Role- or ClusterRoleBinding), and no
    role granting every verb on every resource (cluster-admin by another name)."""
    if not args.resource_type.startswith("kubernetes:rbac.authorization.k8s.io/"):
        return
    kind = _kind(args.resource_type)
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        ref = args.props.get("roleRef") or {}
        if str(ref.get("name") or "").strip() == "cluster-admin" and str(ref.get("kind") or "ClusterRole") == "ClusterRole":
            report(f"{args.name}: binds cluster-admin; grant the verbs and resources it needs in a role of its own.", None)
    elif kind in ("ClusterRole", "Role") and _wildcard(args.props.get("rules")):
        report(f"{args.name}: grants every verb on every resource (cluster-admin by another name); list what it needs.", None)


# --- Commands ---------------------------------------------------------------------------------

SECRET_ON_COMMAND_LINE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\b[A-Za-z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)=(?![\"']?[$/])[\"']?[^\s\"'$]"
    r"|--(?:token|password|secret|api-key|access-key)(?:=|\s+)(?![\"']?\$)[\"']?[^\s\"'$-]",
    re.IGNORECASE,
)


def no_local_commands(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Nothing of the plan runs on the machine that runs `pulumi up` (it holds every secret)."""
    if args.resource_type.startswith("command:local:"):
        report(f"{args.name}: a local command runs on the deployer, with every secret of the stack at hand; do it on a host "
               "(command:remote) or in the program.", None)


def secret_on_logged_command_line(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A secret in a command line is in `ps` and, with logging on, in the update's log."""
    if args.resource_type not in ("command:remote:Command", "command:local:Command"):
        return
    logging = args.props.get("logging") or "stdoutAndStderr"
    if logging == "none":
        return
    for field in ("create", "update", "delete"):
        if SECRET_ON_COMMAND_LINE.search(str(args.props.get(field) or "")):
            report(f"{args.name}: its {field} command line holds what looks like a secret and logs '{logging}'; send the secret on "
                   "stdin (and set logging to 'none' or 'stderr').", None)
