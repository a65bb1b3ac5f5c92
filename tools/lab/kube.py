"""A Kubernetes control plane in its own network namespace: etcd, kube-apiserver (with the
flags of tools/lab/kube_args.py), kube-controller-manager, kube-scheduler, and kwok, which
plays every node's kubelet (Nodes and Pods turn Ready with no container runtime), with the
stand-ins of tools/lab/kube_addons.py for the MicroK8s addons the program relies on.

The namespace has only its loopback, which also holds the API server's advertise address (the
seed's VPN address), and no route out. Tools outside reach the API server through a relay
(tools/lab/forward.py) listening on an ephemeral port of the machine's loopback. Each node
registers itself as its kubelet would, with its own client certificate (CN=system:node:<name>,
O=system:nodes), then kwok keeps its status. Every process is started by the lab and stopped by
its PID; the namespace and the lab's folder (PKI, etcd's data, logs) are removed on `down`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.lab import kube_addons as addons
from tools.lab.base import Startable, add_netns, kill_pids, netns_pids, sh
from tools.lab.kube_args import ADMISSION_CONFIG, EVENT_CONFIG
from tools.lab.kwok_node import KWOK_ANNOTATION, kwok_node
from tools.lab.pki import Pki, inline_kubeconfig, write_kubeconfig

PROJECT = Path(__file__).resolve().parents[2]
BIN = PROJECT / ".engine" / "bin"
CRDS = PROJECT / ".engine" / "crds"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
KWOK_MODULE = "sigs.k8s.io/kwok"
# kwok's own stages (its module, kustomize/stage/): nodes turn Ready and keep a lease, pods turn
# Ready (Job pods complete), and deleted pods go away as a kubelet would remove them.
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
               "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")
READY_TIMEOUT = 60
LAB_FLAGS = ("--etcd-servers", "--bind-address", "--cert-dir", "--client-ca-file", "--tls-cert-file", "--tls-private-key-file",
             "--kubelet-certificate-authority", "--kubelet-client-certificate", "--kubelet-client-key", "--service-account-key-file",
             "--service-account-signing-key-file", "--admission-control-config-file")
"""kube-apiserver flags the lab sets itself: the datastore (etcd; MicroK8s runs k8s-dqlite behind
the same API) and file paths in the lab's folder. The serving pair, pki/server.{crt,key}, is
reloaded by the API server when it changes: a MicroK8s stand-in on the host puts its own
server.crt there (tests/support/microk8s_standin.py)."""


def missing_requirements() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    absent = [b for b in BINARIES if not (BIN / b).exists()]
    if absent:
        return f"not built: {', '.join(absent)} in {BIN} (run `make engine`)"
    if kwok_stages() is None:
        return f"kwok's stages are not in Go's module cache ({KWOK_MODULE}@{kwok_version()}): run `make engine`"
    return None


def kwok_version() -> str:
    mod = (PROJECT / "engine" / "kwok" / "go.mod").read_text()
    return next(line.split()[-1] for line in mod.splitlines() if line.strip().startswith(("require " + KWOK_MODULE, KWOK_MODULE)))


def kwok_stages() -> list[Path] | None:
    """kwok's stage files, read where Go keeps the pinned module (never copied into the project)."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    found = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=False)
    root = Path(found.stdout.strip()) / f"{KWOK_MODULE}@{kwok_version()}" / "kustomize" / "stage"
    stages = [root / s for s in KWOK_STAGES]
    return stages if all(s.is_file() for s in stages) else None


@dataclass
class KubeNode:
    name: str
    address: str
    """Its InternalIP (the host's VPN address)."""
    gpus: int = 0
    """nvidia.com/gpu capacity (what the device plugin advertises: GPUs x time-slicing replicas)."""


@dataclass
class ControlPlane(Startable):
    nodes: list[KubeNode]
    apiserver: dict[str, str]
    """kube-apiserver flags from tools/lab/kube_args.py (without paths and the datastore)."""
    pod_cidr: str = "10.1.0.0/16"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hybrid-ai-kube-")))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ns: str = ""
    port: int = 0
    """The relay's port on 127.0.0.1."""
    provisioner: addons.Provisioner | None = None
    host_ns: str = ""
    """A lab host's network namespace to run in, as MicroK8s on its control plane (none made)."""
    extra_sans: tuple[str, ...] = ()
    """More names for the serving certificate (the control plane's public and VPN addresses)."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def advertise(self) -> str:
        return self.apiserver["--advertise-address"]

    @property
    def local_address(self) -> str:
        """Where components reach the API server (a host's VPN address exists once the VPN is up)."""
        return "127.0.0.1" if self.host_ns else self.advertise

    @property
    def kubeconfig(self) -> Path:
        """The admin's (system:masters), for tools outside the namespace."""
        return self.root / "admin.kubeconfig"

    def kubelet_kubeconfig(self, node: str) -> Path:
        return self.root / f"kubelet-{node}.kubeconfig"

    def _up(self) -> None:
        start = time.monotonic()
        if self.host_ns:
            self.ns = self.host_ns
        else:
            self.ns = f"haik{os.getpid() % 100000}-{self.root.name[-6:]}"
            add_netns(self.ns)
            sh("ip", "-n", self.ns, "addr", "add", f"{self.advertise}/32", "dev", "lo")
        self._pki()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._start("forward", [sys.executable, "-m", "tools.lab.forward", str(listener.fileno()), self.local_address,
                                self.apiserver["--secure-port"]], pass_fds=(listener.fileno(),))
        listener.close()
        etcd = self.root / "etcd"
        self._start("etcd", [str(BIN / "etcd"), "--name", "lab", "--data-dir", str(etcd), "--listen-client-urls", "http://127.0.0.1:2379",
                             "--advertise-client-urls", "http://127.0.0.1:2379", "--listen-peer-urls", "http://127.0.0.1:2380",
                             "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster", "lab=http://127.0.0.1:2380",
                             "--unsafe-no-fsync", "--log-level", "warn"])
        self._start("kube-apiserver", [str(BIN / "kube-apiserver"), *self._apiserver_flags()])
        self._wait("/readyz")
        self.timings["apiserver"] = time.monotonic() - start
        k = self.root
        self._start("kube-controller-manager", [
            str(BIN / "kube-controller-manager"), f"--kubeconfig={k / 'controller-manager.kubeconfig'}",
            f"--service-account-private-key-file={k / 'pki/serviceaccount.key'}", f"--root-ca-file={k / 'pki/ca.crt'}",
            f"--cluster-signing-cert-file={k / 'pki/ca.crt'}", f"--cluster-signing-key-file={k / 'pki/ca.key'}",
            "--use-service-account-credentials", "--leader-elect=false", "--profiling=false", "--bind-address=127.0.0.1",
        ])
        self._start("kube-scheduler", [str(BIN / "kube-scheduler"), f"--kubeconfig={k / 'scheduler.kubeconfig'}",
                                       "--leader-elect=false", "--profiling=false", "--bind-address=127.0.0.1"])
        stages = kwok_stages()
        assert stages is not None
        self._start("kwok", [str(BIN / "kwok"), f"--kubeconfig={k / 'kwok.kubeconfig'}", *(f"--config={s}" for s in stages),
                             "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={'='.join(KWOK_ANNOTATION)}",
                             f"--cidr={self.pod_cidr}", "--node-lease-duration-seconds=40", "--server-address=127.0.0.1:10247"])
        self.kubectl("create", "-f", "-", input=json.dumps(addons.storage_class()))
        for addon in (addons.coredns(), addons.hostpath_provisioner(), addons.metrics_server(), addons.calico_kube_controllers()):
            self.kubectl("apply", "-f", "-", input=json.dumps(addon))
        for node in self.nodes:
            self.kubectl("create", "-f", "-", as_node=node.name, input=json.dumps(kwok_node(node.name, node.address, node.gpus)))
        self.provisioner = addons.Provisioner(self.kubectl, self._watch_argv).start()
        self._until(self._all_ready, "every node Ready and untainted")
        self._until(lambda: self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
                    "the default ServiceAccount (controller-manager)")
        self.timings["ready"] = time.monotonic() - start

    def _pki(self) -> None:
        pki = Pki(self.root / "pki")
        self.pki = pki
        (self.root / "pki" / "ca.key").write_bytes(pki.ca_key_pem())
        service_ip = str(ipaddress.ip_network(self.apiserver["--service-cluster-ip-range"])[1])
        names = ("127.0.0.1", "localhost", self.advertise, service_ip, "kubernetes", "kubernetes.default",
                 "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", *self.extra_sans)
        self.serving = pki.issue("server", "kube-apiserver", server_names=names)
        self.kubelet_client = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",))
        inside = f"https://{self.local_address}:{self.apiserver['--secure-port']}"
        for file, cn, orgs in (("controller-manager", "system:kube-controller-manager", ()), ("scheduler", "system:kube-scheduler", ()),
                               ("kwok", "kwok", ("system:masters",))):
            write_kubeconfig(self.root / f"{file}.kubeconfig", inside, pki.ca, pki.issue(file, cn, orgs))
        (self.root / "admission").mkdir()
        (self.root / "admission" / "admission-control-config-file.yaml").write_text(ADMISSION_CONFIG)
        (self.root / "admission" / "eventconfig.yaml").write_text(EVENT_CONFIG)

    def _write_kubeconfigs_outside(self) -> None:
        outside = f"https://127.0.0.1:{self.port}"
        write_kubeconfig(self.kubeconfig, outside, self.pki.ca, self.pki.issue("admin", "admin", ("system:masters",)))
        for node in self.nodes:
            write_kubeconfig(self.kubelet_kubeconfig(node.name), outside, self.pki.ca,
                                   self.pki.issue(f"kubelet-{node.name}", f"system:node:{node.name}", ("system:nodes",)))

    def kubeconfig_inline(self) -> str:
        return inline_kubeconfig(self.kubeconfig)

    def _apiserver_flags(self) -> list[str]:
        k = self.root
        own = {
            "--etcd-servers": "http://127.0.0.1:2379",
            "--bind-address": "0.0.0.0",
            "--cert-dir": str(k / "pki"),
            "--client-ca-file": str(k / "pki/ca.crt"),
            "--tls-cert-file": str(self.serving.cert), "--tls-private-key-file": str(self.serving.key),
            "--kubelet-certificate-authority": str(k / "pki/ca.crt"),
            "--kubelet-client-certificate": str(self.kubelet_client.cert), "--kubelet-client-key": str(self.kubelet_client.key),
            "--service-account-key-file": str(k / "pki/serviceaccount.pub"),
            "--service-account-signing-key-file": str(k / "pki/serviceaccount.key"),
            "--admission-control-config-file": str(k / "admission/admission-control-config-file.yaml"),
        }
        assert set(own) == set(LAB_FLAGS)
        return [f"{flag}={value}" for flag, value in (self.apiserver | own).items()]

    def _all_ready(self) -> bool:
        nodes = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        # Ready, and the node lifecycle controller has lifted the taint a new node is born with
        ready = {n["metadata"]["name"] for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
                 and not any(t["key"].startswith("node.kubernetes.io/") for t in n["spec"].get("taints", []))}
        return ready >= {n.name for n in self.nodes}

    def restart_apiserver(self) -> None:
        """kube-apiserver stopped and started again with the same flags and datastore, as a fresh
        MicroK8s gets a fresh one (with it, fresh in-memory admission state), once ready."""
        proc = self.processes["kube-apiserver"]
        proc.kill()  # its graceful stop waits on the watches (kwok's, the provisioner's); etcd keeps the state
        proc.wait(timeout=30)
        self._start("kube-apiserver", [str(BIN / "kube-apiserver"), *self._apiserver_flags()])
        self._wait("/readyz")

    def _watch_argv(self, kind: str) -> list[str]:
        return [str(BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}", "get", kind, "-A", "--watch", "-o", "name"]

    def kubectl(self, *args: str, as_node: str | None = None, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        config = self.kubelet_kubeconfig(as_node) if as_node else self.kubeconfig
        result = subprocess.run([str(BIN / "kubectl"), f"--kubeconfig={config}", *args], capture_output=True, text=True,
                                input=input, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def _start(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        self.processes[name] = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], stdout=log, stderr=log,
                                                stdin=subprocess.DEVNULL, pass_fds=pass_fds, cwd=PROJECT)
        if name == "forward":
            self._write_kubeconfigs_outside()

    def _wait(self, path: str) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        admin = json.loads(self.kubeconfig.read_text())["users"][0]["user"]
        context.load_cert_chain(admin["client-certificate"], admin["client-key"])

        def answers() -> bool:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=2)
            try:
                conn.request("GET", path)
                return conn.getresponse().status == 200
            except (OSError, http.client.HTTPException):
                return False
            finally:
                conn.close()
        self._until(answers, f"kube-apiserver {path}")

    def _until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not check():
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}.log\n" + (self.root / f"{n}.log").read_text(errors="replace")[-1500:] for n in dead or self.processes)
                raise RuntimeError(f"lab control plane: {what} not reached ({'exited: ' + ', '.join(dead) if dead else 'timed out'})\n{logs}")
            time.sleep(0.2)

    def down(self) -> None:
        if self.provisioner is not None:
            self.provisioner.stop()
        for name in reversed(list(self.processes)):
            proc = self.processes[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        if self.ns and not self.host_ns:
            # Anything left in the namespace was started from the lab's processes: end it by PID.
            kill_pids(netns_pids(self.ns), signal.SIGKILL)
            sh("ip", "netns", "del", self.ns, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

