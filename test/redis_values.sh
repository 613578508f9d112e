#!/usr/bin/env bash
# test/redis_values.sh: whatever sits in Redis under an mlcache key, a read
# returns the right value: a foreign string, a truncated envelope, an older
# format version, a flipped byte (wrong MAC), another Redis type, and
# FLUSHALL are each a miss, and the next fill overwrites the bad value.
# Forged values (test/forge_value.py): a well-formed envelope with another
# value and the old MAC is a miss (and, signed with the cluster secret, would
# have been served: only the MAC stops it); signed envelopes with bodies that
# are not valid jsonb are misses and crash nothing.  Then the Redis ACL user
# (mlcache.redis_username), the numeric-only mlcache.redis_host, and the
# cluster secret file: created mode 0600, never logged; a corrupt or
# world-readable one turns L2 off; a removed one is replaced.
# Run under test/harness.sh; exits non-zero on failure.
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
db=mlcache_values
psql() { psql_db "$db" "$@"; }
fail() { echo "redis_values: $*" >&2; exit 1; }

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache'
ns=$(mlcache_ns "$db")
rkey="${ns}val:k"
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
case_ "wrong MAC" EVAL "local v = redis.call('GET', KEYS[1]) local i = #v - 6 redis.call('SET', KEYS[1], string.sub(v, 1, i - 1) .. string.char((string.byte(v, i) + 1) % 256) .. string.sub(v, i + 1))" 1 "$rkey"
case_ "empty string" SET "$rkey" ""
case_ "another Redis type" EVAL "redis.call('DEL', KEYS[1]) redis.call('LPUSH', KEYS[1], 'x')" 1 "$rkey"
case_ "FLUSHALL" FLUSHALL
(($(counter decode_failures) >= decode0 + 6)) || fail "decode_failures did not count the bad values"
(($(counter redis_errors) == errors0)) || fail "bad values were counted as Redis errors"
echo "redis_values: every damaged value was a miss"

# clean_orphans() removes values no read can use, and keeps current ones.
rcli SET "${ns}orphan:junk" "not an envelope" >/dev/null
[[ $(read_level) == "42|l2" ]] || psql -c "SELECT mlcache.get('val:k', '$query', 0)" >/dev/null
removed=$(psql -c 'SELECT mlcache.clean_orphans()')
((removed >= 1)) || fail "clean_orphans removed $removed keys"
[[ $(rcli EXISTS "${ns}orphan:junk") == 0 ]] || fail "the foreign value is still there"
[[ $(read_level) == "42|l2" ]] || fail "clean_orphans removed a current value"
echo "redis_values: clean_orphans removed the foreign value and kept the current one"

# Databases whose names make one prefix of the other ("x" and "x:y"): each
# keeps its own namespace, and one's patterns and clean-ups never reach the
# other's keys.
db2="$db:y"
fresh_db "$db2"
psql2() { psql_db "$db2" "$@"; }
psql2 -c 'CREATE EXTENSION mlcache'
ns2=$(mlcache_ns "$db2")
[[ $ns2 == "${ns%"$db:"}$db%3Ay:" ]] || fail "the second database's namespace is $ns2"
psql2 -c "SELECT mlcache.get('k', 'SELECT 7', 0)" >/dev/null
psql -c "SELECT mlcache.get('y:k', 'SELECT 8', 0)" >/dev/null
[[ $(rcli EXISTS "${ns2}k") == 1 ]] || fail "the second database's key is not under its escaped prefix"
[[ $(rcli EXISTS "${ns}y:k") == 1 ]] || fail "the first database's key y:k is not in Redis"
psql -c "SELECT mlcache.invalidate_pattern('*')" -c "SELECT mlcache.clear()" >/dev/null
psql -c 'SELECT mlcache.clean_orphans()' >/dev/null
gone() { [[ $(rcli EXISTS "$1") == 0 ]]; }
wait_for 5 gone "${ns}y:k" || true # let the worker's clean-up run
[[ $(rcli EXISTS "${ns}y:k") == 0 ]] || fail "invalidate_pattern('*') left the first database's key in Redis"
got=$(psql2 -c "SELECT mlcache.get('k', 'SELECT 7', 0), mlcache.last_level()")
[[ $got == "7|l2" ]] || fail "the first database's pattern and clean-up reached the second's key (read '$got')"
command psql -X -q -d postgres -c "DROP DATABASE \"$db2\""
echo "redis_values: databases \"$db\" and \"$db2\" keep apart"

# ---- values mlcache itself writes pass the jsonb validator ----
# Nested objects and arrays, more children than JB_OFFSET_STRIDE (32), keys of
# several lengths, numerics of every form, strings with multibyte characters,
# booleans, nulls, empty containers.
complex="SELECT jsonb_build_object('a', 1, 'bb', -2.5, 'ccc', 1e30::numeric, 'd', 0.000001,
	'e', 'é ü ✓', 'f', true, 'g', false, 'h', NULL::int, 'i', '[]'::jsonb, 'j', '{}'::jsonb,
	'k', (SELECT jsonb_agg(x) FROM generate_series(1, 40) x),
	'l', (SELECT jsonb_object_agg('key' || x, x * 1.5) FROM generate_series(1, 35) x),
	'm', jsonb_build_array(jsonb_build_array(jsonb_build_array('deep', 123456789012345678901234567890))))"
read_complex() { psql -c "SELECT md5(mlcache.get('val:complex', \$q\$$complex\$q\$, 0)::text), mlcache.last_level()"; }
want=$(psql -c "SELECT md5(($complex)::text)")
[[ $(read_complex) == "$want|compute" ]] || fail "the complex value was not computed right"
got=$(read_complex)
[[ $got == "$want|l2" ]] || fail "a complex value written by mlcache did not come back from Redis (read '$got')"
echo "redis_values: a complex value written by mlcache passes the validator"

# ---- forged values ----
forge() { /usr/bin/python3 "$here/forge_value.py" "$1" "$rkey"; }
# fill_then KIND: fill the key from scratch, then plant a forged value of KIND.
fill_then() {
	psql -c "SELECT mlcache.invalidate('val:k')" >/dev/null
	[[ $(read_level) == "42|compute" ]] || fail "$1: the first fill did not compute"
	[[ $(read_level) == "42|l2" ]] || fail "$1: the filled value is not in Redis"
	forge "$1"
}
decode0=$(counter decode_failures)
fill_then digit-badmac
got=$(read_level)
[[ $got == "42|compute" ]] || fail "a value with a wrong MAC was served: read '$got', expected a computed 42"
(($(counter decode_failures) == decode0 + 1)) || fail "the wrong MAC was not counted in decode_failures"
echo "redis_values: a well-formed envelope of 43 with the old MAC is a miss"
# The control: the same value signed with the cluster secret is served, so
# the MAC (and nothing else in the envelope) is what refused it above.
fill_then digit-signed
got=$(read_level)
[[ $got == "43|l2" ]] || fail "control: the signed forgery was not served (read '$got'): the test does not forge well"
psql -c "SELECT mlcache.invalidate('val:k')" >/dev/null
echo "redis_values: control: signed with the cluster secret, the same forgery is served"
for i in 0 1 2 3 4 5 6; do
	decode0=$(counter decode_failures)
	fill_then "garbage-$i"
	got=$(read_level)
	[[ $got == "42|compute" ]] || fail "garbage body $i with a valid MAC: read '$got', expected a computed 42"
	(($(counter decode_failures) == decode0 + 1)) || fail "garbage body $i was not counted in decode_failures"
	[[ $(read_level) == "42|l2" ]] || fail "garbage body $i was not overwritten"
done
echo "redis_values: signed envelopes with 7 kinds of invalid jsonb body are misses, and nothing crashed"

# ---- mlcache.redis_host takes no host names ----
err=$(psql -c "ALTER SYSTEM SET mlcache.redis_host = 'redis.example.com'" 2>&1) &&
	fail "mlcache.redis_host accepted a host name"
[[ $err == *'must be a numeric IPv4 or IPv6 address, or "localhost"'* && $err == *HINT* ]] ||
	fail "mlcache.redis_host refused a host name without the expected detail and hint: $err"
for h in localhost 10.1.2.3 ::1 fd00::12; do
	psql -c "ALTER SYSTEM SET mlcache.redis_host = '$h'" || fail "mlcache.redis_host refused '$h'"
done
psql -c "ALTER SYSTEM RESET mlcache.redis_host"
echo "redis_values: mlcache.redis_host takes numeric addresses and localhost, not host names"

# ---- a Redis ACL user ----
acl_user=mlc_test_user
# set_login USER PASSWORD: set both in postgresql.auto.conf, reload, and wait
# (bounded) until new sessions see them.
set_login() {
	psql -c "ALTER SYSTEM SET mlcache.redis_username = '$1'" \
		-c "ALTER SYSTEM SET mlcache.redis_password = '$2'" -c "SELECT pg_reload_conf()" >/dev/null
	wait_for 5 login_is "$1/$2" || fail "the new Redis login was not loaded"
}
login_is() { [[ $(psql -c "SELECT current_setting('mlcache.redis_username') || '/' || current_setting('mlcache.redis_password')") == "$1" ]]; }
# l2_back: wait (bounded: 30 s) until a fill reaches Redis again.
l2_back() { wait_for 30 l2_refilled; }
l2_refilled() {
	psql -c "SELECT mlcache.invalidate('val:k')" -c "SELECT mlcache.get('val:k', '$query', 0)" >/dev/null
	[[ $(read_level) == "42|l2" ]]
}
restore_login() {
	psql -c "ALTER SYSTEM RESET mlcache.redis_username" -c "ALTER SYSTEM RESET mlcache.redis_password" \
		-c "SELECT pg_reload_conf()" >/dev/null || true
	rcli ACL DELUSER "$acl_user" >/dev/null || true
}
on_exit restore_login
# Only what the README says mlcache needs: its keys, its channel, its commands.
rcli ACL SETUSER "$acl_user" on '>mlc-test-pw' '~mlcache:*' '&mlcache:*' \
	+get +set +eval +scan +unlink +publish +ping +info +pttl +select >/dev/null
# The control: AUTH with the password alone fails (the default user has none),
# so a working L2 below shows that mlcache sent AUTH user password.
[[ $(rcli AUTH mlc-test-pw 2>&1) == *ERR* ]] || fail "control: AUTH with only the password succeeded"
set_login "$acl_user" mlc-test-pw
l2_back || fail "no value went through Redis as ACL user $acl_user"
errors0=$(counter redis_errors)
psql -c "SELECT mlcache.invalidate('val:k')" >/dev/null
wait_for 5 gone "$rkey" || true # the worker's clean-up (EVAL, UNLINK)
[[ $(rcli EXISTS "$rkey") == 0 ]] || fail "the worker did not remove the invalidated key as ACL user $acl_user"
psql -c "SELECT mlcache.clean_orphans()" >/dev/null
[[ $(psql -c "SELECT mlcache.health()->'l2'->>'status' || ' ' || (l2_keys IS NOT NULL) || ' ' || (l2_used_memory IS NOT NULL) FROM mlcache.stats") == "ok true true" ]] ||
	fail "health() or mlcache.stats could not reach Redis as ACL user $acl_user"
(($(counter redis_errors) == errors0)) || fail "Redis refused a command to ACL user $acl_user"
echo "redis_values: with mlcache.redis_username set, values, clean-ups, health() and stats go through Redis as that ACL user"
errors0=$(counter redis_errors)
set_login "$acl_user" wrong-password
psql -c "SELECT mlcache.invalidate('val:k')" >/dev/null
out=$(psql -c "SELECT mlcache.get('val:k', '$query', 0), mlcache.last_level()" 2>&1) ||
	fail "a wrong Redis password made the query fail: $out"
[[ $out == *"42|compute"* ]] || fail "with a wrong Redis password the read gave '$out'"
[[ $out != *wrong-password* ]] || fail "the password appeared in a message: $out"
(($(counter redis_errors) > errors0)) || fail "the refused login was not counted in redis_errors"
echo "redis_values: a wrong Redis password gives a computed value, a counted Redis error, and no ERROR"
restore_login
on_exit_pop
wait_for 5 login_is / || true
l2_back || fail "Redis was not used again after the login was reset"

# ---- the cluster secret file ----
secret=$MLCACHE_PGDATA/mlcache.secret
log=$MLCACHE_PGDATA/server.log
state() { psql -c "SELECT breaker_state FROM mlcache.stats"; }
[[ -f $secret && $(stat -c %a "$secret") == 600 && $(stat -c %s "$secret") == 65 ]] ||
	fail "the secret file is not there with mode 600 and 65 bytes"
[[ $(stat -c %U "$secret") == $(stat -c %U "$MLCACHE_PGDATA/PG_VERSION") ]] ||
	fail "the secret file is not owned by the server's user"
hex=$(head -c 64 "$secret")
! grep -q "$hex" "$log" || fail "the secret appears in the server log"
# restart_with WHAT CMD...: stop the server, change the file with CMD, start
# it; logged is where the server log stood before the start.
restart_with() {
	local what=$1
	shift
	pg_stop
	"$@"
	logged=$(stat -c %s "$log")
	pg_start
	echo "redis_values: restarted with $what"
}
# A broken file must never outlive this test: on failure, remove it and restart.
repair() {
	local s
	s=$(state 2>/dev/null) || s=down
	[[ $s == disabled || $s == down ]] || return 0
	pg_stop && rm -f "$secret" && pg_start
}
on_exit repair
expect_disabled() {
	local what=$1 got
	[[ $(state) == disabled ]] || fail "$what: breaker_state is '$(state)', expected disabled"
	tail -c +$((logged + 1)) "$log" | grep -q 'WARNING:  mlcache cannot use its secret file' ||
		fail "$what: no WARNING in the server log"
	got=$(read_level)
	[[ $got == "42|compute" ]] || fail "$what: read '$got'"
	[[ $(read_level) == "42|compute" ]] || fail "$what: the second read was not computed"
	[[ $(rcli EXISTS "$rkey") == 0 ]] || fail "$what: a value was stored in Redis"
	[[ $(psql -c "SELECT mlcache.health()->'l2'->>'status'") == skipped ]] || fail "$what: health() does not say L2 is skipped"
	echo "redis_values: $what: L2 is off (reads computed, nothing stored, breaker_state disabled)"
}
rcli DEL "$rkey" >/dev/null
restart_with "a corrupt secret file" bash -c "printf 'not hex' >'$secret'"
expect_disabled "corrupt secret file"
restart_with "a valid secret file readable by every user" bash -c "printf '%064d\n' 0 >'$secret' && chmod 0644 '$secret'"
expect_disabled "world-readable secret file"
restart_with "the secret file removed" rm -f "$secret"
[[ -f $secret && $(stat -c %a "$secret") == 600 && $(head -c 64 "$secret") != "$hex" ]] ||
	fail "no new secret file was created"
[[ $(state) != disabled ]] || fail "L2 is still off with a new secret file"
l2_back || fail "L2 did not work with the new secret"
on_exit_pop
echo "redis_values: a removed secret file is replaced by a new secret, and L2 works again"
