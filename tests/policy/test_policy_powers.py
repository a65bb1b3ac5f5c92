"""The policy pack judges by the power a resource grants, not by its spelling: capabilities
from an allow-list, RBAC by what a role or binding lets its holder do, image tags by whether
they name one build, command lines by every common way of writing a credential, and Helm
Releases by their values (the pack never sees a Release's objects)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.test_policy_escapes import DIGEST, args, deployment, found

RBAC = "kubernetes:rbac.authorization.k8s.io/v1"
RELEASE = "kubernetes:helm.sh/v3:Release"


# --- Capabilities -------------------------------------------------------------------------------

@pytest.mark.parametrize("cap", ["SYS_MODULE", "SYS_PTRACE", "NET_ADMIN", "DAC_READ_SEARCH", "cap_net_raw", "BPF"])
def test_every_added_capability_but_net_bind_service_is_refused(cap: str) -> None:
    pod = {"containers": [{"name": "c", "image": f"x@{DIGEST}", "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", cap]}}}]}
    (message,) = found("no-privileged-or-host-pods", args("kubernetes:apps/v1:Deployment", deployment(pod)))
    assert f"adds {cap.upper().removeprefix('CAP_')}" in message


def test_net_bind_service_and_dropping_capabilities_pass() -> None:
    ctx = {"capabilities": {"add": ["CAP_NET_BIND_SERVICE"], "drop": ["ALL"]}}
    pod = {"containers": [{"name": "c", "image": f"x@{DIGEST}", "securityContext": ctx}]}
    assert found("no-privileged-or-host-pods", args("kubernetes:apps/v1:Deployment", deployment(pod))) == []


# --- RBAC by the powers granted ------------------------------------------------------------------

EVERY_VERB = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
POWERFUL: dict[str, tuple[str, dict[str, Any], str]] = {
    "binding to admin": ("ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "admin"}}, "binds admin"),
    "binding to edit": ("RoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "edit"}}, "binds edit"),
    "every service account": ("ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "view"},
                                                     "subjects": [{"kind": "Group", "name": "system:serviceaccounts"}]}, "system:serviceaccounts"),
    "every signed-in user": ("RoleBinding", {"roleRef": {"kind": "Role", "name": "reader"},
                                             "subjects": [{"kind": "Group", "name": "system:authenticated"}]}, "system:authenticated"),
    "anyone at all": ("ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "view"},
                                             "subjects": [{"kind": "Group", "name": " system:unauthenticated"}]}, "system:unauthenticated"),
    "every verb spelled out on every resource": ("ClusterRole", {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": EVERY_VERB}]},
                                                 "writes every resource"),
    "writes to every resource of the core group": ("Role", {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["patch"]}]},
                                                   "writes every resource"),
    "secrets read cluster-wide": ("ClusterRole", {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]},
                                  "reads Secrets in every namespace"),
    "secrets read through every core resource": ("ClusterRole", {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]},
                                                 "reads Secrets in every namespace"),
    "pod creation": ("Role", {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]}, "creates pods"),
}


@pytest.mark.parametrize("case", list(POWERFUL))
def test_roles_and_bindings_are_judged_by_the_powers_they_grant(case: str) -> None:
    kind, props, expected = POWERFUL[case]
    messages = found("no-cluster-admin", args(f"{RBAC}:{kind}", props))
    assert any(expected in m for m in messages), (case, messages)


def test_the_programs_own_charts_may_read_secrets_and_create_pods_but_not_bind_admin() -> None:
    chart = "hybridai:k8s:PublicIngress$kubernetes:helm.sh/v4:Chart"  # Traefik reads every TLS Secret
    reader = {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]}
    assert found("no-cluster-admin", args(f"{RBAC}:ClusterRole", reader, parents=chart)) == []
    assert found("no-cluster-admin", args(f"{RBAC}:ClusterRole", reader, parents="kubernetes:helm.sh/v4:Chart"))
    assert found("no-cluster-admin", args(f"{RBAC}:ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "admin"}}, parents=chart))


def test_narrow_grants_pass() -> None:
    ok: list[tuple[str, dict[str, Any]]] = [("ClusterRole", {"rules": [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}]}),
          ("Role", {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["tls"]}]}),
          ("Role", {"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),  # one namespace
          ("ClusterRoleBinding", {"roleRef": {"kind": "ClusterRole", "name": "view"},
                                  "subjects": [{"kind": "ServiceAccount", "name": "grafana", "namespace": "monitoring"}]})]
    for kind, props in ok:
        assert found("no-cluster-admin", args(f"{RBAC}:{kind}", props)) == [], props


# --- Image tags that name one build ----------------------------------------------------------------

@pytest.mark.parametrize("image", ["nginx:stable-alpine", "nginx:mainline", "python:3", "python:3.12", "foo:latest2",
                                   "foo:v2", "foo:2024-06", "foo:mainline-1.2", "foo:1.2.3-nightly"])
def test_tags_without_a_full_version_are_refused(image: str) -> None:
    pod = {"containers": [{"name": "sneaky", "image": image}]}
    (message,) = found("images-pinned", args("kubernetes:apps/v1:Deployment", deployment(pod)))
    assert "'sneaky'" in message


@pytest.mark.parametrize("image", ["foo:1.4.2", "foo:v1.32.0", "redis:7.4.1-alpine", "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04",
                                   f"python:3@{DIGEST}"])
def test_tags_with_a_full_version_or_a_digest_pass(image: str) -> None:
    pod = {"containers": [{"name": "c", "image": image}]}
    assert found("images-pinned", args("kubernetes:apps/v1:Deployment", deployment(pod))) == []


# --- Secret-shaped command lines --------------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "mysql -uroot -phunter2 db", "curl -H 'Authorization: Bearer eyJhbGciOi' https://api", "curl -H \"authorization: token abc123\" x",
    "git clone https://deploy:ghp_abcdef123@github.example.com/x.git", "HF_TOKEN=/aGVsbG8= run", "DB_PASSWORD=/s3cr3t run",
])
def test_more_spellings_of_a_secret_on_a_command_line_are_refused(line: str) -> None:
    (message,) = found("no-secret-on-logged-command-line", args("command:remote:Command", {"create": line}))
    assert "looks like a secret" in message


def test_lines_that_only_look_alike_pass() -> None:
    for line in ("mkdir -p /var/lib/x", "ssh -p 2222 host", "curl -H \"Authorization: Bearer $TOKEN\" x", "curl https://example.com/a:b@c",
                 "TOKEN_FILE=/etc/hybrid-ai/token"):
        assert found("no-secret-on-logged-command-line", args("command:remote:Command", {"create": line})) == [], line


# --- Helm Releases' values --------------------------------------------------------------------------

RELEASE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "a moving image tag": ({"image": {"repository": "quay.io/x/y", "tag": "latest"}}, "quay.io/x/y:latest"),
    "a moving image string": ({"sidecar": {"image": "busybox:stable"}}, "busybox:stable"),
    "a privileged container": ({"controller": {"securityContext": {"privileged": True}}}, "privileged"),
    "an added capability": ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, "adds SYS_ADMIN"),
    "the host network": ({"hostNetwork": True}, "hostNetwork"),
}


@pytest.mark.parametrize("case", list(RELEASE_CASES))
def test_a_releases_values_are_checked_like_its_pods(case: str) -> None:
    values, expected = RELEASE_CASES[case]
    props = {"chart": "thing", "namespace": "models", "values": values}
    messages = found("images-pinned", args(RELEASE, props)) + found("no-privileged-or-host-pods", args(RELEASE, props))
    assert any(expected in m for m in messages), (case, messages)


def test_a_release_with_pinned_or_chart_default_images_passes() -> None:
    props = {"chart": "thing", "namespace": "models", "values": {"image": {"repository": "x/y", "tag": ""}, "nodeSelector": {"a": "b"},
                                                                "webhook": {"image": {"tag": "v1.16.2"}}}}
    assert found("images-pinned", args(RELEASE, props)) == []
    assert found("no-privileged-or-host-pods", args(RELEASE, props)) == []
