#!/usr/bin/env bash
# test/ha_sentinel.sh: mlcache behind Redis Sentinel.  A Redis master and one
# replica (both with a password) and three sentinels (with a password of
# their own), all on private loopback ports, and a PostgreSQL cluster of its
# own configured with mlcache.redis_sentinels.  Checks that:
#   - host names are refused in mlcache.redis_sentinels (22023);
#   - values go to the master the sentinels name, and health() shows it;
#   - across a SENTINEL FAILOVER, the concurrent stale-read checker
#     (test/coherence_check.py) reports 0 stale reads;
#   - after the failover, reads are L2 hits on the new master within a
#     bounded time, values are written there, and invalidations still work;
#   - a wrong sentinel password, or no sentinel at all, costs only misses:
#     no ERROR, and the password is in no message.
# Run under test/harness.sh; exits non-zero on failure.
set -euo pipefail
t0=$SECONDS
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
name=mlc_ha
m=56380 r=56381 sentinels=(56390 56391 56392)
pgport=55440
base=$MLCACHE_TMP/ha_sentinel
pgdir=$base/pg
db=mlcache_ha
fail() { echo "ha_sentinel: $*" >&2; exit 1; }
say() { echo "ha_sentinel: $*"; }
red() { REDISCLI_AUTH=redispw rport "$@"; }
sen() { REDISCLI_AUTH=sentpw rport "$@"; }
q() { psql_db "$db" -p "$pgport" "$@"; }
read_k() { q -c "SELECT mlcache.get('ha:$1', 'SELECT sum(v) FROM t', 0), mlcache.last_level()"; }
sentinel_field() { q -c "SELECT mlcache.health()->'l2'->'sentinel'->>'$1'"; }
master_port() { sen "${sentinels[0]}" SENTINEL get-master-addr-by-name "$name" | tail -n 1; }

rm -rf "$base"
mkdir -p "$base"

# ---- Redis: a master, a replica, three sentinels ----
REDISCLI_AUTH=redispw redis_start "$m" "$base/r$m" --requirepass redispw --masterauth redispw
on_exit redis_stop "$m" "$base/r$m"
REDISCLI_AUTH=redispw redis_start "$r" "$base/r$r" --requirepass redispw --masterauth redispw \
	--replicaof 127.0.0.1 "$m"
on_exit redis_stop "$r" "$base/r$r"
synced() { red "$r" INFO replication | grep -q '^master_link_status:up'; }
wait_for 20 synced || fail "the replica did not sync with the master"
for p in "${sentinels[@]}"; do
	REDISCLI_AUTH=sentpw sentinel_start "$p" "$base/s$p" "$name" "$m" \
		"sentinel auth-pass $name redispw
		requirepass sentpw
		sentinel sentinel-pass sentpw"
	on_exit redis_stop "$p" "$base/s$p"
done
# Each sentinel must know the other two and the replica before a failover can be agreed.
ready() {
	[[ $(sen "$1" SENTINEL ckquorum "$name" 2>/dev/null) == "OK 3 usable"* ]] &&
		[[ -n $(sen "$1" SENTINEL replicas "$name" 2>/dev/null) ]]
}
for p in "${sentinels[@]}"; do
	wait_for 40 ready "$p" || fail "sentinel $p did not see the other sentinels and the replica"
done
say "master $m, replica $r, sentinels ${sentinels[*]} (quorum 2) are up"

# ---- a PostgreSQL cluster that finds Redis through the sentinels ----
pg_init "$pgdir" "$pgport"
as_pg tee "$pgdir/mlcache_test.conf" >/dev/null <<EOF
mlcache.redis_sentinels = '127.0.0.1:${sentinels[0]}, 127.0.0.1:${sentinels[1]}, localhost:${sentinels[2]}'
mlcache.redis_master_name = '$name'
mlcache.redis_password = 'redispw'
mlcache.redis_sentinel_password = 'sentpw'
mlcache.redis_retry_interval = '200ms'
mlcache.redis_connect_timeout = '200ms'
mlcache.redis_command_timeout = '200ms'
EOF
on_exit pg_stop "$pgdir"
pg_start "$pgdir"
command psql -X -q -p "$pgport" -d postgres -c "CREATE DATABASE $db"
q -c 'CREATE EXTENSION mlcache' -c 'CREATE TABLE t (v int)' -c 'INSERT INTO t VALUES (1)' \
	-c "SELECT mlcache.watch('t', ARRAY['ha:*'])" >/dev/null
ns=$(mlcache_ns "$db" -p "$pgport")

out=$(q -c '\set VERBOSITY verbose' -c "ALTER SYSTEM SET mlcache.redis_sentinels = 'sentinel.example:26379'" 2>&1) &&
	fail "a host name was accepted in mlcache.redis_sentinels"
[[ $out == *22023* && $out == *"numeric host"* ]] || fail "a host name in redis_sentinels gave: $out"

[[ $(read_k a) == "1|compute" ]] || fail "first read"
[[ $(read_k a) == "1|l2" ]] || fail "second read was not an L2 hit"
[[ $(red "$m" EXISTS "${ns}ha:a") == 1 ]] || fail "the value is not on the master"
[[ $(sentinel_field master) == "127.0.0.1:$m" ]] || fail "health() names master $(sentinel_field master)"
[[ $(sentinel_field master_confirmed) == true ]] || fail "health() does not confirm the master"
say "values go to the master the sentinels name (127.0.0.1:$m), and health() shows it"

# ---- a failover while the stale-read checker runs ----
PGPORT=$pgport timeout 120 /usr/bin/python3 "$here/coherence_check.py" --seconds 16 \
	--dbname mlcache_ha_check >"$base/check.out" 2>&1 &
chk=$!
on_exit quiet kill "$chk"
wait_for 60 grep -q '^coherence check: [0-9]' "$base/check.out" || fail "the checker did not start"
sleep 3 # let the checker fill L2 on the first master
[[ $(sen "${sentinels[0]}" SENTINEL FAILOVER "$name") == OK ]] || fail "SENTINEL FAILOVER was refused"
switched() { [[ $(master_port) == "$r" ]]; }
wait_for 30 switched || fail "the sentinels did not promote $r"
say "SENTINEL FAILOVER: the sentinels now name 127.0.0.1:$r"
rc=0
wait "$chk" || rc=$?
on_exit_pop
sed 's/^/  /' "$base/check.out"
((rc == 0)) || fail "the coherence checker failed across the failover (exit $rc)"
grep -q '^coherence check: passed (0 stale reads' "$base/check.out" || fail "the checker did not pass"

# ---- after the failover: L2 hits on the new master, within a bound ----
# The sentinels demote the old master a moment after promoting the new one;
# until then a backend may still (harmlessly) use the old one.
demoted() { [[ $(red "$m" ROLE | head -n 1) == slave ]]; }
wait_for 30 demoted || fail "the sentinels did not turn 127.0.0.1:$m into a replica"
start=$SECONDS
l2_back() { read_k b >/dev/null && [[ $(read_k b) == "1|l2" ]]; }
wait_for 30 l2_back || fail "no L2 hit within 30 s of the failover"
say "reads were L2 hits again $((SECONDS - start)) s after the failover finished"
[[ $(red "$r" ROLE | head -n 1) == master ]] || fail "127.0.0.1:$r is not the master"
[[ $(red "$r" EXISTS "${ns}ha:b") == 1 ]] || fail "the value was not written on the new master"
[[ $(sentinel_field master) == "127.0.0.1:$r" ]] || fail "health() names master $(sentinel_field master)"
(($(sentinel_field master_changes) >= 1)) || fail "health() counts no master change"
[[ -n $(sentinel_field master_changed_at) ]] || fail "health() has no master_changed_at"
# Invalidation still works, and the new value is stored on the new master.
q -c 'UPDATE t SET v = 2' >/dev/null
[[ $(read_k b) == "2|compute" ]] || fail "the write did not invalidate ha:b"
[[ $(read_k b) == "2|l2" ]] || fail "the new value is not served from L2"
[[ $(red "$r" GET "${ns}ha:b" | head -c 3) == MLC ]] || fail "the new value is not on the new master"
say "values are written on the new master, and invalidations reach them"

# ---- a wrong sentinel password, then no sentinel: only misses ----
errors() { q -c "SELECT value FROM mlcache.counters() WHERE counter = 'redis_errors'"; }
errs0=$(errors)
q -c "ALTER SYSTEM SET mlcache.redis_sentinel_password = 'not-the-pw'" -c 'SELECT pg_reload_conf()' >/dev/null
refused() {
	local out
	out=$(read_k c 2>&1)
	[[ $out != *not-the-pw* ]] || fail "the sentinel password appeared in a message: $out"
	[[ $out == *"2|compute"* ]] && (($(errors) > errs0))
}
wait_for 10 refused || fail "a wrong sentinel password did not make reads compute with a counted error"
# PostgreSQL's own "parameter ... changed" LOG line on reload shows any setting; mlcache's lines never do.
! grep -v 'parameter "mlcache.redis_sentinel_password" changed' "$pgdir/server.log" | grep -n 'not-the-pw' >&2 ||
	fail "the sentinel password appears in an mlcache message in the server log"
q -c 'ALTER SYSTEM RESET mlcache.redis_sentinel_password' -c 'SELECT pg_reload_conf()' >/dev/null
accepted() { read_k d >/dev/null && [[ $(read_k d) == "2|l2" ]]; }
wait_for 10 accepted || fail "L2 did not come back with the right sentinel password"
say "a wrong sentinel password gives computed values and a counted error, and is in no message"
# The master's address is kept in shared memory: L2 works while the sentinels are down ...
for p in "${sentinels[@]}"; do redis_stop "$p" "$base/s$p"; done
[[ $(read_k d) == "2|l2" ]] || fail "L2 stopped when the sentinels did"
# ... until the master fails too: then reads compute, without an ERROR.
redis_stop "$r" "$base/r$r"
[[ $(read_k e) == "2|compute" ]] || fail "a read with the master and every sentinel down"
[[ $(read_k e) == "2|compute" ]] || fail "a second read with the master and every sentinel down"
[[ $(q -c "SELECT mlcache.health()->'l2'->>'status'") != ok ]] || fail "health() says L2 is ok"
say "with the sentinels down L2 keeps its master; with the master down too, reads compute"
say "done in $((SECONDS - t0)) s"
