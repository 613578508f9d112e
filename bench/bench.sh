#!/usr/bin/env bash
# bench/bench.sh: mlcache benchmarks, run inside test/harness.sh by `make bench`.
#
# Every figure is a ratio measured in this one run against its reference.
# Groups so far:
#   write  single-row UPDATE commit throughput and a 100k-row UPDATE, with the
#          watch triggers versus the same table without triggers;
#   scale  invalidate_pattern() of a prefix with 1k versus 1M keys in Redis.
# Results: bench/results/latest.md (markdown, with machine, versions and the
# exact commands).  BENCH_SECONDS (default 10) sets each pgbench run's length.
# Nothing here asserts: targets are reported as met or not met.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"

secs=${BENCH_SECONDS:-10}
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
	echo "- $(command psql -X -t -A -d "$db" -c 'SELECT version()')"
	echo "- $(redis-server --version | cut -d' ' -f1-3), hiredis $(dpkg-query -W -f='${Version}' libhiredis-dev 2>/dev/null)"
	echo "- mlcache $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" mlcache.control); servers as started by test/harness.sh (unix sockets, fsync off)"
	echo
	echo "| group | figure | measured | reference | ratio | target | result |"
	echo "|---|---|---|---|---|---|---|"
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
