"""hybrid-ai's policies on what runs in the cluster and on the deployer: pinned images, no
privileged or host-path pods outside the program's own system charts, no cluster-admin, no local
commands, no secret on a command line that is logged. Each validation is a plain function of
(args, report_violation), as in rules.py.

Policy config: `requireImageDigest` (false): every image must carry a digest, a tag alone is
mutable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
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
# A tag names one build only if it carries a full version x.y.z (`1.4.2`, `v1.32.0`,
# `7.4.1-alpine`): `3`, `3.12`, `stable-alpine`, `mainline` are re-pushed with every release.
FULL_VERSION = re.compile(r"(?<![0-9])v?[0-9]+\.[0-9]+\.[0-9]+")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "PodTemplate", "ReplicationController")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# The program's own system charts (charts/<name>/chart.yaml) whose pods need the host: a
# resource a hybridai component's v4 Chart renders into one of these namespaces.
SYSTEM_CHART_NAMESPACES = ("nvidia-device-plugin", "monitoring")
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
# The one capability a pod outside the system charts may add (a server on a port below 1024).
ALLOWED_CAPABILITIES = {"NET_BIND_SERVICE"}
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
    if any(part in MOVING_PARTS for part in re.split(r"[-_.]", tag)) or not FULL_VERSION.search(tag):
        return f"uses the moving tag '{ref['tag']}' (a tag stays put only with a full version x.y.z)"
    return None


def _release_images(values: Any) -> Iterator[tuple[str, str]]:
    """(where, image) for every image a Release's values set: `image: "repo:tag"` or
    `{repository, tag}` / `{tag}` (an empty tag keeps the chart version's own)."""
    stack: list[tuple[str, Any]] = [("values", values)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, Mapping):
            image = node.get("image")
            if isinstance(image, str) and image:
                yield f"{where}.image", image
            elif isinstance(image, Mapping) and (image.get("tag") or image.get("digest")):
                repo = f"{image.get('registry')}/{image.get('repository')}" if image.get("registry") else str(image.get("repository") or "image")
                digest = f"@{image['digest']}" if image.get("digest") else ""
                yield f"{where}.image", f"{repo}:{image['tag']}{digest}" if image.get("tag") else f"{repo}{digest}"
            stack += [(f"{where}.{k}", v) for k, v in node.items() if k != "image"]
        elif isinstance(node, list):
            stack += [(f"{where}[{i}]", v) for i, v in enumerate(node)]


def images_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    require = bool((args.get_config() or {}).get("requireImageDigest", False))
    how = "pin it (repo/image:1.4.2, or repo/image@sha256:... where the policy requires digests)"
    if _kind(args.resource_type) == "Release" and args.resource_type.startswith("kubernetes:helm.sh/"):
        for where, image in _release_images(args.props.get("values")):
            if why := image_problem(image, require):
                report(f"{args.name}: {where} sets image '{image}' without a version tag or digest that stays put (it {why}); {how}", None)
        return
    pod = _workload(args)
    if pod is None:
        return
    for container in _containers(pod):
        image = str(container.get("image") or "")
        why = image_problem(image, require)
        if why:
            report(f"{args.name}: container '{container.get('name')}' uses image '{image}' without a version tag or digest "
                   f"that stays put (it {why}); {how}", None)


# --- Privileged and host-path pods ------------------------------------------------------------

def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _chain(args: ResourceValidationArgs) -> list[str]:
    """The types of the resource's parents, then its own (from its URN)."""
    return args.urn.split("::")[2].split("$") if args.urn.count("::") >= 3 else []


def _system_chart(args: ResourceValidationArgs) -> bool:
    """Rendered by a hybridai component's v4 Chart into a system chart's namespace."""
    chain = _chain(args)
    namespace = ((args.props.get("metadata") or {}).get("namespace")) or ""
    return len(chain) >= 3 and chain[-2] == CHART and chain[-3].startswith("hybridai:") and namespace in SYSTEM_CHART_NAMESPACES


def host_access(pod: Mapping[str, Any]) -> list[str]:
    found = [f"{key}: true" for key in HOST_NAMESPACES if _truthy(pod.get(key))]
    found += [f"volume '{v.get('name')}' is a hostPath" for v in pod.get("volumes") or [] if v.get("hostPath") is not None]
    for c in _containers(pod):
        ctx = c.get("securityContext") or {}
        if _truthy(ctx.get("privileged")):
            found.append(f"container '{c.get('name')}' is privileged")
        found += _capabilities(f"container '{c.get('name')}'", ctx)
    return found


def _capabilities(who: str, ctx: Mapping[str, Any]) -> list[str]:
    added = {str(a).strip().upper().removeprefix("CAP_") for a in (ctx.get("capabilities") or {}).get("add") or []}
    return [f"{who} adds {', '.join(sorted(added - ALLOWED_CAPABILITIES))}"] if added - ALLOWED_CAPABILITIES else []


def release_host_access(values: Any) -> list[str]:
    """What a Release's values ask of the host: the pod-level keys and securityContexts anywhere."""
    found, stack = [], [("values", values)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, Mapping):
            found += [f"{where}.{key}: true" for key in HOST_NAMESPACES if _truthy(node.get(key))]
            ctx = node.get("securityContext")
            if isinstance(ctx, Mapping):
                found += [f"{where}.securityContext is privileged"] if _truthy(ctx.get("privileged")) else []
                found += _capabilities(f"{where}.securityContext", ctx)
            stack += [(f"{where}.{k}", v) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(f"{where}[{i}]", v) for i, v in enumerate(node)]
    return found


def no_privileged_or_host_pods(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A privileged or host-path pod is root on its node (and its kubelet credential)."""
    if _kind(args.resource_type) == "Release" and args.resource_type.startswith("kubernetes:helm.sh/"):
        chain = _chain(args)
        ours = len(chain) >= 2 and chain[-2].startswith("hybridai:")  # registered by a component of the program
        found = [] if ours and str(args.props.get("namespace") or "") in SYSTEM_CHART_NAMESPACES else release_host_access(args.props.get("values"))
    else:
        pod = _workload(args)
        found = [] if pod is None or _system_chart(args) else host_access(pod)
    for what in found:
        report(f"{args.name}: {what}; only the program's own system charts ({', '.join(SYSTEM_CHART_NAMESPACES)}) may reach "
               "the host. Drop it.", None)


# --- RBAC -------------------------------------------------------------------------------------

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
READ_VERBS = {"get", "list", "watch"}
# Roles that hand out a namespace's Secrets and pod creation (admin, edit) or everything.
POWERFUL_ROLES = ("cluster-admin", "admin", "edit")
# Groups every service account, every signed-in identity or anyone at all belongs to.
BROAD_GROUPS = ("system:serviceaccounts", "system:authenticated", "system:unauthenticated")


def _words(rule: Mapping[str, Any], key: str) -> set[str]:
    return {str(v).strip().lower() for v in rule.get(key) or []}


def rule_powers(rule: Mapping[str, Any], cluster_wide: bool, our_chart: bool = False) -> list[str]:
    """The powers one RBAC rule grants that the pack refuses. The program's own charts may read
    Secrets and create pods (Traefik, cert-manager, the operators): their pods run on cloud nodes."""
    groups, resources, verbs = _words(rule, "apiGroups"), _words(rule, "resources"), _words(rule, "verbs")
    every = "*" in verbs
    core = bool(groups & {"", "*"})
    named = bool(rule.get("resourceNames"))
    found = []
    if "*" in resources and (every or verbs & WRITE_VERBS):
        found.append("writes every resource" + (" with every verb (cluster-admin by another name)" if every else ""))
    if our_chart:
        return found
    if cluster_wide and core and not named and resources & {"secrets", "*"} and (every or verbs & READ_VERBS):
        found.append("reads Secrets in every namespace")
    if core and resources & {"pods", "*"} and (every or "create" in verbs):
        found.append("creates pods")
    return found


def no_cluster_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No binding to cluster-admin, admin or edit, or to a group everyone is in; no role granting
    writes to every resource, Secrets across namespaces or pod creation (each is a path to
    cluster-admin), however spelled."""
    if not args.resource_type.startswith("kubernetes:rbac.authorization.k8s.io/"):
        return
    kind = _kind(args.resource_type)
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        ref = args.props.get("roleRef") or {}
        role = str(ref.get("name") or "").strip()
        if role in POWERFUL_ROLES and str(ref.get("kind") or "ClusterRole") == "ClusterRole":
            report(f"{args.name}: binds {role}; grant the verbs and resources it needs in a role of its own.", None)
        for subject in args.props.get("subjects") or []:
            name = str(subject.get("name") or "").strip()
            if str(subject.get("kind") or "") == "Group" and name in BROAD_GROUPS:
                report(f"{args.name}: binds {role or 'a role'} to the group {name}; bind the service account that needs it.", None)
    elif kind in ("ClusterRole", "Role"):
        chain = _chain(args)
        ours = len(chain) >= 3 and chain[-2] == CHART and chain[-3].startswith("hybridai:")
        powers = dict.fromkeys(p for r in args.props.get("rules") or [] for p in rule_powers(r, kind == "ClusterRole", ours))
        if powers:
            report(f"{args.name}: {', '.join(powers)}; list the resources and verbs it needs.", None)


# --- Commands ---------------------------------------------------------------------------------

SECRET_ON_COMMAND_LINE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\bAKIA[0-9A-Z]{16}\b"
    # A value right after the name, a leading '/' included (base64 starts with one too).
    r"|\b[A-Za-z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)=(?![\"']?\$)[\"']?[^\s\"'$]"
    r"|--(?:token|password|secret|api-key|access-key)(?:=|\s+)(?![\"']?\$)[\"']?[^\s\"'$-]"
    r"|(?:^|\s)-p(?![\s\"'$])(?![0-9]+(?:\s|$))\S"  # mysql -pSECRET (not -p 2222, -p2222, mkdir -p)
    r"|\bAuthorization:\s*(?:Bearer|Basic|Token)\s+(?![\"']?\$)[^\s\"'$]"
    r"|\b[a-z][a-z0-9+.-]*://[^\s/:@\"'$]+:(?![\"']?\$)[^\s/@\"'$]+@",  # https://user:token@host
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
