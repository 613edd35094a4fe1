#!/usr/bin/env bash
# Stop what start.sh started in RUN_DIR (the gunicorn master takes its workers along): SIGINT (gunicorn's quick
# shutdown), up to 10 s, then SIGKILL, and only to PIDs whose working directory is RUN_DIR (gunicorn renames its
# processes, so their command line says nothing; a recycled PID is never hit). RUN_DIR stays for a post-mortem
# (logs in RUN_DIR/log); start.sh wipes it on the next start.
# Usage: stop.sh RUN_DIR
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: stop.sh RUN_DIR" >&2; exit 2; }
RUN=$(realpath -m "$1")
[ -f "$RUN/pids" ] || { echo "stop.sh: no $RUN/pids; nothing to stop"; exit 0; }
running() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
ours() { [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$RUN" ]; }
for p in $(cat "$RUN/pids"); do
  running "$p" && ours "$p" || continue
  kill -INT "$p" 2>/dev/null
  for _ in $(seq 200); do running "$p" || break; sleep 0.05; done
  running "$p" && { echo "stop.sh: pid $p ignored SIGINT; SIGKILL"; kill -KILL "$p" 2>/dev/null; }
done
rm -f "$RUN/pids"
echo "glance stopped"
