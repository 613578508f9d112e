#!/usr/bin/env bash
# bench/bench.sh: mlcache benchmarks, run inside test/harness.sh by `make bench`.
#
# Every figure is a ratio measured in this one run against its reference.
# Groups:
#   read     get and fetch hits per level against SELECT 1, and cached
#            against the live LMS query (BENCH_SCALE, default 10: 2,500
#            submissions per assignment);
#   peer     an L2 hit against pgmemcache's memcache_get of the same value;
#   stampede computations for 32 concurrent cold misses on one key;
#   memory   backend RSS after pushing 200 MB through a 64 MB L1;
#   write    single-row UPDATE commit throughput and a 100k-row UPDATE, with
#            the watch triggers versus the same table without triggers;
#   scale    invalidate_pattern() of a prefix with 1k versus 1M keys in Redis.
# Results: bench/results/latest.md (markdown, with machine, versions and the
# exact commands).  BENCH_SECONDS (default 10) sets each pgbench run's length.
# Nothing here asserts: targets are reported as met or not met.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"

secs=${BENCH_SECONDS:-10}
load_start=$(cut -d" " -f1-3 /proc/loadavg)
rounds=${BENCH_ROUNDS:-3}
db=mlcache_bench
out=bench/results/latest.md
work=$MLCACHE_TMP/bench
mkdir -p "$work" bench/results
psql() { command psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$db" "$@"; }
rcli() { redis-cli -s "$MLCACHE_REDIS_SOCKET" "$@"; }
log() { printf '%s\n' "$*" >&2; }
commands=()

# tps SCRIPT CLIENTS: transactions per second of one pgbench run.
tps() {
	local cmd="pgbench -n -f $1 -c $2 -j $2 -T $secs $db"
	commands+=("$cmd")
	$cmd 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# median of the arguments, with one decimal.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# round the arguments to one decimal.
round() { printf '%.1f ' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
# ms SQL: wall-clock milliseconds of one statement, timed by the server.
ms() {
	psql -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE \$q\$$1\$q\$;
	         RAISE NOTICE 'ms=%', extract(epoch FROM clock_timestamp() - t0) * 1000; END \$\$" 2>&1 |
		sed -n 's/.*ms=\([0-9.]*\).*/\1/p'
}

command psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -c 'CREATE EXTENSION mlcache'

# ----------------------------------------------------------------- read --
scale=${BENCH_SCALE:-10}
log "bench: read group (LMS data at scale $scale)"
psql -c "SELECT mlcache.lms_create_schema('lms')" -c "SELECT mlcache.lms_generate(scale => $scale)" \
	-c "SELECT mlcache.lms_setup('lms')" -c 'VACUUM ANALYZE' >/dev/null
per_asg=$(psql -c 'SELECT round(count(*)::numeric / (SELECT count(*) FROM lms.assignments)) FROM lms.submissions')
aid=$(psql -c 'SELECT assignment_id FROM lms.submissions GROUP BY 1 ORDER BY count(*) DESC LIMIT 1')
# L3 on its own: the same view, with L1 and L2 off.
psql -c "SELECT mlcache.define('bench_l3', (SELECT query FROM mlcache.definitions WHERE name = 'assignment_stats'),
         'bench_l3:{1}', 0, 0, 'lms.mlcache_assignment_stats', ARRAY['assignment_id'])" >/dev/null
for ((i = 0; i < 100; i++)); do   # bounded: wait for the views to be fresh
	[[ $(psql -c "SELECT count(*) FILTER (WHERE state <> 'fresh') FROM mlcache.views") == 0 ]] && break
	sleep 0.2
done
value=$(psql -c "SELECT mlcache.fetch('assignment_stats', $aid)")
printf 'SELECT 1;\n' >"$work/floor.sql"
printf "SELECT mlcache.get('bench:l1', 'SELECT 1');\n" >"$work/l1.sql"
printf "SELECT mlcache.get('bench:l2', 'SELECT 1', 0);\n" >"$work/l2.sql"
printf "SELECT mlcache.fetch('assignment_stats', %s);\n" "$aid" >"$work/fetch_l1.sql"
printf "SELECT mlcache.fetch('bench_l3', %s);\n" "$aid" >"$work/fetch_l3.sql"
printf "SELECT mlcache.lms_assignment_stats_live(%s);\n" "$aid" >"$work/live.sql"
psql -c "SELECT mlcache.set('bench:l2v', '$value', 0)" >/dev/null
printf "SELECT mlcache.get('bench:l2v', 'SELECT 0', 0);\n" >"$work/l2_value.sql"
r_floor=() r_l1=() r_l2=() r_f1=() r_f3=() r_live=() r_l2v=()
for ((r = 0; r < rounds; r++)); do
	r_floor+=("$(tps "$work/floor.sql" 1)")
	r_l1+=("$(tps "$work/l1.sql" 1)")
	r_l2+=("$(tps "$work/l2.sql" 1)")
	r_l2v+=("$(tps "$work/l2_value.sql" 1)")
	r_f1+=("$(tps "$work/fetch_l1.sql" 1)")
	r_f3+=("$(tps "$work/fetch_l3.sql" 1)")
	r_live+=("$(tps "$work/live.sql" 1)")
	log "  round $((r + 1)): SELECT 1 ${r_floor[r]}, get L1 ${r_l1[r]}, get L2 ${r_l2[r]}, fetch ${r_f1[r]}, L3 ${r_f3[r]}, live ${r_live[r]} tps"
done
m_floor=$(median "${r_floor[@]}"); m_l1=$(median "${r_l1[@]}"); m_l2=$(median "${r_l2[@]}")
m_l2v=$(median "${r_l2v[@]}"); m_f1=$(median "${r_f1[@]}"); m_f3=$(median "${r_f3[@]}"); m_live=$(median "${r_live[@]}")

# ----------------------------------------------------------------- peer --
m_mc=""
if command -v memcached >/dev/null && [[ -e $(pg_config --sharedir)/extension/pgmemcache.control ]]; then
	log "bench: peer group (pgmemcache against a local memcached)"
	mcport=$((20000 + RANDOM % 10000))
	memcached -l 127.0.0.1 -p "$mcport" -U 0 -u memcache -d -P "$work/memcached.pid"
	trap 'kill "$(cat "$work/memcached.pid")" 2>/dev/null || true' EXIT
	psql -c "ALTER DATABASE $db SET session_preload_libraries = 'pgmemcache'" \
		-c "ALTER DATABASE $db SET pgmemcache.default_servers = '127.0.0.1:$mcport'" >/dev/null
	psql -c 'CREATE EXTENSION pgmemcache' -c "SELECT memcache_set('bench:peer', '$value')" >/dev/null
	printf "SELECT memcache_get('bench:peer');\n" >"$work/peer.sql"
	r_mc=()
	for ((r = 0; r < rounds; r++)); do r_mc+=("$(tps "$work/peer.sql" 1)"); done
	m_mc=$(median "${r_mc[@]}")
	commands+=("memcached -l 127.0.0.1 -p PORT -U 0 -u memcache -d   # pgmemcache.default_servers = 127.0.0.1:PORT")
	log "  pgmemcache get ${r_mc[*]} tps"
fi

# ------------------------------------------------------------- stampede --
log "bench: stampede (32 concurrent cold misses on one key)"
c0=$(psql -c "SELECT value FROM mlcache.counters() WHERE counter = 'computes'")
printf "SELECT mlcache.get('bench:stampede', 'SELECT pg_sleep(0.5), 1');\n" >"$work/stampede.sql"
pgbench -n -f "$work/stampede.sql" -c 32 -j 2 -t 1 "$db" >/dev/null 2>&1 || true
commands+=("pgbench -n -f stampede.sql -c 32 -j 2 -t 1 $db   # SELECT mlcache.get('bench:stampede', 'SELECT pg_sleep(0.5), 1')")
stampede=$(($(psql -c "SELECT value FROM mlcache.counters() WHERE counter = 'computes'") - c0))

# --------------------------------------------------------------- memory --
log "bench: memory (L1 filled past its cap)"
rss=$(psql -c "SET mlcache.l1_max_memory = '64MB'" \
	-c "SELECT count(mlcache.get('bench:mem:' || i, 'SELECT repeat(''x'', 100000) || ' || i, 3600, 0)) FROM generate_series(1, 2000) i" \
	-c "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]" | tail -n 1)
base=$(psql -c "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmRSS:\s+(\d+)'))[1]")
l1_mb=$(awk -v r="$rss" -v b="$base" 'BEGIN {printf "%.1f", (r - b) / 1024}')
commands+=("SET mlcache.l1_max_memory = '64MB'; get() of 2,000 values of 100 kB (200 MB) in one backend; VmRSS minus a fresh backend's")

# ---------------------------------------------------------------- write --
log "bench: write group (${rounds} rounds of ${secs}s per variant)"
for t in plain noop watched; do
	psql -c "CREATE TABLE sub_$t (id int PRIMARY KEY, assignment_id int, student_id int, score int)" \
		-c "INSERT INTO sub_$t SELECT g, g % 40, g % 5000, 0 FROM generate_series(1, 100000) g" \
		-c "VACUUM ANALYZE sub_$t"
	printf '\\set id random(1, 100000)\nUPDATE sub_%s SET score = score + 1 WHERE id = :id;\n' "$t" >"$work/upd_$t.sql"
done
# The share of the cost that is PostgreSQL's own transition-table capture:
# the same kind of trigger, doing nothing.
psql -c "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NULL; END \$\$" \
	-c "CREATE TRIGGER noop AFTER UPDATE ON sub_noop REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION noop()"
psql -c "SELECT mlcache.watch('sub_watched', ARRAY['assignment_stats:{assignment_id}', 'analytics:student:{student_id}:*'])" >/dev/null

single_plain=() single_watched=() bulk_plain=() bulk_noop=() bulk_watched=()
vac() { psql -c 'VACUUM sub_plain' -c 'VACUUM sub_noop' -c 'VACUUM sub_watched' -c 'CHECKPOINT'; }
for ((r = 0; r < rounds; r++)); do
	vac
	single_plain+=("$(tps "$work/upd_plain.sql" 1)")
	vac
	single_watched+=("$(tps "$work/upd_watched.sql" 1)")
	vac
	bulk_plain+=("$(ms 'UPDATE sub_plain SET score = score + 1')")
	vac
	bulk_noop+=("$(ms 'UPDATE sub_noop SET score = score + 1')")
	vac
	bulk_watched+=("$(ms 'UPDATE sub_watched SET score = score + 1')")
	log "  round $((r + 1)): single plain ${single_plain[r]} tps, watched ${single_watched[r]} tps; 100k plain ${bulk_plain[r]} ms, no-op trigger ${bulk_noop[r]} ms, watched ${bulk_watched[r]} ms"
done
commands+=("UPDATE sub_plain SET score = score + 1   -- 100k rows, timed with clock_timestamp() in a DO block")
commands+=("UPDATE sub_noop SET score = score + 1    -- the same, a no-op statement trigger with transition tables")
commands+=("UPDATE sub_watched SET score = score + 1 -- the same, watch triggers on")
sp=$(median "${single_plain[@]}")
sw=$(median "${single_watched[@]}")
bp=$(median "${bulk_plain[@]}")
bw=$(median "${bulk_watched[@]}")
bn=$(median "${bulk_noop[@]}")
single_overhead=$(awk -v p="$sp" -v w="$sw" 'BEGIN {printf "%.1f", (1 - w / p) * 100}')
bulk_overhead=$(awk -v p="$bp" -v w="$bw" 'BEGIN {printf "%.1f", (w / p - 1) * 100}')
capture_overhead=$(awk -v p="$bp" -v w="$bn" 'BEGIN {printf "%.1f", (w / p - 1) * 100}')

# ---------------------------------------------------------------- scale --
log "bench: scale group"
printf "SELECT mlcache.invalidate_pattern('analytics:student:456:*');\n" >"$work/inval.sql"
fill() { # fill N: N keys under the namespace (and under the invalidated prefix)
	rcli FLUSHALL >/dev/null
	rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', ARGV[2] .. 'analytics:student:' .. (i % 1000) .. ':k' .. i, 'x') end" \
		0 "$1" "mlcache:$db:" >/dev/null
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

# --------------------------------------------------------------- report --
met() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN {ok = (dir == "le") ? (v <= t) : (v >= t); print ok ? "met" : "not met"}'; }
{
	echo "# mlcache benchmark results"
	echo
	echo "Produced by \`make bench\` (bench/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo "Each figure is the median of $rounds runs; pgbench runs last ${secs} s with one client."
	echo
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
	echo "- load average (1, 5, 15 min) at the start: ${load_start}; at the end: $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
	echo "- $(command psql -X -t -A -d "$db" -c 'SELECT version()')"
	echo "- $(redis-server --version | cut -d' ' -f1-3), hiredis $(dpkg-query -W -f='${Version}' libhiredis-dev 2>/dev/null)"
	echo "- mlcache $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" mlcache.control); servers as started by test/harness.sh (unix sockets, fsync off)"
	echo
	echo "| group | figure | measured | reference | ratio | target | result |"
	echo "|---|---|---|---|---|---|---|"
	echo "| read | get, L1 hit | ${m_l1} tps | ${m_floor} tps of SELECT 1 | $(ratio "$m_l1" "$m_floor") | ≥ 0.90 | $(met "$(ratio "$m_l1" "$m_floor")" 0.90 ge) |"
	echo "| read | get, L2 hit (value \`SELECT 1\`) | ${m_l2} tps | ${m_floor} tps of SELECT 1 | $(ratio "$m_l2" "$m_floor") | | |"
	echo "| read | fetch('assignment_stats'), L1 hit | ${m_f1} tps | ${m_floor} tps of SELECT 1 | $(ratio "$m_f1" "$m_floor") | | |"
	echo "| read | fetch, L3 hit (view, L1 and L2 off) | ${m_f3} tps | ${m_live} tps of the live query | $(ratio "$m_f3" "$m_live") | | |"
	echo "| read | fetch('assignment_stats') cached / live, ${per_asg} submissions per assignment | ${m_f1} tps | ${m_live} tps live | $(ratio "$m_f1" "$m_live") | ≥ 50 | $(met "$(ratio "$m_f1" "$m_live")" 50 ge) |"
	if [[ -n $m_mc ]]; then
		echo "| peer | get, L2 hit of the assignment_stats value | ${m_l2v} tps | ${m_mc} tps of pgmemcache memcache_get, same value | $(ratio "$m_l2v" "$m_mc") | ≥ 1.0 | $(met "$(ratio "$m_l2v" "$m_mc")" 1.0 ge) |"
	else
		echo "| peer | pgmemcache not installed | | | | ≥ 1.0 | not measured |"
	fi
	echo "| stampede | computations for 32 concurrent cold misses on one key | ${stampede} | 1 | | 1 | $( ((stampede == 1)) && echo met || echo not met) |"
	echo "| memory | backend RSS growth after 200 MB through a 64 MB L1 | ${l1_mb} MB | 64 MB cap | $(ratio "$l1_mb" 64) | within 10% (≤ 1.10) | $(met "$(ratio "$l1_mb" 64)" 1.10 le) |"
	echo "| write | single-row UPDATE commits, watched | ${sw} tps | ${sp} tps without triggers | $(ratio "$sw" "$sp") | overhead ≤ 5% | ${single_overhead}% overhead: $(met "$single_overhead" 5 le) |"
	echo "| write | 100k-row UPDATE, watched | ${bw} ms | ${bp} ms without triggers | $(ratio "$bw" "$bp") | overhead ≤ 10% | ${bulk_overhead}% overhead: $(met "$bulk_overhead" 10 le) |"
	echo "| write | 100k-row UPDATE, no-op transition-table trigger (PostgreSQL's capture alone) | ${bn} ms | ${bp} ms without triggers | $(ratio "$bn" "$bp") | (reference) | ${capture_overhead}% |"
	echo "| scale | invalidate_pattern of a prefix, $n1m keys in Redis | ${i1m} tps | ${i1k} tps with $n1k keys | $(ratio "$i1m" "$i1k") | flat (≥ 0.90) | $(met "$(ratio "$i1m" "$i1k")" 0.90 ge) |"
	echo
	echo "Per-round figures: single-row plain $(round "${single_plain[@]}")tps, watched $(round "${single_watched[@]}")tps;"
	echo "100k-row plain $(round "${bulk_plain[@]}")ms, no-op trigger $(round "${bulk_noop[@]}")ms, watched $(round "${bulk_watched[@]}")ms;"
	echo "invalidate_pattern $(round "${inv_1k[@]}")tps (1k keys), $(round "${inv_1m[@]}")tps (1M keys)."
	echo
	echo "The watched table has the templates \`assignment_stats:{assignment_id}\` and"
	echo "\`analytics:student:{student_id}:*\` (40 assignments, 5,000 students, 100,000 rows)."
	echo
	echo "## Commands"
	echo
	echo '```'
	printf '%s\n' "${commands[@]}" | sort -u
	echo '```'
} >"$out"
cat "$out"
