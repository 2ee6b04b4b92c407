#!/usr/bin/env bash
# Stops the daemons that scripts/ceph-start.sh DIR started, by their pid files: SIGTERM,
# then SIGKILL after 15 s. Leaves DIR in place (the caller removes it).
# Usage: scripts/ceph-stop.sh DIR
DIR=${1:?usage: $0 DIR}
[ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd)
pids=()
for p in "$DIR"/run/*.pid; do
  [ -f "$p" ] || continue
  pid=$(cat "$p")
  # Only our daemons: the pid must still run a ceph program with this DIR's config.
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR/ceph.conf"; then pids+=("$pid"); fi
done
[ ${#pids[@]} -eq 0 ] && { echo "ceph-stop.sh: nothing to stop in $DIR"; exit 0; }
kill "${pids[@]}" 2>/dev/null || true
for _ in $(seq 1 75); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.2
done
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -9 "$pid"; done
echo "ceph-stop.sh: stopped pids ${pids[*]}"
