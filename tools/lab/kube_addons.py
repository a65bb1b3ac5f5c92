"""Stand-ins for the MicroK8s addons the program relies on, in the lab's control plane (there is
no container runtime to run their pods):
- dns: the `kube-system/coredns` Deployment the program patches (components/workloads/
  cluster_dns.py), with the addon's name, labels and selector, applied with `kubectl apply` as
  the addon does, so it owns no field the program sets (no replicas, no placement);
- metrics-server and Calico: the `kube-system/metrics-server` and `kube-system/calico-kube-controllers`
  Deployments the program places on cloud nodes (components/workloads/addons.py), with the
  `k8s-app: <name>` labels and selector the addon and MicroK8s' calico.yaml give them;
- hostpath-storage: the `kube-system/hostpath-provisioner` Deployment the program places
  (components/workloads/addons.py), and the `microk8s-hostpath` StorageClass as the addon
creates it (default class, provisioner `microk8s.io/hostpath`, reclaim Delete, volume binding
WaitForFirstConsumer), and a loop that does what the provisioner does with it: once the scheduler
has picked a node for a pending claim (`volume.kubernetes.io/selected-node`), a hostPath
PersistentVolume pre-bound to that claim and pinned to that node; once a claim is gone, its
volume is deleted (reclaim policy Delete)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from typing import Any

from components.cluster.microk8s import STORAGE_CLASS
from components.workloads.addons import HOSTPATH_PROVISIONER
from components.workloads.cluster_dns import COREDNS, NAMESPACE, SELECTOR

PROVISIONER = "microk8s.io/hostpath"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_ROOT = "/var/snap/microk8s/common/default-storage"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
    }


def addon_deployment(name: str, labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }


def hostpath_provisioner() -> dict[str, Any]:
    return addon_deployment(HOSTPATH_PROVISIONER, {"k8s-app": HOSTPATH_PROVISIONER},
                            {"name": HOSTPATH_PROVISIONER, "image": "cdkbot/hostpath-provisioner:1.5.0"})


def metrics_server() -> dict[str, Any]:
    return addon_deployment("metrics-server", {"k8s-app": "metrics-server"},
                            {"name": "metrics-server", "image": "registry.k8s.io/metrics-server/metrics-server:v0.7.2"})


def calico_kube_controllers() -> dict[str, Any]:
    return addon_deployment("calico-kube-controllers", {"k8s-app": "calico-kube-controllers"},
                            {"name": "calico-kube-controllers", "image": "docker.io/calico/kube-controllers:v3.28.1"})


def coredns() -> dict[str, Any]:
    labels = dict(SELECTOR)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": COREDNS, "namespace": NAMESPACE, "labels": labels},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "priorityClassName": "system-cluster-critical",
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
            "containers": [{"name": "coredns", "image": "coredns/coredns:1.12.0", "args": ["-conf", "/etc/coredns/Corefile"]}],
        }}},
    }


def volume_for(claim: dict[str, Any]) -> dict[str, Any]:
    meta, spec = claim["metadata"], claim["spec"]
    node = meta["annotations"][SELECTED_NODE]
    name = f"pvc-{meta['uid']}"
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec["accessModes"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": f"{STORAGE_ROOT}/{meta['namespace']}-{meta['name']}-{name}", "type": "DirectoryOrCreate"},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        },
    }


class Provisioner:
    """The loop above, run whenever a claim or a volume changes: `watch(kind)` is the argv of a
    `kubectl get <kind> --watch` that prints a line per change (one long-lived process each, not
    a kubectl start per poll: at two calls every half second those cost the lab's 2 CPUs more
    than some of the program's steps). A watch that ends is started again; the loop also runs
    every `interval` seconds regardless, so a change missed between two watches is not lost."""

    KINDS = ("pvc", "pv")

    def __init__(self, kubectl: Kubectl, watch: Callable[[str], list[str]], interval: float = 5.0) -> None:
        self.kubectl, self.watch, self.interval = kubectl, watch, interval
        self._stop, self._changed = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-hostpath-provisioner", daemon=True)
        self._watches: dict[str, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def start(self) -> Provisioner:
        for kind in self.KINDS:
            threading.Thread(target=self._follow, args=(kind,), name=f"lab-watch-{kind}", daemon=True).start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        with self._lock:
            for proc in self._watches.values():
                proc.terminate()
        for proc in list(self._watches.values()):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout=10)

    def _follow(self, kind: str) -> None:
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    return
                proc = subprocess.Popen(self.watch(kind), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                self._watches[kind] = proc
            assert proc.stdout is not None
            for _ in proc.stdout:
                self._changed.set()
            proc.wait()
            self._stop.wait(1)  # the API server away: do not spin

    def _run(self) -> None:
        while not self._stop.is_set():
            self._changed.wait(self.interval)
            if self._stop.is_set():
                return
            self._changed.clear()
            try:
                self.once()
            except Exception as err:  # noqa: BLE001 - kept for the test to report; the loop goes on
                self.errors.append(str(err))

    def once(self) -> None:
        claims = json.loads(self.kubectl("get", "pvc", "-A", "-o", "json").stdout)["items"]
        volumes = json.loads(self.kubectl("get", "pv", "-o", "json").stdout)["items"]
        have = {v["metadata"]["name"] for v in volumes}
        for c in claims:
            wanted = c["spec"].get("storageClassName") == STORAGE_CLASS and c["status"].get("phase") == "Pending"
            if wanted and SELECTED_NODE in c["metadata"].get("annotations", {}) and f"pvc-{c['metadata']['uid']}" not in have:
                self.kubectl("create", "-f", "-", input=json.dumps(volume_for(c)))
        for v in volumes:
            ours = v["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by") == PROVISIONER
            if ours and v["status"].get("phase") in ("Released", "Failed"):
                self.kubectl("delete", "pv", v["metadata"]["name"], "--wait=false", check=False)
