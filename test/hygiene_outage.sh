#!/usr/bin/env bash
# test/hygiene_outage.sh: the worker's Redis clean-up while Redis is down.
# 20,000 commits invalidate the same key: the worker takes them from the
# queue into the batch it holds, and health()'s invalidations_pending still
# counts every one of them (queued = done + dropped + pending); the held
# batch's memory stays flat however many commits fold into it; when the
# worker stops with the batch undelivered, its records are counted as
# dropped, not lost from the counts.  Then Redis returns and clean-ups are
# delivered again; and a held batch of 65,536 distinct keys is dropped at
# its next failed delivery, after which the worker sleeps instead of waking
# every millisecond.  Restarts PostgreSQL at the end (the stopped worker is
# not started again until then).  Run under test/harness.sh; exits non-zero
# on failure.
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=mlcache_outage
commits=20000
psql() { psql_db "$db" "$@"; }
fail() { echo "hygiene_outage: $*" >&2; exit 1; }
counter() { psql -c "SELECT value FROM mlcache.counters() WHERE counter = '$1'"; }
pending() { psql -c "SELECT (mlcache.health()->>'invalidations_pending')::bigint"; }
# queued - done - dropped: what the counters say is still undelivered.
undelivered() {
	psql -c "SELECT sum(value) FILTER (WHERE counter = 'hygiene_queued')
	              - sum(value) FILTER (WHERE counter = 'hygiene_done')
	              - sum(value) FILTER (WHERE counter = 'hygiene_dropped')
	         FROM mlcache.counters()"
}
balanced() { local u p; u=$(undelivered) p=$(pending); [[ $u == "$p" ]]; }
log=$(pg_dir)/server.log

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache'
wpid=$(mlcache_worker_pid "$db")
[[ -n $wpid ]] || fail "no mlcache worker running"
wait_for 20 balanced || fail "the counters do not balance before the test: undelivered $(undelivered), pending $(pending)"
on_exit redis_start
redis_stop

# 20,000 commits of one key while Redis is down.
echo "SELECT mlcache.invalidate('outage:hot');" >"$MLCACHE_TMP/outage.sql"
pgbench -n -M simple -f "$MLCACHE_TMP/outage.sql" -c 1 -j 1 -t "$commits" "$db" >/dev/null 2>&1 ||
	fail "pgbench failed"
# The worker drains the queue into its held batch within its retry time;
# pending must count those records throughout.
sleep 1
wait_for 20 balanced || fail "invalidations_pending ($(pending)) does not count what the worker holds ($(undelivered) undelivered)"
p=$(pending)
((p >= commits)) || fail "only $p pending after $commits undelivered commits"
echo "hygiene_outage: $p invalidations pending while Redis is down, the worker's held batch included"

# The held batch folds the commits into one key: its memory stays within the
# context's kept first block (256 kB), where one allocation per commit would
# take 1.5 MB or more.
psql -c "SELECT pg_log_backend_memory_contexts($wpid)" >/dev/null
batch_line() { grep "mlcache worker batch:" "$log" | tail -n 1; }
wait_for 10 quiet batch_line || fail "the worker did not log its memory contexts"
total=$(batch_line | sed -n 's/.*mlcache worker batch: \([0-9]*\) total.*/\1/p')
[[ -n $total ]] || fail "no size in: $(batch_line)"
((total <= 512 * 1024)) || fail "the held batch takes $total bytes for one distinct key"
echo "hygiene_outage: the held batch takes $total bytes after $commits commits of one key"

# The worker stops with its batch undelivered: those records are dropped, and
# counted so.
dropped0=$(counter hygiene_dropped)
psql -c "SELECT pg_terminate_backend($wpid)" >/dev/null
wait_for 20 dead "$wpid" || fail "the worker did not stop"
dropped=$(counter hygiene_dropped)
((dropped - dropped0 >= commits)) || fail "the stopped worker's $commits held records were not counted as dropped ($((dropped - dropped0)))"
wait_for 10 balanced || fail "the counters do not balance after the worker stopped: undelivered $(undelivered), pending $(pending)"
echo "hygiene_outage: the stopped worker's held records were counted as dropped ($((dropped - dropped0)))"

# Redis returns; a restarted server's worker delivers again.
redis_start
pg_restart
done0=$(counter hygiene_done)
psql -c "SELECT mlcache.invalidate('outage:after')" >/dev/null
delivered() { (($(counter hygiene_done) > done0)); }
wait_for 20 delivered || fail "nothing was delivered after Redis returned"
echo "hygiene_outage: clean-ups are delivered again once Redis is back"

# A held batch of 65,536 distinct keys is dropped at
# its next failed delivery; the worker, with nothing left to retry, then
# sleeps (about one wake-up a second) instead of waking every millisecond.
psql -c "ALTER SYSTEM SET mlcache.redis_retry_interval = '100ms'" -c "SELECT pg_reload_conf()" >/dev/null
on_exit quiet psql -c "ALTER SYSTEM RESET mlcache.redis_retry_interval" -c "SELECT pg_reload_conf()"
wpid=$(mlcache_worker_pid "$db")
dropped0=$(counter hygiene_dropped)
redis_stop
# 16 commits of 4,096 keys (about 270 kB of the 1 MB queue each), apart, so
# that the worker takes each into its batch before the queue could fill.
for ((i = 0; i < 16; i++)); do
	psql -c "SELECT count(mlcache.invalidate('drop:' || g)) FROM generate_series($((i * 4096 + 1)), $(((i + 1) * 4096))) g" >/dev/null
	sleep 0.2
done
dropped_batch() { (($(counter hygiene_dropped) - dropped0 >= 65536)); }
wait_for 20 dropped_batch || fail "the full held batch was not dropped ($(($(counter hygiene_dropped) - dropped0)) dropped)"
# Exactly the batch: nothing was dropped from a full queue on the way.
(($(counter hygiene_dropped) - dropped0 == 65536)) || fail "$(($(counter hygiene_dropped) - dropped0)) dropped, not the batch's 65,536"
sleep 1.5 # past the retry time (at most 10 x 100 ms)
switches() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$wpid/status"; }
s0=$(switches)
sleep 3
s1=$(switches)
((s1 - s0 < 300)) || fail "the idle worker woke $((s1 - s0)) times in 3 s after dropping its batch"
echo "hygiene_outage: after dropping a full batch the idle worker woke $((s1 - s0)) times in 3 s"
redis_start
