#!/usr/bin/env bash
# test/late_inval.sh: once a committing transaction's invalidations are written to the WAL for hot
# standbys (at PRE_COMMIT, src/invalidate.c), no invalidation may be added to it: the late one is
# refused with SQLSTATE 25001, the transaction rolls back whole, and nothing of it is applied.
# Nothing in SQL runs after PRE_COMMIT, so a test-only library (test/modules/late_inval, built here,
# never installed) registers a commit callback that runs after mlcache's and calls
# mlcache.invalidate(late_inval.key) from it.  Checked on a server of its own (port 55452, preloading
# that library before mlcache), at wal_level replica and then minimal, where nothing is logged and a
# late invalidation is still applied.
# Run under test/harness.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
fail() { echo "late_inval: $*" >&2; exit 1; }
port=55452
dir=$MLCACHE_TMP/late_inval
build=$MLCACHE_TMP/late_inval_build
q() { psql_db postgres -p "$port" "$@"; }
# try SQL...: run statements in one session (psql -c each); prints stdout and stderr, verbose errors.
try() {
	local args=() s
	for s; do args+=(-c "$s"); done
	command psql -X -q -t -A -p "$port" -d postgres -v VERBOSITY=verbose "${args[@]}" 2>&1 || true
}
read_k() { q -c "SELECT mlcache.get('$1', 'SELECT count(*) FROM t'), mlcache.last_level()"; }

rm -rf "$build"
cp -r "$here/modules/late_inval" "$build"
make -s -C "$build" PG_CONFIG="${PG_CONFIG:-pg_config}" >/dev/null || fail "the test library did not build"
chmod -R a+rX "$build"
pg_init "$dir" "$port" "$build/late_inval.so,mlcache"
on_exit pg_stop "$dir"
pg_start "$dir"
q -c 'CREATE EXTENSION mlcache' -c 'CREATE TABLE t (v int)' -c "SELECT mlcache.watch('t', ARRAY['li:*'])" >/dev/null
[[ $(q -c 'SHOW wal_level') == replica ]] || fail "expected wal_level replica"

# 1. A transaction with a watched write: its record is written, then the late invalidation comes.
[[ "$(read_k li:a) $(read_k li:a)" == "0|compute 0|l2" ]] || fail "li:a was not cached: $(read_k li:a)"
w0=$(q -c "SELECT mlcache.health()->'standby'->>'records_written'")
out=$(try 'BEGIN' "SET LOCAL late_inval.key = 'li:late'" 'INSERT INTO t VALUES (1)' 'COMMIT')
[[ $out == *"ERROR:  25001: cannot add an mlcache invalidation after the transaction's invalidations were logged for standbys"* ]] ||
	fail "a late invalidation was not refused with 25001: $out"
[[ $(q -c 'SELECT count(*) FROM t') == 0 ]] || fail "the refused transaction's row was committed"
# The record was written (the refusal came after it) but the transaction aborted: the standby
# resolves it as aborted.  On this server nothing was bumped: li:a is still served from the cache.
(($(q -c "SELECT mlcache.health()->'standby'->>'records_written'") == w0 + 1)) ||
	fail "the transaction's invalidation record was not written before the refusal"
[[ $(read_k li:a) == "0|l2" ]] || fail "an aborted transaction's invalidation was applied: $(read_k li:a)"

# 2. A transaction with nothing pending is closed too: the late invalidation is refused alone.
out=$(try "SET late_inval.key = 'li:a'" "SELECT 1")
[[ $out == *"ERROR:  25001:"* ]] || fail "a late invalidation in a transaction without one was not refused: $out"
[[ $(read_k li:a) == "0|l2" ]] || fail "the refused invalidation was applied"

# 3. Without the late call the same transaction commits and invalidates.
q -c 'INSERT INTO t VALUES (1)' >/dev/null
[[ $(read_k li:a) == "1|compute" ]] || fail "a watched write did not invalidate"
echo "late_inval: 1-3. at wal_level replica a late invalidation is refused (25001) and its transaction rolls back whole"

# 4. wal_level minimal: nothing is logged for standbys, so the set is never closed, and a late
#    invalidation is applied at commit like any other.
printf '%s\n' "wal_level = minimal" "max_wal_senders = 0" | as_pg tee "$dir/mlcache_test.conf" >/dev/null
pg_restart "$dir"
got="$(read_k li:a) $(read_k li:a)"
[[ $got == "1|"*" 1|l2" ]] || fail "li:a was not cached after the restart: $got"
out=$(try "SET late_inval.key = 'li:a'" 'INSERT INTO t VALUES (1)')
[[ $out != *ERROR* ]] || fail "at wal_level minimal a late invalidation was refused: $out"
[[ $(q -c 'SELECT count(*) FROM t') == 2 ]] || fail "the row was not committed"
[[ $(read_k li:a) == "2|compute" ]] || fail "the late invalidation was not applied at wal_level minimal"
echo "late_inval: 4. at wal_level minimal (no standbys) a late invalidation is applied"
