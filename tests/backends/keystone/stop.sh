#!/usr/bin/env bash
# Stop what start.sh started in RUN_DIR: Keystone (the gunicorn master takes its workers along) and memcached.
# SIGINT to both at once (gunicorn's quick shutdown), up to 10 s, then SIGKILL. Only PIDs whose command line
# names RUN_DIR are signalled, so a recycled PID is never hit. RUN_DIR (database, keys, logs) stays for a
# post-mortem; start.sh wipes it on the next start.
# Usage: stop.sh RUN_DIR
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: stop.sh RUN_DIR" >&2; exit 2; }
RUN=$(realpath -m "$1")
[ -f "$RUN/pids" ] || { echo "stop.sh: no $RUN/pids; nothing to stop"; exit 0; }
# a daemon reparented to PID 1 may stay a zombie for a while: that counts as gone
running() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
ours() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$RUN"; }
signalled=()
for p in $(cat "$RUN/pids"); do
  if running "$p" && ours "$p" && kill -INT "$p" 2>/dev/null; then signalled+=("$p"); fi
done
for p in "${signalled[@]}"; do
  for _ in $(seq 200); do running "$p" || break; sleep 0.05; done
  running "$p" && { echo "stop.sh: pid $p ignored SIGINT; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
done
rm -f "$RUN/pids"
echo "keystone stopped"
