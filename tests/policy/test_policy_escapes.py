"""The policy pack against the spellings that got past it: each case is a resource as the engine
hands it to the pack (type, URN, properties), refused with the reason, next to the nearest
spelling that must still pass."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

from tests.policy.conftest import rules, violations

POLICY = {p.name: p.validate for p in rules.POLICIES}
DIGEST = "sha256:" + "0123456789abcdef" * 4
PROJECT_URN = "urn:pulumi:dev::hybrid-ai::"


def args(resource_type: str, props: dict[str, Any], parents: str = "hybridai:k8s:ModelService", name: str = "thing",
         config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    urn = f"{PROJECT_URN}{parents}${resource_type}::{name}"
    return ResourceValidationArgs(resource_type, unknown_checking_proxy(props), urn, name, None, None, config)  # type: ignore[arg-type]


def deployment(pod: dict[str, Any], kind: str = "Deployment") -> dict[str, Any]:
    if kind == "Pod":
        return {"metadata": {"namespace": "models"}, "spec": pod}
    if kind == "CronJob":
        return {"metadata": {"namespace": "models"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}
    return {"metadata": {"namespace": "models"}, "spec": {"template": {"spec": pod}}}


def found(policy: str, resource: ResourceValidationArgs) -> list[str]:
    return violations(POLICY[policy], resource)


# --- Images -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "config"), [
    ("foo", None), ("foo:Latest", None), ("foo:main", None), ("foo:Main", None), ("ghcr.io/x/api:master", None),
    ("tensorflow/serving:latest-gpu", None), ("foo:nightly", None), ("foo:stable", None), ("foo:edge", None),
    ("foo:sha256-" + "ab" * 32, {"requireImageDigest": True}), ("foo:1.4.2", {"requireImageDigest": True}),
    ("foo:1.4.2@sha256:abc", None), ("foo@SHA256:" + "A" * 64, None),
])
def test_moving_tags_and_tags_where_digests_are_required_are_refused(image: str, config: dict[str, Any] | None) -> None:
    pod = {"initContainers": [{"name": "sneaky", "image": image}], "containers": [{"name": "ok", "image": f"foo@{DIGEST}"}]}
    (message,) = found("images-pinned", args("kubernetes:apps/v1:Deployment", deployment(pod), config=config))
    assert "'sneaky'" in message and "without a version tag or digest" in message


@pytest.mark.parametrize(("image", "config"), [
    ("foo:1.4.2", None), ("redis:7.4.1-alpine", None), ("tensorflow/serving:2.18.0-gpu", None), ("foo:mainline-1.2.3", None),
    (f"foo@{DIGEST}", {"requireImageDigest": True}), (f"foo:1.4.2@{DIGEST}", {"requireImageDigest": True}),
])
def test_fixed_tags_and_digests_pass(image: str, config: dict[str, Any] | None) -> None:
    pod = {"containers": [{"name": "c", "image": image}]}
    assert found("images-pinned", args("kubernetes:apps/v1:Deployment", deployment(pod), config=config)) == []


# --- Privileged and host-path pods ------------------------------------------------------------

ESCAPES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "privileged init container": ("Deployment", "is privileged", {"initContainers": [{"name": "i", "securityContext": {"privileged": True}}]}),
    "privileged ephemeral container": ("Pod", "is privileged", {"ephemeralContainers": [{"name": "e", "securityContext": {"privileged": True}}]}),
    "privileged spelled as a string": ("Deployment", "is privileged", {"containers": [{"name": "c", "securityContext": {"privileged": "true"}}]}),
    "SYS_ADMIN capability": ("Deployment", "adds SYS_ADMIN", {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["CAP_SYS_ADMIN"]}}}]}),
    "hostPath in a StatefulSet's template": ("StatefulSet", "is a hostPath", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
    "hostPath in a CronJob's job template": ("CronJob", "is a hostPath", {"volumes": [{"name": "root", "hostPath": {"path": "/etc"}}]}),
    "hostPath in a DaemonSet patch": ("DaemonSetPatch", "is a hostPath", {"volumes": [{"name": "k", "hostPath": {"path": "/var/lib/kubelet"}}]}),
    "host PID namespace": ("Job", "hostPID: true", {"hostPID": True}),
    "host network": ("ReplicaSet", "hostNetwork: true", {"hostNetwork": True}),
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_privileged_and_host_pods_are_refused_in_every_spelling(case: str) -> None:
    kind, expected, pod = ESCAPES[case]
    api = "batch/v1" if kind in ("Job", "CronJob") else "core/v1" if kind == "Pod" else "apps/v1"
    messages = found("no-privileged-or-host-pods", args(f"kubernetes:{api}:{kind}", deployment(pod, kind.removesuffix("Patch"))))
    assert any(expected in m for m in messages), (case, messages)


DEVICE_PLUGIN = deployment({"volumes": [{"name": "dp", "hostPath": {"path": "/var/lib/kubelet/device-plugins"}}],
                            "containers": [{"name": "p", "securityContext": {"privileged": True}}]}, "DaemonSet")


def test_only_the_programs_own_system_charts_may_reach_the_host() -> None:
    chart = "hybridai:gpu:TimeSlicing$kubernetes:helm.sh/v4:Chart"
    own = dict(DEVICE_PLUGIN, metadata={"namespace": "nvidia-device-plugin"})
    assert found("no-privileged-or-host-pods", args("kubernetes:apps/v1:DaemonSet", own, parents=chart)) == []
    # The same pod registered directly, by a chart in another namespace, or by a chart of no component of ours.
    assert found("no-privileged-or-host-pods", args("kubernetes:apps/v1:DaemonSet", own, parents="hybridai:gpu:TimeSlicing"))
    assert found("no-privileged-or-host-pods", args("kubernetes:apps/v1:DaemonSet", dict(own, metadata={"namespace": "models"}), parents=chart))
    assert found("no-privileged-or-host-pods", args("kubernetes:apps/v1:DaemonSet", own, parents="kubernetes:helm.sh/v4:Chart"))


# --- cluster-admin --------------------------------------------------------------------------------

@pytest.mark.parametrize(("resource_type", "props"), [
    ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}}),
    ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}),
    ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", {"roleRef": {"name": "cluster-admin"}}),
    ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}),
    ("kubernetes:rbac.authorization.k8s.io/v1beta1:ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}),
    ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBindingPatch", {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}),
    ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    ("kubernetes:rbac.authorization.k8s.io/v1:Role", {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}]}),
])
def test_cluster_admin_is_refused_however_it_is_bound(resource_type: str, props: dict[str, Any]) -> None:
    (message,) = found("no-cluster-admin", args(resource_type, props))
    assert "cluster-admin" in message


def test_a_narrow_role_and_its_binding_pass() -> None:
    assert found("no-cluster-admin", args("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
                                          {"roleRef": {"kind": "ClusterRole", "name": "view"}})) == []
    assert found("no-cluster-admin", args("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
                                          {"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]})) == []


# --- Commands ---------------------------------------------------------------------------------

def test_local_commands_are_refused() -> None:
    (message,) = found("no-local-commands", args("command:local:Command", {"create": "echo hi"}, parents="hybridai:host:Bootstrap"))
    assert "runs on the deployer" in message


@pytest.mark.parametrize(("field", "line"), [
    ("create", "install-key <<'K'\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\nK"),
    ("create", "JOIN_TOKEN=0123456789abcdef0123456789abcdef\nmicrok8s join"),
    ("update", "netclient join --token=eyJzZXJ2ZXIiOiJ4In0="),
    ("delete", "curl -u admin --password hunter22 https://x"),
    ("create", "s3cmd --access_key=AKIAABCDEFGHIJKLMNOP"),
])
@pytest.mark.parametrize("resource_type", ["command:remote:Command", "command:local:Command"])
def test_a_secret_on_a_logged_command_line_is_refused(resource_type: str, field: str, line: str) -> None:
    for logging in (None, "stdout", "stderr", "stdoutAndStderr"):
        props = {field: line, **({"logging": logging} if logging else {})}
        (message,) = found("no-secret-on-logged-command-line", args(resource_type, props))
        assert f"its {field} command line holds what looks like a secret" in message


def test_parameters_that_only_name_a_secret_pass() -> None:
    for line in ("TOKEN_TTL_S=3600\nmicrok8s add-node", 'BACKUP_SSH_KEY=/root/.ssh/hybrid-ai-backup\nx', 'read -r TOKEN; join "$TOKEN"',
                 'TOKEN=$(cat)\nnetclient join --token "$TOKEN"'):
        assert found("no-secret-on-logged-command-line", args("command:remote:Command", {"create": line})) == [], line


def test_a_secret_on_stdin_of_a_local_command_must_not_be_logged() -> None:
    (message,) = found("secrets-kept-out-of-logs", args("command:local:Command", {"create": "x", "stdin": "s3cr3t"}))
    assert "takes a secret on stdin but logs 'stdoutAndStderr'" in message
