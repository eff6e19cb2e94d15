#!/usr/bin/env bash
# Start a throwaway Ceph cluster on 127.0.0.1 only: 1 mon, 1 memstore OSD, 1 radosgw with S3 + STS.
# It is the end-to-end target for credvend: real AssumeRole, real enforcement of inline session policies.
#
# Usage:  RGW_BASE=$(mktemp -d) scripts/rgw/start.sh      (tools: scripts/rgw/install.sh)
#         set -a; . "$RGW_BASE/rgw.env"; set +a             (then use RGW_ENDPOINT, RGW_ROLE_ARN, ...)
#         RGW_BASE=... scripts/rgw/stop.sh                  (RGW_CLEAN=1 also removes RGW_BASE)
#
# Environment (all optional except RGW_BASE):
#   RGW_BASE            scratch folder (created if missing); holds ceph.conf, cluster/, rgw.env
#   RGW_PORT            S3/STS HTTP port                      (default: a free port)
#   RGW_MON_V2_PORT     mon msgr2 port                         (default: a free port)
#   RGW_MON_V1_PORT     mon msgr1 port                         (default: a free port)
#   RGW_OSD_PORT_MIN    OSD bind range, 32 ports from here     (default: a free range)
#   RGW_OSD_PORT_MAX    end of that range                      (default: RGW_OSD_PORT_MIN+31)
#   RGW_ACCESS_KEY / RGW_SECRET_KEY (or AK / SK)   static keys of the user that assumes the role
#   RGW_TENANT          Ceph tenant = account id in ARNs       (default 123456789012)
#   RGW_USER            user name                              (default tester)
#   RGW_ROLE            role name                              (default VendRole)
#   RGW_BUCKETS         buckets to create, comma or space separated (default vend-bucket)
#
# Writes $RGW_BASE/rgw.env (KEY=value lines, no quotes, no spaces: fit for `. file` and dotenv) and
# prints it on stdout; progress goes to stderr. Idempotent: if this RGW_BASE's cluster is already up
# with the same explicit settings, it only makes sure the buckets exist and prints the env again;
# otherwise it stops its own leftovers, wipes RGW_BASE/cluster and starts afresh (memstore: data
# does not survive a stop). On failure it exits non-zero and prints the tail of the logs.
# rgw.env keys: RGW_ENDPOINT RGW_REGION RGW_ACCESS_KEY RGW_SECRET_KEY RGW_ROLE_ARN RGW_USER_ARN RGW_TENANT
#   RGW_BUCKETS (comma separated) RGW_PORT RGW_MON_V2_PORT RGW_MON_V1_PORT RGW_OSD_PORT_MIN RGW_OSD_PORT_MAX
#   RGW_CONF RGW_BASE
#
# Measured on RGW 16.2.15: the buckets belong to the tenant (radosgw-admin calls them
# 123456789012/vend-bucket), yet the tenant user and its role sessions reach them path-style as
# /vend-bucket, and a session policy names them arn:aws:s3:::vend-bucket/KEY, as on AWS
# (arn:aws:s3::123456789012:vend-bucket/KEY also works; another account id there is MalformedPolicyDocument).
# S3 requests signed with curl --aws-sigv4 need an explicit x-amz-content-sha256 header, else 403.
set -euo pipefail

die() { echo "rgw start: $*" >&2; exit 1; }
log() { echo "rgw start: $*" >&2; }

[ -n "${RGW_BASE:-}" ] || die "set RGW_BASE to a scratch folder (e.g. RGW_BASE=\$(mktemp -d))"
mkdir -p "$RGW_BASE"
BASE=$(cd "$RGW_BASE" && pwd -P)
case "$BASE" in *[[:space:]]*) die "RGW_BASE must not contain spaces: $BASE";; esac
D=$BASE/cluster
CONF=$BASE/ceph.conf
ENVF=$BASE/rgw.env
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
NAME=client.rgw.credvend
REGION=us-east-1

# unix socket paths are limited to 107 bytes
[ ${#D} -le 70 ] || die "RGW_BASE path too long for Ceph's admin sockets (${#D} > 70 chars): $BASE"

for t in radosgw ceph-mon ceph-osd radosgw-admin monmaptool ceph curl flock; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found; run scripts/rgw/install.sh"
done

AK=${RGW_ACCESS_KEY:-${AK:-TESTERACCESSKEY00001}}
SK=${RGW_SECRET_KEY:-${SK:-testersecretkey0000000000000000000000001}}
TENANT=${RGW_TENANT:-123456789012}
USER_NAME=${RGW_USER:-tester}
ROLE=${RGW_ROLE:-VendRole}
BUCKETS_IN=${RGW_BUCKETS:-vend-bucket}
BUCKETS=$(echo "$BUCKETS_IN" | tr ', ' '\n\n' | sed '/^$/d' | paste -sd, -)
[ -n "$BUCKETS" ] || die "RGW_BUCKETS is empty"

[[ $AK =~ ^[A-Za-z0-9]{1,128}$ ]] || die "access key must be alphanumeric"
[[ $SK =~ ^[A-Za-z0-9/+]{1,128}$ ]] || die "secret key may hold only [A-Za-z0-9/+]"
[[ $TENANT =~ ^[0-9]{12}$ ]] || die "RGW_TENANT must be 12 digits (an AWS-shaped account id)"
[[ $USER_NAME =~ ^[A-Za-z0-9_+=,.@-]{1,64}$ ]] || die "bad RGW_USER"
[[ $ROLE =~ ^[A-Za-z0-9_+=,.@-]{1,64}$ ]] || die "bad RGW_ROLE"
for b in ${BUCKETS//,/ }; do
  [[ $b =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "bad bucket name: $b"
done
for v in RGW_PORT RGW_MON_V2_PORT RGW_MON_V1_PORT RGW_OSD_PORT_MIN RGW_OSD_PORT_MAX; do
  val=${!v:-}
  [ -z "$val" ] || { [[ $val =~ ^[0-9]+$ ]] && [ "$val" -ge 1024 ] && [ "$val" -le 65535 ]; } \
    || die "$v must be a port number 1024..65535"
done

# fd 9 holds the lock; the daemons are started with 9>&- so they do not keep it
exec 9>"$BASE/.lock"
flock -w 300 9 || die "another start/stop holds $BASE/.lock"

t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

# A process is "ours" if its pid file names a live (non-zombie) process whose command line uses our conf.
ours() { # $1 = pid file
  local pid st
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-c $CONF "
}

# The explicit settings; a running cluster is reused only if they did not change.
WANT=$(printf '%s\n' "port=${RGW_PORT:-}" "v2=${RGW_MON_V2_PORT:-}" "v1=${RGW_MON_V1_PORT:-}" \
  "osdmin=${RGW_OSD_PORT_MIN:-}" "osdmax=${RGW_OSD_PORT_MAX:-}" "ak=$AK" "sk=$SK" "tenant=$TENANT" \
  "user=$USER_NAME" "role=$ROLE")

curl_s3() { # curl_s3 METHOD PATH [extra curl args...]: SigV4-signed as the user; prints the HTTP status
  local method=$1 path=$2; shift 2
  curl -sS -o "$D/log/curl.out" -w '%{http_code}' --max-time 30 -X "$method" \
    --aws-sigv4 "aws:amz:$REGION:s3" --user "$AK:$SK" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "$@" "http://127.0.0.1:$RGW_PORT$path"
}

make_buckets() {
  local b code
  for b in ${BUCKETS//,/ }; do
    code=$(curl_s3 PUT "/$b") || code=000
    case "$code" in
      200) ;;
      409) grep -q BucketAlreadyOwnedByYou "$D/log/curl.out" 2>/dev/null || \
             { cat "$D/log/curl.out" >&2; die "bucket $b: HTTP 409 (exists, owned by someone else?)"; } ;;
      *) cat "$D/log/curl.out" >&2 2>/dev/null || true; die "creating bucket $b: HTTP $code" ;;
    esac
    code=$(curl_s3 HEAD "/$b" -I) || code=000
    [ "$code" = 200 ] || die "bucket $b not reachable by the user after create: HTTP $code"
  done
}

write_env() {
  cat > "$ENVF.tmp" <<EOF
RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT
RGW_REGION=$REGION
RGW_ACCESS_KEY=$AK
RGW_SECRET_KEY=$SK
RGW_ROLE_ARN=arn:aws:iam::$TENANT:role/$ROLE
RGW_USER_ARN=arn:aws:iam::$TENANT:user/$USER_NAME
RGW_TENANT=$TENANT
RGW_BUCKETS=$BUCKETS
RGW_PORT=$RGW_PORT
RGW_MON_V2_PORT=$RGW_MON_V2_PORT
RGW_MON_V1_PORT=$RGW_MON_V1_PORT
RGW_OSD_PORT_MIN=$RGW_OSD_PORT_MIN
RGW_OSD_PORT_MAX=$RGW_OSD_PORT_MAX
RGW_CONF=$CONF
RGW_BASE=$BASE
EOF
  mv "$ENVF.tmp" "$ENVF"
  cat "$ENVF"
}

# ---- already running with the same settings? ----
if [ -f "$ENVF" ] && [ -f "$BASE/.want" ] && [ "$(cat "$BASE/.want")" = "$WANT" ] \
   && ours "$D/run/$NAME.pid" && ours "$D/run/osd.0.pid" && ours "$D/run/mon.a.pid"; then
  RGW_PORT=$(sed -n 's/^RGW_PORT=//p' "$ENVF")
  if curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$RGW_PORT/"; then
    for v in RGW_MON_V2_PORT RGW_MON_V1_PORT RGW_OSD_PORT_MIN RGW_OSD_PORT_MAX; do
      printf -v "$v" '%s' "$(sed -n "s/^$v=//p" "$ENVF")"
    done
    make_buckets
    log "already running ($(ms) ms)"
    write_env
    exit 0
  fi
fi

# ---- fresh start ----
RGW_BASE=$BASE RGW_CLEAN=0 "$HERE/stop.sh" >&2 || true
rm -rf "$D" "$ENVF" "$BASE/.want"
mkdir -p "$D"/{mon.a,osd.0,run,log}

on_fail() {
  local rc=$? f
  trap - ERR EXIT
  [ $rc -eq 0 ] && return 0
  echo "rgw start: FAILED (exit $rc) after $(ms) ms; log tails from $D/log:" >&2
  for f in "$D"/log/*; do
    [ -s "$f" ] || continue
    echo "----- $f" >&2; tail -n 12 "$f" >&2
  done
  RGW_BASE=$BASE RGW_CLEAN=0 "$HERE/stop.sh" >&2 || true
  exit $rc
}
trap on_fail EXIT
trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP

# ---- ports: explicit ones win; the rest come from one free block in 20000-32767 ----
# (below Linux's ephemeral range, so outgoing connections cannot take them meanwhile)
used_ports() {
  local h
  for h in $(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk 'NR > 0 && $2 ~ /:/ { n = split($2, a, ":"); print a[n] }'); do
    echo $((16#$h))
  done
  printf '%s\n' ${RGW_PORT:-} ${RGW_MON_V2_PORT:-} ${RGW_MON_V1_PORT:-}
  if [ -n "${RGW_OSD_PORT_MIN:-}" ]; then seq "$RGW_OSD_PORT_MIN" "${RGW_OSD_PORT_MAX:-$((RGW_OSD_PORT_MIN + 31))}"; fi
}
port_free() { # $1 = port; also refuse anything that accepts a connection (e.g. from another netns view)
  ! grep -qx "$1" "$D/run/used" && ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
used_ports | sort -un > "$D/run/used"
if [ -z "${RGW_PORT:-}" ] || [ -z "${RGW_MON_V2_PORT:-}" ] || [ -z "${RGW_MON_V1_PORT:-}" ] || [ -z "${RGW_OSD_PORT_MIN:-}" ]; then
  found=
  for try in $(seq 200); do
    blk=$(( 20000 + (RANDOM % 395) * 32 ))   # 32-port block: +0 rgw, +1 mon v2, +2 mon v1; next block: OSD
    ok=1
    for p in $(seq "$blk" $((blk + 63))); do port_free "$p" || { ok=; break; }; done
    [ -n "$ok" ] && { found=$blk; break; }
  done
  [ -n "$found" ] || die "no free port block found"
  RGW_PORT=${RGW_PORT:-$found}
  RGW_MON_V2_PORT=${RGW_MON_V2_PORT:-$((found + 1))}
  RGW_MON_V1_PORT=${RGW_MON_V1_PORT:-$((found + 2))}
  RGW_OSD_PORT_MIN=${RGW_OSD_PORT_MIN:-$((found + 32))}
fi
RGW_OSD_PORT_MAX=${RGW_OSD_PORT_MAX:-$((RGW_OSD_PORT_MIN + 31))}
[ "$RGW_OSD_PORT_MAX" -ge $((RGW_OSD_PORT_MIN + 15)) ] || die "OSD port range needs at least 16 ports"
for p in "$RGW_PORT" "$RGW_MON_V2_PORT" "$RGW_MON_V1_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is already in use"; fi
  if [ "$p" -ge "$RGW_OSD_PORT_MIN" ] && [ "$p" -le "$RGW_OSD_PORT_MAX" ]; then die "port $p lies in the OSD range"; fi
done
[ "$RGW_MON_V2_PORT" != "$RGW_MON_V1_PORT" ] && [ "$RGW_PORT" != "$RGW_MON_V2_PORT" ] && [ "$RGW_PORT" != "$RGW_MON_V1_PORT" ] \
  || die "RGW_PORT, RGW_MON_V2_PORT and RGW_MON_V1_PORT must differ"
log "ports: rgw $RGW_PORT, mon v2 $RGW_MON_V2_PORT v1 $RGW_MON_V1_PORT, osd $RGW_OSD_PORT_MIN-$RGW_OSD_PORT_MAX"

FSID=$(cat /proc/sys/kernel/random/uuid)
MON_ADDR="[v2:127.0.0.1:$RGW_MON_V2_PORT,v1:127.0.0.1:$RGW_MON_V1_PORT]"
# Gotchas kept from measurement: with auth none, radosgw hangs unless "ms mon client mode = crc secure";
# "paxos propose interval = 0.1" cuts start-up from ~13 s to ~2 s; beast needs tcp_nodelay=1 or
# AssumeRole takes ~44 ms instead of ~2 ms; memstore keeps everything in RAM (lost on stop).
cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = $MON_ADDR
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon data = $D/\$name
osd data = $D/\$name
keyring = $D/\$name.keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon data avail crit = 0
paxos propose interval = 0.1
ms bind port min = $RGW_OSD_PORT_MIN
ms bind port max = $RGW_OSD_PORT_MAX
ms mon client mode = crc secure
[$NAME]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $D/$NAME
rgw s3 auth use sts = true
rgw sts key = abcdefghijklmnop
rgw enable usage log = false
EOF
export CEPH_CONF=$CONF
mkdir -p "$D/$NAME"

monmaptool --create --clobber --fsid "$FSID" --addv a "$MON_ADDR" "$D/monmap" >/dev/null
ceph-mon -c "$CONF" -i a --mkfs --monmap "$D/monmap" 2>>"$D/log/mon.stderr"
ceph-mon -c "$CONF" -i a 2>>"$D/log/mon.stderr" 9>&-
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(timeout 60 ceph -c "$CONF" osd new "$OSD_UUID" 2>>"$D/log/ceph-cli.stderr")
[ "$OSD_ID" = 0 ] || die "expected OSD id 0, got '$OSD_ID'"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/osd.stderr" 2>&1
ceph-osd -c "$CONF" -i 0 2>>"$D/log/osd.stderr" 9>&-
up=
for i in $(seq 120); do
  if timeout 10 ceph -c "$CONF" osd stat -f json 2>>"$D/log/ceph-cli.stderr" | grep -q '"num_up_osds":1'; then up=1; break; fi
  sleep 0.5
done
[ -n "$up" ] || die "OSD did not come up"
log "mon + osd up after $(ms) ms"

radosgw -c "$CONF" -n "$NAME" 2>>"$D/log/rgw.stderr" 9>&-
up=
for i in $(seq 240); do
  if curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/"; then up=1; break; fi
  ours "$D/run/$NAME.pid" || [ "$i" -lt 20 ] || die "radosgw exited"
  sleep 0.25
done
[ -n "$up" ] || die "radosgw did not answer on 127.0.0.1:$RGW_PORT"
log "rgw answering after $(ms) ms"

# ---- provisioning in tenant $TENANT, so ARNs are AWS-shaped: arn:aws:iam::$TENANT:role/$ROLE ----
ADM=(radosgw-admin -c "$CONF")
"${ADM[@]}" user create --tenant="$TENANT" --uid="$USER_NAME" --display-name="$USER_NAME" \
  --access-key="$AK" --secret-key="$SK" >/dev/null 2>>"$D/log/admin.stderr"
"${ADM[@]}" caps add --tenant="$TENANT" --uid="$USER_NAME" --caps="roles=*" >/dev/null 2>>"$D/log/admin.stderr"
TRUST='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::'$TENANT':user/'$USER_NAME'"]},"Action":["sts:AssumeRole"]}]}'
"${ADM[@]}" role create --tenant="$TENANT" --role-name="$ROLE" --path=/ \
  --assume-role-policy-doc="$TRUST" >/dev/null 2>>"$D/log/admin.stderr"
"${ADM[@]}" role-policy put --tenant="$TENANT" --role-name="$ROLE" --policy-name=s3all \
  --policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}' \
  >/dev/null 2>>"$D/log/admin.stderr"
ARN=$("${ADM[@]}" role get --tenant="$TENANT" --role-name="$ROLE" 2>>"$D/log/admin.stderr" | sed -n 's/^ *"Arn": *"\([^"]*\)".*/\1/p')
[ "$ARN" = "arn:aws:iam::$TENANT:role/$ROLE" ] || die "unexpected role ARN '$ARN'"


# Buckets, created over S3 by the tenant user (path-style /NAME resolves inside the user's tenant).
make_buckets

echo "$WANT" > "$BASE/.want"
trap - EXIT
log "ready after $(ms) ms"
write_env
