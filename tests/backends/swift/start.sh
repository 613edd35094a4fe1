#!/usr/bin/env bash
# Start a throw-away one-node Swift ("Swift All In One") on loopback: memcached, the account,
#   container and object servers (one replica, one device, data on disk under RUN_DIR) and the proxy
#   with tempauth, SLO and DLO. Servers only: no replicators, updaters, auditors or expirer.
# Usage: start.sh [RUN_DIR]   (default /tmp/sglance-swift; wiped and re-created)
# Every port is a free one picked at start (SWIFT_PROXY_PORT etc. override). Writes $RUN_DIR/env
# (KEY=VALUE: auth URL, user, key, storage URL, ...) and prints it; PIDs go to $RUN_DIR/pids for
# stop.sh, each process's output to $RUN_DIR/log/<name>.log. Each server runs as one process
# (workers = 0), in its own session (setsid): a Swift server that stops calls killpg(0, SIGTERM),
# which must not reach the caller. On failure it stops what it started and keeps the logs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=$(realpath -m "${1:-/tmp/sglance-swift}")
PY=/usr/bin/python3
BIN=/usr/bin
T0=$(date +%s%N)

for b in swift-proxy-server swift-object-server swift-container-server swift-account-server memcached; do
  command -v "$b" >/dev/null || { echo "start.sh: $b missing; run $HERE/install.sh" >&2; exit 1; }
done
if [ -s "$RUN/pids" ]; then
  for p in $(cat "$RUN/pids"); do
    kill -0 "$p" 2>/dev/null && { echo "start.sh: pid $p from $RUN/pids still runs; run stop.sh $RUN" >&2; exit 1; }
  done
fi
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROXY_PORT=${SWIFT_PROXY_PORT:-$(free_port)}
OBJ_PORT=${SWIFT_OBJECT_PORT:-$(free_port)}
CONT_PORT=${SWIFT_CONTAINER_PORT:-$(free_port)}
ACCT_PORT=${SWIFT_ACCOUNT_PORT:-$(free_port)}
MC_PORT=${SWIFT_MEMCACHED_PORT:-$(free_port)}

# wipe only an empty directory or an earlier run's, never whatever path was typed
if [ -n "$(ls -A "$RUN" 2>/dev/null)" ] && [ ! -f "$RUN/etc/swift.conf" ]; then
  echo "start.sh: $RUN is neither empty nor an earlier run directory; not wiping it" >&2; exit 1
fi
rm -rf "$RUN"
mkdir -p "$RUN"/{etc,log,cache,srv/d1}
: > "$RUN/pids"
trap 'rc=$?; [ $rc -eq 0 ] || { SWIFT_KEEP_DATA=1 bash "$HERE/stop.sh" "$RUN" >/dev/null; echo "start.sh failed (rc=$rc); logs in $RUN/log" >&2; }' EXIT
die() { tail -n 15 "$RUN"/log/*.log 2>/dev/null | cut -c1-300 >&2; echo "start.sh: $*" >&2; exit 1; }

# The object server keeps metadata in user.* xattrs; ext4 holds ~4 KiB of them per inode, plenty for
# images (tmpfs and XFS hold more).
$PY -c "import os, sys; p = os.path.join(sys.argv[1], '.probe'); open(p, 'w').close(); os.setxattr(p, 'user.swift.probe', b'x' * 1024); os.unlink(p)" "$RUN/srv/d1" \
  || die "$RUN does not support user xattrs (the object server needs them)"

USER_NAME=$(id -un)
cat > "$RUN/etc/swift.conf" <<CONFEOF
[swift-hash]
swift_hash_path_suffix = sglance-test-suffix
swift_hash_path_prefix = sglance-test-prefix

[storage-policy:0]
name = gold
default = yes
CONFEOF

server_conf() {  # name port
  cat > "$RUN/etc/$1-server.conf" <<CONFEOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $USER_NAME
swift_dir = $RUN/etc
devices = $RUN/srv
mount_check = false
disable_fallocate = true
log_name = $1-server
log_level = INFO
# no syslog socket here: -v sends the log lines to stdout, i.e. $RUN/log/$1.log
log_address = /nonexistent-syslog-socket

[pipeline:main]
pipeline = healthcheck $1-server

[app:$1-server]
use = egg:swift#$1

[filter:healthcheck]
use = egg:swift#healthcheck
CONFEOF
}
server_conf account "$ACCT_PORT"
server_conf container "$CONT_PORT"
server_conf object "$OBJ_PORT"

cat > "$RUN/etc/proxy-server.conf" <<CONFEOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 0
user = $USER_NAME
swift_dir = $RUN/etc
log_name = proxy-server
log_level = INFO
log_address = /nonexistent-syslog-socket

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
reseller_prefix = AUTH
token_life = 86400
# user_<account>_<user> = <key> [groups]
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
CONFEOF

# one-replica rings, 2^8 partitions, device d1, built in one python process (nine
# swift-ring-builder runs cost ~6 s of imports)
$PY - "$RUN/etc" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" <<'PYEOF' || die "building the rings failed"
import sys
from swift.common.ring import RingBuilder
etc, o, c, a = sys.argv[1], *map(int, sys.argv[2:])
for name, port in (("object", o), ("container", c), ("account", a)):
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                     "replication_ip": "127.0.0.1", "replication_port": port,
                     "device": "d1", "weight": 100, "meta": ""})
    builder.rebalance()
    builder.get_ring().save(f"{etc}/{name}.ring.gz")
PYEOF

launch() { local name=$1; shift; setsid "$@" >>"$RUN/log/$name.log" 2>&1 </dev/null & echo $! >> "$RUN/pids"; }
alive() {
  for p in $(cat "$RUN/pids"); do
    { kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; } || die "a process (pid $p) exited"
  done
}
# -P puts RUN on memcached's command line, which stop.sh checks before it signals a PID
launch memcached memcached -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 64 -u "$USER_NAME" -P "$RUN/memcached.pid"
SX="$PY $HERE/swift_exec.py $RUN/etc"
launch account   $SX $BIN/swift-account-server   "$RUN/etc/account-server.conf" -v
launch container $SX $BIN/swift-container-server "$RUN/etc/container-server.conf" -v
launch object    $SX $BIN/swift-object-server    "$RUN/etc/object-server.conf" -v
launch proxy     $SX $BIN/swift-proxy-server     "$RUN/etc/proxy-server.conf" -v

# ready = every healthcheck answers, tempauth hands out a token, and a HEAD of the account (which
# creates it) succeeds
ready() {
  $PY - "$PROXY_PORT" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" <<'PYEOF'
import sys, urllib.request
proxy, *servers = sys.argv[1:]
for port in (*servers, proxy):
    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=1).read()
auth = urllib.request.Request(f"http://127.0.0.1:{proxy}/auth/v1.0",
                              headers={"X-Storage-User": "test:tester", "X-Storage-Pass": "testing"})
with urllib.request.urlopen(auth, timeout=2) as answer:
    url, token = answer.headers["X-Storage-Url"], answer.headers["X-Auth-Token"]
urllib.request.urlopen(urllib.request.Request(url, method="HEAD", headers={"X-Auth-Token": token}), timeout=5).read()
PYEOF
}
ok=""
for _ in $(seq 600); do
  if ready >/dev/null 2>&1; then ok=1; break; fi
  alive
  sleep 0.1
done
[ -n "$ok" ] || die "swift not ready after 60 s"

cat > "$RUN/env" <<ENVEOF
SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFT_AUTH_VERSION=1
SWIFT_USER=test:tester
SWIFT_KEY=testing
SWIFT_STORAGE_URL=http://127.0.0.1:$PROXY_PORT/v1/AUTH_test
SWIFT_USER2=test2:tester2
SWIFT_KEY2=testing2
SWIFT_PROXY_PORT=$PROXY_PORT
SWIFT_RUN_DIR=$RUN
SWIFT_STARTUP_SECONDS=$($PY -c "print(round(($(date +%s%N) - $T0) / 1e9, 2))")
ENVEOF
cat "$RUN/env"
trap - EXIT
