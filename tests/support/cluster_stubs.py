"""Recording stubs of snap, microk8s, NVIDIA tools and friends, with state in files.

They model just enough of a host: an installed snap with its args files, a cluster that
knows nodes, a driver that loads after a reboot, so the scripts' checks see real state.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.join_stub import JOIN_STUB
from tests.support.microk8s_host import APISERVER_DEFAULT_ARGS as APISERVER_DEFAULT_ARGS
from tests.support.microk8s_host import CONTAINERD_TEMPLATE, CSR_TEMPLATE, DEFAULT_CERTS_D
from tests.support.nft_stub import NFT_STUBS
from tests.support.nvidia_stubs import NVIDIA_STUBS
from tests.support.snap_files_stub import SNAP_FILES_STUB
from tests.support.stubs import StubHost

KUBELET_ARGS = "--kubeconfig=${SNAP_DATA}/credentials/kubelet.config\n--cert-dir=${SNAP_DATA}/certs\n"
# microk8s-resources/client-x509.config.template at v1.32, as create_kubeconfig_x509 fills it for admin.
CLIENT_CONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0FEQVRB
    server: https://127.0.0.1:16443
  name: microk8s-cluster
contexts:
- context:
    cluster: microk8s-cluster
    user: admin
  name: microk8s
current-context: microk8s
kind: Config
preferences: {}
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZUzNDUjNU
"""
FAKE = Path(__file__).parent / "microk8s_fake.py"
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
    "snap": SNAP_FILES_STUB + """
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
        echo "microk8s v1.32.3 $(cat "$STATE/snap-rev" 2>/dev/null || echo 7000) $(cat "$STATE/snap-channel") canonical classic$(held_note microk8s)";;
  install|refresh)
        fail_once && exit 1
        [[ ${!#} != *.snap ]] || local_file "$@"
        for a in "$@"; do case $a in --channel=*) echo "${a#--channel=}" > "$STATE/snap-channel";; esac; done
        if [ "$1" = install ]; then
          mkdir -p "$SNAP_DATA/args/cni-network" "$SNAP_DATA/certs" "$SNAP_DATA/var/lock"
          # The install hook: default-args (its certs.d too) into $SNAP_DATA/args, localhost__32000 renamed.
          [ -z "${MICROK8S_DEFAULTS:-}" ] || { cp -r "$MICROK8S_DEFAULTS" "$SNAP_DATA/args/certs.d" && mv "$SNAP_DATA/args/certs.d/localhost"{__,:}32000; }
          printf '%s' "$KUBELET_ARGS" > "$SNAP_DATA/args/kubelet"
          printf '%s' "$APISERVER_ARGS" > "$SNAP_DATA/args/kube-apiserver"  # default-args @ v1.32
          printf '%s' "$CSR_TEMPLATE" > "$SNAP_DATA/certs/csr.conf.template"
          printf '%s' "$CNI_YAML" > "$SNAP_DATA/args/cni-network/cni.yaml"
          printf '%s' "$CONTAINERD_TEMPLATE" > "$SNAP_DATA/args/containerd-template.toml"
          # The install hook: our launch configuration (else the bundled default) applied.
          "$PYTHON" "$FAKE" launch "$SNAP_DATA" "$SNAP_COMMON"
        fi;;
  remove) rm -f "$STATE/snap-channel"; rm -rf "$SNAP_DATA";;
  restart) ;;
esac""",
    "microk8s": """
enabled=$SNAP_DATA/../enabled-addons
case $1 in
  status) case $* in
            *--addon*) [ -e "$enabled/${!#}" ] && echo enabled || echo disabled;;
            # status.py print_pretty: `high-availability: yes` once more than two voters ($STATE/ha).
            *) # microk8s-status.wrapper @ v1.32: a worker (clustered.lock) answers at once, waits for nothing.
               if [ -e "$SNAP_DATA/var/lock/clustered.lock" ]; then
                 echo "This MicroK8s deployment is acting as a node in a cluster. Please use the microk8s.status on the master."; exit 0
               fi
               echo "microk8s is running"; echo "high-availability: $(cat "$STATE/ha" 2>/dev/null || echo no)";;
          esac; exit 0;;
  enable) mkdir -p "$enabled"; echo "${*:3}" > "$enabled/$2"
          # addons/rbac/enable @ core addons 2d6e317: the API server's authorization mode.
          if [ "$2" = rbac ]; then
            grep -v -- --authorization-mode= "$SNAP_DATA/args/kube-apiserver" > "$SNAP_DATA/args/kube-apiserver.new" || true
            echo --authorization-mode=RBAC,Node >> "$SNAP_DATA/args/kube-apiserver.new"
            mv "$SNAP_DATA/args/kube-apiserver.new" "$SNAP_DATA/args/kube-apiserver"
          fi;;
  refresh-certs) [ "$2 $3" = "--cert server.crt" ] || exit 2; "$PYTHON" "$FAKE" cert "$SNAP_DATA";;
  add-node)
    # Like add_token.py: --token, else token_hex(16); --token-ttl appends `token|expiry`;
    # --format token prints the token alone (the default format prints join commands).
    if [ -e "$STATE/add-node-output" ]; then cat "$STATE/add-node-output"; exit 0; fi
    token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n') ttl=-1 format=pretty prev=
    for a in "$@"; do
      case $prev in --token|-t) token=$a;; --token-ttl|-l) ttl=$a;; --format) format=$a;; esac; prev=$a
    done
    mkdir -p "$SNAP_DATA/credentials"
    if [ "$ttl" = -1 ]; then echo "$token"; else echo "$token|$(( $(date +%s) + ttl ))"; fi >> "$SNAP_DATA/credentials/cluster-tokens.txt"
    if [ "$format" = token ]; then echo "$token"; else echo "microk8s join 198.51.100.2:25000/$token/0123abcd"; fi;;
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
        # The ready check's one call: "<Ready>|<InternalIP>", as kubectl prints that template.
        # $STATE/ready-status/<node>: a status its kubelet posted as it pleased (the API server checks none).
        *Ready*InternalIP*) if [ -e "$STATE/ready-status/$3" ]; then cat "$STATE/ready-status/$3"; elif [ -e "$STATE/not-ready/$3" ]; then printf False; else printf True; fi
                            printf '|%s\\n' "$(cat "$STATE/nodes/$3")";;
        *InternalIP*) cat "$STATE/nodes/$3";;
        # A field or annotation that is not set prints nothing, as kubectl's jsonpath does.
        *spec.unschedulable*) if [ -e "$STATE/cordoned/$3" ]; then echo true; fi;;
        *annotations.hybrid-ai/*) k=${!#}; k=${k##*annotations.hybrid-ai/}; cat "$STATE/annotations/$3/${k%?}" 2>/dev/null || true;;
        # What the node's kubelet last posted ($STATE/kubelet/<node>: "VERSION RFC3339-heartbeat"; a
        # node the test never had post reads as a 1.32 kubelet that posted long ago).
        *kubeletVersion*) k=$(cat "$STATE/kubelet/$3" 2>/dev/null || echo "v1.32.3 2026-01-01T00:00:00Z"); echo "${k% *}";;
        *lastHeartbeatTime*) k=$(cat "$STATE/kubelet/$3" 2>/dev/null || echo "v1.32.3 2026-01-01T00:00:00Z"); echo "${k#* }";;
        *Ready*) if [ -e "$STATE/not-ready/$3" ]; then echo False; else echo True; fi;;
        *allocatable*) cat "$STATE/gpus/$3" 2>/dev/null || true;;
        # key=value:Effect per line, as the scripts' jsonpath prints spec.taints.
        *spec.taints*) cat "$STATE/taints/$3" 2>/dev/null || true;;
      esac
    elif [ "$1 ${3:-} ${4:-}" = "-n get configmap" ]; then
      # The known-nodes list's keys, one a line ($STATE/known-nodes; none: not found, which
      # --ignore-not-found prints as nothing); $STATE/api-down: the API server does not answer.
      [ ! -e "$STATE/api-down" ] || { echo "The connection to the server 127.0.0.1:16443 was refused" >&2; exit 1; }
      cat "$STATE/known-nodes" 2>/dev/null || true
    elif [ "$1" = taint ]; then
      # Like kubectl taint (pkg/cmd/taint): KEY[=VALUE]:EFFECT adds or, with --overwrite, replaces
      # the taint of that key and effect; KEY:EFFECT- removes it and fails if there is none.
      [ -e "$STATE/nodes/$3" ] || { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1; }
      mkdir -p "$STATE/taints"; f="$STATE/taints/$3"; touch "$f"
      spec=$4; effect=${spec##*:}; effect=${effect%-}; kv=${spec%:*}; key=${kv%%=*}; value=; [ "$kv" = "$key" ] || value=${kv#*=}
      others=$(grep -v -- "^$key=[^:]*:$effect\\$" "$f" || true)
      if [ "${spec: -1}" = - ]; then
        grep -q -- "^$key=[^:]*:$effect\\$" "$f" || { echo "error: taint \"$key:$effect\" not found" >&2; exit 1; }
        printf '%s' "${others:+$others$'\n'}" > "$f"
      else
        if grep -q -- "^$key=[^:]*:$effect\\$" "$f" && [ "${5:-}" != --overwrite ]; then echo "error: node $3 already has $key taint(s) with same effect(s) and --overwrite is false" >&2; exit 1; fi
        printf '%s%s=%s:%s\n' "${others:+$others$'\n'}" "$key" "$value" "$effect" > "$f"
      fi
    elif [ "$1" = drain ]; then
      # Like kubectl drain (pkg/cmd/drain RunDrain, pkg/drain evictPods): cordon first, then
      # evict; an eviction a PodDisruptionBudget refuses (429) is retried until --timeout,
      # then the drain fails and the node stays cordoned.
      mkdir -p "$STATE/cordoned"; touch "$STATE/cordoned/$2"
      if [ -e "$STATE/pdb-blocks" ]; then
        echo "error when evicting pods/\"api-0\" -n \"hybrid-ai\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget." >&2
        echo "error: unable to drain node \"$2\" due to error: error when evicting pods/\"api-0\" -n \"hybrid-ai\": global timeout reached: 10s" >&2
        exit 1
      fi
      echo "node/$2 drained"
    elif [ "$1" = uncordon ]; then rm -f "$STATE/cordoned/$2"
    elif [ "$1" = delete ] && [ "$2" = node ]; then
      # Like kubectl delete: node "NAME" deleted; a missing one is an error unless --ignore-not-found.
      if [ -e "$STATE/nodes/$3" ]; then rm -f "$STATE/nodes/$3"; echo "node \"$3\" deleted"
      elif [ "${4:-}" != --ignore-not-found ]; then echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1; fi
    elif [ "$1" = label ]; then "$PYTHON" "$FAKE" label "$SNAP_DATA" "$STATE" "$@"
    elif [ "$1" = annotate ]; then
      words=(); for a in "${@:2}"; do case $a in --*) ;; *) words+=("$a");; esac; done
      mkdir -p "$STATE/annotations/${words[1]}"
      for kv in "${words[@]:2}"; do
        k=${kv#hybrid-ai/}
        case $k in *-) rm -f "$STATE/annotations/${words[1]}/${k%-}";; *) echo "${k#*=}" > "$STATE/annotations/${words[1]}/${k%%=*}";; esac
      done
    fi;;
""" + JOIN_STUB + """
  # Like microk8s-leave.wrapper @ v1.32: only a node marked part of a cluster leaves.
  leave) [ -e "$SNAP_DATA/var/lock/no-cert-reissue" ] || { echo "This MicroK8s deployment is not acting as a node in a cluster."; exit 1; }
         rm -f "$SNAP_DATA/var/lock/clustered.lock" "$SNAP_DATA/var/lock/no-k8s-dqlite" "$SNAP_DATA/var/lock/no-cert-reissue";;
  # Like remove_node.py @ v1.32 on a dqlite node ($STATE/dqlite: the other members' endpoints):
  # the node's InternalIP picks the member; --force removes it, else the removal fails.
  # A Node that posts no InternalIP (an empty $STATE/nodes/<name>) is refused before anything is deleted.
  remove-node) [ -e "$STATE/nodes/$2" ] || { echo "Node $2 does not exist in Kubernetes."; exit 1; }; ip=$(cat "$STATE/nodes/$2"); touch "$STATE/dqlite"
    [ -n "$ip" ] || { echo "Node $2 is not part of the cluster."; exit 1; }
    if grep -q "^$ip:" "$STATE/dqlite"; then [ "${3:-}" = --force ] || { echo "Removal failed. Node $2 is registered with dqlite."; exit 1; }; sed -i "/^$ip:/d" "$STATE/dqlite"; fi
    rm -f "$STATE/nodes/$2";;
  # The wrapper replaces 127.0.0.1 with the default interface's address and adds a blank line.
  config) if [ -e "$STATE/config-output" ]; then cat "$STATE/config-output"; else printf '%s\\n' "${CLIENT_CONFIG//127.0.0.1/198.51.100.2}"; fi;;
esac""",
    # flock -w SECONDS FD (or FILE COMMAND...): $STATE/lock-busy plays a lock held elsewhere past the wait.
    "flock": '[ -e "$STATE/lock-busy" ] && exit 1; shift 2; [ $# -gt 1 ] && { shift; exec "$@"; }; exit 0',
    "curl": """
case $* in *--resolve*) [ -e "$STATE/api-up" ]; exit;; esac
prev=; for a in "$@"; do [ "$prev" = -o ] && echo key > "$a"; prev=$a; done; exit 0""",
    "gpg": 'prev=; for a in "$@"; do [ "$prev" = -o ] && echo keyring > "$a"; prev=$a; done; exit 0',
    # openssl x509 -in FILE -noout -ext subjectAltName: the fake certificate holds that text.
    "openssl": 'prev=; for a in "$@"; do [ "$prev" = -in ] && cat "$a"; prev=$a; done',
    "systemd-run": "exit 0",
    **NVIDIA_STUBS, **NFT_STUBS,
}


class ClusterHost(StubHost):
    """A host with the cluster stubs; `snap_data` plays /var/snap/microk8s/current; `seed`, the
    control plane its `microk8s join` asks (tests/support/join_stub.py)."""

    def __init__(self, root: Path, hostname: str = "ws-1", vpn_ip: str | None = "100.64.1.1", seed: ClusterHost | None = None):
        self.snap_data = root / "snap" / "current"
        self.snap_common = root / "snap" / "common"
        # The snap's default-args/certs.d (canonical/microk8s microk8s-resources/default-args/certs.d @ v1.32).
        self.microk8s_defaults = root / "snap" / "microk8s" / "default-args" / "certs.d"
        for folder, text in DEFAULT_CERTS_D.items():
            (self.microk8s_defaults / folder).mkdir(parents=True)
            (self.microk8s_defaults / folder / "hosts.toml").write_text(text)
        # /etc/microk8s.yaml and root's ~/snap/microk8s/common/.microk8s.yaml, which the install hook reads first.
        self.etc_launch = root / "etc" / "microk8s.yaml"
        self.root_launch = root / "root-snap" / ".microk8s.yaml"
        super().__init__(root, dict(STUBS), {"SNAP_DATA": str(self.snap_data), "SNAP_COMMON": str(self.snap_common),
                                             "MICROK8S_DEFAULTS": str(self.microk8s_defaults), "ETC_LAUNCH_CONFIG": str(self.etc_launch), "ROOT_LAUNCH_CONFIG": str(self.root_launch),
                                             "PYTHON": sys.executable, "FAKE": str(FAKE),
                                             **({"SEED_SNAP_DATA": str(seed.snap_data)} if seed else {})})
        (self.state / "nodes").mkdir(exist_ok=True)
        (self.state / "hostname").write_text(hostname + "\n")
        if vpn_ip:
            (self.state / "vpn-ip").write_text(vpn_ip)
        # The snap stub writes these fixtures at install time.
        env = (f'KUBELET_ARGS={_q(KUBELET_ARGS)}\nAPISERVER_ARGS={_q(APISERVER_DEFAULT_ARGS)}\nCSR_TEMPLATE={_q(CSR_TEMPLATE)}\nCNI_YAML={_q(CNI_YAML)}\n'
               f'CONTAINERD_TEMPLATE={_q(CONTAINERD_TEMPLATE)}\nCLIENT_CONFIG={_q(CLIENT_CONFIG)}\n')
        for stub in ("snap", "microk8s"):
            path = self.bin / stub
            path.write_text(path.read_text().replace("set -u\n", "set -u\n" + env, 1))

    def run(self, script: str, stdin: str = "", **params: str) -> subprocess.CompletedProcess[str]:
        params = {"SNAP_DATA": str(self.snap_data), "SNAP_COMMON": str(self.snap_common), "MICROK8S_DEFAULTS": str(self.microk8s_defaults), **params}
        return super().run(script, stdin, **params)

    def add_node(self, name: str, ip: str) -> None:
        (self.state / "nodes" / name).write_text(ip)

    def kubelet_posts(self, name: str, version: str, heartbeat: str) -> None:
        """The node's kubelet posts its status (on this control plane's API): version, Ready's heartbeat."""
        (self.state / "kubelet").mkdir(exist_ok=True)
        (self.state / "kubelet" / name).write_text(f"{version} {heartbeat}\n")


def _q(text: str) -> str:
    return shlex.quote(text)

