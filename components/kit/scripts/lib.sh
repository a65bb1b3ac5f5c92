#!/usr/bin/env bash
# Shared helpers, prepended by the program to every host script (after its parameters).
# shellcheck disable=SC2034  # `changed` is filled by the scripts that follow.
set -euo pipefail

changed=()
log() { echo "hybrid-ai[${HOST_NAME:-$(hostname)}] ${SCRIPT_NAME:-script}: $*" >&2; }
fail() { log "ERROR: $*"; exit 1; }
# A value another party controls (a Node's status: its kubelet writes it, and the API server does
# not check it), fit for one log line: no control characters, at most 64 characters.
shown() { local v=${1//[^[:alnum:].:_|-]/?}; printf '%s' "${v:0:64}"; }

# Retry a command with bounded exponential backoff (apt and snap locks, flaky mirrors):
# RETRY_ATTEMPTS tries, pausing RETRY_PAUSE_S seconds, doubling each time.
retry() {
  local attempt=1 max=${RETRY_ATTEMPTS:-5} pause=${RETRY_PAUSE_S:-5}
  until "$@"; do
    if [ "$attempt" -ge "$max" ]; then
      log "giving up after $attempt attempts: $*"
      return 1
    fi
    log "attempt $attempt failed, retrying in ${pause}s: $*"
    sleep "$pause"
    attempt=$((attempt + 1)) pause=$((pause * 2))
  done
}

# Run a check until it succeeds: at most TRIES times, PAUSE seconds apart; false if it never does.
wait_for() {
  local tries=$1 pause=$2
  shift 2
  until "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep "$pause"
  done
}

# The stack's MicroK8s join token, from stdin (never an argument or a parameter).
read_join_token() {
  local token
  IFS= read -r token || true
  [[ "$token" =~ ^[0-9a-f]{32}$ ]] || fail "the join token on stdin is not 32 hex characters"
  printf '%s' "$token"
}

# The last line of every script: what it changed ("changed=none" on a re-run).
report() {
  log "changed: ${changed[*]:-none}"
  echo "changed=${changed[*]:-none}"
}

# Make FILE contain the line "FLAG=VALUE" (MicroK8s args files), replacing any other value.
ensure_arg() {
  local file=$1 flag=$2 value=$3
  grep -qxF -- "$flag=$value" "$file" 2>/dev/null && return 1
  if grep -q -- "^$flag=" "$file" 2>/dev/null; then
    sed -i "s|^$flag=.*|$flag=$value|" "$file"
  else
    printf '%s=%s\n' "$flag" "$value" >> "$file"
  fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
