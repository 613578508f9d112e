#!/usr/bin/env bash
# test/crash_restart.sh: no stale value after a backend is killed (the
# server's crash restart gives shared memory a new epoch), and none after
# Redis is restarted from an RDB snapshot taken before a write.  The worker
# is restarted after the crash.  Run under test/harness.sh.
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=mlcache_crash
psql() { psql_db "$db" "$@"; }
fail() { echo "crash_restart: $*" >&2; exit 1; }
read_k() { psql -c "SELECT mlcache.get('crash:sum', 'SELECT sum(v) FROM t', 0), mlcache.last_level()"; }
worker_up() { [[ -n $(psql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'mlcache worker'") ]]; }

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache' -c 'CREATE TABLE t (v int)' -c 'INSERT INTO t VALUES (1)' \
	-c "SELECT mlcache.watch('t', ARRAY['crash:*'])" >/dev/null

# 1. A backend killed with SIGKILL: the postmaster restarts every process
#    and re-initialises shared memory, so generations start again from 0.
[[ $(read_k) == "1|compute" ]] || fail "first read"
[[ $(read_k) == "1|l2" ]] || fail "value not in Redis"
epoch_before=$(rcli --raw GET "$(mlcache_ns "$db")crash:sum" | head -c 16 | od -An -tx1 | tr -d ' \n')
# The test server runs with synchronous_commit = off: make the set-up durable
# before the crash, or the crash may take the watch with it.
psql -c 'CHECKPOINT'
command psql -X -q -d "$db" -c 'SELECT pg_sleep(60)' >/dev/null 2>&1 &
sleeper=$!
wait_for 10 quiet bash -c "[[ -n \$(command psql -X -t -A -d $db -c \"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND pid <> pg_backend_pid()\") ]]" ||
	fail "the sleeping backend did not start"
victim=$(psql -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND pid <> pg_backend_pid()")
kill -KILL "$victim"
wait "$sleeper" 2>/dev/null || true
wait_for 30 quiet psql -c 'SELECT 1' || fail "the server did not come back after the crash"
# The old Redis value is still there, written under the old epoch: a miss.
got=$(read_k)
[[ $got == "1|compute" ]] || fail "after the crash restart the first read was '$got', expected a compute"
wait_for 30 quiet worker_up || fail "the worker was not restarted after the crash"
echo "crash_restart: after a crash restart the old Redis value was not served, and the worker is back"
[[ $epoch_before != "" ]] || fail "could not read the envelope"

# 2. Redis restarted from an RDB snapshot taken before a write.
[[ $(read_k) == "1|l2" ]] || fail "value not refilled in Redis"
rcli SAVE >/dev/null
psql -c "UPDATE t SET v = 2" >/dev/null          # invalidates crash:sum at commit
got=$(read_k)
[[ $got == "2|compute" ]] || fail "read after the write: $got"
redis_kill
redis_start                               # loads the old snapshot: v = 1 is back
[[ $(rcli DBSIZE) -ge 1 ]] || fail "the snapshot was not loaded"
got=$(read_k)
[[ $got == "2|compute" ]] || fail "after Redis came back from an old snapshot the read was '$got'"
# The fill overwrites the old value; the breaker may skip Redis for a moment
# after the restart, so allow a few reads (every one must still be 2).
refilled() {
	got=$(read_k)
	[[ $got == 2\|* ]] || fail "a read gave '$got' after Redis came back"
	[[ $got == "2|l2" ]]
}
wait_for 5 refilled || true
[[ $got == "2|l2" ]] || fail "the old value was not overwritten"
echo "crash_restart: the old value restored from an RDB snapshot was not served"
