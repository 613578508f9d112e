#!/usr/bin/env bash
# bench/bench.sh: mlcache benchmarks, run inside test/harness.sh by `make bench`.
#
# Every figure is a ratio measured in this one run against its reference.
# Groups:
#   read     get and fetch hits per level against SELECT 1, and cached
#            against the live LMS query, on lms_generate() data of BENCH_SCALE
#            campuses (default 1) of BENCH_CAMPUS students (default 5000):
#            about 250k submissions, 2,500 per assignment (scale 1 with 500
#            students, the generator's default, gives 250); the results state
#            the measured figure and the generation time;
#            and an L1 hit against the call floor: the same call text to a
#            C function that returns a constant jsonb (bench/noop_trigger.c),
#            what PostgreSQL itself spends on such a call;
#   peer     an L2 hit against pgmemcache's memcache_get of the same value,
#            interleaved with the read group's rounds (pgmemcache loaded in
#            a database of its own, $db_peer);
#   throughput  SELECT 1, L1 and L2 hits at 1, 4, 16 and 32 clients
#            (bench/throughput.sh; BENCH_TP_SECONDS, default 3, and
#            BENCH_TP_ROUNDS, default 3);
#   stampede computations for 32 concurrent cold misses on one key;
#   memory   backend RSS after pushing 200 MB through a 64 MB L1;
#   write    single-row UPDATE commit throughput and a 100k-row UPDATE, with
#            the watch triggers, the same triggers calling a no-op C function
#            (PostgreSQL's own cost of them) and a naive per-row pgmemcache
#            memcache_delete trigger, versus the same table without triggers;
#   scale    invalidate_pattern() of a prefix with 1k versus 1M keys in Redis.
# The peer group and the naive write variant need memcached and pgmemcache
# (test/deps.sh installs them); without them those rows say "not measured".
# Results: bench/results/latest.md (markdown, with machine, versions and the
# exact commands) and the plots bench/results/read.png and write.png (gnuplot,
# bench/plots.gnuplot).  BENCH_SECONDS (default 10) sets each pgbench run's
# length, BENCH_ROUNDS (default 3) the rounds whose medians are reported.
# The write group runs BENCH_WRITE_ROUNDS (default 5) single-row rounds of
# BENCH_WRITE_SECONDS (default 20) and BENCH_BULK_ROUNDS (default 3) 100k-row
# rounds of BENCH_BULK_SECONDS (default 60), each round one pgbench run with
# every variant interleaved (see the write group).
# History: each run appends one row of its ratios (each "higher is better")
# to bench/results/history.csv, with the date and git commit, draws
# bench/results/history.png (bench/history.gnuplot) and warns, on stderr and
# in latest.md, about every ratio more than 10% below the median of its
# earlier rows (BENCH_HISTORY=0 skips all three, e.g. for trial runs;
# BENCH_HISTORY_FILE=F.csv keeps them in F.csv and F.png instead).
# Nothing here asserts: targets are reported as met or not met.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
# shellcheck source=bench/write_tables.sh
. bench/write_tables.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"

secs=${BENCH_SECONDS:-10}
load_start=$(cut -d" " -f1-3 /proc/loadavg)
rounds=${BENCH_ROUNDS:-3}
wrounds=${BENCH_WRITE_ROUNDS:-5}
wsecs=${BENCH_WRITE_SECONDS:-20}
brounds=${BENCH_BULK_ROUNDS:-3}
bsecs=${BENCH_BULK_SECONDS:-60}
db=mlcache_bench
out=bench/results/latest.md
work=$MLCACHE_TMP/bench
mkdir -p "$work" bench/results
psql() { psql_db "$db" "$@"; }
log() { printf '%s\n' "$*" >&2; }
commands=()
# What tps() runs, one line each (it runs in command substitutions, whose
# changes to commands[] would be lost).
ran=$work/commands.txt
: >"$ran"

# tps SCRIPT CLIENTS [SECONDS [DB]]: transactions per second of one pgbench
# run, simple protocol (what Django and psycopg send).
tps() {
	local t=${3:-$secs} d=${4:-$db}
	printf '%spgbench -n -M simple -f %s -c %s -j %s -T %s %s   # %s\n' "${PGOPTIONS:+PGOPTIONS='$PGOPTIONS' }" "$(basename "$1")" "$2" "$2" "$t" "$d" \
		"$(tr '\n' ' ' <"$1" | sed 's/ *$//')" >>"$ran"
	pgbench -n -M simple -f "$1" -c "$2" -j "$2" -T "$t" "$d" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# median of the arguments, with one decimal.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# round the arguments to one decimal.
round() { printf '%.1f ' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
# ms SQL: wall-clock milliseconds of one autocommit statement as the client
# sees it (psql's \timing), so its COMMIT, where mlcache bumps generations,
# is included.
ms() {
	psql -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
# secs_since T0: seconds elapsed since T0 (a date +%s.%N), with one decimal.
secs_since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.1f", t1 - t0}'; }

machine="$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sort -u | paste -sd'/')), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -sr)"
pg_version=$(command psql -X -t -A -d postgres -c 'SELECT version()')
redis_version="$(redis-server --version | cut -d' ' -f1-3), hiredis $(dpkg-query -W -f='${Version}' libhiredis-dev 2>/dev/null)"
log "bench: machine: $machine"
log "bench: $pg_version"
log "bench: $redis_version"
fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache_lms CASCADE'
db_peer=${db}_peer

# ---------------------------------------------------------------- setup --
# A local memcached for pgmemcache, if both are installed: the peer group
# reads through it from $db_peer (so that pgmemcache is loaded in no read
# group session of $db); the write group's naive variant uses it from $db.
have_mc=0
if command -v memcached >/dev/null && [[ -e $(pg_config --sharedir)/extension/pgmemcache.control ]]; then
	mcport=$((20000 + RANDOM % 10000))
	# A child, not a daemon (-d), so that it is stopped with this script,
	# whether it ends or test/harness.sh stops it.
	memcached -l 127.0.0.1 -p "$mcport" -U 0 -u memcache &
	mcpid=$!
	on_exit quiet kill "$mcpid"
	mc_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$mcport") 2>/dev/null; }
	wait_for 5 mc_listens || true
	fresh_db "$db_peer"
	psql_db "$db_peer" -c "ALTER DATABASE $db_peer SET session_preload_libraries = 'pgmemcache'" \
		-c "ALTER DATABASE $db_peer SET pgmemcache.default_servers = '127.0.0.1:$mcport'" \
		-c 'CREATE EXTENSION pgmemcache' >/dev/null
	have_mc=1
	commands+=("memcached -l 127.0.0.1 -p PORT -U 0 -u memcache   # pgmemcache.default_servers = 127.0.0.1:PORT")
else
	log "bench: memcached or pgmemcache is not installed: no peer group, no naive write variant"
fi
# Redis over TCP loopback, as memcached is: the harness's Redis listens on
# a unix socket only, a shorter path than pgmemcache has to memcached (worth
# about 5% of an L2 hit here: bench/results/2026-12-06-contention.md).
# Every group reads and writes this one; rcli talks to it too.
rtcp=$((30000 + RANDOM % 10000))
redis_start "$rtcp" "$MLCACHE_TMP/redis_bench_tcp"
on_exit quiet redis_stop "$rtcp" "$MLCACHE_TMP/redis_bench_tcp"
rcli() { redis-cli -h 127.0.0.1 -p "$rtcp" "$@"; }
bench_settings "mlcache.redis_socket = ; mlcache.redis_host = 127.0.0.1; mlcache.redis_port = $rtcp" >&2
commands+=("redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no   # ALTER SYSTEM SET mlcache.redis_socket = '', mlcache.redis_host = '127.0.0.1', mlcache.redis_port = PORT")
# The call floor: mlcachz.get(text, text), as long a name as mlcache.get,
# a C function returning the jsonb 1 (bench/noop_trigger.c, compiled here).
have_noop=0
if bench_noop_so "$work" && bench_call_floor "$db" "$work"; then
	have_noop=1
	commands+=("cc -shared -fPIC -O2 -I\$(pg_config --includedir-server) -o noop_trigger.so bench/noop_trigger.c; CREATE FUNCTION mlcachz.get(text, text) RETURNS jsonb LANGUAGE c VOLATILE AS 'noop_trigger.so', 'mlcache_bench_noop_get' (and (text, text, int))")
else
	log "bench: could not compile bench/noop_trigger.c: no call floor, no write floor ($(head -c 300 "$work/cc.log"))"
fi

# ----------------------------------------------------------------- read --
scale=${BENCH_SCALE:-1}
campus=${BENCH_CAMPUS:-5000}
gen="SELECT mlcache.lms_generate(scale => $scale, students_per_campus => $campus)"
log "bench: read group (LMS data: scale $scale, $campus students per campus)"
psql -c "SELECT mlcache.lms_create_schema('lms')" >/dev/null
t0=$(date +%s.%N)
psql -c "$gen" >/dev/null
gen_s=$(secs_since "$t0")
t0=$(date +%s.%N)
psql -c "SELECT mlcache.lms_setup('lms')" -c 'VACUUM ANALYZE' >/dev/null
setup_s=$(secs_since "$t0")
commands+=("$gen   -- ${gen_s} s; then lms_setup('lms') and VACUUM ANALYZE, ${setup_s} s")
n_subs=$(psql -c 'SELECT count(*) FROM lms.submissions')
# Mean submissions per assignment, over all of them (2% are not released yet
# and have none).
per_asg=$(psql -c 'SELECT round(count(*)::numeric / (SELECT count(*) FROM lms.assignments)) FROM lms.submissions')
read -r aid aid_n < <(psql -F ' ' -c 'SELECT assignment_id, count(*) FROM lms.submissions GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1')
log "  $n_subs submissions, $per_asg per assignment (generated in ${gen_s} s, set up in ${setup_s} s)"
# L3 on its own: the same view, with L1 and L2 off.
psql -c "SELECT mlcache.define('bench_l3', (SELECT query FROM mlcache.definitions WHERE name = 'assignment_stats'),
         'bench_l3:{1}', 0, 0, 'lms.mlcache_assignment_stats', ARRAY['assignment_id'])" >/dev/null
views_fresh() { [[ $(psql -c "SELECT count(*) FILTER (WHERE state <> 'fresh') FROM mlcache.views") == 0 ]]; }
wait_for 120 views_fresh || true
value=$(psql -c "SELECT mlcache.fetch('assignment_stats', $aid)")
printf 'SELECT 1;\n' >"$work/floor.sql"
printf "SELECT mlcache.get('bench:l1', 'SELECT 1');\n" >"$work/l1.sql"
printf "SELECT mlcache.get('bench:l2', 'SELECT 1', 0);\n" >"$work/l2.sql"
printf "SELECT mlcache.fetch('assignment_stats', %s);\n" "$aid" >"$work/fetch_l1.sql"
printf "SELECT mlcache.fetch('bench_l3', %s);\n" "$aid" >"$work/fetch_l3.sql"
printf "SELECT mlcache.lms_assignment_stats_live(%s);\n" "$aid" >"$work/live.sql"
psql -c "SELECT mlcache.set('bench:l2v', '$value', 0)" >/dev/null
printf "SELECT mlcache.get('bench:l2v', 'SELECT 0', 0);\n" >"$work/l2_value.sql"
printf "SELECT mlcachz.get('bench:l1', 'SELECT 1');\n" >"$work/call.sql"
if ((have_mc)); then
	psql_db "$db_peer" -c "SELECT memcache_set('bench:peer', '$value')" >/dev/null
	printf "SELECT memcache_get('bench:peer');\n" >"$work/peer.sql"
	# A first connection loads pgmemcache and connects to memcached.
	pgbench -n -f "$work/peer.sql" -t 10 "$db_peer" >/dev/null 2>&1 || true
fi
# Each round runs every read once, the peer's memcache_get right after the
# L2 hit of the same value; the rounds' ratios are taken pairwise.
r_floor=() r_l1=() r_l2=() r_f1=() r_f3=() r_live=() r_l2v=() r_call=() r_mc=() r_l2s=()
for ((r = 0; r < rounds; r++)); do
	r_floor+=("$(tps "$work/floor.sql" 1)")
	((have_noop)) && r_call+=("$(tps "$work/call.sql" 1)")
	r_l1+=("$(tps "$work/l1.sql" 1)")
	r_l2+=("$(tps "$work/l2.sql" 1)")
	r_l2v+=("$(tps "$work/l2_value.sql" 1)")
	((have_mc)) && r_mc+=("$(tps "$work/peer.sql" 1 "$secs" "$db_peer")")
	r_l2s+=("$(PGOPTIONS='-c mlcache.redis_spin_us=50' tps "$work/l2_value.sql" 1)")
	r_f1+=("$(tps "$work/fetch_l1.sql" 1)")
	r_f3+=("$(tps "$work/fetch_l3.sql" 1)")
	r_live+=("$(tps "$work/live.sql" 1)")
	log "  round $((r + 1)): SELECT 1 ${r_floor[r]}, call floor ${r_call[r]:-}, get L1 ${r_l1[r]}, get L2 ${r_l2[r]}, L2 of the value ${r_l2v[r]} (polling 50 us: ${r_l2s[r]}), pgmemcache ${r_mc[r]:-}, fetch ${r_f1[r]}, L3 ${r_f3[r]}, live ${r_live[r]} tps"
done
m_floor=$(median "${r_floor[@]}"); m_l1=$(median "${r_l1[@]}"); m_l2=$(median "${r_l2[@]}")
m_l2v=$(median "${r_l2v[@]}"); m_l2s=$(median "${r_l2s[@]}"); m_f1=$(median "${r_f1[@]}"); m_f3=$(median "${r_f3[@]}"); m_live=$(median "${r_live[@]}")
m_call="" m_mc=""
((have_noop)) && m_call=$(median "${r_call[@]}")
((have_mc)) && m_mc=$(median "${r_mc[@]}")
# pair_ratios A B: each round's A / B (two arrays' names), space-separated.
pair_ratios() {
	local -n pa=$1 pb=$2
	local i
	for i in "${!pa[@]}"; do ratio "${pa[i]}" "${pb[i]}"; printf ' '; done
}
# pair_median A B: the median of the rounds' A / B, three decimals.  The
# read ratios are these, not ratios of medians: each round's two runs are
# seconds apart, while the medians of A and B may come from different
# rounds, and this machine's speed drifts between rounds.
# shellcheck disable=SC2046 # one figure per word
pair_median() { printf '%s\n' $(pair_ratios "$1" "$2") | sort -g | awk '{a[NR]=$1} END {printf "%.3f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# ----------------------------------------------------------------- peer --
# The write group's naive variant calls pgmemcache from $db: loaded in its
# sessions from here on, after the read group.
if ((have_mc)); then
	psql -c "ALTER DATABASE $db SET session_preload_libraries = 'pgmemcache'" \
		-c "ALTER DATABASE $db SET pgmemcache.default_servers = '127.0.0.1:$mcport'" >/dev/null
	psql -c 'CREATE EXTENSION pgmemcache' >/dev/null
	log "  pgmemcache get ${r_mc[*]} tps; mlcache L2 hit of the same value ${r_l2v[*]} tps"
fi

# ------------------------------------------------------------- stampede --
log "bench: stampede (32 concurrent cold misses on one key)"
c0=$(psql -c "SELECT value FROM mlcache.counters() WHERE counter = 'computes'")
printf "SELECT mlcache.get('bench:stampede', 'SELECT pg_sleep(0.5), 1');\n" >"$work/stampede.sql"
pgbench -n -f "$work/stampede.sql" -c 32 -j 2 -t 1 "$db" >/dev/null 2>&1 || true
commands+=("pgbench -n -f stampede.sql -c 32 -j 2 -t 1 $db   # SELECT mlcache.get('bench:stampede', 'SELECT pg_sleep(0.5), 1')")
stampede=$(($(psql -c "SELECT value FROM mlcache.counters() WHERE counter = 'computes'") - c0))

# ----------------------------------------------------------- throughput --
tp_secs=${BENCH_TP_SECONDS:-3}
tp_rounds=${BENCH_TP_ROUNDS:-3}
log "bench: throughput group (1, 4, 16, 32 clients, ${tp_rounds} rounds of ${tp_secs}s)"
TP_DB=$db TP_OUT=$work/throughput.txt TP_SECONDS=$tp_secs TP_ROUNDS=$tp_rounds bash bench/throughput.sh >/dev/null
commands+=("TP_DB=$db TP_SECONDS=$tp_secs TP_ROUNDS=$tp_rounds bash bench/throughput.sh")
while read -r line; do commands+=("$line"); done <"$work/throughput.txt.commands"

# --------------------------------------------------------------- memory --
log "bench: memory (L1 filled past its cap)"
rss=$(psql -c "SET mlcache.l1_max_memory = '64MB'" \
	-c "SELECT count(mlcache.get('bench:mem:' || i, 'SELECT repeat(''x'', 100000) || ' || i, 3600, 0)) FROM generate_series(1, 2000) i" \
	-c "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]" | tail -n 1)
base=$(psql -c "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]")
l1_mb=$(awk -v r="$rss" -v b="$base" 'BEGIN {printf "%.1f", (r - b) / 1024}')
commands+=("SET mlcache.l1_max_memory = '64MB'; get() of 2,000 values of 100 kB (200 MB) in one backend; VmRSS minus a fresh backend's")

# ---------------------------------------------------------------- write --
# Variants of one 100k-row table:
#   plain    no trigger, the reference;
#   floor    four statement triggers like those watch() installs (the same
#            events, transition tables and arguments) calling a C function
#            that does nothing (bench/noop_trigger.c): PostgreSQL's own cost
#            of such triggers, below which no transition-table trigger goes;
#   watched  mlcache.watch();
#   peer     with pgmemcache: the naive approach, a per-row trigger that
#            deletes the row's memcached keys.
# Method: plain, floor and watched run in one pgbench run, one script each,
# pgbench drawing each transaction's script at random.  This machine's speed
# drifts by tens of percent between runs a few seconds apart; interleaved
# transaction by transaction, the drift falls on every variant alike.  The
# peer's single-row figures come from a run of its own, with plain again as
# its reference, so that its memcached round trips (in its backend and on the
# other core) stay out of the run that compares the others.
#   single-row: each script's mean latency, from pgbench's per-transaction
#     log; with one client, commit throughput is its inverse.
#   100k-row: each script is "UPDATE every row; VACUUM", and the UPDATE's
#     (autocommit, so with its COMMIT) mean latency comes from pgbench -r.
#     VACUUM keeps every table in the same steady state.  The peer is too
#     slow to interleave (a round trip per key and row): its UPDATEs are
#     timed apart, each against a plain one just before it.
# An overhead is the median of the rounds' overheads; [brackets] give the
# rounds' range.
variants=(plain floor watched)
((have_mc)) && variants+=(peer)
log "bench: write group (${wrounds} single-row rounds of ${wsecs}s, ${brounds} 100k-row rounds of ${bsecs}s: ${variants[*]})"
for t in "${variants[@]}"; do
	psql -c "CREATE TABLE sub_$t (id int PRIMARY KEY, assignment_id int, student_id int, score int)" \
		-c "ALTER TABLE sub_$t SET (autovacuum_enabled = off)"
	printf '\\set id random(1, 100000)\nUPDATE sub_%s SET score = score + 1 WHERE id = :id;\n' "$t" >"$work/upd_$t.sql"
	printf 'UPDATE sub_%s SET score = score + 1;\nVACUUM sub_%s;\n' "$t" "$t" >"$work/bulk_$t.sql"
done
# load T...: (re)fill the tables with their 100,000 rows each.
load() {
	local t
	for t in "$@"; do
		psql -c "TRUNCATE sub_$t" \
			-c "INSERT INTO sub_$t SELECT g, g % 40, g % 5000, 0 FROM generate_series(1, 100000) g" \
			-c "VACUUM ANALYZE sub_$t"
	done
	psql -c 'CHECKPOINT'
}
templates="'assignment_stats:{assignment_id}', 'analytics:student:{student_id}:*'"
psql -c "SELECT mlcache.watch('sub_watched', ARRAY[$templates])" >/dev/null
# The floor: noop_trigger.so, compiled in the set-up, loaded by its path.
have_floor=0
if ((have_noop)); then
	psql -c "CREATE FUNCTION bench_noop() RETURNS trigger LANGUAGE c AS '$work/noop_trigger.so', 'mlcache_bench_noop_trigger'"
	for ev in INSERT UPDATE DELETE; do
		case $ev in
		INSERT) ref='NEW TABLE AS n' ;;
		UPDATE) ref='OLD TABLE AS o NEW TABLE AS n' ;;
		DELETE) ref='OLD TABLE AS o' ;;
		esac
		psql -c "CREATE TRIGGER floor_${ev,,} AFTER $ev ON sub_floor REFERENCING $ref FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)"
	done
	psql -c "CREATE TRIGGER floor_truncate AFTER TRUNCATE ON sub_floor FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates)"
	have_floor=1
	commands+=("cc -shared -fPIC -O2 -I\$(pg_config --includedir-server) -o noop_trigger.so bench/noop_trigger.c; CREATE TRIGGER floor_update AFTER UPDATE ON sub_floor REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION bench_noop($templates) (and AFTER INSERT, DELETE, TRUNCATE, as watch() installs)")
else
	variants=("${variants[@]/floor/}")
	read -ra variants <<<"${variants[*]}"
fi
# The naive peer: memcached has no prefix delete, so where mlcache
# invalidates the prefix analytics:student:<id>:* this deletes the one key
# analytics:student:<id>.  The old row's keys, and the new row's if a key
# column changed; inside the transaction, row by row.
if ((have_mc)); then
	psql -c "CREATE FUNCTION peer_delete() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
	    IF TG_OP <> 'INSERT' THEN
	        PERFORM memcache_delete('assignment_stats:' || OLD.assignment_id);
	        PERFORM memcache_delete('analytics:student:' || OLD.student_id);
	    END IF;
	    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.assignment_id, NEW.student_id)
	                             IS DISTINCT FROM (OLD.assignment_id, OLD.student_id)) THEN
	        PERFORM memcache_delete('assignment_stats:' || NEW.assignment_id);
	        PERFORM memcache_delete('analytics:student:' || NEW.student_id);
	    END IF;
	    RETURN NULL;
	END \$\$" \
		-c "CREATE TRIGGER peer AFTER INSERT OR UPDATE OR DELETE ON sub_peer FOR EACH ROW EXECUTE FUNCTION peer_delete()"
	commands+=("CREATE TRIGGER peer AFTER INSERT OR UPDATE OR DELETE ON sub_peer FOR EACH ROW EXECUTE FUNCTION peer_delete()   -- PERFORM memcache_delete('assignment_stats:' || OLD.assignment_id), memcache_delete('analytics:student:' || OLD.student_id) (and NEW's if a key column changed)")
fi

# The variants compared with each other in one run; the peer runs in rounds
# of its own against the plain table.
main_variants=("${variants[@]/peer/}")
read -ra main_variants <<<"${main_variants[*]}"
# mixed KIND SECONDS "VARIANT..." ARGS...: one pgbench run, one client, of the
# scripts KIND_<variant>.sql of those variants, the pgbench command recorded.
mixed() {
	local kind=$1 secs=$2 t args=()
	for t in $3; do args+=(-f "$work/${kind}_$t.sql"); done
	shift 3
	printf 'pgbench -n %s-c 1 -j 1 -T %s %s %s   # %s\n' "$(printf '%s ' "${args[@]}")" "$secs" "$*" "$db" \
		"one script per variant: $(tr '\n' ' ' <"$work/${kind}_plain.sql" | sed "s/plain/<variant>/g; s/ *$//")" |
		sed "s|$work/||g" >>"$ran"
	pgbench -n "${args[@]}" -c 1 -j 1 -T "$secs" "$@" "$db"
}
# single_round "VARIANT..." NAME...: one single-row run of those variants;
# each one's figure is added to single[NAME] (NAME in the same order).
single_round() {
	local -a vs into f
	local i
	read -ra vs <<<"$1"
	shift
	into=("$@")
	rm -f "$work"/single_log*
	mixed upd "$wsecs" "${vs[*]}" -l --log-prefix="$work/single_log" >/dev/null 2>&1
	# log line: client transaction latency_us script_no epoch epoch_us
	read -ra f < <(cat "$work"/single_log* | awk -v n="${#vs[@]}" \
		'{c[$4]++; s[$4] += $3} END {for (i = 0; i < n; i++) printf "%.1f:%d ", c[i] ? 1e6 * c[i] / s[i] : 0, c[i]; print ""}')
	for i in "${!vs[@]}"; do
		single[${into[i]}]+="${f[i]%%:*} "
		nsingle[${into[i]}]=$((${nsingle[${into[i]}]:-0} + ${f[i]##*:}))
		line+=" ${into[i]} ${f[i]%%:*} tps (${f[i]##*:});"
	done
}
# single[t], bulk[t]: the rounds' figures of variant t, space-separated:
# single-row throughput (transactions per second of the script's own time,
# 1e6 / mean latency in µs) and the 100k-row UPDATE's mean ms.  peer_plain:
# the plain table in the peer's rounds.
declare -A single=() bulk=() nsingle=() nbulk=()
for ((r = 0; r < wrounds; r++)); do
	load "${main_variants[@]}"
	line="  single-row round $((r + 1)):"
	single_round "${main_variants[*]}" "${main_variants[@]}"
	if ((have_mc)); then
		load plain peer
		single_round "plain peer" peer_plain peer
	fi
	log "$line"
done
for ((r = 0; r < brounds; r++)); do
	load "${main_variants[@]}"
	# One UPDATE + VACUUM each first: every table starts the timed run in
	# the steady state of an updated, vacuumed table.
	for t in "${main_variants[@]}"; do psql -f "$work/bulk_$t.sql"; done
	out_r=$(mixed bulk "$bsecs" "${main_variants[*]}" -r 2>/dev/null)
	line="  100k-row round $((r + 1)):"
	for t in "${main_variants[@]}"; do
		# -r: "latency_ms failures command" under each script's heading
		m=$(sed -n "s/^ *\([0-9.]*\) *[0-9]* *UPDATE sub_${t} SET.*/\1/p" <<<"$out_r")
		c=$(grep -A3 "SQL script.*bulk_${t}.sql" <<<"$out_r" | sed -n 's/^ - \([0-9]*\) transactions.*/\1/p' | head -1)
		bulk[$t]+="${m:-0} "
		nbulk[$t]=$((${nbulk[$t]:-0} + ${c:-0}))
		line+=" $t ${m:-?} ms (${c:-0});"
	done
	log "$line"
done
if ((have_mc)); then
	# The peer apart: each of its UPDATEs against a plain one just before it.
	for ((r = 0; r < brounds; r++)); do
		load plain peer
		p=$(ms "UPDATE sub_plain SET score = score + 1")
		bulk[peer_plain]+="$p "
		bulk[peer]+="$(ms "UPDATE sub_peer SET score = score + 1") "
	done
	nbulk[peer]=$brounds
	commands+=("UPDATE sub_peer SET score = score + 1   -- after UPDATE sub_plain SET score = score + 1, both on freshly loaded tables, each one autocommit statement timed by psql's \\timing (COMMIT included)")
fi
declare -A s_med=() b_med=()
for t in "${variants[@]}" $( ((have_mc)) && echo peer_plain); do
	read -ra f <<<"${single[$t]}"
	read -ra b <<<"${bulk[$t]:-}"
	s_med[$t]=$(median "${f[@]}")
	b_med[$t]=$(median "${b[@]}")
done
# overhead of a tps figure (less is worse) and of a ms figure (more is worse), in %.
tps_overhead() { awk -v p="$1" -v w="$2" 'BEGIN {printf "%.1f", (1 - w / p) * 100}'; }
ms_overhead() { awk -v p="$1" -v w="$2" 'BEGIN {printf "%.1f", (w / p - 1) * 100}'; }
# figures T single|bulk: variant T's per-round figures, one per line.
figures() {
	local -a f
	if [[ $2 == single ]]; then read -ra f <<<"${single[$1]}"; else read -ra f <<<"${bulk[$1]}"; fi
	printf '%s\n' "${f[@]}"
}
# overheads T single|bulk [REF]: variant T's overhead in each round, against
# variant REF (default plain) in the same run (for the peer, the plain table
# of its own runs).
overheads() {
	local p f ref=${3:-plain}
	[[ $1 == peer ]] && ref=peer_plain
	paste -d' ' <(figures "$ref" "$2") <(figures "$1" "$2") |
		while read -r p f; do
			if [[ $2 == single ]]; then tps_overhead "$p" "$f"; else ms_overhead "$p" "$f"; fi
			echo
		done
}
# overhead T single|bulk: the median of T's per-round overheads.
# shellcheck disable=SC2046 # one figure per word
overhead() { median $(overheads "$@"); }
# spread T single|bulk [REF]: the per-round range.
spread() { overheads "$@" | sort -g | sed -n '1p;$p' | paste -sd' ' | awk '{printf "rounds %s to %s", $1, $2}'; }
single_overhead=$(overhead watched single)
bulk_overhead=$(overhead watched bulk)

# ---------------------------------------------------------------- scale --
log "bench: scale group"
printf "SELECT mlcache.invalidate_pattern('analytics:student:456:*');\n" >"$work/inval.sql"
fill() { # fill N: N keys under the namespace (and under the invalidated prefix)
	rcli FLUSHALL >/dev/null
	rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', ARGV[2] .. 'analytics:student:' .. (i % 1000) .. ':k' .. i, 'x') end" \
		0 "$1" "$(mlcache_ns "$db")" >/dev/null
	rcli DBSIZE
}
n1k=$(fill 1000)
inv_1k=()
for ((r = 0; r < rounds; r++)); do inv_1k+=("$(tps "$work/inval.sql" 1)"); done
n1m=$(fill 1000000)
inv_1m=()
for ((r = 0; r < rounds; r++)); do inv_1m+=("$(tps "$work/inval.sql" 1)"); done
i1k=$(median "${inv_1k[@]}")
i1m=$(median "${inv_1m[@]}")
log "  invalidate_pattern: ${i1k} tps with $n1k keys, ${i1m} tps with $n1m keys"

# ---------------------------------------------------------------- plots --
# bench/results/read.png and write.png, drawn by bench/plots.gnuplot from
# the medians; skipped (with a note) without gnuplot.
declare -A names=([plain]='plain' [floor]='no-op triggers' [watched]='watched' [peer]='naive peer')
plots=""
if command -v gnuplot >/dev/null; then
	{
		printf '"SELECT 1" %s\n' "$m_floor"
		[[ -n $m_call ]] && printf '"call floor" %s\n' "$m_call"
		printf '"get, L1 hit" %s\n"get, L2 hit" %s\n' "$m_l1" "$m_l2"
		[[ -n $m_mc ]] && printf '"L2, fetch value" %s\n"pgmemcache" %s\n' "$m_l2v" "$m_mc"
		printf '"fetch, L1 hit" %s\n"fetch, L3 hit" %s\n"live query" %s\n' "$m_f1" "$m_f3" "$m_live"
	} >"$work/read.dat"
	for t in "${variants[@]}"; do printf '"%s" %s %s\n' "${names[$t]}" "${s_med[$t]}" "${b_med[$t]}"; done >"$work/write.dat"
	printf 'subtitle = "%s"\nasg = "%s"\n' \
		"make bench, $(date -u '+%Y-%m-%d %H:%M UTC'), median of rounds: $rounds, pgbench runs of ${secs} s, 1 client; load at start ${load_start}" \
		"assignment\\\\_stats of an assignment with ${aid_n} submissions (mean ${per_asg} per assignment)" >"$work/meta.gp"
	if gnuplot -e "datadir='$work'; outdir='bench/results'" bench/plots.gnuplot; then
		plots=1
	else
		log "bench: gnuplot failed: no plots"
	fi
else
	log "bench: gnuplot is not installed: no plots"
fi

# -------------------------------------------------------------- history --
# One row per run in bench/results/history.csv: the date, the git commit
# ("+" if the tree had changes) and every ratio, each "higher is better"
# (a write overhead as the watched table's tps over the floor's, a 100k-row
# one as the floor's ms over the watched table's).  A file with other
# columns is rewritten to these, by column name.  Then the guard: a ratio
# more than 10% below the median of its earlier rows is a warning.
hist=${BENCH_HISTORY_FILE:-bench/results/history.csv}
# The L2 columns without _tcp are from runs whose Redis was on a unix
# socket (before 2026-12-06 21:30 UTC); they are no longer filled.
hcols=(date commit l1_select1 l1_call l2_select1 l2_peer fetch_live l3_live
	single_watched_floor single_watched_plain bulk_floor_watched inval_1m_1k
	tp_l1_1 tp_l2_1 tp_l1_4 tp_l2_4 tp_l1_16 tp_l2_16 tp_l1_32 tp_l2_32
	l2_select1_tcp l2_peer_tcp l2_peer_tcp_spin50 tp_l2_tcp_1 tp_l2_tcp_4 tp_l2_tcp_16 tp_l2_tcp_32)
declare -A hv=()
hv[date]=$(date -u +%Y-%m-%dT%H:%M:%SZ)
hv[commit]=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src extension bench 2>/dev/null || echo +)
hv[l1_select1]=$(pair_median r_l1 r_floor)
[[ -n $m_call ]] && hv[l1_call]=$(pair_median r_l1 r_call)
hv[l2_select1_tcp]=$(pair_median r_l2 r_floor)
[[ -n $m_mc ]] && hv[l2_peer_tcp]=$(pair_median r_l2v r_mc)
[[ -n $m_mc ]] && hv[l2_peer_tcp_spin50]=$(pair_median r_l2s r_mc)
hv[fetch_live]=$(ratio "$m_f1" "$m_live")
hv[l3_live]=$(ratio "$m_f3" "$m_live")
if ((have_floor)); then
	hv[single_watched_floor]=$(ratio "${s_med[watched]}" "${s_med[floor]}")
	hv[bulk_floor_watched]=$(ratio "${b_med[floor]}" "${b_med[watched]}")
fi
hv[single_watched_plain]=$(ratio "${s_med[watched]}" "${s_med[plain]}")
hv[inval_1m_1k]=$(ratio "$i1m" "$i1k")
while read -r c f a b r1 r2 _; do
	hv[tp_l1_$c]=$r1
	hv[tp_l2_tcp_$c]=$r2
done <"$work/throughput.txt"
warnings=()
if [[ ${BENCH_HISTORY:-1} != 0 ]]; then
	header=$(IFS=,; echo "${hcols[*]}")
	if [[ -s $hist && $(head -n 1 "$hist") != "$header" ]]; then
		awk -F, -v OFS=, -v want="$header" 'BEGIN {n = split(want, w, ",")}
			NR == 1 {for (i = 1; i <= NF; i++) col[$i] = i; print want; next}
			{line = ""; for (i = 1; i <= n; i++) line = line (i > 1 ? "," : "") ((w[i] in col) ? $(col[w[i]]) : ""); print line}' \
			"$hist" >"$work/history.csv" && cp "$work/history.csv" "$hist"
	fi
	[[ -s $hist ]] || echo "$header" >"$hist"
	# The guard, against the rows before this one.
	for ((i = 2; i < ${#hcols[@]}; i++)); do
		c=${hcols[i]} v=${hv[${hcols[i]}]:-}
		[[ -n $v ]] || continue
		med=$(awk -F, -v i=$((i + 1)) 'NR > 1 && $i != "" {print $i}' "$hist" | sort -g |
			awk '{a[NR] = $1} END {if (NR) printf "%.4f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
		[[ -n $med ]] || continue
		if awk -v v="$v" -v m="$med" 'BEGIN {exit !(v < 0.9 * m)}'; then
			warnings+=("$c = $v is more than 10% below the median of its $(($(wc -l <"$hist") - 1)) earlier runs ($med)")
		fi
	done
	row=""
	for c in "${hcols[@]}"; do row+="${row:+,}${hv[$c]:-}"; done
	echo "$row" >>"$hist"
	for w in "${warnings[@]}"; do log "bench: WARNING: regression: $w"; done
	if command -v gnuplot >/dev/null && ! gnuplot -e "hist='$hist'; out='${hist%.csv}.png'" bench/history.gnuplot; then
		log "bench: gnuplot failed: no history plot"
	fi
fi

# --------------------------------------------------------------- report --
met() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN {ok = (dir == "le") ? (v <= t) : (v >= t); print ok ? "met" : "not met"}'; }
# rounds_of t single|bulk: the per-round figures of write variant t.
# shellcheck disable=SC2046 # one figure per word
rounds_of() { round $(figures "$1" "$2"); }
{
	echo "# mlcache benchmark results"
	echo
	echo "Produced by \`make bench\` (bench/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo "Each read figure is the median of $rounds runs; pgbench runs last ${secs} s with one client. A read ratio is the"
	echo "median of the rounds' ratios (each round runs every read once, seconds apart), the rounds' own in brackets."
	echo "The write group runs the plain, no-op-trigger and watched tables in the same pgbench run"
	echo "(one client, one script per variant, each transaction's script drawn at random), so that"
	echo "the machine's drift falls on all of them alike: $wrounds single-row rounds of ${wsecs} s and"
	echo "$brounds 100k-row rounds of ${bsecs} s. The naive peer runs apart, against the plain table again."
	echo "A write overhead is the median of the rounds' overheads; the brackets give their range."
	echo
	echo "- machine: $machine"
	echo "- load average (1, 5, 15 min) at the start: ${load_start}; at the end: $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
	echo "- $pg_version"
	echo "- $redis_version"
	echo "- mlcache $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" mlcache.control); PostgreSQL as started by test/harness.sh (unix socket, fsync off); Redis and memcached on TCP loopback, each reached the same way"
	echo "- read group data: \`lms_generate(scale => $scale, students_per_campus => $campus)\`: $n_subs submissions, ${per_asg} per assignment on average; the measured assignment has ${aid_n}; generated in ${gen_s} s"
	echo
	echo "| group | figure | measured | reference | ratio | target | result |"
	echo "|---|---|---|---|---|---|---|"
	echo "| read | get, L1 hit | ${m_l1} tps | ${m_floor} tps of SELECT 1 | $(pair_median r_l1 r_floor) | ≥ 0.95 | $(met "$(pair_median r_l1 r_floor)" 0.95 ge) [rounds $(pair_ratios r_l1 r_floor)] |"
	if [[ -n $m_call ]]; then
		echo "| read | call floor: \`mlcachz.get('bench:l1', 'SELECT 1')\`, a C function returning the jsonb 1 | ${m_call} tps | ${m_floor} tps of SELECT 1 | $(pair_median r_call r_floor) | (reference) | PostgreSQL's own cost of the call [rounds $(pair_ratios r_call r_floor)] |"
		echo "| read | get, L1 hit over the call floor (mlcache's own share) | ${m_l1} tps | ${m_call} tps of the call floor | $(pair_median r_l1 r_call) | (reference) | [rounds $(pair_ratios r_l1 r_call)] |"
	fi
	echo "| read | get, L2 hit (value \`SELECT 1\`) | ${m_l2} tps | ${m_floor} tps of SELECT 1 | $(pair_median r_l2 r_floor) | | [rounds $(pair_ratios r_l2 r_floor)] |"
	echo "| read | fetch('assignment_stats'), L1 hit | ${m_f1} tps | ${m_floor} tps of SELECT 1 | $(ratio "$m_f1" "$m_floor") | | |"
	echo "| read | fetch, L3 hit (view, L1 and L2 off) | ${m_f3} tps | ${m_live} tps of the live query | $(ratio "$m_f3" "$m_live") | | |"
	echo "| read | fetch('assignment_stats') cached / live, ${aid_n} submissions in the assignment (${per_asg} per assignment on average) | ${m_f1} tps | ${m_live} tps live | $(ratio "$m_f1" "$m_live") | ≥ 50 | $(met "$(ratio "$m_f1" "$m_live")" 50 ge) |"
	if [[ -n $m_mc ]]; then
		lo=$(pair_ratios r_l2v r_mc | tr ' ' '\n' | grep . | sort -g | head -n 1)
		echo "| peer | get, L2 hit of the assignment_stats value | ${m_l2v} tps | ${m_mc} tps of pgmemcache memcache_get, same value | $(pair_median r_l2v r_mc) | ≥ 1.05 in every round | $(met "$lo" 1.05 ge) [rounds $(pair_ratios r_l2v r_mc)] |"
		lo=$(pair_ratios r_l2s r_mc | tr ' ' '\n' | grep . | sort -g | head -n 1)
		echo "| peer | the same, with \`mlcache.redis_spin_us = 50\` (not the default) | ${m_l2s} tps | ${m_mc} tps of pgmemcache memcache_get, same value | $(pair_median r_l2s r_mc) | ≥ 1.05 in every round | $(met "$lo" 1.05 ge) [rounds $(pair_ratios r_l2s r_mc)] |"
	else
		echo "| peer | pgmemcache not installed | | | | ≥ 1.05 | not measured |"
	fi
	echo "| stampede | computations for 32 concurrent cold misses on one key | ${stampede} | 1 | | 1 | $( ((stampede == 1)) && echo met || echo not met) |"
	echo "| memory | backend RSS growth after 200 MB through a 64 MB L1 | ${l1_mb} MB | 64 MB cap | $(ratio "$l1_mb" 64) | within 10% (≤ 1.10) | $(met "$(ratio "$l1_mb" 64)" 1.10 le) |"
	sw=${s_med[watched]} sp=${s_med[plain]} bw=${b_med[watched]} bp=${b_med[plain]}
	echo "| write | single-row UPDATE commits, watched | ${sw} tps | ${sp} tps without triggers | $(ratio "$sw" "$sp") | overhead ≤ 5% | ${single_overhead}% overhead [$(spread watched single)]: $(met "$single_overhead" 5 le) |"
	if ((have_floor)); then
		echo "| write | single-row UPDATE commits, no-op triggers (the floor: PostgreSQL's own cost of watch()'s four transition-table triggers) | ${s_med[floor]} tps | ${sp} tps without triggers | $(ratio "${s_med[floor]}" "$sp") | (reference) | $(overhead floor single)% [$(spread floor single)] |"
		echo "| write | single-row UPDATE commits, watched over the floor (mlcache's own share) | ${sw} tps | ${s_med[floor]} tps with no-op triggers | $(ratio "$sw" "${s_med[floor]}") | ≤ 1% | $(overhead watched single floor)% [$(spread watched single floor)]: $(met "$(overhead watched single floor)" 1 le) |"
	fi
	if ((have_mc)); then
		pp=${s_med[peer_plain]}
		echo "| write | single-row UPDATE commits, naive peer (per-row trigger, pgmemcache memcache_delete), in runs of its own | ${s_med[peer]} tps | ${pp} tps without triggers, same runs | $(ratio "${s_med[peer]}" "$pp") | (no target) | $(overhead peer single)% overhead [$(spread peer single)] |"
	else
		echo "| write | single-row UPDATE commits, naive peer | pgmemcache not installed | | | (no target) | not measured |"
	fi
	echo "| write | 100k-row UPDATE, watched | ${bw} ms | ${bp} ms without triggers | $(ratio "$bw" "$bp") | overhead ≤ 10% | ${bulk_overhead}% overhead [$(spread watched bulk)]: $(met "$bulk_overhead" 10 le) |"
	if ((have_floor)); then
		echo "| write | 100k-row UPDATE, no-op triggers (the floor) | ${b_med[floor]} ms | ${bp} ms without triggers | $(ratio "${b_med[floor]}" "$bp") | (reference) | $(overhead floor bulk)% [$(spread floor bulk)] |"
		echo "| write | 100k-row UPDATE, watched over the floor (mlcache's own share) | ${bw} ms | ${b_med[floor]} ms with no-op triggers | $(ratio "$bw" "${b_med[floor]}") | ≤ 0.5% | $(overhead watched bulk floor)% [$(spread watched bulk floor)]: $(met "$(overhead watched bulk floor)" 0.5 le) |"
	fi
	if ((have_mc)); then
		echo "| write | 100k-row UPDATE, naive peer (per-row trigger, pgmemcache memcache_delete), timed apart | ${b_med[peer]} ms | ${b_med[peer_plain]} ms without triggers, timed just before | $(ratio "${b_med[peer]}" "${b_med[peer_plain]}") | (no target) | $(overhead peer bulk)% overhead [$(spread peer bulk)] |"
	else
		echo "| write | 100k-row UPDATE, naive peer | pgmemcache not installed | | | (no target) | not measured |"
	fi
	while read -r c f a b r1 r2 k rk; do
		echo "| throughput | get, L1 hit, $c clients (-j 2) | $a tps | $f tps of SELECT 1, $c clients | $r1 | ≥ 0.9 | $(met "$r1" 0.9 ge) |"
		if [[ ${k:--} != - ]]; then
			echo "| throughput | call floor, $c clients (-j 2) | $k tps | $f tps of SELECT 1, $c clients | $rk | (reference) | PostgreSQL's own cost of the call |"
		fi
		echo "| throughput | get, L2 hit, $c clients (-j 2) | $b tps | $f tps of SELECT 1, $c clients | $r2 | (no target: a Redis round trip) | |"
	done <"$work/throughput.txt"
	echo "| scale | invalidate_pattern of a prefix, $n1m keys in Redis | ${i1m} tps | ${i1k} tps with $n1k keys | $(ratio "$i1m" "$i1k") | flat (≥ 0.90) | $(met "$(ratio "$i1m" "$i1k")" 0.90 ge) |"
	echo
	line="Per-round figures (transactions or statements measured over all rounds): single-row"
	for t in "${variants[@]}"; do line+=" ${names[$t]} $(rounds_of "$t" single)tps (${nsingle[$t]});"; done
	echo "$line"
	line="100k-row"
	for t in "${variants[@]}"; do line+=" ${names[$t]} $(rounds_of "$t" bulk)ms (${nbulk[$t]:-0});"; done
	echo "$line"
	echo "invalidate_pattern $(round "${inv_1k[@]}")tps (1k keys), $(round "${inv_1m[@]}")tps (1M keys)."
	echo
	if [[ ${BENCH_HISTORY:-1} == 0 ]]; then
		echo "History: not recorded (BENCH_HISTORY=0)."
	elif ((${#warnings[@]})); then
		echo "**Regression guard** (each ratio against the median of its earlier rows in $hist):"
		for w in "${warnings[@]}"; do echo "- WARNING: $w"; done
	else
		echo "Regression guard: no ratio is more than 10% below the median of its earlier rows in $hist ($(($(wc -l <"$hist") - 2)) earlier runs)."
	fi
	echo
	echo "The write group's tables have 100,000 rows (40 assignments, 5,000 students). The"
	echo "watched one has the templates \`assignment_stats:{assignment_id}\` and"
	echo "\`analytics:student:{student_id}:*\`. The naive peer is a per-row \`AFTER INSERT OR"
	echo "UPDATE OR DELETE\` PL/pgSQL trigger calling pgmemcache's \`memcache_delete\` for"
	echo "\`assignment_stats:<assignment_id>\` and \`analytics:student:<student_id>\`: memcached"
	echo "has no prefix delete, so it deletes that exact key, where mlcache invalidates every"
	echo "key under \`analytics:student:<student_id>:\`; and it deletes inside the"
	echo "transaction, one round trip per key per row, which a rollback does not undo."
	echo "A single-row figure is the script's transactions per second of its own time (1 / its mean"
	echo "latency in pgbench's per-transaction log). A 100k-row figure is the mean latency pgbench -r"
	echo "reports for the autocommit \`UPDATE\` (COMMIT included) of a script that then runs VACUUM"
	echo "on its table; each round starts from freshly loaded tables, each updated and vacuumed once."
	echo "The no-op triggers are watch()'s four (the same events, transition tables and arguments)"
	echo "calling a C function that returns at once (bench/noop_trigger.c): what PostgreSQL"
	echo "spends on capturing the rows and firing such triggers, which no trigger can avoid."
	[[ ${BENCH_HISTORY:-1} != 0 && -s ${hist%.csv}.png ]] && { echo; echo "![the ratios of every recorded run]($(basename "${hist%.csv}.png"))"; }
	if [[ -n $plots ]]; then
		echo
		echo "![read group: tps per read, against SELECT 1 and the live query](read.png)"
		echo
		echo "![write group: single-row tps and 100k-row ms per variant](write.png)"
	fi
	echo
	echo "## Commands"
	echo
	echo "pgbench scripts are shown after \`#\` (\`<variant>\` stands for each variant's table)."
	printf '%s\n' "The peer's 100k-row \`UPDATE\`s are timed with psql's \`\\timing\`; autovacuum is off on"
	echo "the write group's tables."
	echo
	echo '```'
	{ printf '%s\n' "${commands[@]}"; cat "$ran"; } | sort -u
	echo '```'
} >"$out"
cat "$out"
