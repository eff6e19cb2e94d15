#!/usr/bin/env bash
# Stop the Ceph daemons that scripts/rgw/start.sh started in RGW_BASE, and nothing else:
# a pid is killed only if its pid file is ours and its command line uses "-c $RGW_BASE/ceph.conf".
# SIGKILL on purpose: the memstore cluster is throwaway, and SIGTERM to rgw + osd together can hang
# radosgw ~120 s (its shutdown alarm). RGW_CLEAN=1 also removes RGW_BASE afterwards.
set -euo pipefail

[ -n "${RGW_BASE:-}" ] || { echo "rgw stop: set RGW_BASE" >&2; exit 1; }
[ -d "$RGW_BASE" ] || { echo "rgw stop: $RGW_BASE does not exist; nothing to stop" >&2; exit 0; }
BASE=$(cd "$RGW_BASE" && pwd -P)
D=$BASE/cluster
CONF=$BASE/ceph.conf
t0=$(date +%s%N)

alive() { # $1 = pid: exists and is not a zombie
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

pids=()
if [ -d "$D/run" ]; then
  # rgw first, then osd, then mon
  for f in "$D"/run/client.rgw.*.pid "$D"/run/osd.*.pid "$D"/run/mon.*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" \
       && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $CONF "; then
      kill -KILL "$pid" 2>/dev/null || true
      pids+=("$pid")
      echo "rgw stop: killed $(basename "$f" .pid) ($pid)" >&2
    fi
    rm -f "$f"
  done
fi
for pid in "${pids[@]}"; do
  for i in $(seq 100); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid"; then echo "rgw stop: pid $pid still alive after SIGKILL" >&2; exit 1; fi
done
rm -f "$D"/run/*.asok 2>/dev/null || true

if [ "${RGW_CLEAN:-0}" = 1 ]; then
  rm -rf "$BASE"
  echo "rgw stop: removed $BASE" >&2
fi
echo "rgw stop: done in $(( ($(date +%s%N) - t0) / 1000000 )) ms (${#pids[@]} processes)" >&2
