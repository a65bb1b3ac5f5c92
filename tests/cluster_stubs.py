"""Recording stubs of snap, microk8s, NVIDIA tools and friends, with state in files.

They model just enough of a host: an installed snap with its args files, a cluster that
knows nodes, a driver that loads after a reboot, so the scripts' checks see real state.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.stubs import StubHost

KUBELET_ARGS = "--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n--cert-dir=${SNAP_DATA}/certs\n"
CSR_TEMPLATE = "[ req ]\n[ alt_names ]\nDNS.1 = kubernetes\nIP.1 = 127.0.0.1\nIP.2 = 10.152.183.1\n#MOREIPS\n"
CNI_YAML = """kind: ConfigMap
data:
  veth_mtu: "1440"
---
kind: DaemonSet
spec:
  template:
    spec:
      containers:
        - name: calico-node
          env:
            - name: IP_AUTODETECTION_METHOD
              value: "first-found"
"""

STUBS = {
    "hostname": 'cat "$STATE/hostname"',
    # `ip -4 addr show dev IFACE`: the VPN address, once the mesh is up.
    "ip": '[ -s "$STATE/vpn-ip" ] || exit 1; echo "    inet $(cat "$STATE/vpn-ip")/16 scope global ${!#}"',
    "snap": """
fail_once() {
  [ -s "$STATE/snap-fail" ] || return 1
  n=$(cat "$STATE/snap-fail"); [ "$n" = always ] || echo $((n - 1)) > "$STATE/snap-fail"
  [ "$n" = 1 ] && : > "$STATE/snap-fail"
  echo 'error: cannot install "microk8s": Post "https://api.snapcraft.io/v2/snaps/refresh": dial tcp: i/o timeout' >&2
  return 0
}
case $1 in
  list) [ -e "$STATE/snap-channel" ] || exit 1
        echo "Name Version Rev Tracking Publisher Notes"
        echo "microk8s v1.32.3 7000 $(cat "$STATE/snap-channel") canonical classic";;
  install|refresh)
        fail_once && exit 1
        for a in "$@"; do case $a in --channel=*) echo "${a#--channel=}" > "$STATE/snap-channel";; esac; done
        if [ "$1" = install ]; then
          mkdir -p "$SNAP_DATA/args/cni-network" "$SNAP_DATA/certs" "$SNAP_DATA/var/lock"
          printf '%s' "$KUBELET_ARGS" > "$SNAP_DATA/args/kubelet"
          : > "$SNAP_DATA/args/kube-apiserver"
          printf '%s' "$CSR_TEMPLATE" > "$SNAP_DATA/certs/csr.conf.template"
          printf '%s' "$CNI_YAML" > "$SNAP_DATA/args/cni-network/cni.yaml"
          printf '[plugins]\\n' > "$SNAP_DATA/args/containerd-template.toml"
        fi;;
  remove) rm -f "$STATE/snap-channel"; rm -rf "$SNAP_DATA";;
  restart) ;;
esac""",
    "microk8s": """
case $1 in
  status) exit 0;;
  kubectl)
    shift
    if [ "$1" = get ] && [ "$2" = nodes ]; then
      # Every node the state knows, with its labelled VPN address (as the program labels it).
      for f in "$STATE"/nodes/*; do
        [ -e "$f" ] || continue
        n=$(basename "$f")
        case $* in
          *-o\\ name*) echo "node/$n";;
          *) echo "$n|$(cat "$STATE/vpn/$n" 2>/dev/null || cat "$f")|True|$(cat "$f")|$(cat "$STATE/want-gpus/$n" 2>/dev/null)|$(cat "$STATE/gpus/$n" 2>/dev/null)";;
        esac
      done
    elif [ "$1" = get ] && [ "$2" = node ]; then
      [ -e "$STATE/nodes/$3" ] || exit 1
      case $* in
        *InternalIP*) cat "$STATE/nodes/$3";;
        *Ready*) echo True;;
        *allocatable*) cat "$STATE/gpus/$3" 2>/dev/null || true;;
      esac
    fi;;
  join) touch "$SNAP_DATA/var/lock/clustered.lock"
        # Like MicroK8s: the join rewrites the kubelet's node IP from the default route.
        sed -i "s|^--node-ip=.*|--node-ip=198.51.100.11|" "$SNAP_DATA/args/kubelet";;
  leave) rm -f "$SNAP_DATA/var/lock/clustered.lock";;
  remove-node) rm -f "$STATE/nodes/$2";;
  config) printf 'apiVersion: v1\\nclusters:\\n- cluster:\\n    server: https://127.0.0.1:16443\\nusers:\\n- user:\\n    client-key-data: S3CR3T\\n';;
esac""",
    "flock": 'shift 3; exec "$@"',
    "nvidia-smi": """
[ -e "$STATE/driver-loaded" ] || { echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver" >&2; exit 9; }
case $1 in
  -L) for i in $(seq 1 "$(cat "$STATE/driver-loaded")"); do echo "GPU $((i - 1)): NVIDIA GeForce RTX 3090 (UUID: GPU-$i)"; done;;
  *) echo "535.183.01";;
esac""",
    "ubuntu-drivers": 'touch "$STATE/installed/nvidia-driver-535"',
    "curl": """
case $* in *--resolve*) [ -e "$STATE/api-up" ]; exit;; esac
prev=; for a in "$@"; do [ "$prev" = -o ] && echo key > "$a"; prev=$a; done; exit 0""",
    "gpg": 'prev=; for a in "$@"; do [ "$prev" = -o ] && echo keyring > "$a"; prev=$a; done; exit 0',
    "nvidia-ctk": 'for a in "$@"; do case $a in --config=*) echo "[plugins.cri.containerd.runtimes.nvidia]" >> "${a#--config=}";; esac; done',
    "systemd-run": "exit 0",
}


class ClusterHost(StubHost):
    """A host with the cluster stubs; `snap_data` plays /var/snap/microk8s/current."""

    def __init__(self, root: Path, hostname: str = "ws-1", vpn_ip: str | None = "100.64.1.1"):
        self.snap_data = root / "snap" / "current"
        self.snap_common = root / "snap" / "common"
        super().__init__(root, dict(STUBS), {"SNAP_DATA": str(self.snap_data)})
        (self.state / "nodes").mkdir(exist_ok=True)
        (self.state / "hostname").write_text(hostname + "\n")
        if vpn_ip:
            (self.state / "vpn-ip").write_text(vpn_ip)
        # The snap stub writes these fixtures at install time.
        env = (f'KUBELET_ARGS={_q(KUBELET_ARGS)}\nCSR_TEMPLATE={_q(CSR_TEMPLATE)}\nCNI_YAML={_q(CNI_YAML)}\n')
        snap = self.bin / "snap"
        snap.write_text(snap.read_text().replace("set -u\n", "set -u\n" + env, 1))

    def run(self, script: str, stdin: str = "", **params: str) -> subprocess.CompletedProcess[str]:
        params = {"SNAP_DATA": str(self.snap_data), "SNAP_COMMON": str(self.snap_common), **params}
        return super().run(script, stdin, **params)

    def add_node(self, name: str, ip: str) -> None:
        (self.state / "nodes" / name).write_text(ip)


def _q(text: str) -> str:
    return shlex.quote(text)
