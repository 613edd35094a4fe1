#!/usr/bin/env bash
# Start a throw-away Keystone 30 on loopback for the tests:
#   memcached (Keystone's cache) and Keystone under gunicorn (2 workers), each on a free 127.0.0.1 port;
#   SQLite in WAL mode with a 30 s busy timeout (several workers share the file), fernet tokens,
#   `keystone-manage bootstrap` (user admin, project admin, roles admin/member/reader, region RegionOne).
# Usage: start.sh RUN_DIR   (wiped and re-created; must be empty or an earlier run directory)
# Writes RUN_DIR/env (KEY=VALUE: KEYSTONE_URL, KEYSTONE_REGION, KEYSTONE_ADMIN_* and MEMCACHED_SERVER) and
# prints it; PIDs go to RUN_DIR/pids for stop.sh. KEYSTONE_PORT / MEMCACHED_PORT pin the ports.
# On failure it stops what it started and prints the tails of the logs in RUN_DIR/log.
# Projects and users for the tests come from accounts.py, run against the env file.
set -euo pipefail
source "$(dirname "$0")/common.sh"
[ $# -eq 1 ] || { echo "usage: start.sh RUN_DIR" >&2; exit 2; }
RUN=$(realpath -m "$1")
T0=$(date +%s%N)
BIN=$KEYSTONE_VENV/bin
PY=$BIN/python

keystone_installed || { echo "start.sh: Keystone venv missing or stale ($KEYSTONE_VENV); run $KEYSTONE_HERE/install.sh" >&2; exit 1; }
command -v memcached >/dev/null || { echo "start.sh: memcached missing; run $KEYSTONE_HERE/install.sh" >&2; exit 1; }
if [ -s "$RUN/pids" ]; then
  for p in $(cat "$RUN/pids"); do
    kill -0 "$p" 2>/dev/null && { echo "start.sh: pid $p from $RUN/pids still runs; run stop.sh $RUN" >&2; exit 1; }
  done
fi
# wipe only an empty directory or an earlier run's, never whatever path was typed
if [ -n "$(ls -A "$RUN" 2>/dev/null)" ] && [ ! -f "$RUN/keystone.conf" ]; then
  echo "start.sh: $RUN is neither empty nor an earlier run directory; not wiping it" >&2; exit 1
fi
rm -rf "$RUN"
mkdir -p "$RUN"/{log,fernet-keys,credential-keys}
: > "$RUN/pids"
trap 'rc=$?; [ $rc -eq 0 ] || { bash "$KEYSTONE_HERE/stop.sh" "$RUN" >/dev/null; echo "start.sh failed (rc=$rc); logs in $RUN/log" >&2; }' EXIT
die() { tail -n 20 "$RUN"/log/* 2>/dev/null | cut -c1-300 >&2; echo "start.sh: $*" >&2; exit 1; }
took() { echo "$(( ($(date +%s%N) - T0) / 1000000 )) ms"; }

free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
KEYSTONE_PORT=${KEYSTONE_PORT:-$(free_port)}
MEMCACHED_PORT=${MEMCACHED_PORT:-$(free_port)}
URL=http://127.0.0.1:$KEYSTONE_PORT/v3
ADMIN_PASSWORD=$($PY -c 'import secrets; print(secrets.token_urlsafe(18))')
REGION=RegionOne

# setsid: a Ctrl-C to the caller's process group must not reach the daemons
launch() { local name=$1; shift; setsid "$@" >"$RUN/log/$name.out" 2>&1 </dev/null & echo $! >> "$RUN/pids"; }
alive() { for p in $(cat "$RUN/pids"); do kill -0 "$p" 2>/dev/null || die "a daemon (pid $p) exited"; done; }

# -u: memcached refuses to run as root without naming a user; -P puts RUN on its command line for stop.sh
launch memcached memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -u "$(id -un)" -P "$RUN/memcached.pid"

cat > "$RUN/keystone.conf" <<CONF
[DEFAULT]
log_file = $RUN/log/keystone.log
# tokens, and so the X-Auth-Token values the tests send, may be longer than the default 255 (a 10 kB token is
# still refused: the service rejects it before asking Keystone)
max_token_size = 1024

[database]
# WAL (set below) lets readers run beside the writer; timeout= is SQLite's busy timeout, in seconds
connection = sqlite:///$RUN/keystone.db?timeout=30

[token]
provider = fernet
expiration = 7200

[fernet_tokens]
key_repository = $RUN/fernet-keys

[fernet_receipts]
key_repository = $RUN/fernet-keys

[credential]
key_repository = $RUN/credential-keys

[identity]
# bcrypt's default 12 rounds cost ~0.25 s per password check; the tests create and authenticate many users
password_hash_rounds = 4

[cache]
enabled = true
backend = dogpile.cache.memcached
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[oslo_policy]
enforce_new_defaults = true
enforce_scope = true
CONF

KM=("$BIN/keystone-manage" --config-file "$RUN/keystone.conf")
# the key repositories do not touch the database: set them up while the schema is created
"${KM[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >"$RUN/log/fernet_setup.out" 2>&1 &
FERNET=$!
"${KM[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >"$RUN/log/credential_setup.out" 2>&1 &
CREDENTIAL=$!
"${KM[@]}" db_sync >"$RUN/log/db_sync.out" 2>&1 || die "keystone-manage db_sync failed"
$PY -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"' \
  "$RUN/keystone.db" || die "could not switch the database to WAL"
"${KM[@]}" bootstrap --bootstrap-username admin --bootstrap-password="$ADMIN_PASSWORD" \
  --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
  --bootstrap-region-id "$REGION" --bootstrap-public-url "$URL" --bootstrap-internal-url "$URL" \
  --bootstrap-admin-url "$URL" >"$RUN/log/bootstrap.out" 2>&1 || die "keystone-manage bootstrap failed"
wait "$FERNET" || die "keystone-manage fernet_setup failed"
wait "$CREDENTIAL" || die "keystone-manage credential_setup failed"

launch keystone "$BIN/gunicorn" --bind "127.0.0.1:$KEYSTONE_PORT" --workers 2 --timeout 60 --graceful-timeout 5 \
  --no-control-socket --pythonpath "$KEYSTONE_HERE" --env "OS_KEYSTONE_CONFIG_DIR=$RUN" \
  --access-logfile "$RUN/log/access.log" sglance_keystone_wsgi:application
for _ in $(seq 300); do
  curl -sf -o /dev/null -m 2 "$URL" && break
  alive; sleep 0.1
done
curl -sf -o /dev/null -m 2 "$URL" || die "Keystone did not answer on $URL"
# one password authentication proves the database, the fernet keys and the cache work
AUTH='{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
  "password": "'$ADMIN_PASSWORD'"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}'
code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 -H 'Content-Type: application/json' -d "$AUTH" "$URL/auth/tokens")
[ "$code" = 201 ] || die "admin could not get a token (HTTP $code)"

umask 077
cat > "$RUN/env" <<ENV
KEYSTONE_URL=$URL
KEYSTONE_REGION=$REGION
KEYSTONE_ADMIN_USER=admin
KEYSTONE_ADMIN_PASSWORD=$ADMIN_PASSWORD
KEYSTONE_ADMIN_PROJECT=admin
MEMCACHED_SERVER=127.0.0.1:$MEMCACHED_PORT
ENV
cat "$RUN/env"
echo "keystone: up in $(took) (pids $(tr '\n' ' ' < "$RUN/pids"))" >&2
