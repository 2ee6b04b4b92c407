#!/usr/bin/env bash
# Starts a throwaway single-node Ceph (1 monitor, 1 in-memory OSD, radosgw) on 127.0.0.1:
# a real S3-compatible server for @tmgg/s3-storage's tests and bench/resume.mjs.
#
# Needs: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl
# Usage: scripts/ceph-start.sh DIR [PORT]
#   DIR   an empty (or earlier ceph-start) folder for the cluster's data, sockets and logs
#   PORT  radosgw's port (default 7480; "auto" picks a free one)
# Env:   MONPORT (monitor port, default: a free one), S3_ACCESS_KEY / S3_SECRET_KEY (default
#        testaccess / testsecret).
# Output: the S3 endpoint and keys, in DIR/env as shell assignments:
#   S3_ENDPOINT=http://127.0.0.1:PORT  S3_ACCESS_KEY=…  S3_SECRET_KEY=…  S3_REGION=us-east-1
# It returns only after an authenticated bucket create, PUT and GET succeeded. On failure it
# stops what it started and prints the tail of the logs. Stop with scripts/ceph-stop.sh DIR.
set -euo pipefail
DIR=${1:?usage: $0 DIR [PORT]}
PORT=${2:-7480}
ACCESS=${S3_ACCESS_KEY:-testaccess}
SECRET=${S3_SECRET_KEY:-testsecret}
HERE=$(cd "$(dirname "$0")" && pwd)

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool curl; do
  command -v "$tool" >/dev/null || {
    echo "ceph-start.sh: $tool not found; install with: apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl" >&2
    exit 2
  }
done

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 50); do p=$((20000 + RANDOM % 30000)); in_use "$p" || { echo "$p"; return 0; }; done
  echo "ceph-start.sh: no free port found" >&2; return 1
}
[ "$PORT" = auto ] && PORT=$(free_port)
MONPORT=${MONPORT:-$(free_port)}
for p in "$MONPORT" "$PORT"; do
  if in_use "$p"; then echo "ceph-start.sh: port $p already in use" >&2; exit 1; fi
done

if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -f "$DIR/ceph.conf" ]; then
  echo "ceph-start.sh: $DIR is not empty and was not made by ceph-start.sh; refusing to clear it" >&2
  exit 1
fi
if [ -f "$DIR/ceph.conf" ]; then "$HERE/ceph-stop.sh" "$DIR" >/dev/null; fi
rm -rf "$DIR"
mkdir -p "$DIR"/{mon,osd,rgw,run,log}
DIR=$(cd "$DIR" && pwd)

T0=$(date +%s%N)
secs() { local d=$(( ($(date +%s%N) - T0) / 1000000 )); printf "%d.%03d" $((d / 1000)) $((d % 1000)); }
el() { echo "  [$(secs)s] $*"; }
on_error() {
  local status=$?
  echo "ceph-start.sh: failed (line $1, exit $status); stopping what it started. Log tails:" >&2
  for f in "$DIR"/log/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  "$HERE/ceph-stop.sh" "$DIR" >&2 || true
  exit "$status"
}
trap 'on_error $LINENO' ERR

FSID=$(cat /proc/sys/kernel/random/uuid)
CONF="$DIR/ceph.conf"
cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MONPORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
mon data avail warn = 1
mon data avail crit = 0
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pg bits = 3
osd pgp bits = 3
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd class update on start = false
osd crush update on start = false
run dir = $DIR/run
log file = $DIR/log/\$name.log
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
keyring = $DIR/keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd data = $DIR/osd
mon data = $DIR/mon
erasure code dir = /usr/lib/x86_64-linux-gnu/ceph/erasure-code
plugin dir = /usr/lib/x86_64-linux-gnu/ceph
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
# Quiet and lean: the default request logging (~1.7 KB per request) and 512 worker threads
# doubled radosgw's CPU per request on a 2-core machine.
debug rgw = 0/0
debug ms = 0/0
rgw enable ops log = false
rgw enable usage log = false
rgw thread pool size = 64
CONF
# Debian/Ubuntu on arm64 keep the plugins under another triplet.
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
sed -i "s#/usr/lib/x86_64-linux-gnu/#/usr/lib/$triplet/#" "$CONF"

ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --add a "v1:127.0.0.1:$MONPORT" --fsid "$FSID" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/keyring"
ceph-mon -c "$CONF" -i a
el "mon started on 127.0.0.1:$MONPORT"
C="ceph -c $CONF --connect-timeout 20"
# Retries quietly (the monitor refuses commands for a moment after it starts); the last try speaks.
retry() { local i; for i in $(seq 1 19); do "$@" 2>/dev/null && return 0; sleep 0.5; done; "$@" || { echo "FAILED: $*" >&2; return 1; }; }
retry $C osd create >/dev/null # -> osd.0
ceph-osd -c "$CONF" -i 0 --mkfs >/dev/null 2>&1
retry $C osd crush add osd.0 1 root=default host=localhost >/dev/null 2>&1
ceph-osd -c "$CONF" -i 0 2>/dev/null
el "osd started"
up=0
for _ in $(seq 1 100); do $C osd stat 2>/dev/null | grep -q '1 up' && { up=1; break; }; sleep 0.3; done
[ $up = 1 ] || { echo "ceph-start.sh: the OSD did not come up" >&2; false; }
el "osd up"
radosgw -c "$CONF" -n client.rgw.a
for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
curl -s -o /dev/null "http://127.0.0.1:$PORT/" || { echo "ceph-start.sh: radosgw did not answer on port $PORT" >&2; false; }
el "rgw answering"
retry radosgw-admin -c "$CONF" user create --uid=test --display-name=test \
  --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null
# Readiness and warm-up: an authenticated bucket create and object PUT/GET (creates the data
# and index pools, which otherwise cost ~2 s on the first test's first write).
S="curl -sf --aws-sigv4 aws:amz:us-east-1:s3 --user $ACCESS:$SECRET -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
retry $S -X PUT "http://127.0.0.1:$PORT/warmup" -o /dev/null
retry $S -X PUT --data-binary '{"ok":true}' "http://127.0.0.1:$PORT/warmup/ready.json" -o /dev/null
[ "$($S "http://127.0.0.1:$PORT/warmup/ready.json")" = '{"ok":true}' ]
cat >"$DIR/env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$PORT
S3_ACCESS_KEY=$ACCESS
S3_SECRET_KEY=$SECRET
S3_REGION=us-east-1
ENV
echo "ceph rgw ready on http://127.0.0.1:$PORT in $(secs)s (keys $ACCESS/$SECRET; env in $DIR/env)"
