#!/usr/bin/env bash
# MicroK8s on one node, pinned to the VPN: kubelet node IP, API server advertise address
# and certificate SANs, Calico's interface detection and MTU. On a fresh node the launch
# configuration sets all of it at install; on an existing node each pin is checked and
# fixed in place. Idempotent: a re-run changes nothing.
# Ours replaces MicroK8s' bundled launch configuration, so it carries what that one set:
# the kubelet's cluster DNS and domain, and (control plane) the dns addon, with the
# metrics-server (HPA) and hostpath-storage (the default StorageClass) addons.
# Parameters: HOST_NAME, CHANNEL, NODE_IP, VPN_IFACE, CNI_MTU, ROLE (control-plane|worker),
# EXTRA_SANS (space-separated), POD_CIDR, SERVICE_CIDR, PULL_TIMEOUT, GPU (true|false),
# CLUSTER_DNS (the kubelet's --cluster-dns), ADDONS (space-separated, control plane),
# LAUNCH_CONFIG (the launch configuration, YAML written by the program from validated values).
# UPGRADE_FROM: while an upgrade is rolled, the channel the nodes ran before (else empty).
# A GPU host needs nvidia-ctk (the NVIDIA container toolkit) before MicroK8s is installed.
# uses: registry-hosts.sh
set -euo pipefail
SCRIPT_NAME="microk8s"
: "${HOST_NAME:?}" "${CHANNEL:?}" "${NODE_IP:?}" "${VPN_IFACE:=wg0}" "${CNI_MTU:?}" "${ROLE:=worker}"
: "${EXTRA_SANS:=}" "${POD_CIDR:=10.1.0.0/16}" "${SERVICE_CIDR:=10.152.183.0/24}" "${PULL_TIMEOUT:=30m}" "${GPU:=false}"
: "${LAUNCH_CONFIG:?}" "${CLUSTER_DNS:=10.152.183.10}" "${ADDONS:=}" "${UPGRADE_FROM:=}"
: "${SNAP_DATA:=/var/snap/microk8s/current}" "${SNAP_COMMON:=/var/snap/microk8s/common}"
# Mirrored sites: SNAP_FILES (`<snap>_<rev>` ..., in install order) and the registries' hosts.toml, staged by
# mirrors.sh; HOLDS: what the snaps' refresh holds (and snapd's store.access) were before this step set them.
# uses: snap-store.sh
: "${SNAP_FILES:=}" "${STAGED_SNAPS:=/var/lib/hybrid-ai/snaps}" "${STAGED_CERTS_D:=/etc/hybrid-ai/certs.d}"
: "${HOLDS:=/var/lib/hybrid-ai/snap-holds}" "${MICROK8S_DEFAULTS:=/snap/microk8s/current/default-args/certs.d}"
# What the install hook reads before $SNAP_COMMON/.microk8s.yaml (it runs as root).
: "${ETC_LAUNCH_CONFIG:=/etc/microk8s.yaml}" "${ROOT_LAUNCH_CONFIG:=/root/snap/microk8s/common/.microk8s.yaml}"
ARGS=$SNAP_DATA/args
restart=no

[ "$(hostname)" = "$HOST_NAME" ] || fail "this host is named '$(hostname)', the config says '$HOST_NAME'; Kubernetes names nodes by hostname: rename one of them"
# (A VPN backend may apply the address a moment after its step reports: wait, within a bound.)
has_vpn_address() { ip -4 addr show dev "$VPN_IFACE" 2>/dev/null | grep -qF "inet $NODE_IP/"; }
wait_for 24 5 has_vpn_address || fail "$NODE_IP is not on $VPN_IFACE after 2 minutes; the VPN step must run first"

# Each SAN in csr.conf.template and in the API server's certificate. With --advertise-address
# set, MicroK8s no longer re-issues the certificate when the template changes (the apiservice
# kicker skips it): `refresh-certs --cert server.crt` does, only when a SAN is missing.
ensure_sans() {
  local template=$SNAP_DATA/certs/csr.conf.template san kind last missing=no have
  for san in $NODE_IP $EXTRA_SANS; do
    if [[ "$san" =~ ^[0-9.]+$|: ]]; then kind=IP; else kind=DNS; fi
    if ! grep -qxE "$kind\.[0-9]+ = ${san//./\\.}" "$template"; then
      last=$(grep -oE "^$kind\.[0-9]+" "$template" | cut -d. -f2 | sort -n | tail -n 1)
      sed -i "/^\[ alt_names \]/a $kind.$((${last:-0} + 1)) = $san" "$template"
      changed+=("san-$san")
    fi
  done
  have=$(openssl x509 -in "$SNAP_DATA/certs/server.crt" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n' | sed 's/^ *//') \
    || fail "cannot read the SANs of $SNAP_DATA/certs/server.crt"
  for san in $NODE_IP $EXTRA_SANS; do
    if [[ "$san" =~ ^[0-9.]+$|: ]]; then kind="IP Address"; else kind=DNS; fi
    grep -qxF "$kind:$san" <<<"$have" || missing=yes
  done
  if [ "$missing" = yes ]; then
    microk8s refresh-certs --cert server.crt >/dev/null || fail "microk8s refresh-certs --cert server.crt failed"
    changed+=("server-cert")
  fi
}

# containerd's `nvidia` runtime (the handler of the RuntimeClass and the GPU pods). MicroK8s
# ships a `nvidia-container-runtime` one, which is not it: match the exact section. Written
# into the template itself, not the toolkit's default drop-in under /etc/containerd.
ensure_nvidia_runtime() {
  local template=$ARGS/containerd-template.toml dropin=()
  grep -qF 'containerd.runtimes.nvidia]' "$template" && return 0
  if nvidia-ctk runtime configure --help 2>&1 | grep -q -- --drop-in-config; then dropin=(--drop-in-config=); fi
  nvidia-ctk runtime configure --runtime=containerd --config="$template" "${dropin[@]}" >/dev/null \
    || fail "nvidia-ctk could not add the nvidia runtime to $template"
  grep -qF 'containerd.runtimes.nvidia]' "$template" || fail "nvidia-ctk did not add the nvidia runtime to $template"
  snap restart microk8s.daemon-containerd
  changed+=("nvidia-runtime")
}

# Control plane: NodeRestriction beside MicroK8s' own admission plugins (EventRateLimit at 1.32;
# the default set stays on). Without it the Node authorizer lets any kubelet credential create
# pods in any namespace and patch any Node; with it a kubelet writes only its own Node (and
# none of its node-restriction.kubernetes.io labels or its taints) and its own mirror pods.
ensure_node_restriction() {
  local file=$ARGS/kube-apiserver current
  current=$(sed -n 's/^--enable-admission-plugins=//p' "$file" | tail -n 1 | tr -d '"')
  case ",$current," in *,NodeRestriction,*) return 1;; esac
  ensure_arg "$file" --enable-admission-plugins "${current:+$current,}NodeRestriction"
}

# Mirrored sites: the snaps from the staged files (snapd, the base, MicroK8s), each assertion acked
# first, so snapd never asks the store: without the snapd snap it would fetch that from the store as
# a prerequisite of MicroK8s (docs/upstream.md). snapd or a base already installed is kept. The
# revision installed must be the pinned one (snapd tells it from the file's digest, not its name):
# another is removed again, with whatever this run installed, and the step fails naming both.
install_snap_files() {
  local snap name classic got done_here=() n
  for snap in $SNAP_FILES; do
    name=${snap%_*} classic=()
    [ "$name" != microk8s ] || classic=(--classic)
    [ "$name" = microk8s ] || ! snap list "$name" >/dev/null 2>&1 || continue
    [ -s "$STAGED_SNAPS/$snap.snap" ] || fail "$STAGED_SNAPS/$snap.snap is missing; the host's mirror step stages it: run it again"
    snap ack "$STAGED_SNAPS/$snap.assert" || fail "snap ack $STAGED_SNAPS/$snap.assert failed"
    snap install "${classic[@]}" "$STAGED_SNAPS/$snap.snap" || fail "snap install $snap.snap failed"
    done_here=("$name" "${done_here[@]}") && record "$name" installed
    got=$(snap list "$name" | awk 'NR == 2 {print $3}')
    if [ "$got" != "${snap##*_}" ]; then
      for n in "${done_here[@]}"; do snap remove "$n" --purge >/dev/null || log "could not remove $n again"; done
      fail "$snap.snap installed revision $got of $name, not the pinned ${snap##*_} (mirrors.snaps.$(revision_key "$name")): the mirror's file is another revision; removed again: ${done_here[*]}"
    fi
  done
}
revision_key() { case $1 in microk8s) echo microk8sRevision;; snapd) echo snapdRevision;; *) echo baseRevision;; esac; }

# Held on mirrored sites, so snapd never refreshes against the store: auto-refreshes of every snap
# (`snap refresh --hold`: the system's refresh.hold=forever) and general refreshes of each snap
# from the files, a preinstalled base and snapd too. $HOLDS keeps what each was before (its first
# record wins), for microk8s-uninstall.sh to put back.
record() { grep -q "^$1 " "$HOLDS" 2>/dev/null || { mkdir -p "$(dirname "$HOLDS")" && echo "$1 $2" >> "$HOLDS"; }; }
held() { local notes; notes=$(snap list "$1" 2>/dev/null | awk 'NR == 2 {print $6}') && [[ ",$notes," == *,held,* ]]; }
hold_snaps() {
  local before snap name
  before=$(snap get system refresh.hold 2>/dev/null || true)
  if [ "$before" != forever ]; then
    record system "${before:--}"
    snap refresh --hold >/dev/null || fail "snap refresh --hold failed (holding forever needs snapd 2.58 or later)"
    changed+=("auto-refresh-held")
  fi
  for snap in $SNAP_FILES; do
    name=${snap%_*}
    if held "$name"; then record "$name" held; continue; fi
    record "$name" unheld
    snap refresh --hold "$name" >/dev/null || fail "snap refresh --hold $name failed"
    changed+=("held-$name")
  done
  store_offline "$HOLDS"
}

# Control plane: the addons, once cluster-agent has applied the launch configuration (it
# enables them itself on a fresh install); on a node installed without them, enabled here.
ensure_addons() {
  launch_applied() { ! compgen -G "$SNAP_COMMON/etc/launcher/*.yaml" >/dev/null; }
  wait_for 120 5 launch_applied || fail "cluster-agent has not applied the launch configuration after 10 minutes"
  local addon
  for addon in $ADDONS; do
    [ "$(microk8s status --addon "$addon")" = enabled ] && continue
    if [ "$addon" = dns ]; then
      retry microk8s enable dns /etc/resolv.conf "$CLUSTER_DNS" >/dev/null || fail "microk8s enable dns failed"
    else
      retry microk8s enable "$addon" >/dev/null || fail "microk8s enable $addon failed"
    fi
    changed+=("addon-$addon")
  done
}

# The toolkit provides `nvidia-ctk`, which adds containerd's `nvidia` runtime (see above).
if [ "$GPU" = true ] && ! command -v nvidia-ctk >/dev/null; then
  fail "GPU host without nvidia-ctk: its GPU pods need the nvidia runtime; set nvidia.installToolkit: true or install nvidia-container-toolkit on this host"
fi

if ! snap list microk8s >/dev/null 2>&1; then
  # Launch configuration: read by MicroK8s when it is installed. Its install hook uses only
  # the first file found, and these two come before ours: a leftover one would win silently.
  for config in "$ETC_LAUNCH_CONFIG" "$ROOT_LAUNCH_CONFIG"; do
    if [ -e "$config" ] && [ "$(cat "$config")" != "$(printf '%s' "$LAUNCH_CONFIG")" ]; then
      fail "$config exists and MicroK8s' install hook would use it instead of this program's launch configuration; remove it (or move it away), then re-run"
    fi
  done
  mkdir -p "$SNAP_COMMON"
  printf '%s\n' "$LAUNCH_CONFIG" > "$SNAP_COMMON/.microk8s.yaml"
  # During a roll a new node starts on the channel the cluster still runs (a kubelet newer than
  # its API servers is outside Kubernetes' skew policy); the roll then takes it to CHANNEL.
  install_channel=${UPGRADE_FROM:-$CHANNEL}
  if [ -n "$SNAP_FILES" ]; then
    install_snap_files
  else
    retry snap install microk8s --classic --channel="$install_channel" || fail "snap install microk8s ($install_channel) failed"
  fi
  # containerd runs from the install on: the mirrors' hosts.toml goes in before anything else, so
  # no first pull (pause, Calico) goes to the upstream registry.
  sync_registry_hosts
  changed+=("installed")
else
  # A channel change is rolled node by node, drained (microk8s-upgrade-*.sh), never here:
  # refreshing every node at once would take the whole cluster down together.
  tracking=$(snap list microk8s | awk 'NR == 2 {print $4}')
  want_rev=$(grep -o 'microk8s_[0-9]*' <<<"$SNAP_FILES" | cut -d_ -f2 || true)
  running_rev=$(snap list microk8s | awk 'NR == 2 {print $3}')
  if [ -n "$want_rev" ] && [ "$running_rev" != "$want_rev" ]; then
    fail "MicroK8s runs revision $running_rev here, mirrors.snaps.microk8sRevision is $want_rev: a revision change is not rolled on mirrored sites (docs/airgap.md)"
  elif [ -n "$want_rev" ]; then
    :  # installed from a file: it tracks no channel
  elif [ "$tracking" = - ]; then
    fail "MicroK8s here was installed from the site's snap files (it tracks no channel), and the site has no mirrors.snaps now: a node is not moved from the files to the Snap Store in place; put mirrors.snaps back for this site, or (the store reachable) drain the node, run \`sudo snap unset system store.access\`, \`sudo snap refresh --unhold\`, \`sudo snap refresh --unhold microk8s\` and \`sudo snap refresh microk8s --channel=$CHANNEL\` on it, then pulumi up"
  elif [ "$tracking" != "$CHANNEL" ] && [ "$tracking" != "$UPGRADE_FROM" ]; then
    fail "MicroK8s tracks $tracking here, cluster.channel is $CHANNEL: set cluster.upgrade.fromChannel: $tracking to roll the upgrade node by node"
  elif [ "$tracking" != "$CHANNEL" ]; then
    log "tracking $tracking; the rolling upgrade moves it to $CHANNEL"
  fi
fi
[ -z "$SNAP_FILES" ] || hold_snaps
sync_registry_hosts  # (also done by mirrors.sh whenever the mirrors change)
microk8s status --wait-ready --timeout 600 >/dev/null || fail "MicroK8s did not become ready within 10 minutes"

# Pins, checked on every run (a join rewrites the kubelet's node IP).
ensure_arg "$ARGS/kubelet" --node-ip "$NODE_IP" && { changed+=("node-ip"); restart=yes; }
ensure_arg "$ARGS/kubelet" --runtime-request-timeout "$PULL_TIMEOUT" && { changed+=("pull-timeout"); restart=yes; }
ensure_arg "$ARGS/kubelet" --cluster-domain cluster.local && { changed+=("cluster-domain"); restart=yes; }
ensure_arg "$ARGS/kubelet" --cluster-dns "$CLUSTER_DNS" && { changed+=("cluster-dns"); restart=yes; }
if [ "$ROLE" = control-plane ]; then
  ensure_arg "$ARGS/kube-apiserver" --advertise-address "$NODE_IP" && { changed+=("advertise-address"); restart=yes; }
  # RBAC,Node, whatever set it otherwise (cluster-agent's /configure rewrites any argument).
  ensure_arg "$ARGS/kube-apiserver" --authorization-mode RBAC,Node && { changed+=("authorization-mode"); restart=yes; }
  ensure_node_restriction && { changed+=("node-restriction"); restart=yes; }
  ensure_sans
fi
if [ "$GPU" = true ]; then
  ensure_nvidia_runtime
fi
if [ "$restart" = yes ]; then
  snap restart microk8s.daemon-kubelite
  microk8s status --wait-ready --timeout 600 >/dev/null || fail "MicroK8s did not come back after the restart"
fi
[ "$ROLE" = control-plane ] && ensure_addons

# Calico: the cluster's CNI manifest lives on the control plane.
if [ "$ROLE" = control-plane ]; then
  cni=$ARGS/cni-network/cni.yaml
  before=$(cksum < "$cni")
  awk -v method="interface=$VPN_IFACE" -v mtu="$CNI_MTU" '
    /- name: IP_AUTODETECTION_METHOD/ { print; getline; sub(/value: .*/, "value: \"" method "\"") }
    /^ *veth_mtu:/ { sub(/veth_mtu: .*/, "veth_mtu: \"" mtu "\"") }
    { print }
  ' "$cni" > "$cni.new"
  grep -q "value: \"interface=$VPN_IFACE\"" "$cni.new" || fail "cannot find Calico's IP_AUTODETECTION_METHOD in $cni"
  if [ "$(cksum < "$cni.new")" != "$before" ]; then
    mv "$cni.new" "$cni"
    retry microk8s kubectl apply -f "$cni" >/dev/null || fail "could not apply $cni"
    microk8s kubectl -n kube-system rollout restart daemonset/calico-node >/dev/null
    changed+=("calico")
  else
    rm -f "$cni.new"
  fi
fi
report
