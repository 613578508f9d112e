#!/usr/bin/env bash
# bench/quick_bulk.sh: a quick 100k-row write comparison, run inside test/harness.sh:
#   bash test/harness.sh bash bench/quick_bulk.sh
# The method of bench.sh's 100k-row rounds, shorter: three 100k-row tables
# (plain: no trigger; floor: watch()'s statement triggers calling a no-op C
# function; watched: mlcache.watch() with two templates), QB_ROUNDS (default
# 3) pgbench runs of QB_SECONDS (default 30) with one client, each
# transaction one table's "UPDATE every row; VACUUM", the table drawn at
# random.  Prints each round's mean UPDATE latency per table (pgbench -r) and
# the overheads floor/plain and watched/floor.  QB_SET="name = value; ..."
# is applied with ALTER SYSTEM and a reload first (for example
# QB_SET="mlcache.standby_invalidation = off").  Used to compare two builds
# by installing each in turn.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
# shellcheck source=bench/write_tables.sh
. bench/write_tables.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
rounds=${QB_ROUNDS:-3}
secs=${QB_SECONDS:-30}
db=mlcache_qb
w=$MLCACHE_TMP/qb
mkdir -p "$w"
chmod 755 "$w"
psql() { psql_db "$db" "$@"; }
fresh_db "$db" 2>/dev/null
bench_settings "${QB_SET:-}"
psql -c 'CREATE EXTENSION mlcache' >/dev/null
bench_write_tables "$db" "$w"
for t in plain floor watched; do
	printf 'UPDATE sub_%s SET score = score + 1;\nVACUUM sub_%s;\n' "$t" "$t" >"$w/bulk_$t.sql"
done
# One UPDATE + VACUUM each first: every table starts in the steady state.
for t in plain floor watched; do psql -f "$w/bulk_$t.sql"; done
psql -c CHECKPOINT
echo "pgbench -n -f bulk_plain.sql -f bulk_floor.sql -f bulk_watched.sql -c 1 -j 1 -T $secs -r $db   # UPDATE sub_<variant> SET score = score + 1; VACUUM sub_<variant>"
for ((r = 1; r <= rounds; r++)); do
	out=$(pgbench -n -f "$w/bulk_plain.sql" -f "$w/bulk_floor.sql" -f "$w/bulk_watched.sql" -c 1 -j 1 -T "$secs" -r "$db" 2>/dev/null)
	line="round $r"
	declare -A ms=()
	for t in plain floor watched; do
		# -r: "latency_ms failures command" under each script's heading
		ms[$t]=$(sed -n "s/^ *\([0-9.]*\) *[0-9]* *UPDATE sub_${t} SET.*/\1/p" <<<"$out")
		c=$(grep -A3 "SQL script.*bulk_${t}.sql" <<<"$out" | sed -n 's/^ - \([0-9]*\) transactions.*/\1/p' | head -1)
		line+=" $t=${ms[$t]:-?} ms (n=${c:-0})"
	done
	echo "$line $(awk -v p="${ms[plain]:-0}" -v f="${ms[floor]:-0}" -v x="${ms[watched]:-0}" 'BEGIN {
		if (p > 0 && f > 0) printf "floor/plain overhead=%.2f%% watched/floor overhead=%.2f%%", (f / p - 1) * 100, (x / f - 1) * 100}')"
done
