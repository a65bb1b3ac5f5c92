#!/usr/bin/env bash
# Undo wg-metrics-install.sh: stop the timer, remove its units, the collector, its output and
# the folders it made.
# Parameters (set above by the program): TEXTFILE_DIR, LIB_DIR, UNIT_DIR. Safe to run twice.
# Helpers (log, fail, report) come from lib.sh.
SCRIPT_NAME=wg-metrics-remove

if [ -e "$UNIT_DIR/hybrid-ai-wg-metrics.timer" ]; then
  systemctl disable --now hybrid-ai-wg-metrics.timer || true
  changed+=("timer")
fi
for f in "$UNIT_DIR/hybrid-ai-wg-metrics.timer" "$UNIT_DIR/hybrid-ai-wg-metrics.service" \
         "$LIB_DIR/wg-metrics.sh" "$TEXTFILE_DIR/wireguard.prom"; do
  [ -e "$f" ] && rm -f "$f" && changed+=("$(basename "$f")")
done
# The folders the install made (its list), innermost first, each once empty: a folder another
# tool has put files in since stays.
if [ -f "$LIB_DIR/wg-metrics.folders" ]; then
  mapfile -t made < "$LIB_DIR/wg-metrics.folders"
  rm -f "$LIB_DIR/wg-metrics.folders"
  for ((i = ${#made[@]} - 1; i >= 0; i--)); do
    rmdir "${made[i]}" 2>/dev/null || true
  done
  changed+=("folders")
fi
[ "${#changed[@]}" -gt 0 ] && systemctl daemon-reload
report
