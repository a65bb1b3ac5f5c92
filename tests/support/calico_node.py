"""calico-node as the lab's API server sees it: its service account with the Node and pod rules of
MicroK8s 1.32's calico.yaml ClusterRole `calico-node` (`nodes` get, list, watch; `nodes/status`
patch, update: no get of `nodes/status`; `pods` get, list, watch; `pods/status` patch), a pod of
it on a node, and that pod's token (bound to the pod, so it names the pod's node as a
kubelet-mounted token does); and the CNI plugin's account `calico-cni-plugin` with its
ClusterRole's pod rules (`pods` get, `pods/status` patch) and a token bound to nothing, as
calico-node requests it. Requests go as Calico's client sends them (kubectl's patch would read
`nodes/status` first, which calico-node may not)."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from tools.lab.kube import ControlPlane

NAMESPACE = "kube-system"


def _account(name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A kube-system service account bound to a ClusterRole of its name with `rules`."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]},
    ]


def _rule(resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [""], "resources": resources, "verbs": verbs}


RBAC = _account("calico-node", [_rule(["nodes"], ["get", "list", "watch"]), _rule(["nodes/status"], ["patch", "update"]),
                                _rule(["pods"], ["get", "list", "watch"]), _rule(["pods/status"], ["patch"])])
CNI_RBAC = _account("calico-cni-plugin", [_rule(["pods", "nodes", "namespaces"], ["get"]), _rule(["pods/status"], ["patch"])])


def _pod(node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"calico-node-{node}", "namespace": NAMESPACE},
            "spec": {"nodeName": node, "serviceAccountName": "calico-node",
                     "containers": [{"name": "calico-node", "image": "docker.io/calico/node:v3.28.1"}]}}


@contextmanager
def calico_node(plane: ControlPlane, node: str) -> Iterator[tuple[str, str]]:
    """(the token of calico-node's pod on `node`, a token bound to no pod); all removed after."""
    docs = [*RBAC, _pod(node)]
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    try:
        pod = ["-n", NAMESPACE, "--duration=10m"]
        bound = plane.kubectl("create", "token", "calico-node", *pod, "--bound-object-kind=Pod", f"--bound-object-name=calico-node-{node}")
        yield bound.stdout.strip(), plane.kubectl("create", "token", "calico-node", *pod).stdout.strip()
    finally:
        plane.kubectl("delete", "-f", "-", "--ignore-not-found", "--grace-period=0", "--force", input=yaml.safe_dump_all(docs), check=False)


@contextmanager
def calico_cni_plugin(plane: ControlPlane) -> Iterator[str]:
    """A calico-cni-plugin token bound to nothing (calico-node's TokenRequest); all removed after."""
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(CNI_RBAC))
    try:
        yield plane.kubectl("create", "token", "calico-cni-plugin", "-n", NAMESPACE, "--duration=10m").stdout.strip()
    finally:
        plane.kubectl("delete", "-f", "-", "--ignore-not-found", input=yaml.safe_dump_all(CNI_RBAC), check=False)


def api(plane: ControlPlane, token: str, method: str, path: str, body: Any = None,
        kind: str = "application/strategic-merge-patch+json") -> tuple[int, dict[str, Any]]:
    """(HTTP status, answer) of a request with the token."""
    conn = http.client.HTTPSConnection("127.0.0.1", plane.port, context=ssl.create_default_context(cafile=str(plane.pki.ca)), timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers={"Authorization": f"Bearer {token}", "Content-Type": kind})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def update_status(plane: ControlPlane, token: str, node: str, annotation: str, value: str) -> tuple[int, dict[str, Any]]:
    """libcalico-go's Node update: get the Node, set one annotation, put it to `nodes/status`
    (a conflict, kwok's heartbeat in between, is tried again as Calico does), as Calico's client
    sends it: without the status fields its API version does not know."""
    for _ in range(5):
        code, got = api(plane, token, "GET", f"/api/v1/nodes/{node}")
        if code != 200:
            return code, got
        got["metadata"].setdefault("annotations", {})[annotation] = value
        # What k8s.io/api v0.28.12 (Calico 3.28.1's) does not know is lost in its decode and encode.
        for field in ("runtimeHandlers", "features"):
            got.get("status", {}).pop(field, None)
        got.get("status", {}).get("nodeInfo", {}).pop("swap", None)
        code, answer = api(plane, token, "PUT", f"/api/v1/nodes/{node}/status", got, "application/json")
        if code != 409:
            break
    return code, answer
