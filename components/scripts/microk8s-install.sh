#!/usr/bin/env bash
# MicroK8s on one node, pinned to the VPN: kubelet node IP, API server advertise address
# and certificate SANs, Calico's interface detection and MTU. On a fresh node the launch
# configuration sets all of it at install; on an existing node each pin is checked and
# fixed in place. Idempotent: a re-run changes nothing.
# Parameters: HOST_NAME, CHANNEL, NODE_IP, VPN_IFACE, CNI_MTU, ROLE (control-plane|worker),
# EXTRA_SANS (space-separated), POD_CIDR, SERVICE_CIDR, PULL_TIMEOUT, GPU (true|false).
set -euo pipefail
SCRIPT_NAME="microk8s"
: "${HOST_NAME:?}" "${CHANNEL:?}" "${NODE_IP:?}" "${VPN_IFACE:=wg0}" "${CNI_MTU:?}" "${ROLE:=worker}"
: "${EXTRA_SANS:=}" "${POD_CIDR:=10.1.0.0/16}" "${SERVICE_CIDR:=10.152.183.0/24}" "${PULL_TIMEOUT:=30m}" "${GPU:=false}"
: "${SNAP_DATA:=/var/snap/microk8s/current}" "${SNAP_COMMON:=/var/snap/microk8s/common}"
ARGS=$SNAP_DATA/args
restart=no

[ "$(hostname)" = "$HOST_NAME" ] || fail "this host is named '$(hostname)', the config says '$HOST_NAME'; Kubernetes names nodes by hostname: rename one of them"
# (A VPN backend may apply the address a moment after its step reports: wait, within a bound.)
has_vpn_address() { ip -4 addr show dev "$VPN_IFACE" 2>/dev/null | grep -qF "inet $NODE_IP/"; }
wait_for 24 5 has_vpn_address || fail "$NODE_IP is not on $VPN_IFACE after 2 minutes; the VPN step must run first"

if ! snap list microk8s >/dev/null 2>&1; then
  # Launch configuration: read by MicroK8s when it is installed.
  mkdir -p "$SNAP_COMMON"
  {
    echo "version: 0.2.0"
    echo "extraSANs: [$NODE_IP${EXTRA_SANS:+, ${EXTRA_SANS// /, }}]"
    echo "extraKubeletArgs: {--node-ip: $NODE_IP, --runtime-request-timeout: $PULL_TIMEOUT}"
    [ "$ROLE" = control-plane ] && echo "extraKubeAPIServerArgs: {--advertise-address: $NODE_IP}"
    echo "extraCNIEnv: {IPv4_CLUSTER_CIDR: $POD_CIDR, IPv4_SERVICE_CIDR: $SERVICE_CIDR}"
  } > "$SNAP_COMMON/.microk8s.yaml"
  retry snap install microk8s --classic --channel="$CHANNEL" || fail "snap install microk8s ($CHANNEL) failed"
  changed+=("installed")
else
  tracking=$(snap list microk8s | awk 'NR == 2 {print $4}')
  if [ "$tracking" != "$CHANNEL" ]; then
    log "refreshing MicroK8s from $tracking to $CHANNEL"
    retry snap refresh microk8s --channel="$CHANNEL" || fail "snap refresh microk8s to $CHANNEL failed"
    changed+=("refreshed")
  fi
fi
microk8s status --wait-ready --timeout 600 >/dev/null || fail "MicroK8s did not become ready within 10 minutes"

# Pins, checked on every run (a join rewrites the kubelet's node IP).
ensure_arg "$ARGS/kubelet" --node-ip "$NODE_IP" && { changed+=("node-ip"); restart=yes; }
ensure_arg "$ARGS/kubelet" --runtime-request-timeout "$PULL_TIMEOUT" && { changed+=("pull-timeout"); restart=yes; }
if [ "$ROLE" = control-plane ]; then
  ensure_arg "$ARGS/kube-apiserver" --advertise-address "$NODE_IP" && { changed+=("advertise-address"); restart=yes; }
  template=$SNAP_DATA/certs/csr.conf.template
  for san in $NODE_IP $EXTRA_SANS; do
    if ! grep -q "= $san\$" "$template"; then
      last=$(grep -o '^IP\.[0-9]*' "$template" | cut -d. -f2 | sort -n | tail -n 1)
      # MicroK8s re-issues the API server certificate from the template on restart.
      sed -i "/^\[ alt_names \]/a IP.$((${last:-0} + 1)) = $san" "$template"
      changed+=("san-$san"); restart=yes
    fi
  done
fi
if [ "$GPU" = true ] && command -v nvidia-ctk >/dev/null; then
  template=$ARGS/containerd-template.toml
  if ! grep -q 'runtimes.nvidia' "$template"; then
    nvidia-ctk runtime configure --runtime=containerd --config="$template" >/dev/null
    snap restart microk8s.daemon-containerd
    changed+=("nvidia-runtime")
  fi
fi
if [ "$restart" = yes ]; then
  snap restart microk8s.daemon-kubelite
  microk8s status --wait-ready --timeout 600 >/dev/null || fail "MicroK8s did not come back after the restart"
fi

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
