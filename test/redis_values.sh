#!/usr/bin/env bash
# test/redis_values.sh: whatever sits in Redis under an mlcache key, a read
# returns the right value: a foreign string, a truncated envelope, an older
# format version, a flipped byte (bad checksum), another Redis type, and
# FLUSHALL are each a miss, and the next fill overwrites the bad value.
# Run under test/harness.sh; exits non-zero on failure.
set -euo pipefail
db=mlcache_values
psql() { command psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$db" "$@"; }
rcli() { redis-cli -s "$MLCACHE_REDIS_SOCKET" "$@"; }
fail() { echo "redis_values: $*" >&2; exit 1; }

command psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -c 'CREATE EXTENSION mlcache'
rkey="mlcache:$db:val:k"
query="SELECT 42"
read_level() { psql -c "SELECT mlcache.get('val:k', '$query', 0), mlcache.last_level()"; }
counter() { psql -c "SELECT value FROM mlcache.counters() WHERE counter = '$1'"; }

# case NAME REDIS-COMMAND...: fill the key, damage it with the command, then
# expect one computed read (the right value) and an L2 hit after it.
case_() {
	local name=$1 got
	shift
	psql -c "SELECT mlcache.invalidate('val:k')" >/dev/null
	got=$(read_level)
	[[ $got == "42|compute" ]] || fail "$name: first fill gave '$got'"
	[[ $(read_level) == "42|l2" ]] || fail "$name: the filled value is not in Redis"
	rcli "$@" >/dev/null
	got=$(read_level)
	[[ $got == "42|compute" ]] || fail "$name: read '$got', expected a computed 42"
	got=$(read_level)
	[[ $got == "42|l2" ]] || fail "$name: the bad value was not overwritten (read '$got')"
	echo "redis_values: $name: a miss, then overwritten"
}

decode0=$(counter decode_failures)
errors0=$(counter redis_errors)
case_ "foreign string" SET "$rkey" "not an mlcache value"
case_ "truncated envelope" EVAL "redis.call('SET', KEYS[1], string.sub(redis.call('GET', KEYS[1]), 1, 50))" 1 "$rkey"
case_ "older format version" EVAL "local v = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], string.sub(v, 1, 3) .. '\\0' .. string.sub(v, 5))" 1 "$rkey"
case_ "bad checksum" EVAL "local v = redis.call('GET', KEYS[1]) local i = #v - 6 redis.call('SET', KEYS[1], string.sub(v, 1, i - 1) .. string.char((string.byte(v, i) + 1) % 256) .. string.sub(v, i + 1))" 1 "$rkey"
case_ "empty string" SET "$rkey" ""
case_ "another Redis type" EVAL "redis.call('DEL', KEYS[1]) redis.call('LPUSH', KEYS[1], 'x')" 1 "$rkey"
case_ "FLUSHALL" FLUSHALL
(($(counter decode_failures) >= decode0 + 6)) || fail "decode_failures did not count the bad values"
(($(counter redis_errors) == errors0)) || fail "bad values were counted as Redis errors"
echo "redis_values: every damaged value was a miss"

# clean_orphans() removes values no read can use, and keeps current ones.
rcli SET "mlcache:$db:orphan:junk" "not an envelope" >/dev/null
[[ $(read_level) == "42|l2" ]] || psql -c "SELECT mlcache.get('val:k', '$query', 0)" >/dev/null
removed=$(psql -c 'SELECT mlcache.clean_orphans()')
((removed >= 1)) || fail "clean_orphans removed $removed keys"
[[ $(rcli EXISTS "mlcache:$db:orphan:junk") == 0 ]] || fail "the foreign value is still there"
[[ $(read_level) == "42|l2" ]] || fail "clean_orphans removed a current value"
echo "redis_values: clean_orphans removed the foreign value and kept the current one"

# Databases whose names make one prefix of the other ("x" and "x:y"): each
# keeps its own namespace, and one's patterns and clean-ups never reach the
# other's keys.
db2="$db:y"
command psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db2\"" -c "CREATE DATABASE \"$db2\""
psql2() { command psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$db2" "$@"; }
psql2 -c 'CREATE EXTENSION mlcache'
psql2 -c "SELECT mlcache.get('k', 'SELECT 7', 0)" >/dev/null
psql -c "SELECT mlcache.get('y:k', 'SELECT 8', 0)" >/dev/null
[[ $(rcli EXISTS "mlcache:$db%3Ay:k") == 1 ]] || fail "the second database's key is not under its escaped prefix"
[[ $(rcli EXISTS "mlcache:$db:y:k") == 1 ]] || fail "the first database's key y:k is not in Redis"
psql -c "SELECT mlcache.invalidate_pattern('*')" -c "SELECT mlcache.clear()" >/dev/null
psql -c 'SELECT mlcache.clean_orphans()' >/dev/null
for ((i = 0; i < 50; i++)); do   # bounded: let the worker's clean-up run
	[[ $(rcli EXISTS "mlcache:$db:y:k") == 0 ]] && break
	sleep 0.1
done
[[ $(rcli EXISTS "mlcache:$db:y:k") == 0 ]] || fail "invalidate_pattern('*') left the first database's key in Redis"
got=$(psql2 -c "SELECT mlcache.get('k', 'SELECT 7', 0), mlcache.last_level()")
[[ $got == "7|l2" ]] || fail "the first database's pattern and clean-up reached the second's key (read '$got')"
command psql -X -q -d postgres -c "DROP DATABASE \"$db2\""
echo "redis_values: databases \"$db\" and \"$db2\" keep apart"
