#!/usr/bin/env bash
# Stop what start.sh started in RUN_DIR (default /tmp/sglance-swift): the proxy first, memcached last.
# SIGTERM, up to 10 s, then SIGKILL. Removes RUN_DIR unless SWIFT_KEEP_DATA=1.
set -uo pipefail
RUN=$(realpath -m "${1:-/tmp/sglance-swift}")
[ -f "$RUN/pids" ] || { echo "stop.sh: no $RUN/pids; nothing to stop"; exit 0; }
# a process reparented to PID 1 may stay a zombie for a while: that counts as gone
running() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
for p in $(tac "$RUN/pids"); do
  # never signal a recycled PID: each of our processes names RUN_DIR on its command line
  tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF "$RUN/" || continue
  kill -TERM "$p" 2>/dev/null || continue
  for _ in $(seq 200); do running "$p" || break; sleep 0.05; done
  running "$p" && { echo "stop.sh: pid $p ignored SIGTERM; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
done
rm -f "$RUN/pids"
[ "${SWIFT_KEEP_DATA:-0}" = 1 ] || rm -rf "$RUN"
echo "swift stopped"
