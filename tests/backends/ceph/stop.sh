#!/usr/bin/env bash
# Stop the cluster start.sh started in RUN_DIR (default /tmp/sglance-rgw): newest daemon first
# (radosgw, osd, mon), so the OSD can still report to the mon that it is going down. SIGTERM,
# up to 10 s, then SIGKILL. Removes RUN_DIR unless CEPH_KEEP_DATA=1.
set -uo pipefail
RUN=$(realpath -m "${1:-/tmp/sglance-rgw}")
[ -f "$RUN/pids" ] || { echo "stop.sh: no $RUN/pids; nothing to stop"; exit 0; }
# a daemon reparented to PID 1 may stay a zombie for a while: that counts as gone
running() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
for p in $(tac "$RUN/pids"); do
  # never signal a recycled PID that is no longer one of our daemons
  case "$(cat "/proc/$p/comm" 2>/dev/null)" in ceph-mon|ceph-osd|radosgw) ;; *) continue ;; esac
  kill -TERM "$p" 2>/dev/null || continue
  for _ in $(seq 200); do running "$p" || break; sleep 0.05; done
  running "$p" && { echo "stop.sh: pid $p ignored SIGTERM; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
done
rm -f "$RUN/pids"
[ "${CEPH_KEEP_DATA:-0}" = 1 ] || rm -rf "$RUN"
echo "ceph stopped"
