#!/usr/bin/env bash
# bench/quick_write.sh: a quick single-row write comparison, run inside test/harness.sh:
#   bash test/harness.sh bash bench/quick_write.sh
# The method of bench.sh's write group, shorter: three 100k-row tables (plain:
# no trigger; floor: watch()'s four statement triggers calling a no-op C
# function; watched: mlcache.watch() with two templates), QW_ROUNDS (default
# 3) pgbench runs of QW_SECONDS (default 15) with one client, each
# transaction's script (a single-row UPDATE of one of the tables) drawn at
# random, so that the machine's drift falls on all three alike.  Prints each
# round's tps per table (1 / mean latency from pgbench's per-transaction log)
# and the overheads floor/plain and watched/floor, and the CPU time the
# mlcache worker (hygiene: the Redis clean-up after each watched commit)
# spent per watched commit, and redis-server's, from their /proc/PID/stat
# (utime + stime, in clock ticks).  QW_SET="name = value; ..." is applied with ALTER SYSTEM and a
# reload first (as in bench/quick_bulk.sh).  Used to compare two builds by
# installing each in turn.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
# shellcheck source=bench/write_tables.sh
. bench/write_tables.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
rounds=${QW_ROUNDS:-3}
secs=${QW_SECONDS:-15}
db=mlcache_qw
w=$MLCACHE_TMP/qw
mkdir -p "$w"
chmod 755 "$w"
psql() { psql_db "$db" "$@"; }
fresh_db "$db" 2>/dev/null
bench_settings "${QW_SET:-}"
psql -c 'CREATE EXTENSION mlcache' >/dev/null
bench_write_tables "$db" "$w"
for t in plain floor watched; do
	printf '\\set id random(1, 100000)\nUPDATE sub_%s SET score = score + 1 WHERE id = :id;\n' "$t" >"$w/upd_$t.sql"
done
psql -c CHECKPOINT
echo "pgbench -n -f upd_plain.sql -f upd_floor.sql -f upd_watched.sql -c 1 -j 1 -T $secs -l $db   # \\set id random(1, 100000) UPDATE sub_<variant> SET score = score + 1 WHERE id = :id"
wpid=$(mlcache_worker_pid "$db")
rpid=$(redis_pid)
hz=$(getconf CLK_TCK)
for ((r = 1; r <= rounds; r++)); do
	rm -f "$w"/log*
	t0=$(cpu_ticks "$wpid") r0=$(cpu_ticks "$rpid")
	pgbench -n -f "$w/upd_plain.sql" -f "$w/upd_floor.sql" -f "$w/upd_watched.sql" -c 1 -j 1 -T "$secs" \
		-l --log-prefix="$w/log" "$db" >/dev/null 2>&1
	# log line: client transaction latency_us script_no epoch epoch_us
	t1=$(cpu_ticks "$wpid") r1=$(cpu_ticks "$rpid")
	cat "$w"/log* | awk -v r="$r" -v wt=$((t1 - t0)) -v rt=$((r1 - r0)) -v hz="$hz" '{c[$4]++; s[$4] += $3}
		END {p = 1e6 * c[0] / s[0]; f = 1e6 * c[1] / s[1]; x = 1e6 * c[2] / s[2];
		     printf "round %d plain=%.1f floor=%.1f watched=%.1f tps (n=%d/%d/%d) floor/plain overhead=%.2f%% watched/floor overhead=%.2f%% worker=%.1f redis=%.1f us/watched commit\n",
		            r, p, f, x, c[0], c[1], c[2], (1 - f / p) * 100, (1 - x / f) * 100, c[2] ? wt / hz * 1e6 / c[2] : 0, c[2] ? rt / hz * 1e6 / c[2] : 0}'
done
