#!/usr/bin/env bash
# On the control plane, at the end of `pulumi up`: check the deployment does its job, within
# a bound, and fail naming everything that is missing.
#  - every node hybrid-ai labelled is Ready on its VPN address (label VPN_LABEL)
#  - each GPU node advertises its GPUs x time-slicing replicas (label CAPACITY_LABEL)
#  - the public API answers through the Gateway on an ingress node (PROBE_URL via INGRESS_ADDRESS; optional)
#  - with VOTERS >= 3 control planes: `microk8s status` says `high-availability: yes`
#    (status.py: more than two dqlite voters)
#  - the API server runs with --authorization-mode=RBAC,Node and NodeRestriction (its args file
#    here; cluster-agent's /configure could rewrite them), and NodeRestriction holds at runtime:
#    a kubelet's identity may neither label another node nor set a protected label on its own
#    (server-side dry runs: nothing changes even if the API server allowed it)
# The expectations live on the nodes, so adding a node changes nothing here.
# PROBE_CA: PEM roots the probe trusts instead of the host's store (Let's Encrypt staging,
# whose roots no store has); empty: the system store. Never curl -k.
# Parameters: PROBE_URL, INGRESS_ADDRESS, PROBE_CA, WAIT_S, VOTERS, VPN_LABEL, CAPACITY_LABEL.
set -euo pipefail
SCRIPT_NAME="verify"
: "${PROBE_URL:=}" "${INGRESS_ADDRESS:=}" "${PROBE_CA:=}" "${WAIT_S:=600}" "${VOTERS:=1}" "${VPN_LABEL:?}" "${CAPACITY_LABEL:?}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
# In a JSONPath the dots of a label's prefix are escaped.
vpn_path=${VPN_LABEL//./\\.} capacity_path=${CAPACITY_LABEL//./\\.}

trust=()
if [ -n "$PROBE_CA" ]; then
  grep -q -- "-----BEGIN CERTIFICATE-----" <<< "$PROBE_CA" || fail "PROBE_CA is not a PEM certificate bundle"
  roots=$(mktemp)
  trap 'rm -f "$roots"' EXIT
  printf '%s\n' "$PROBE_CA" > "$roots"
  trust=(--cacert "$roots")
fi

problems() {
  local nodes
  nodes=$(microk8s kubectl get nodes -l "$VPN_LABEL" -o jsonpath="{range .items[*]}{.metadata.name}{\"|\"}{.metadata.labels.$vpn_path}{\"|\"}{.status.conditions[?(@.type==\"Ready\")].status}{\"|\"}{.status.addresses[?(@.type==\"InternalIP\")].address}{\"|\"}{.metadata.labels.$capacity_path}{\"|\"}{.status.allocatable.nvidia\\.com/gpu}{\"\\n\"}{end}" 2>/dev/null || true)
  [ -n "$nodes" ] || echo "no node carries the $VPN_LABEL label"
  # "|"-separated: fields may be empty (no GPU label), which whitespace splitting would lose.
  while IFS='|' read -r name want ready ip gpus_want gpus_have; do
    [ -n "$name" ] || continue
    [ "$ready" = True ] || echo "node $name is not Ready"
    [ "$ip" = "$want" ] || echo "node $name has address '$(shown "${ip:-none}")', not its VPN address $want"
    if [ -n "$gpus_want" ] && [ "${gpus_have:-0}" != "$gpus_want" ]; then
      echo "node $name advertises ${gpus_have:-0} nvidia.com/gpu, expected $gpus_want (GPUs x time-slicing replicas)"
    fi
  done <<< "$nodes"
  if [ "$VOTERS" -ge 3 ] && ! microk8s status 2>/dev/null | grep -qx "high-availability: yes"; then
    echo "high availability not formed: microk8s status does not say 'high-availability: yes' with $VOTERS control planes"
  fi
  if [ -n "$PROBE_URL" ]; then
    host=${PROBE_URL#*://} host=${host%%/*}
    port=443; case $PROBE_URL in http://*) port=80;; esac
    curl -fsS -o /dev/null --max-time 10 ${trust[@]+"${trust[@]}"} --resolve "$host:$port:$INGRESS_ADDRESS" "$PROBE_URL" \
      || echo "$PROBE_URL does not answer through the Gateway at $INGRESS_ADDRESS"
  fi
}

# The API server's authorization and admission, as the program set them.
apiserver_args() {
  local file=$SNAP_DATA/args/kube-apiserver mode plugins disabled
  mode=$(sed -n 's/^--authorization-mode=//p' "$file" | tail -n 1 | tr -d '"')
  plugins=$(sed -n 's/^--enable-admission-plugins=//p' "$file" | tail -n 1 | tr -d '"')
  disabled=$(sed -n 's/^--disable-admission-plugins=//p' "$file" | tail -n 1 | tr -d '"')
  [ "$mode" = RBAC,Node ] || echo "kube-apiserver runs with --authorization-mode=${mode:-AlwaysAllow (its default)}, not RBAC,Node"
  case ",$plugins," in *,NodeRestriction,*) ;; *) echo "kube-apiserver's --enable-admission-plugins (${plugins:-none}) lacks NodeRestriction";; esac
  case ",$disabled," in *,NodeRestriction,*) echo "kube-apiserver's --disable-admission-plugins turns NodeRestriction off";; esac
}
# NodeRestriction at runtime, as one node's kubelet identity.
refused() { local out; out=$(microk8s kubectl "$@" --dry-run=server 2>&1) && return 1; grep -q '(Forbidden)' <<< "$out"; }
node_restriction() {
  local names=() self other="" n
  mapfile -t names < <(microk8s kubectl get nodes -l "$VPN_LABEL" -o name 2>/dev/null | sed 's#^node/##')
  [ "${#names[@]}" -gt 0 ] || return 0  # reported by problems()
  self=${names[-1]}
  for n in "${names[@]}"; do [ "$n" = "$self" ] || { other=$n; break; }; done
  local as=(--as="system:node:$self" --as-group=system:nodes)
  if [ -n "$other" ] && ! refused label node "$other" hybrid-ai-verify=node-restriction --overwrite "${as[@]}"; then
    echo "NodeRestriction is not enforced: the kubelet identity of $self may label node $other"
  fi
  refused label node "$self" "${VPN_LABEL%/*}/location=cloud" --overwrite "${as[@]}" \
    || echo "the kubelet identity of $self may set ${VPN_LABEL%/*}/location on its own node"
}
found=$(apiserver_args)
[ -z "$found" ] || { printf '  - %s\n' "$found" >&2; fail "the API server's authorization or admission is not as the program set it (see above); run pulumi up again"; }

tries=$((WAIT_S / 10))
while :; do
  found=$(problems)
  [ -z "$found" ] && break
  tries=$((tries - 1))
  if [ "$tries" -le 0 ]; then
    log "the deployment is not working after ${WAIT_S}s:"
    printf '  - %s\n' "$found" >&2
    fail "verification failed (see above); fix it and run pulumi up again"
  fi
  sleep 10
done
found=$(node_restriction)
[ -z "$found" ] || { printf '  - %s\n' "$found" >&2; fail "NodeRestriction does not hold at runtime (see above)"; }
echo "verified: nodes=$(grep -c . <<< "$(microk8s kubectl get nodes -l "$VPN_LABEL" -o name)") probe=${PROBE_URL:-none}"
