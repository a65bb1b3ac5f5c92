"""Which input changes make the provider replace a resource rather than update it in place,
for the resource types this program registers (read from the providers at our pins):

- pulumi-command 1.2.1 (`provider/pkg/provider/common/inputs.go`): only `triggers` is
  `replaceOnChanges`; a changed `create`, `update`, `delete`, `connection`, `stdin` or
  `environment` is an update, which runs `update` (or `create` when there is none).
- pulumi-kubernetes (`provider/pkg/provider/diff.go`, `provider.go`): `metadata.name` and
  `metadata.namespace` always replace; per kind the immutable fields below; ConfigMap `data`
  and Secret `data`/`type` replace unless the provider enables mutable ConfigMaps/Secrets
  (off by default; our provider does not turn them on). Patch resources only on identity.

- the Kubernetes provider (pulumi-kubernetes `provider/pkg/provider/provider.go`, DiffConfig,
  read at the pin v4.25.0, unchanged at v4.32.0 and HEAD 9497796 but for SkipNulls): an
  unknown `kubeconfig`, `context` or `cluster` replaces it (in a real preview the kubeconfig
  is unknown whenever a resource it is computed from changes: the kubeconfig command re-runs);
  a changed one replaces it when the active cluster (server, CA) changes; a changed
  `renderYamlToDirectory` or `clusterIdentifier` replaces it; an unchanged `clusterIdentifier`
  means no replacement at all. The engine then replaces every resource the provider manages.

Other types (OpenStack, TLS, random, Helm releases) are shown as updates with a note that
their replacement rules are not modelled here.
"""

from __future__ import annotations

from typing import Any

COMMAND_TYPES = ("command:remote:Command", "command:local:Command")
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"

_SELECTOR = ("spec.selector",)
_KUBERNETES: dict[str, tuple[str, ...]] = {
    "apps/v1:Deployment": _SELECTOR,
    "apps/v1:DaemonSet": _SELECTOR,
    "apps/v1:StatefulSet": (*_SELECTOR, "spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.serviceName",
                            "spec.volumeClaimTemplates"),
    "core/v1:ConfigMap": ("data", "binaryData"),
    "core/v1:Secret": ("type", "data", "stringData"),
    "core/v1:Service": ("spec.clusterIP",),
    "core/v1:PersistentVolumeClaim": ("spec.accessModes", "spec.selector", "spec.storageClassName", "spec.volumeName"),
    "batch/v1:Job": (*_SELECTOR, "spec.completions", "spec.parallelism", "spec.template"),
    "rbac.authorization.k8s.io/v1:RoleBinding": ("roleRef",),
    "rbac.authorization.k8s.io/v1:ClusterRoleBinding": ("roleRef",),
    "storage.k8s.io/v1:StorageClass": ("parameters", "provisioner"),
}
_IDENTITY = ("metadata.name", "metadata.namespace")
_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in prefixes)


def modelled(type_: str) -> bool:
    """Whether this module knows the replacement rules of `type_`."""
    if type_.startswith("pulumi:providers:") or type_ in COMMAND_TYPES:
        return True
    return type_.startswith("kubernetes:") and not type_.startswith(_NOT_OBJECTS)


def replacing(type_: str, paths: list[str]) -> list[str]:
    """The changed input paths (dotted, `[i]` for list items) that force a replacement."""
    if type_ in COMMAND_TYPES:
        return [p for p in paths if _under(p, ("triggers",))]
    if not modelled(type_) or type_.startswith("pulumi:providers:"):
        return []
    kind = type_.removeprefix("kubernetes:")
    rules = _IDENTITY if kind.endswith("Patch") else _IDENTITY + _KUBERNETES.get(kind, ())
    return [p for p in paths if _under(p, rules)]


def provider_replacing(old: dict[str, Any], new: dict[str, Any], paths: list[str], changed_sources: list[str]) -> list[str]:
    """Why the Kubernetes provider with these inputs (and changed input paths) is replaced;
    `changed_sources` names the resources its inputs are computed from that change."""
    identifier = "clusterIdentifier"
    if new.get(identifier) is not None and old.get(identifier) == new.get(identifier):
        return []  # DiffConfig drops every replacement while the identifier stays the same
    why = []
    if old.get(identifier) is not None and new.get(identifier) is not None:
        why.append(identifier)
    if changed_sources:
        why.append(f"kubeconfig (unknown in preview: {', '.join(changed_sources)} changes)")
    why += [f"{p} (if the active cluster's server or CA changes)" for p in paths if _under(p, ("kubeconfig", "context", "cluster"))]
    why += [p for p in paths if _under(p, ("renderYamlToDirectory",))]
    return why
