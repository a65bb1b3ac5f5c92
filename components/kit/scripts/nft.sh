#!/usr/bin/env bash
# nftables helpers for the scripts that keep one table of their own (the host firewall, the
# agent guard): composed after lib.sh into a script that has the line `# uses: nft.sh`.
# A script using them sets RULES_FILE and UNIT_FILE (its parameters).
# shellcheck disable=SC2034  # `nft` is for the script that follows.

# Install nftables where it is missing; set `nft` to its path.
nft_install() {
  if ! installed nftables; then
    export DEBIAN_FRONTEND=noninteractive
    retry apt-get -o DPkg::Lock::Timeout=120 update -q || fail "apt-get update failed; check the host's package mirrors"
    retry apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends nftables || fail "could not install nftables"
    changed+=("nftables")
  fi
  nft=$(command -v nft) || fail "nft not found after installing nftables"
}

nft_join() { local IFS=,; echo "$*"; }  # an nft set's elements

# Load RULES (checked first, then in one transaction). OWNED is a command printing what the
# script owns of the table: "ruleset" is reported when its output changed.
nft_load() {
  local rules=$1 owned=$2 before
  printf '%s\n' "$rules" | "$nft" -c -f - || fail "nft refused the generated ruleset (see above)"
  before=$("$owned" 2>/dev/null || true)
  printf '%s\n' "$rules" | "$nft" -f - || fail "could not load the ruleset"
  [ "$before" = "$("$owned")" ] || changed+=("ruleset")
}

# Keep RULES for reboots: RULES_FILE, loaded by UNIT_FILE, a oneshot unit before the network
# (DESCRIPTION; BEFORE, units it must also start before), enabled.
nft_persist() {
  local rules=$1 description=$2 before=${3:-} unit unit_name
  unit="[Unit]
Description=$description
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target${before:+ $before}
After=nftables.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$nft -f $RULES_FILE

[Install]
WantedBy=sysinit.target"
  if [ "$(cat "$RULES_FILE" 2>/dev/null)" != "$rules" ]; then
    mkdir -p "$(dirname "$RULES_FILE")"
    printf '%s\n' "$rules" > "$RULES_FILE"
    changed+=("rules-file")
  fi
  if [ "$(cat "$UNIT_FILE" 2>/dev/null)" != "$unit" ]; then
    mkdir -p "$(dirname "$UNIT_FILE")"
    printf '%s\n' "$unit" > "$UNIT_FILE"
    systemctl daemon-reload
    changed+=("unit")
  fi
  unit_name=$(basename "$UNIT_FILE")
  if ! systemctl is-enabled --quiet "$unit_name"; then
    systemctl enable "$unit_name"
    changed+=("enabled")
  fi
}

# Undo nft_load and nft_persist on `pulumi destroy`: the table TABLE (of family inet), the unit
# and the rules file. No other table is touched; nftables stays installed (others may use it).
nft_remove() {
  local table=$1 unit_name
  unit_name=$(basename "$UNIT_FILE")
  if command -v nft >/dev/null && nft list table inet "$table" >/dev/null 2>&1; then
    nft delete table inet "$table"
    changed+=("ruleset")
  fi
  if systemctl is-enabled --quiet "$unit_name" 2>/dev/null; then
    systemctl disable "$unit_name"
    changed+=("enabled")
  fi
  if [ -e "$UNIT_FILE" ]; then
    rm -f "$UNIT_FILE"
    systemctl daemon-reload
    changed+=("unit")
  fi
  if [ -e "$RULES_FILE" ]; then
    rm -f "$RULES_FILE"
    changed+=("rules-file")
  fi
}
