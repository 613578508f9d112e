#!/usr/bin/env bash
# bench/profile.sh: perf profiles of mlcache's hot paths, run inside test/harness.sh:
#   bash test/harness.sh bash bench/profile.sh
# For each scenario, one pgbench client (simple protocol, unix socket) drives
# one backend while `perf record -g -p <that backend>` samples it for
# PROFILE_SECONDS (default 8) seconds; `perf report --no-children --sort
# symbol` (self time per symbol) and `--sort dso` are written to
# PROFILE_OUT (default bench/results/profile), one file per scenario, with
# the exact commands in PROFILE_OUT/commands.txt.  Scenarios:
#   floor          SELECT 1
#   call           mlcachz.get('bench:l1', 'SELECT 1'): the call floor, a C
#                  function returning the jsonb 1 (bench/noop_trigger.c)
#   l1             mlcache.get('bench:l1', 'SELECT 1'): an L1 hit
#   l2             mlcache.get('bench:l2', 'SELECT 1', 0): an L2 hit
#   peer           memcache_get of the same kind of value (if pgmemcache and
#                  memcached are installed)
#   write_floor    single-row UPDATE of a 100k-row table with watch()'s four
#                  statement triggers calling a no-op C function
#   write_watched  the same UPDATE on a watched table (watch() with two
#                  templates, as bench.sh's write group)
#   worker_watched the write_watched load, but perf samples the mlcache
#                  worker (its Redis clean-up and PUBLISH after each watched
#                  commit): us_per_tx is the worker's CPU per watched commit
#   redis_watched  the write_watched load, but perf samples redis-server (the
#                  worker's commands): us_per_tx is Redis's CPU per watched commit
#   bulk_watched   UPDATE of all 100k rows of the watched table, then VACUUM;
#                  NAME.children.txt also gives the inclusive share of the
#                  watch trigger (perf report --children), which is
#                  mlcache's whole part of the statement
# PROFILE_ONLY="l1 l2" runs only those; PROFILE_KEEP=DIR keeps the perf.data files there.
# PROFILE_OUT/summary.txt: each scenario's tps while sampled and the backend's
# CPU time per transaction (perf's cpu-clock event count / transactions).  Root, or perf_event_paranoid <= 1,
# is needed to attach perf to the backend.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
# shellcheck source=bench/write_tables.sh
. bench/write_tables.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
command -v perf >/dev/null || { echo "profile: perf is not installed (Debian: linux-perf)" >&2; exit 1; }

secs=${PROFILE_SECONDS:-8}
out=${PROFILE_OUT:-bench/results/profile}
only=${PROFILE_ONLY:-floor call l1 l2 peer write_floor write_watched worker_watched redis_watched bulk_watched}
db=mlcache_prof
work=$MLCACHE_TMP/profile
mkdir -p "$work" "$out"
psql() { psql_db "$db" "$@"; }
log() { printf '%s\n' "$*" >&2; }
: >"$out/commands.txt"
: >"$out/summary.txt"

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache' >/dev/null
printf 'SELECT 1;\n' >"$work/floor.sql"
printf "SELECT mlcache.get('bench:l1', 'SELECT 1');\n" >"$work/l1.sql"
printf "SELECT mlcache.get('bench:l2', 'SELECT 1', 0);\n" >"$work/l2.sql"
# The write tables, as bench.sh's write group.
templates="'assignment_stats:{assignment_id}', 'analytics:student:{student_id}:*'"
for t in floor watched; do
	psql -c "CREATE TABLE sub_$t (id int PRIMARY KEY, assignment_id int, student_id int, score int)" \
		-c "INSERT INTO sub_$t SELECT g, g % 40, g % 5000, 0 FROM generate_series(1, 100000) g" \
		-c "VACUUM ANALYZE sub_$t" >/dev/null
	printf '\\set id random(1, 100000)\nUPDATE sub_%s SET score = score + 1 WHERE id = :id;\n' "$t" >"$work/write_$t.sql"
done
psql -c "SELECT mlcache.watch('sub_watched', ARRAY[$templates])" >/dev/null
cp "$work/write_watched.sql" "$work/worker_watched.sql"
cp "$work/write_watched.sql" "$work/redis_watched.sql"
printf 'UPDATE sub_watched SET score = score + 1;\nVACUUM sub_watched;\n' >"$work/bulk_watched.sql"
bench_noop_so "$work"
psql -c "CREATE FUNCTION bench_noop() RETURNS trigger LANGUAGE c AS '$work/noop_trigger.so', 'mlcache_bench_noop_trigger'"
bench_call_floor "$db" "$work"
printf "SELECT mlcachz.get('bench:l1', 'SELECT 1');\n" >"$work/call.sql"
for ev in INSERT UPDATE DELETE; do
	case $ev in
	INSERT) ref='NEW TABLE AS n' ;;
	UPDATE) ref='OLD TABLE AS o NEW TABLE AS n' ;;
	DELETE) ref='OLD TABLE AS o' ;;
	esac
	psql -c "CREATE TRIGGER floor_${ev,,} AFTER $ev ON sub_floor REFERENCING $ref FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)"
done
psql -c "CREATE TRIGGER floor_truncate AFTER TRUNCATE ON sub_floor FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)"

# The peer, if there is one: a local memcached through pgmemcache.
if command -v memcached >/dev/null && [[ -e $(pg_config --sharedir)/extension/pgmemcache.control ]]; then
	mcport=$((20000 + RANDOM % 10000))
	memcached -l 127.0.0.1 -p "$mcport" -U 0 -u memcache &
	on_exit quiet kill "$!"
	mc_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$mcport") 2>/dev/null; }
	wait_for 5 mc_listens || true
	# A database of its own, so that pgmemcache is loaded in no other backend.
	fresh_db "${db}_peer"
	psql_db "${db}_peer" -c "ALTER DATABASE ${db}_peer SET session_preload_libraries = 'pgmemcache'" \
		-c "ALTER DATABASE ${db}_peer SET pgmemcache.default_servers = '127.0.0.1:$mcport'" >/dev/null
	psql_db "${db}_peer" -c 'CREATE EXTENSION pgmemcache' >/dev/null
	psql_db "${db}_peer" -c "SELECT memcache_set('bench:peer', '1')" >/dev/null
	printf "SELECT memcache_get('bench:peer');\n" >"$work/peer.sql"
else
	only=${only/peer/}
	log "profile: no memcached or pgmemcache: no peer scenario"
fi

# profile NAME: one pgbench client runs NAME.sql; perf samples its backend.
profile() {
	local name=$1 pid="" pb data=$work/$1.data d=$db tps ns
	[[ $name == peer ]] && d=${db}_peer
	PGAPPNAME=prof_$name pgbench -n -f "$work/$name.sql" -c 1 -j 1 -T $((secs + 4)) "$d" >"$work/$name.pgbench" 2>&1 &
	pb=$!
	backend() { pid=$(psql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'prof_$name' LIMIT 1") && [[ -n $pid ]]; }
	wait_for 10 backend
	if [[ $name == worker_* ]]; then
		pid=$(mlcache_worker_pid "$db")
	elif [[ $name == redis_* ]]; then
		pid=$(redis_pid)
	fi
	sleep 1
	perf record -F 2999 -g -p "$pid" -o "$data" -- sleep "$secs" >/dev/null 2>&1
	wait "$pb" || true
	[[ -z ${PROFILE_KEEP:-} ]] || cp "$data" "$PROFILE_KEEP/"
	perf report -i "$data" --no-children --sort symbol --stdio -g none --percent-limit 0.3 2>/dev/null |
		grep -v '^$' >"$out/$name.symbols.txt"
	perf report -i "$data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^$' >"$out/$name.dso.txt"
	# Every symbol of the extension and of the libraries it calls, however small.
	perf report -i "$data" --no-children --sort dso,symbol --stdio -g none \
		--dsos mlcache.so,libhiredis.so.0.14,libcrypto.so.3,pgmemcache.so,libmemcached.so.11.0.0 2>/dev/null |
		grep -v '^$' >"$out/$name.ext.txt" || true
	# Inclusive shares (a function with everything it calls); for
	# bulk_watched above all: the watch trigger's whole part of the statement.
	perf report -i "$data" --children --sort symbol --stdio -g none 2>/dev/null |
		grep -E '\] (PortalRun|ExecVacuum|heap_update|mlcache|watch_|render|tuplestore_gettupleslot)' >"$out/$name.children.txt" || true
	# The backend's CPU time per transaction: perf's event count (ns of
	# cpu-clock) over the transactions pgbench ran while perf sampled.
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$name.pgbench")
	ns=$(sed -n 's/^# Event count (approx.): //p' "$out/$name.symbols.txt")
	printf '%s tps=%s busy_ns=%s us_per_tx=%s\n' "$name" "$tps" "$ns" \
		"$(awk -v n="$ns" -v t="$tps" -v s="$secs" 'BEGIN {printf "%.2f", n / 1000 / (t * s)}')" >>"$out/summary.txt"
	printf 'PGAPPNAME=prof_%s pgbench -n -f %s.sql -c 1 -j 1 -T %s %s   # %s\n' "$name" "$name" $((secs + 4)) "$d" \
		"$(tr '\n' ' ' <"$work/$name.sql" | sed 's/ *$//')" >>"$out/commands.txt"
	log "  $name: $(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/$name.pgbench") tps while sampled"
}
log "profile: ${secs}s of perf per scenario: $only"
for s in $only; do profile "$s"; done
{
	echo "perf record -F 2999 -g -p <backend pid> -o NAME.data -- sleep $secs   # started 1 s after pgbench"
	echo "perf report -i NAME.data --no-children --sort symbol --stdio -g none --percent-limit 0.3   # NAME.symbols.txt"
	echo "perf report -i NAME.data --no-children --sort dso --stdio -g none   # NAME.dso.txt"
	echo "perf report -i NAME.data --children --sort symbol --stdio -g none   # NAME.children.txt (lines of PostgreSQL's statement, VACUUM and mlcache's trigger)"
} >>"$out/commands.txt"
