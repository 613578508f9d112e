#!/usr/bin/env bash
# test/standby.sh: on a hot standby mlcache reads around the cache (no
# commits happen there to bump generations) and never serves a value that
# could be older than its snapshot.  Builds a streaming standby of the test
# server with pg_basebackup.  Run under test/harness.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
db=mlcache_standby
standby=$MLCACHE_TMP/standby
fail() { echo "standby: $*" >&2; exit 1; }
primary() { psql_db "$db" "$@"; }
replica() { psql_db "$db" -p 55434 "$@"; }
read_k() { "$1" -c "SELECT mlcache.get('sb:sum', 'SELECT sum(v) FROM t'), mlcache.last_level()"; }
counter() { "$1" -c "SELECT value FROM mlcache.counters() WHERE counter = '$2'"; }

fresh_db "$db"
primary -c 'CREATE EXTENSION mlcache' -c 'CREATE TABLE t (v int)' -c 'INSERT INTO t VALUES (1)' \
	-c "SELECT mlcache.watch('t', ARRAY['sb:*'])" -c 'CHECKPOINT' >/dev/null
as_pg "$(pg_bin pg_basebackup)" -h "$MLCACHE_TMP" -p "$PGPORT" -U postgres \
	-D "$standby" -R -X stream -c fast
echo "port = 55434" | as_pg tee "$standby/mlcache_test.conf" >/dev/null
on_exit pg_stop "$standby"
pg_start "$standby"

[[ $(replica -c 'SELECT pg_is_in_recovery()') == t ]] || fail "the copy is not a standby"
b0=$(counter replica bypasses)
[[ $(read_k replica) == "1|compute" ]] || fail "first standby read"
[[ $(read_k replica) == "1|compute" ]] || fail "a standby read was answered by the cache"
(($(counter replica bypasses) == b0 + 2)) || fail "standby reads were not counted as bypasses"
got="$(read_k primary) $(read_k primary)"
[[ $got == "1|compute 1|l2" ]] || fail "primary reads: $got"

# A write on the primary reaches the standby's reads as soon as it is replayed.
primary -c 'UPDATE t SET v = 2' >/dev/null
replayed() { [[ $(replica -c 'SELECT sum(v) FROM t') == 2 ]]; }
wait_for 10 replayed || true
[[ $(read_k replica) == "2|compute" ]] || fail "the standby did not read the replayed value"
# Writes and watches are refused there, as any write is.
replica -c "SELECT mlcache.watch('t', ARRAY['x'])" >/dev/null 2>&1 && fail "watch() worked on a standby"
replica -c "SELECT mlcache.set('sb:other', '1')" >/dev/null || fail "set() failed on a standby"
[[ $(replica -c "SELECT mlcache.get('sb:other', 'SELECT 0'), mlcache.last_level()") == "0|compute" ]] ||
	fail "a set() on the standby was stored"
echo "standby: reads on a hot standby go around the cache and follow replay"
