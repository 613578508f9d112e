#!/usr/bin/env bash
# test/publish.sh: the worker's Redis clean-up after commit.  A subscriber on
# "<namespace>invalidations" receives every committed key and pattern (the
# keys of a message are newline-separated) and nothing from a rolled-back
# transaction; the invalidated keys are gone from Redis, more of them in one
# commit than one Lua call takes, and keys long enough to be stored under a
# SHA-256 name (built by the worker, or by the backend for keys too long for
# the worker's queue); commits within mlcache.hygiene_delay are published
# in one message, each key once, and a half-full queue ends that delay
# early.  Run under test/harness.sh; exits non-zero on failure.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=mlcache_publish
nkeys=600 # more than MLCACHE_L2_KEYS_PER_EVAL (512): two EVALs
psql() { psql_db "$db" "$@"; }
fail() { echo "publish: $*" >&2; exit 1; }
counter() { psql -c "SELECT value FROM mlcache.counters() WHERE counter = '$1'"; }

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache'
ns=$(mlcache_ns "$db")
out=$MLCACHE_TMP/publish.out
timeout 60 redis-cli -s "$MLCACHE_REDIS_SOCKET" --csv SUBSCRIBE "${ns}invalidations" >"$out" 2>&1 &
sub=$!
on_exit quiet kill "$sub"
wait_for 5 grep -q '^"subscribe"' "$out" || true
grep -q '^"subscribe"' "$out" || fail "redis-cli did not subscribe"

psql -c "SELECT count(mlcache.get('pub:k' || g, 'SELECT ' || g)) FROM generate_series(1, $nkeys) g" >/dev/null
stored=$(rcli --scan --pattern "${ns}pub:k*" | wc -l)
((stored == nkeys)) || fail "$stored of $nkeys keys reached Redis"
long1="pub:long:$(printf 'x%.0s' {1..300})"  # hashed name, built by the worker
long2="pub:long:$(printf 'y%.0s' {1..2000})" # too long for the queue: built by the backend
psql -c "SELECT mlcache.get('$long1', 'SELECT 1'), mlcache.get('$long2', 'SELECT 2')" >/dev/null
stored=$(rcli --scan --pattern "${ns}#*" | wc -l)
((stored == 2)) || fail "$stored of the 2 long keys reached Redis"
queued=$(counter hygiene_queued)
unlinked=$(counter redis_unlinked)
psql -c "BEGIN" -c "SELECT mlcache.invalidate('pub:rolled-back')" -c "ROLLBACK"
psql -c "BEGIN" \
	-c "SELECT count(mlcache.invalidate('pub:k' || g)) FROM generate_series(1, $nkeys) g" \
	-c "SELECT mlcache.invalidate_pattern('pub:p:*'), mlcache.invalidate_pattern('pub:a]b:*')" \
	-c "SELECT mlcache.invalidate('$long1'), mlcache.invalidate('$long2')" -c "COMMIT" >/dev/null
delivered() { (($(counter hygiene_done) + $(counter hygiene_dropped) >= queued + nkeys + 4)); }
wait_for 10 delivered || true
(($(counter hygiene_done) >= queued + nkeys + 4)) || fail "the worker did not deliver the commit"

left=$(rcli --scan --pattern "${ns}pub:k*" | wc -l)
((left == 0)) || fail "$left invalidated keys are still in Redis"
left=$(rcli --scan --pattern "${ns}#*" | wc -l)
((left == 0)) || fail "$left invalidated long keys are still in Redis"
((($(counter redis_unlinked) - unlinked) == nkeys + 2)) ||
	fail "redis_unlinked grew by $(($(counter redis_unlinked) - unlinked)), expected $((nkeys + 2))"

# Every message seen so far, split into its texts.
wait_for 5 grep -q "pub:p:\\*" "$out" || true # the PUBLISH follows the UNLINKs
texts=$(grep '^"message"' "$out" | sed -e 's/^"message","[^"]*","//' -e 's/"$//' -e 's/\\n/\n/g' -e 's/\\\\/\\/g')
messages=$(grep -c '^"message"' "$out" || true)
got=$(grep -c "^${ns}pub:k[0-9]*\$" <<<"$texts" || true)
((got == nkeys)) || fail "$got of $nkeys invalidated keys were published"
grep -qx "${ns}pub:p:\\*" <<<"$texts" || fail "the pattern ${ns}pub:p:* was not published"
# A glob character in the prefix is escaped: the pattern matches it literally.
grep -qxF "${ns}pub:a\\]b:*" <<<"$texts" || fail "the pattern ${ns}pub:a\\]b:* was not published"
(($(grep -c "^${ns}#[0-9a-f]\{64\}\$" <<<"$texts") == 2)) || fail "the long keys' names were not published"
! grep -q "rolled-back" <<<"$texts" || fail "a rolled-back invalidation was published"
echo "publish: $nkeys keys, 2 long keys and 2 patterns removed and published in $messages message(s); nothing from the rollback"

# The commits of mlcache.hygiene_delay (here 3 s) after the first are one
# batch, published in one message, a key invalidated twice once: four
# commits 50 ms apart.  A commit delivered after the reload (the worker
# rereads its settings at the top of an iteration, before its batch) shows
# that the worker has the new delay.
psql -c "ALTER SYSTEM SET mlcache.hygiene_delay = '3s'" -c "SELECT pg_reload_conf()" >/dev/null
on_exit quiet psql -c "ALTER SYSTEM RESET mlcache.hygiene_delay" -c "SELECT pg_reload_conf()"
delay_set() { [[ $(psql -c "SHOW mlcache.hygiene_delay") == 3s ]]; }
wait_for 10 delay_set || fail "the reload did not set mlcache.hygiene_delay"
done0=$(counter hygiene_done)
psql -c "SELECT mlcache.invalidate('pub:probe')" >/dev/null
probed() { (($(counter hygiene_done) > done0)); }
wait_for 10 probed || fail "the probe's invalidation was not delivered"
psql -c "SELECT mlcache.invalidate('pub:batch:a')" -c "SELECT pg_sleep(0.05)" \
	-c "SELECT mlcache.invalidate('pub:batch:b')" -c "SELECT pg_sleep(0.05)" \
	-c "SELECT mlcache.invalidate('pub:batch:a')" -c "SELECT pg_sleep(0.05)" \
	-c "SELECT mlcache.invalidate('pub:batch:c')" >/dev/null
wait_for 10 grep -q "pub:batch:c" "$out" || fail "the batch was not published"
batch=$(grep '^"message"' "$out" | grep "pub:batch:" || true)
(($(wc -l <<<"$batch") == 1)) || fail "four commits within the delay were published in $(wc -l <<<"$batch") messages: $batch"
texts=$(sed -e 's/^"message","[^"]*","//' -e 's/"$//' -e 's/\\n/\n/g' <<<"$batch")
[[ $(grep -c "pub:batch:" <<<"$texts") == 3 ]] || fail "the batch did not publish each key once: $texts"
echo "publish: four commits within mlcache.hygiene_delay were one message with each of their three keys once"

# A queue half full ends the gather early: with a 10 s delay, one commit of
# 9,000 invalidations (about 650 kB of the 1 MB queue; its first half is
# about 7,000 records) has at least that half delivered within 5 s, and the
# rest, below the mark, waits for the delay.
psql -c "ALTER SYSTEM SET mlcache.hygiene_delay = '10s'" -c "SELECT pg_reload_conf()" >/dev/null
delay_set() { [[ $(psql -c "SHOW mlcache.hygiene_delay") == 10s ]]; }
wait_for 10 delay_set || fail "the reload did not set mlcache.hygiene_delay"
done0=$(counter hygiene_done)
psql -c "SELECT mlcache.invalidate('pub:probe')" >/dev/null
wait_for 10 probed || fail "the probe's invalidation was not delivered"
done0=$(counter hygiene_done)
psql -c "SELECT count(mlcache.invalidate('pub:half:' || g)) FROM generate_series(1, 9000) g" >/dev/null
half_delivered() { (($(counter hygiene_done) >= done0 + 5000)); }
wait_for 5 half_delivered || fail "a half-full queue did not end the 10 s gather within 5 s ($(($(counter hygiene_done) - done0)) of 9000 delivered)"
all_delivered() { (($(counter hygiene_done) >= done0 + 9000)); }
wait_for 20 all_delivered || fail "the rest of the 9000 invalidations was not delivered ($(($(counter hygiene_done) - done0)))"
echo "publish: a half-full queue ends the worker's gather early"
