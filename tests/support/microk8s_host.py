"""The host side of the lab's MicroK8s stand-in (tests/support/microk8s_standin.py): MicroK8s
1.32's paths and default files, the lab's wiring of this host, and the kubelet, which registers
its Node (kwok-managed: pods go Ready on it) and posts its address with its own credentials."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

# The stand-in runs as a fresh process on every `snap` and `microk8s` call, most of them
# `microk8s kubectl` and `status`: what only the kubelet's posts need is imported there.

SNAP = Path("/var/snap/microk8s")
SNAP_DATA, SNAP_COMMON = SNAP / "current", SNAP / "common"
WIRING = Path("/run/hybrid-ai-lab/microk8s.json")
"""The lab's wiring for this host: `kubectl`, `ca_dir` (the control-plane host only), `gpus`."""
BOOK = Path("/run/hybrid-ai-lab/snap-microk8s.json")
"""snapd's record of the installed snap (channel, revision)."""
REVISION = "7000"
# default-args/kube-apiserver @ v1.32: the lines tools/lab/kube_args.py records (the engine lab's
# API server runs them; certificate paths and the datastore are the lab's own).
APISERVER_DEFAULT_ARGS = ("--service-cluster-ip-range=10.152.183.0/24\n--authorization-mode=AlwaysAllow\n--secure-port=16443\n"
                          "--allow-privileged=true\n--service-account-issuer=https://kubernetes.default.svc\n--event-ttl=5m\n"
                          "--profiling=false\n--enable-admission-plugins=EventRateLimit\n"
                          "--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,ExternalIP\n"
                          "--feature-gates=WatchList=false\n"
                          "--admission-control-config-file=${SNAP_DATA}/args/admission-control-config-file.yaml\n")
# microk8s-resources/certs/csr.conf.template at v1.32 (the sections that matter).
CSR_TEMPLATE = """[ req ]
req_extensions = req_ext

[ req_ext ]
subjectAltName = @alt_names

[ alt_names ]
DNS.1 = kubernetes
DNS.2 = kubernetes.default
DNS.3 = kubernetes.default.svc
DNS.4 = kubernetes.default.svc.cluster
DNS.5 = kubernetes.default.svc.cluster.local
IP.1 = 127.0.0.1
IP.2 = 10.152.183.1
#MOREIPS

[ v3_ext ]
subjectAltName=@alt_names
"""
# microk8s-resources/default-args/containerd-template.toml at v1.32: the runtimes it ships.
# Note `nvidia-container-runtime`: a handler by that name, not `nvidia`.
CONTAINERD_TEMPLATE = """version = 2
[plugins."io.containerd.grpc.v1.cri"]
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "${SNAPSHOTTER}"
    default_runtime_name = "${RUNTIME}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "${RUNTIME_TYPE}"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-container-runtime]
      runtime_type = "${RUNTIME_TYPE}"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia-container-runtime.options]
        BinaryName = "nvidia-container-runtime"

   [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
      runtime_type = "io.containerd.kata.v2"
"""
# default-args/kubelet @ v1.32 (the lines that matter here); join.py's worker labels.
KUBELET_ARGS = ("--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n--cert-dir=${SNAP_DATA}/certs\n"
                '--node-labels="microk8s.io/cluster=true,node.kubernetes.io/microk8s-controlplane=microk8s-controlplane"\n')
# The snap's default-args/certs.d, as its install hook copies them into $SNAP_DATA/args/certs.d
# (canonical/microk8s microk8s-resources/default-args/certs.d @ v1.32); folder name -> hosts.toml.
DEFAULT_CERTS_D = {
    "docker.io": 'server = "https://docker.io"\n\n[host."https://registry-1.docker.io"]\n  capabilities = ["pull", "resolve"]\n\n',
    "localhost__32000": 'server = "http://localhost:32000"\n\n[host."http://localhost:32000"]\n  capabilities = ["pull", "resolve"]\n\n',
}
WORKER_LABELS = "microk8s.io/cluster=true,node.kubernetes.io/microk8s-worker=microk8s-worker"
# args/cni-network/cni.yaml as MicroK8s 1.32 ships Calico's (upgrade-scripts/000-switch-to-calico/
# resources/calico.yaml): the parts the install script edits, as objects kube-apiserver accepts.
CNI_MANIFEST = """apiVersion: v1
kind: ConfigMap
metadata:
  name: calico-config
  namespace: kube-system
data:
  veth_mtu: "1440"
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: calico-node
  namespace: kube-system
  labels:
    k8s-app: calico-node
spec:
  selector:
    matchLabels:
      k8s-app: calico-node
  template:
    metadata:
      labels:
        k8s-app: calico-node
    spec:
      hostNetwork: true
      tolerations:
        - operator: Exists
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.28.1
          env:
            - name: IP_AUTODETECTION_METHOD
              value: "first-found"
"""
CLIENT_TEMPLATE = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: https://127.0.0.1:16443
  name: microk8s-cluster
contexts:
- context:
    cluster: microk8s-cluster
    user: {user}
  name: microk8s
current-context: microk8s
kind: Config
preferences: {{}}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def wiring() -> dict[str, Any]:
    return json.loads(WIRING.read_text()) if WIRING.exists() else {}


def hostname() -> str:
    return subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip().lower()


def default_address() -> str:
    """The address of the default route's interface (as microk8s-config.wrapper and join.py find
    it), else the first global one (a lab cloud host has no default route)."""
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True, check=False).stdout
    device = re.search(r"\bdev (\S+)", route)
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", *(["dev", device.group(1)] if device else []), "scope", "global"],
                           capture_output=True, text=True, check=False).stdout
    found = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", shown)
    return found.group(1) if found else "127.0.0.1"


def args_of(name: str) -> dict[str, str]:
    lines = (SNAP_DATA / "args" / name).read_text().splitlines()
    return {k: v.strip('"') for k, _, v in (line.partition("=") for line in lines if line.startswith("--"))}


def set_arg(name: str, flag: str, value: str | None) -> None:
    """join.py's set_arg: `flag=value` replaces the flag's line; None removes it."""
    path = SNAP_DATA / "args" / name
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{flag}=")]
    path.write_text("".join(f"{line}\n" for line in [*lines, *([] if value is None else [f"{flag}={value}"])]))


def kubeconfig_text(ca: bytes, user: str, cert: bytes, key: bytes, server: str = "127.0.0.1") -> str:
    text = CLIENT_TEMPLATE.format(ca=_b64(ca), user=user, cert=_b64(cert), key=_b64(key))
    return text.replace("127.0.0.1", server)


def kubelet_posts() -> None:
    """The kubelet (re)starts: it registers its Node if it has none, else posts its address.
    Its labels are its `--node-labels` and the ones every kubelet sets on itself."""
    config = SNAP_DATA / "credentials" / "kubelet.config"
    if not config.exists():
        return
    args, name = args_of("kubelet"), hostname()
    address = args.get("--node-ip") or default_address()
    as_kubelet = ["--kubeconfig", str(config)]
    found = kubectl([*as_kubelet, "get", "node", name, "-o", "json"], check=False, admin=False)
    if found.returncode == 0:  # the kubelet's status update: PATCH nodes/<name>/status
        patch = {"status": {"addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}]}}
        _as_kubelet("PATCH", f"/api/v1/nodes/{name}/status", patch)
        return
    from tools.lab.kwok_node import kwok_node

    labels = dict(pair.split("=", 1) for pair in args.get("--node-labels", "").split(",") if "=" in pair)
    node = kwok_node(name, address, int(wiring().get("gpus", 0)), labels)  # gpus: what the NVIDIA device plugin advertises
    # As the kubelet registers (registerWithAPIServer, k8s 1.32): again and again, from 0.1 s
    # apart doubling to 7 s, until it is in: a refusal can pass (an admission policy's params not
    # yet synced in a just-created binding). Here within a bound, the join waiting on it.
    step, deadline = 0.1, time.monotonic() + 60
    while (made := kubectl([*as_kubelet, "create", "-f", "-"], admin=False, input=json.dumps(node), check=False)).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"kubelet: could not register {name}: {made.stderr.strip()}")
        time.sleep(step)
        step = min(step * 2, 7.0)


def _as_kubelet(method: str, path: str, body: dict[str, Any]) -> None:
    """A request with the kubelet's own credentials (its client certificate, in its cert dir)."""
    import ssl
    import urllib.request

    import yaml

    config = yaml.safe_load((SNAP_DATA / "credentials" / "kubelet.config").read_text())
    server = config["clusters"][0]["cluster"]["server"]
    user = config["users"][0]["user"]
    certs = SNAP_DATA / "certs"
    (certs / "kubelet-client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (certs / "kubelet-client.key").write_bytes(base64.b64decode(user["client-key-data"]))
    (certs / "kubelet-client.key").chmod(0o600)
    context = ssl.create_default_context(cadata=base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode())
    context.load_cert_chain(certs / "kubelet-client.crt", certs / "kubelet-client.key")
    request = urllib.request.Request(server + path, method=method, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        response.read()


def kubectl(argv: list[str], *, check: bool = True, admin: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    config = ["--kubeconfig", str(SNAP_DATA / "credentials" / "client.config")] if admin else []
    result = subprocess.run([wiring()["kubectl"], *config, *argv], capture_output=True, text=True, input=input, timeout=60, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(argv)}: {result.stderr.strip()}")
    return result


def agent_post(address: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A POST to a cluster-agent (join.py's requests: verify=False)."""
    import ssl
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # join.py: verify=False (a fingerprint, if given)
    request = urllib.request.Request(f"https://{address}{path}", method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer
