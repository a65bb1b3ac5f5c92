#!/usr/bin/env bash
# A roll's first step for one node, on the seed control plane (both rolls: the MicroK8s channel,
# components/cluster/upgrade.py, and the NVIDIA driver, driver_upgrade.py): unless the node is
# done already (the annotation hybrid-ai/MARK = TARGET, which the roll's last step sets once the
# node is back), check the maintenance window, then drain the node.
# The window is read on this host's clock (UTC) when the step starts, so a roll that runs past
# the window's end stops before its next node; a node already drained is finished whatever the
# time. `kubectl drain` cordons the node, then evicts its pods through the Eviction API, which
# refuses an eviction a PodDisruptionBudget forbids (drain retries it until --timeout). A node
# that was already cordoned (by an operator) is not uncordoned by the last step.
# A failure stops the roll here: the nodes after this one are untouched.
# Parameters: NODE_NAME, MARK (hybrid-ai/<MARK>: channel, nvidia-driver), TARGET, ROLL (the roll,
# in words, for messages), DRAIN_TIMEOUT_S, WINDOW (cluster.upgrade.window as configured, empty:
# any time), WINDOW_DAYS (the days it opens on, as `date +%a` prints them in the C locale), NOW
# (epoch seconds; empty: the clock. A parameter only so that tests can set the time).
set -euo pipefail
SCRIPT_NAME="upgrade-drain"
: "${NODE_NAME:?}" "${MARK:?}" "${TARGET:?}" "${ROLL:?}" "${DRAIN_TIMEOUT_S:=600}" "${WINDOW:=}" "${WINDOW_DAYS:=}" "${NOW:=}"

# Inside WINDOW at epoch $1? An end before the start runs past midnight: then the window opened on
# the previous day's date may still be open.
in_window() {
  local hours=${WINDOW##* } day prev hm
  local start=${hours%-*} end=${hours#*-}
  day=$(LC_ALL=C date -u -d "@$1" +%a) prev=$(LC_ALL=C date -u -d "@$(($1 - 86400))" +%a) hm=$(date -u -d "@$1" +%H:%M)
  opens_on() { [[ " $WINDOW_DAYS " == *" $1 "* ]]; }
  if [[ $start < $end ]]; then
    opens_on "$day" && [[ ! $hm < $start ]] && [[ $hm < $end ]]
  else
    { opens_on "$day" && [[ ! $hm < $start ]]; } || { opens_on "$prev" && [[ $hm < $end ]]; }
  fi
}

node() { microk8s kubectl get node "$NODE_NAME" -o jsonpath="$1"; }
at=$(retry node "{.metadata.annotations.hybrid-ai/$MARK}") || fail "cannot read node $NODE_NAME; is the API up?"
if [ "$at" != "$TARGET" ]; then
  if [ -n "$WINDOW" ]; then
    now=${NOW:-$(date -u +%s)}
    if ! in_window "$now"; then
      # A node an earlier attempt cordoned (a failed drain) stays so: say it rather than "untouched".
      left="it and the ones after it are untouched"
      [ "$(node '{.spec.unschedulable}')" = true ] && left="it is still cordoned from an earlier attempt, the ones after it are untouched"
      fail "$ROLL stopped before $NODE_NAME: outside cluster.upgrade.window ($WINDOW UTC; it is $(LC_ALL=C date -u -d "@$now" '+%a %H:%M') UTC here); the nodes before it are done, $left; run \`pulumi up\` again inside the window"
    fi
  fi
  if [ "$(node '{.spec.unschedulable}')" != true ]; then
    microk8s kubectl annotate --overwrite node "$NODE_NAME" hybrid-ai/upgrade-cordoned=true >/dev/null
    changed+=("cordoned")
  fi
  microk8s kubectl drain "$NODE_NAME" --ignore-daemonsets --delete-emptydir-data --timeout="${DRAIN_TIMEOUT_S}s" >&2 \
    || fail "$ROLL stopped at $NODE_NAME: drain failed or did not finish within ${DRAIN_TIMEOUT_S}s (a PodDisruptionBudget, or a pod no controller manages: see the drain output above); the nodes after it are untouched; fix it and re-run, or \`microk8s kubectl uncordon $NODE_NAME\`"
  changed+=("drained")
fi
report
