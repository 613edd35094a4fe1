#!/usr/bin/env bash
# Start a throw-away Glance 33 on loopback for the tests: gunicorn (GLANCE_WORKERS workers, 2 by default, threads
# for concurrent downloads) serving glance.wsgi.api:application on a free 127.0.0.1 port, one file store, SQLite
# in WAL mode, Keystone auth (keystonemiddleware) against an already running Keystone, secure-RBAC policy defaults.
# Usage: start.sh RUN_DIR [SETTINGS_FILE]   (RUN_DIR is wiped and re-created: it must be empty or an earlier run's)
# Settings, from the environment or KEY=VALUE lines of SETTINGS_FILE (which keeps the password off command lines):
#   required GLANCE_KEYSTONE_URL (…/v3), GLANCE_SERVICE_USER, GLANCE_SERVICE_PASSWORD, GLANCE_SERVICE_PROJECT (the
#   service user's project; domain Default); optional GLANCE_MEMCACHED (host:port, keystonemiddleware's token
#   cache), GLANCE_PORT, GLANCE_WORKERS (2), GLANCE_REGION (RegionOne).
# Writes RUN_DIR/env (GLANCE_URL, GLANCE_IMAGES_DIR) and prints it; PIDs go to RUN_DIR/pids for stop.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: start.sh RUN_DIR [SETTINGS_FILE]" >&2; exit 2; }
if [ $# -eq 2 ]; then set -a; source "$2"; set +a; fi
: "${GLANCE_KEYSTONE_URL:?}" "${GLANCE_SERVICE_USER:?}" "${GLANCE_SERVICE_PASSWORD:?}" "${GLANCE_SERVICE_PROJECT:?}"
RUN=$(realpath -m "$1")
T0=$(date +%s%N)
BIN=$GLANCE_VENV/bin
took() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

glance_installed || { echo "start.sh: Glance venv missing or stale ($GLANCE_VENV); run $GLANCE_HERE/install.sh" >&2; exit 1; }
if [ -s "$RUN/pids" ]; then
  for p in $(cat "$RUN/pids"); do
    kill -0 "$p" 2>/dev/null && { echo "start.sh: pid $p from $RUN/pids still runs; run stop.sh $RUN" >&2; exit 1; }
  done
fi
if [ -n "$(ls -A "$RUN" 2>/dev/null)" ] && [ ! -f "$RUN/etc/glance-api.conf" ]; then
  echo "start.sh: $RUN is neither empty nor an earlier run directory; not wiping it" >&2; exit 1
fi
rm -rf "$RUN"
mkdir -p "$RUN"/{etc,log,images,staging,tasks,work,locks}
: > "$RUN/pids"
trap 'rc=$?; [ $rc -eq 0 ] || { bash "$GLANCE_HERE/stop.sh" "$RUN" >/dev/null; echo "start.sh failed (rc=$rc); logs in $RUN/log" >&2; }' EXIT
die() { tail -n 30 "$RUN"/log/* 2>/dev/null | cut -c1-300 >&2; echo "start.sh: $*" >&2; exit 1; }

# a given port must be free: a Glance already there would answer the health check in this one's place
PORT=$("$BIN/python" -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); print(s.getsockname()[1])' \
  "${GLANCE_PORT:-0}") || die "port ${GLANCE_PORT:-0} is in use"
URL=http://127.0.0.1:$PORT
CACHE="# no memcached: keystonemiddleware caches tokens in memory"
[ -n "${GLANCE_MEMCACHED:-}" ] && CACHE="memcached_servers = $GLANCE_MEMCACHED"

cat > "$RUN/etc/glance-api.conf" <<CONF
[DEFAULT]
log_file = $RUN/log/glance-api.log
public_endpoint = $URL
worker_self_reference_url = $URL
# one file store, named as an operator would; multistore is how Glance is deployed today
enabled_backends = local:file
enabled_import_methods = [glance-direct,web-download]
show_image_direct_url = false
show_multiple_locations = false
do_secure_hash = true
hashing_algorithm = sha512
use_keystone_limits = false

[glance_store]
default_backend = local

[local]
filesystem_store_datadir = $RUN/images/

[os_glance_staging_store]
filesystem_store_datadir = $RUN/staging/

[os_glance_tasks_store]
filesystem_store_datadir = $RUN/tasks/

[task]
work_dir = $RUN/work/

[database]
connection = sqlite:///$RUN/glance.db?timeout=30

[oslo_concurrency]
lock_path = $RUN/locks

[paste_deploy]
flavor = keystone

[keystone_authtoken]
www_authenticate_uri = $GLANCE_KEYSTONE_URL
auth_url = $GLANCE_KEYSTONE_URL
auth_type = password
username = $GLANCE_SERVICE_USER
password = $GLANCE_SERVICE_PASSWORD
user_domain_name = Default
project_name = $GLANCE_SERVICE_PROJECT
project_domain_name = Default
region_name = ${GLANCE_REGION:-RegionOne}
$CACHE

[oslo_policy]
enforce_new_defaults = true

[wsgi]
python_interpreter = $BIN/python
task_pool_threads = 4

[oslo_messaging_notifications]
driver = noop
CONF
chmod 600 "$RUN/etc/glance-api.conf"
cp "$GLANCE_VENV/etc/glance/glance-api-paste.ini" "$RUN/etc/"

"$BIN/glance-manage" --config-file "$RUN/etc/glance-api.conf" db_sync >"$RUN/log/db_sync.out" 2>&1 || die "glance-manage db_sync failed"
"$BIN/python" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"' \
  "$RUN/glance.db" || die "could not switch the database to WAL"

# setsid: a Ctrl-C to the caller's process group must not reach the server. gunicorn renames its processes
# (setproctitle is in Glance's venv), so stop.sh recognises them by their working directory, RUN.
OS_GLANCE_CONFIG_DIR=$RUN/etc setsid "$BIN/gunicorn" --bind "127.0.0.1:$PORT" --workers "${GLANCE_WORKERS:-2}" \
  --threads 4 --timeout 300 --graceful-timeout 5 --no-control-socket --chdir "$RUN" --pythonpath "$GLANCE_HERE" \
  --access-logfile "$RUN/log/access.log" sglance_glance_wsgi:application \
  >"$RUN/log/gunicorn.out" 2>&1 </dev/null &
echo $! >> "$RUN/pids"
for _ in $(seq 600); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$URL/healthcheck")" = 200 ] && break
  kill -0 "$(head -1 "$RUN/pids")" 2>/dev/null || die "gunicorn exited"
  sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$URL/healthcheck")" = 200 ] || die "Glance did not answer on $URL/healthcheck"
kill -0 "$(head -1 "$RUN/pids")" 2>/dev/null || die "gunicorn exited"
# unauthenticated calls are 401: keystonemiddleware is in the pipeline
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 "$URL/v2/images")
[ "$code" = 401 ] || die "GET /v2/images without a token answered $code, not 401"

umask 077
cat > "$RUN/env" <<ENV
GLANCE_URL=$URL
GLANCE_IMAGES_DIR=$RUN/images
ENV
cat "$RUN/env"
echo "glance: up in $(took) (pid $(tr '\n' ' ' < "$RUN/pids"))" >&2
