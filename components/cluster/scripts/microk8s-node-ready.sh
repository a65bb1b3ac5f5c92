#!/usr/bin/env bash
# On the control plane: wait, within a bound, until the node is Ready with its VPN address,
# then remove the node's join token (given on stdin) from the tokens file. cluster-agent
# consumes only tokens without a TTL (pkg/snap/snap.go ConsumeClusterToken @ 1.32), and ours
# have one: left there, it would join any number of machines until it expires.
# A node that never gets there loses both too (its address from the agent guard's joiners, its
# token), before the step fails: a stalled join must not keep them for the token's lifetime.
# The step re-runs on the next up (it failed), and revokes again if it fails again. The program
# also runs it beside the join step (its join-window step), so that a join step the node fails
# on purpose does not keep them live either.
# Parameters: NODE_NAME, NODE_IP, WAIT_S, LOCK_WAIT_S; stdin: the node's join token.
set -euo pipefail
SCRIPT_NAME="node-ready"
: "${NODE_NAME:?}" "${NODE_IP:?}" "${WAIT_S:=600}" "${LOCK_WAIT_S:=120}"
: "${SNAP_DATA:=/var/snap/microk8s/current}"
token=$(read_join_token)
# The join is over (or given up): the node no longer reaches cluster-agent (microk8s-register.sh
# let it in) and its token joins nobody.
# Under register's lock (the join-window and ready steps may revoke at the same moment).
join_line() { [[ $1 == "$token" || $1 =~ ^${token}\|[0-9]+$ ]]; }
cert_line() { [[ $1 == "$token-kubelet" || $1 == "$token-proxy" ]]; }
# Rewrite FILE without the lines MATCHER accepts (compared in the shell: the token is on no
# command line), atomically, keeping the file's owner and mode; fails when there was none.
# add-node appends under the same lock; cluster-agent appends a joining worker's lines under
# its own, so lines it appends to the file read here meanwhile are carried over.
drop_lines() {
  local file=$1 matcher=$2 found=no line kept=() fd
  [ -f "$file" ] || return 1
  exec {fd}<"$file"
  while IFS= read -r line <&"$fd" || [ -n "$line" ]; do
    if "$matcher" "$line"; then found=yes; else kept+=("$line"); fi
  done
  [ "$found" = yes ] || { exec {fd}<&-; return 1; }
  new=$(mktemp "$file.XXXXXX")
  trap 'rm -f "$new"' EXIT
  [ "${#kept[@]}" -eq 0 ] || printf '%s\n' "${kept[@]}" > "$new"
  chown --reference="$file" "$new"
  chmod --reference="$file" "$new"
  mv "$new" "$file"
  while IFS= read -r line <&"$fd"; do printf '%s\n' "$line" >> "$file"; done
  exec {fd}<&-
}
revoke() {
  mkdir -p "$SNAP_DATA/var/lock"
  exec {lock}>"$SNAP_DATA/var/lock/hybrid-ai-add-node.lock"
  flock -w "$LOCK_WAIT_S" "$lock" || fail "another registration held the add-node lock for ${LOCK_WAIT_S}s; token of $NODE_NAME not removed"
  if nft get element inet hybrid_ai_agent joiners "{ $NODE_IP }" >/dev/null 2>&1; then
    nft delete element inet hybrid_ai_agent joiners "{ $NODE_IP }" || fail "could not take $NODE_IP out of the agent guard's joiners"
    log "$NODE_NAME no longer reaches cluster-agent"
  fi

  # Drop exactly the lines `<token>` and `<token>|<expiry>` (add_token.py's format), and the
  # certificate-request tokens cluster-agent added for a worker join, `<token>-kubelet` and
  # `<token>-proxy` (no expiry; only sign-cert consumes them, and it signs any subject): a
  # joiner that skipped sign-cert must not keep them (pkg/api/v2/join.go, pkg/snap/snap.go @ 1.32).
  # Depth only: cluster-agent 1.32 also takes a whitespace-only token (docs/upstream.md), so
  # taking the address out of `joiners` above is what shuts the joiner out.
  if drop_lines "$SNAP_DATA/credentials/cluster-tokens.txt" join_line; then
    log "join token of $NODE_NAME removed from the tokens file"
  fi
  if drop_lines "$SNAP_DATA/credentials/certs-request-tokens.txt" cert_line; then
    log "certificate-request tokens of $NODE_NAME's join removed"
  fi
  exec {lock}>&-
}

# A poll every 5 s until WAIT_S is up, counted and timed (each call is bounded too): an API
# server that takes the connection but never answers must not keep the token and the node's
# access open past WAIT_S.
tries=$((WAIT_S / 5)) deadline=$((SECONDS + WAIT_S))
while :; do
  # One call a poll, both fields: "<Ready status>|<InternalIP>" (either part empty when unset).
  seen=$(microk8s kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}|{.status.addresses[?(@.type=="InternalIP")].address}' --request-timeout=10s 2>/dev/null || true)
  ready=${seen%%|*} ip=${seen#*|}
  [ "$ready" = True ] && [ "$ip" = "$NODE_IP" ] && break
  tries=$((tries - 1))
  if [ "$tries" -le 0 ] || [ "$SECONDS" -ge "$deadline" ]; then
    revoke; fail "node $NODE_NAME not Ready on $NODE_IP after ${WAIT_S}s (Ready=$(shown "${ready:-unknown}"), InternalIP=$(shown "${ip:-none}")); its join token and cluster-agent access are revoked: re-run pulumi up with --replace on its register step to join it again"
  fi
  sleep 5
done

revoke
echo "node=$NODE_NAME"
