#!/usr/bin/env bash
# test/redis_spin.sh: mlcache.redis_spin_us, polling for a Redis reply before
# sleeping on it.  With it on, L2 reads and writes give the same values as
# without (a small value, and one that arrives in many socket reads), and a
# Redis that is connected but never answers (SIGSTOP) costs a read no more
# than mlcache.redis_command_timeout after the polling: the read computes
# and the session goes on.  Run under test/harness.sh; exits non-zero on
# failure.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=mlcache_spin
fail() { echo "redis_spin: $*" >&2; exit 1; }
# Every session of this test polls for up to 200 us.
export PGOPTIONS='-c mlcache.redis_spin_us=200'
psql() { psql_db "$db" "$@"; }
psql_bin=$(command -v psql)

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache'
[[ $(psql -c 'SHOW mlcache.redis_spin_us') == 200 ]] || fail "PGOPTIONS did not set mlcache.redis_spin_us"

got=$(psql -c "SELECT mlcache.get('spin:k', 'SELECT 1', 0), mlcache.last_level()")
[[ $got == "1|compute" ]] || fail "first read gave '$got', expected '1|compute'"
got=$(psql -c "SELECT mlcache.get('spin:k', 'SELECT 1', 0), mlcache.last_level()")
[[ $got == "1|l2" ]] || fail "second read gave '$got', expected '1|l2'"

# 600 kB: the reply arrives in many reads after the first byte is seen.
big="SELECT mlcache.get('spin:big', 'SELECT repeat(''ab'', 300000)', 0)"
want=$(psql -c "SELECT md5(to_jsonb(repeat('ab', 300000))::text)")
for level in compute l2; do
	got=$(psql -c "SELECT md5(v::text), mlcache.last_level() FROM ($big) s(v)")
	[[ $got == "$want|$level" ]] || fail "600 kB read gave '$got', expected '$want|$level'"
done

# Redis connected but stopped: the read polls, then waits out the command
# timeout, opens the breaker and computes.  timeout(1) only bounds a hang.
redis_signal STOP
on_exit quiet redis_signal CONT
got=$(timeout 30 "$psql_bin" -X -q -t -A -d "$db" -c "SELECT mlcache.get('spin:k', 'SELECT 1', 0), mlcache.last_level()" 2>"$MLCACHE_TMP/spin.err") ||
	fail "a read with Redis stopped did not return (rc $?)"
[[ $got == "1|compute" ]] || fail "a read with Redis stopped gave '$got', expected '1|compute'"
grep -q WARNING "$MLCACHE_TMP/spin.err" || fail "no WARNING about Redis with it stopped: $(cat "$MLCACHE_TMP/spin.err")"
redis_signal CONT

# Redis back: once the breaker's retry interval has passed, L2 answers again.
l2_again() { [[ $(psql -c "SELECT mlcache.get('spin:k', 'SELECT 1', 0), mlcache.last_level()" 2>/dev/null) == "1|l2" ]]; }
wait_for 15 l2_again || fail "L2 did not answer again after Redis resumed"
echo "redis_spin: values read with polling match; a stopped Redis costs a read its command timeout"
