#!/usr/bin/env bash
# Start a throw-away one-node Ceph cluster with the RADOS Gateway (S3) on loopback:
#   one mon, one OSD on memstore (data in RAM, gone at stop), radosgw (beast), and an
#   S3 user with fixed keys. auth none, pool size 1, every port on 127.0.0.1.
# Usage: start.sh [RUN_DIR]   (default /tmp/sglance-rgw; wiped and re-created)
# Writes $RUN_DIR/env (KEY=VALUE: endpoint, region, keys) and prints it; daemon PIDs go to
# $RUN_DIR/pids for stop.sh. Ports are free ones picked at start unless CEPH_RGW_PORT,
# CEPH_MON_PORT or CEPH_MON_V2_PORT is set. On failure it stops what it started, keeps the
# logs in $RUN_DIR/log and prints their tails.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=$(realpath -m "${1:-/tmp/sglance-rgw}")
ACCESS_KEY=${CEPH_S3_ACCESS_KEY:-SGLANCETESTACCESSKEY}
SECRET_KEY=${CEPH_S3_SECRET_KEY:-sglance-test-secret-key-not-a-real-one}
MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-1073741824}
PY=/usr/bin/python3
T0=$(date +%s%N)

for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
  command -v "$b" >/dev/null || { echo "start.sh: $b missing; run $HERE/install.sh" >&2; exit 1; }
done
if [ -s "$RUN/pids" ]; then
  for p in $(cat "$RUN/pids"); do
    kill -0 "$p" 2>/dev/null && { echo "start.sh: pid $p from $RUN/pids still runs; run stop.sh $RUN" >&2; exit 1; }
  done
fi
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RGW_PORT=${CEPH_RGW_PORT:-$(free_port)}
MON_PORT=${CEPH_MON_PORT:-$(free_port)}
MON_V2_PORT=${CEPH_MON_V2_PORT:-$(free_port)}

# wipe only an empty directory or an earlier run's, never whatever path was typed
if [ -n "$(ls -A "$RUN" 2>/dev/null)" ] && [ ! -f "$RUN/ceph.conf" ]; then
  echo "start.sh: $RUN is neither empty nor an earlier run directory; not wiping it" >&2; exit 1
fi
rm -rf "$RUN"
mkdir -p "$RUN"/{mon/a,osd/0,log,run,rgw,crash}
: > "$RUN/pids"
trap 'rc=$?; [ $rc -eq 0 ] || { CEPH_KEEP_DATA=1 bash "$HERE/stop.sh" "$RUN" >/dev/null; echo "start.sh failed (rc=$rc); logs in $RUN/log" >&2; }' EXIT
die() { tail -n 15 "$RUN"/log/*.log "$RUN"/log/*.out 2>/dev/null | cut -c1-300 >&2; echo "start.sh: $*" >&2; exit 1; }

FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
CONF=$RUN/ceph.conf
cat > "$CONF" <<CONFEOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
# Daemons default to "secure" mode towards the mon, which auth none cannot offer:
# without crc, radosgw never connects (EACCES, -13, in its log every 3 s).
ms mon client mode = crc secure
auth cluster required = none
auth service required = none
auth client required = none
keyring = $RUN/keyring
run dir = $RUN/run
admin socket = $RUN/run/\$cluster-\$name.asok
log file = $RUN/log/\$name.log
log to stderr = false
crash dir = $RUN/crash
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
# a nearly full CI disk must not stop the mon (it refuses below 5 % free by default)
mon data avail crit = 0
# one mon: commit map changes at once (RGW start goes from ~8 s to ~1 s)
paxos propose interval = 0.05

[mon]
mon data = $RUN/mon/\$id

[osd]
osd data = $RUN/osd/\$id
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd fast shutdown = true

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $RUN/rgw
rgw thread pool size = 32
CONFEOF
CEPH="ceph -c $CONF --connect-timeout 5"

# setsid: a Ctrl-C to the caller's process group must not reach the daemons
launch() { local name=$1; shift; setsid "$@" >"$RUN/log/$name.out" 2>&1 </dev/null & echo $! >> "$RUN/pids"; }
alive() { for p in $(cat "$RUN/pids"); do kill -0 "$p" 2>/dev/null || die "a daemon (pid $p) exited"; done; }
wait_for() {  # seconds description command...
  local n=$(($1 * 10)) what=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; alive; sleep 0.1; done
  die "$what not ready after $((n / 10)) s"
}

# mon (the keyring exists only because mkfs insists on a mon. key)
ceph-authtool --create-keyring "$RUN/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_PORT]" "$RUN/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$RUN/monmap" --keyring "$RUN/keyring" >"$RUN/log/mon-mkfs.out" 2>&1 \
  || die "ceph-mon --mkfs failed"
launch mon ceph-mon -c "$CONF" -i a -f
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$RUN/log/osd-mkfs.out" 2>&1 || die "ceph-osd --mkfs failed"
wait_for 10 "mon" $CEPH mon stat

# osd
[ "$($CEPH osd new "$OSD_UUID")" = 0 ] || die "ceph osd new did not give id 0"
launch osd ceph-osd -c "$CONF" -i 0 -f
osd_up() { $CEPH osd stat -f json | $PY -c 'import json, sys; sys.exit(json.load(sys.stdin)["num_up_osds"] != 1)'; }
wait_for 30 "osd" osd_up

# RGW's pools up front: otherwise the first CreateBucket waits seconds for them. Writing a
# probe object to each proves its PGs are active (without a mgr nothing reports PG states).
$PY - "$CONF" <<'PYEOF' || die "creating the RGW pools failed"
import json, sys, rados
cluster = rados.Rados(conffile=sys.argv[1], conf={"rados_osd_op_timeout": "30"})
cluster.connect(timeout=10)
for pool in (".rgw.root", "default.rgw.log", "default.rgw.control", "default.rgw.meta",
             "default.rgw.buckets.index", "default.rgw.buckets.data", "default.rgw.buckets.non-ec"):
    for cmd in ({"prefix": "osd pool create", "pool": pool, "pg_num": 8, "pgp_num": 8},
                {"prefix": "osd pool application enable", "pool": pool, "app": "rgw"}):
        rc, _, err = cluster.mon_command(json.dumps(cmd), b"")
        if rc not in (0, -17):  # -17: exists
            sys.exit(f"{cmd}: {rc} {err}")
    with cluster.open_ioctx(pool) as io:
        io.write_full("probe", b"x")
        io.remove_object("probe")
cluster.shutdown()
PYEOF

# radosgw and its S3 user
launch rgw radosgw -c "$CONF" -n client.rgw.a -f
wait_for 60 "radosgw on 127.0.0.1:$RGW_PORT" $PY -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$RGW_PORT/', timeout=1)"
radosgw-admin -c "$CONF" user create --uid=sglance --display-name=sglance-tests \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null || die "radosgw-admin user create failed"
# ready = the keys work: a SigV2-signed ListBuckets answers 200
s3_ready() {
  $PY - "$RGW_PORT" "$ACCESS_KEY" "$SECRET_KEY" <<'PYEOF'
import base64, hashlib, hmac, sys, urllib.request
from email.utils import formatdate
port, access, secret = sys.argv[1:]
date = formatdate(usegmt=True)
sig = base64.b64encode(hmac.new(secret.encode(), f"GET\n\n\n{date}\n/".encode(), hashlib.sha1).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Date": date, "Authorization": f"AWS {access}:{sig}"})
urllib.request.urlopen(req, timeout=2).read()
PYEOF
}
wait_for 10 "the S3 user" s3_ready

cat > "$RUN/env" <<ENVEOF
CEPH_CONF=$CONF
CEPH_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
CEPH_S3_REGION=us-east-1
CEPH_S3_ACCESS_KEY=$ACCESS_KEY
CEPH_S3_SECRET_KEY=$SECRET_KEY
CEPH_STARTUP_SECONDS=$($PY -c "print(round(($(date +%s%N) - $T0) / 1e9, 2))")
ENVEOF
cat "$RUN/env"
trap - EXIT
