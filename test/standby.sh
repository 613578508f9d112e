#!/usr/bin/env bash
# test/standby.sh: a hot standby serves cached values that are provably fresh relative to what it has
# replayed, because the primary logs each committing transaction's invalidations in the WAL (src/wal.c).
# Builds a streaming standby of the test server with pg_basebackup -R (both preload mlcache), then:
#   1. the standby caches (L1 and L2, under its own Redis namespace) and follows replayed commits;
#   2. writers commit on the primary while readers on the standby read through the cache between two
#      live reads of the same sum: every cached read lies between them; a key nobody writes is served
#      from L1 or L2 at least 90% of the time (counts);
#   3. with recovery_min_apply_delay, a value cached before a commit replays is served while the
#      commit waits (checked against replay LSNs, not time) and not after it replays, and a key the
#      waiting transaction touches is computed but not stored meanwhile;
#   4. mlcache.standby_invalidation = off on the primary stops the standby caching, and a commit made
#      while it was off is not hidden by a value cached before;
#   5. a standby without the library stops at the first mlcache record, and the primary's health()
#      warns about the unused slot;
#   6. promotion keeps serving correct values, and the promoted server's generations continue.
# Run under test/harness.sh, on a primary of its own (port 55453): the rest of the suite's databases
# on the shared server commit now and then (refreshers, the worker), and under recovery_min_apply_delay
# any commit made just before part 3's would close its window; part 4 also changes the primary's
# settings.  Ports 55450 (standby) and 55451 (standby without the library).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
db=mlcache_standby
sport=55450
standby=$MLCACHE_TMP/standby
fail() { echo "standby: $*" >&2; exit 1; }
primary() { psql_db "$db" "$@"; }
replica() { psql_db "$db" -p "$sport" "$@"; }
q_sum="SELECT sum(v) FROM t"
read_k() { "$1" -c "SELECT mlcache.get('sb:sum', '$q_sum'), mlcache.last_level()"; }
counter() { "$1" -c "SELECT value FROM mlcache.counters() WHERE counter = '$2'"; }
health() { replica -c "SELECT mlcache.health()->'standby'->>'$1'"; }
caching() { [[ $(health caching) == true ]]; }
lsn_ge() { [[ $("$1" -c "SELECT pg_last_wal_replay_lsn() >= '$2'::pg_lsn") == t ]]; }
replayed() { lsn_ge replica "$(primary -c 'SELECT pg_current_wal_insert_lsn()')"; }
# replica_is SQL VALUE: the query's result on the standby is VALUE (for wait_for).
replica_is() { [[ $(replica -c "$1") == "$2" ]]; }
standby_conf() { printf '%s\n' "port = $sport" "hot_standby_feedback = on" "$@" | as_pg tee "$standby/mlcache_test.conf" >/dev/null; }

export PGPORT=55453 MLCACHE_PGDATA=$MLCACHE_TMP/standby_primary
pg_init "$MLCACHE_PGDATA" "$PGPORT" mlcache
on_exit pg_stop "$MLCACHE_PGDATA"
pg_start "$MLCACHE_PGDATA"
fresh_db "$db"
primary -c 'CREATE EXTENSION mlcache' -c 'CREATE TABLE t (v int) WITH (autovacuum_enabled = off)' -c 'INSERT INTO t VALUES (1)' \
	-c 'CREATE TABLE calm (v int) WITH (autovacuum_enabled = off)' -c 'INSERT INTO calm VALUES (7)' \
	-c "SELECT mlcache.watch('t', ARRAY['sb:*'])" -c 'CHECKPOINT' >/dev/null
as_pg "$(pg_bin pg_basebackup)" -h "$MLCACHE_TMP" -p "$PGPORT" -U postgres \
	-D "$standby" -R -X stream -c fast
# pg_basebackup copies the cluster secret too, so the standby can verify L2 envelopes.
cmp -s "$MLCACHE_PGDATA/mlcache.secret" "$standby/mlcache.secret" || fail "the secret was not copied"
standby_conf
on_exit pg_stop "$standby"
pg_start "$standby"
[[ $(replica -c 'SELECT pg_is_in_recovery()') == t ]] || fail "the copy is not a standby"
wait_for 30 caching || fail "the standby did not start caching: $(replica -c 'SELECT mlcache.health()')"

# ---- 1. the standby caches, apart from the primary in Redis, and follows replay ----
got=$(replica -c "SELECT mlcache.get('sb:sum', '$q_sum'), mlcache.last_level()" \
	-c "SELECT mlcache.get('sb:sum', '$q_sum'), mlcache.last_level()" | tr '\n' ' ')
[[ $got == "1|compute 1|l1 " ]] || fail "standby reads in one session: $got"
[[ $(read_k replica) == "1|l2" ]] || fail "a new standby session did not read L2"
[[ $(read_k primary) == "1|compute" ]] || fail "the primary read the standby's Redis value"
(($(rcli --scan --pattern "*${db}*standby:*sb:sum" | wc -l) == 1)) ||
	fail "the standby's value is not under its own namespace: $(rcli --scan --pattern '*sb:sum')"
s0=$(counter replica stale_rejected)
primary -c 'UPDATE t SET v = 2' >/dev/null
wait_for 10 replayed || fail "the update was not replayed"
[[ $(read_k replica) == "2|compute" ]] || fail "the standby did not follow the replayed commit"
(($(counter replica stale_rejected) > s0)) || fail "the outdated value was not rejected by its token"
[[ $(read_k replica) == "2|l2" ]] || fail "the new value was not cached"
replica -c "SELECT mlcache.watch('t', ARRAY['x'])" >/dev/null 2>&1 && fail "watch() worked on a standby"
# A transaction that only invalidates (no data change, so no xid of its own) reaches the standby too.
calm() { replica -c "SELECT mlcache.get('calm:k', 'SELECT sum(v) FROM calm'), mlcache.last_level()"; }
[[ "$(calm) $(calm)" == "7|compute 7|l2" ]] || fail "calm:k was not cached"
w0=$(primary -c "SELECT mlcache.health()->'standby'->>'records_written'")
primary -c "SELECT mlcache.invalidate('calm:k')" >/dev/null
wait_for 10 replayed || fail "the invalidation was not replayed"
[[ $(calm) == "7|compute" ]] || fail "an invalidate() on the primary did not reach the standby"
(($(primary -c "SELECT mlcache.health()->'standby'->>'records_written'") == w0 + 1)) ||
	fail "the primary did not count one invalidation record"
# A definition redefined on the primary is reloaded by a standby session that had loaded it.
primary -c "SELECT mlcache.define('sb_def', 'SELECT sum(v) FROM calm', 'sbdef')" >/dev/null
wait_for 10 replayed || fail "the definition was not replayed"
replica -c 'SELECT mlcache.health()' >/dev/null # resolves the definition's commit now
coproc SESS { replica 2>&1; }
sess_pid=$SESS_PID # bash unsets SESS_PID when the coprocess ends
echo "SELECT mlcache.fetch('sb_def');" >&"${SESS[1]}"
read -r -t 20 first <&"${SESS[0]}" || fail "no answer from the standby session"
primary -c "SELECT mlcache.define('sb_def', 'SELECT sum(v) * 10 FROM calm', 'sbdef')" >/dev/null
wait_for 10 replayed || fail "the new definition was not replayed"
echo "SELECT mlcache.fetch('sb_def');" >&"${SESS[1]}"
read -r -t 20 second <&"${SESS[0]}" || fail "no second answer from the standby session"
echo '\q' >&"${SESS[1]}"
wait "$sess_pid" 2>/dev/null || true
[[ "$first $second" == "7 70" ]] || fail "a standby session kept an outdated definition: $first $second"
# L3 is not read on a standby: the view replays, but no refresher runs there to record it fresh.
primary -c 'CREATE MATERIALIZED VIEW calm_mv AS SELECT 1 AS k, to_jsonb(sum(v)) AS value FROM calm' \
	-c 'CREATE UNIQUE INDEX ON calm_mv (k)' \
	-c "SELECT mlcache.define('sb_l3', 'SELECT sum(v) FROM calm WHERE \$1 = 1', 'sbl3:{1}', 60, 60,
	                          'calm_mv', ARRAY['k'])" >/dev/null
wait_for 10 replayed || fail "the L3 definition was not replayed"
l3_reads=$(replica -c "SELECT mlcache.fetch('sb_l3', 1), mlcache.last_level()" \
	-c "SELECT mlcache.fetch('sb_l3', 1), mlcache.last_level()" | tr '\n' ' ')
[[ $l3_reads == "7|compute 7|l1 " ]] || fail "an L3 definition on the standby: $l3_reads (expected compute, then l1)"
echo "standby: 1. the standby caches and follows replayed commits (and does not read L3)"

# ---- 2. writers on the primary, readers on the standby ----
# Readers run short DO blocks (1000 rounds each) until the writer's last commit has replayed: a long
# one would hold back replay (recovery conflicts) and so see few commits.  The writer inserts (each
# row adds 1 to the sum), which leaves no dead rows to prune and so causes no recovery conflicts.
primary -c 'CREATE TABLE done (x int) WITH (autovacuum_enabled = off)' >/dev/null
wait_for 10 replayed || fail "the table was not replayed"
# synchronous_commit = on: each commit is flushed, so sent to the standby at once.
primary -c 'SET synchronous_commit = on' -c "DO \$\$ BEGIN FOR i IN 1..300 LOOP INSERT INTO t VALUES (1); COMMIT;
	PERFORM pg_sleep(0.004); END LOOP; INSERT INTO done VALUES (1); END \$\$" >/dev/null &
writer=$!
reader_sql="DO \$\$
DECLARE l1 int; c int; l2 int; lvl text; prev int; changes int := 0;
	hits int := 0; calm_hits int := 0; calm_reads int := 0;
BEGIN
	FOR i IN 1..1000 LOOP
		l1 := (SELECT sum(v) FROM t);
		c := mlcache.get('sb:sum', '$q_sum')::text::int;
		lvl := mlcache.last_level();
		l2 := (SELECT sum(v) FROM t);
		IF c < l1 OR c > l2 THEN
			RAISE EXCEPTION 'cached read % (%) not between live reads % and %', c, lvl, l1, l2;
		END IF;
		IF lvl IN ('l1', 'l2') THEN hits := hits + 1; END IF;
		IF c IS DISTINCT FROM prev THEN changes := changes + 1; END IF;
		prev := c;
		IF mlcache.get('calm:k', 'SELECT sum(v) FROM calm')::text::int <> 7 THEN
			RAISE EXCEPTION 'calm key has a wrong value';
		END IF;
		calm_reads := calm_reads + 1;
		IF mlcache.last_level() IN ('l1', 'l2') THEN calm_hits := calm_hits + 1; END IF;
	END LOOP;
	RAISE NOTICE 'result % % % %', hits, calm_hits, calm_reads, changes;
END \$\$"
reader() {
	local n
	for ((n = 0; n < 400; n++)); do
		replica -c "$reader_sql" || return 1
		[[ $(replica -c 'SELECT count(*) FROM done') == 0 ]] || return 0
	done
}
pids=()
for r in 1 2 3; do
	reader >"$MLCACHE_TMP/reader$r.out" 2>&1 &
	pids+=($!)
done
wait "$writer" || fail "the writer failed"
for r in 1 2 3; do
	wait "${pids[r - 1]}" || fail "reader $r: $(tail -5 "$MLCACHE_TMP/reader$r.out")"
done
read -r reads hits calm_hits calm_reads changes < <(sed -n 's/.*result \([0-9 ]*\)$/\1/p' \
	"$MLCACHE_TMP"/reader[123].out | awk '{h+=$1; ch+=$2; cr+=$3; c+=$4} END {print cr, h, ch, cr, c}')
echo "standby: 2. $reads standby reads of the written key each lay between two live reads" \
	"($hits from L1/L2, $changes changes of value seen); the unwritten key was served from L1/L2" \
	"$calm_hits of $calm_reads times"
((changes >= 20)) || fail "the readers saw only $changes changes: they did not overlap the writer"
((hits > 0)) || fail "no read of the written key was served from the cache: the test proved nothing"
((calm_hits * 10 >= calm_reads * 9)) || fail "the unwritten key was served from L1/L2 only $calm_hits of $calm_reads times"
wait_for 10 replayed || fail "the writer's commits were not replayed"

# ---- 3. recovery_min_apply_delay: a deterministic window ----
# diag: what both servers say about replication and replay (printed with a failure).
diag() {
	echo "--- $(date -u +%T.%N) primary:"
	primary -c "SELECT mlcache.health()->'standby'" \
		-c "SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()" \
		-c "SELECT state, sent_lsn, write_lsn, flush_lsn, replay_lsn, replay_lag FROM pg_stat_replication" \
		-c "SELECT pid, backend_type, state, wait_event_type, wait_event, xact_start, left(query, 60)
			FROM pg_stat_activity WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL" 2>&1
	echo "--- standby:"
	replica -c "SELECT mlcache.health()->'standby'" \
		-c "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(),
			pg_get_wal_replay_pause_state()" \
		-c "SELECT status, flushed_lsn, latest_end_lsn, last_msg_receipt_time FROM pg_stat_wal_receiver" \
		-c "SELECT pid, backend_type, state, wait_event_type, wait_event, left(query, 60) FROM pg_stat_activity
			WHERE backend_type IN ('startup', 'walreceiver') OR state <> 'idle' AND pid <> pg_backend_pid()" \
		-c "SELECT * FROM pg_stat_database_conflicts WHERE datname = current_database()" 2>&1
	echo "--- standby log:"
	tail -n 15 "$standby/server.log"
}
standby_conf "recovery_min_apply_delay = '4s'"
as_pg "$(pg_bin pg_ctl)" reload -D "$standby" -s
wait_for 10 replica_is 'SHOW recovery_min_apply_delay' 4s || fail "the delay was not set"
# The transaction's INVAL record replays at once (only commits are delayed), so it is in doubt until
# its commit replays 4 s later.  Another commit made on the primary just before (autovacuum or the
# worker, say) can hold replay back until both replay together: then the window was missed, not
# broken, and the attempt is repeated (at most 3 times).
in_doubt() { replica_is "SELECT mlcache.health()->'standby'->>'in_doubt'" 1; }
window_or_replayed() { in_doubt || lsn_ge replica "$commit_lsn"; }
caught=
for attempt in 1 2 3; do
	before=$(replica -c "SELECT mlcache.get('sb:sum', '$q_sum')")
	got=$(replica -c "SELECT mlcache.get('sb:sum', '$q_sum'), mlcache.last_level()")
	[[ $got == "$before|l2" ]] || fail "the value was not cached before the window: $got"
	commit_lsn=$(primary -c 'INSERT INTO t VALUES (1000)' -c 'SELECT pg_current_wal_insert_lsn()')
	wait_for 15 window_or_replayed ||
		fail "the invalidation record was not replayed (commit at $commit_lsn): $(diag)"
	if in_doubt && ! lsn_ge replica "$commit_lsn"; then
		caught=1
		break
	fi
	echo "standby: 3. attempt $attempt missed the window (the commit at $commit_lsn replayed with its record): $(diag)" >&2
	wait_for 20 lsn_ge replica "$commit_lsn" || fail "the delayed commit did not replay: $(diag)"
done
[[ $caught ]] || fail "no attempt out of 3 caught the invalidation record in doubt"
# Inside the window: the commit has not replayed; the cached value is still the right answer, and a
# key the waiting transaction touches (prefix sb:) is computed but not stored.
in_window() {
	local r
	r=$(replica -c "SELECT mlcache.get('sb:sum', '$q_sum'), mlcache.last_level()" \
		-c "SELECT mlcache.get('sb:new', 'SELECT 1'), mlcache.last_level()" \
		-c "SELECT mlcache.get('sb:new', 'SELECT 1'), mlcache.last_level()" \
		-c "SELECT pg_last_wal_replay_lsn() < '$commit_lsn'::pg_lsn" | tr '\n' ' ')
	[[ $r == *" t " ]] || fail "the commit replayed before the window was checked (apply delay 4s): $r"
	[[ $r == "$before|l2 1|compute 1|compute t " ]] || fail "inside the window: $r"
}
in_window
wait_for 20 lsn_ge replica "$commit_lsn" || fail "the delayed commit did not replay"
got=$(replica -c "SELECT mlcache.get('sb:sum', '$q_sum'), mlcache.last_level()")
[[ $got == "$((before + 1000))|compute" ]] || fail "after the commit replayed the standby read $got"
[[ $(replica -c "SELECT mlcache.get('sb:new', 'SELECT 1'), mlcache.last_level()") == "1|compute" ]] ||
	fail "sb:new was stored inside the window"
[[ $(replica -c "SELECT mlcache.get('sb:new', 'SELECT 1'), mlcache.last_level()") == "1|l2" ]] ||
	fail "sb:new was not cached after the window"
standby_conf
as_pg "$(pg_bin pg_ctl)" reload -D "$standby" -s
wait_for 10 replica_is 'SHOW recovery_min_apply_delay' 0 || fail "the delay was not reset"
echo "standby: 3. a value cached before a delayed commit is served until it replays, never after"

# ---- 4. mlcache.standby_invalidation = off on the primary ----
primary_conf() { printf '%s\n' "$@" | as_pg tee "$MLCACHE_PGDATA/mlcache_test.conf" >/dev/null; }
[[ $(read_k replica) == *"|l2" ]] || fail "not cached before turning logging off"
primary_conf "mlcache.standby_invalidation = off"
as_pg "$(pg_bin pg_ctl)" reload -D "$MLCACHE_PGDATA" -s
wait_for 15 replica_is "SELECT mlcache.health()->'standby'->>'primary_logs'" off || fail "the standby was not told that logging is off"
primary -c 'UPDATE t SET v = v + 1' >/dev/null
wait_for 10 replayed || fail "the update was not replayed"
b0=$(counter replica bypasses)
got="$(read_k replica) $(read_k replica)"
v=$(primary -c "$q_sum")
[[ $got == "$v|compute $v|compute" ]] || fail "the standby cached while the primary did not log: $got"
(($(counter replica bypasses) >= b0 + 2)) || fail "standby reads were not counted as bypasses"
primary_conf
as_pg "$(pg_bin pg_ctl)" reload -D "$MLCACHE_PGDATA" -s
wait_for 15 caching || fail "the standby did not cache again: $(replica -c 'SELECT mlcache.health()')"
got="$(read_k replica) $(read_k replica)"
[[ $got == "$v|compute $v|l2" ]] || fail "after logging resumed: $got"
echo "standby: 4. with standby_invalidation off the standby reads around the cache"

# ---- 5. a standby without the library ----
nolib=$MLCACHE_TMP/standby_nolib
as_pg "$(pg_bin pg_basebackup)" -h "$MLCACHE_TMP" -p "$PGPORT" -U postgres \
	-D "$nolib" -R -X stream -c fast -C -S nolib
printf '%s\n' "port = 55451" "shared_preload_libraries = ''" | as_pg tee "$nolib/mlcache_test.conf" >/dev/null
on_exit pg_stop "$nolib"
as_pg "$(pg_bin pg_ctl)" start -D "$nolib" -w -t 60 -s -l "$nolib/server.log" || true
primary -c 'UPDATE t SET v = v + 1' >/dev/null
stopped() { ! pg_running "$nolib" && grep -q 'resource manager with ID 128 not registered' "$nolib/server.log"; }
wait_for 30 stopped || fail "a standby without the library kept running: $(tail -5 "$nolib/server.log")"
warn=$(primary -c "SELECT mlcache.health()->'standby'->>'warning'")
[[ $warn == *"shared_preload_libraries"* ]] || fail "health() on the primary did not warn: $warn"
primary -c "SELECT pg_drop_replication_slot('nolib')" >/dev/null
[[ $(primary -c "SELECT mlcache.health()->'standby'->>'warning'") == "" ]] || fail "the warning stayed"
echo "standby: 5. a standby without the library stops (FATAL) and the primary's health() warns"

# ---- 6. promotion ----
wait_for 10 replayed || fail "the standby fell behind"
v=$(primary -c "$q_sum")
[[ $(read_k replica) == "$v|compute" ]] || fail "standby read before promotion"
# The primary keeps running (other tests use it); the promoted copy goes its own way.
replica -c 'SELECT pg_promote()' >/dev/null
wait_for 30 replica_is 'SELECT pg_is_in_recovery()' f || fail "the standby was not promoted"
got="$(read_k replica) $(read_k replica)"
[[ $got == "$v|compute $v|l2" ]] || fail "after promotion: $got"
replica -c 'INSERT INTO t VALUES (1)' >/dev/null
got="$(read_k replica) $(read_k replica)"
[[ $got == "$((v + 1))|compute $((v + 1))|l2" ]] || fail "a commit on the promoted server: $got"
echo "standby: 6. after promotion the server serves correct values and its commits invalidate"
