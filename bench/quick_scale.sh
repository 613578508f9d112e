#!/usr/bin/env bash
# bench/quick_scale.sh: where the CPU goes while make bench's scale group
# runs, inside test/harness.sh:
#   bash test/harness.sh bash bench/quick_scale.sh
# For 1,000 and then 1,000,000 keys in Redis (filled as bench.sh's scale
# group does), QS_ROUNDS (default 3) pgbench runs of QS_SECONDS (default 5),
# one client, of SELECT mlcache.invalidate_pattern('analytics:student:456:*')
# (one prefix, again and again) and then of the same with a random student
# of the 1,000 (many prefixes, as watched commits of many students give);
# for each run: its tps, and the CPU the mlcache worker and redis-server
# spent meanwhile (from /proc/PID/stat), as a share of one core and per
# invalidation.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
rounds=${QS_ROUNDS:-3}
secs=${QS_SECONDS:-5}
db=mlcache_qs
fresh_db "$db"
psql_db "$db" -c 'CREATE EXTENSION mlcache' >/dev/null
w=$MLCACHE_TMP/qs
mkdir -p "$w"
printf "SELECT mlcache.invalidate_pattern('analytics:student:456:*');\n" >"$w/same.sql"
printf "\\set s random(0, 999)\nSELECT mlcache.invalidate_pattern('analytics:student:' || :s || ':*');\n" >"$w/distinct.sql"
worker=$(mlcache_worker_pid "$db")
redis=$(redis_pid)
hz=$(getconf CLK_TCK)
for f in same distinct; do
	echo "pgbench -n -M simple -f $f.sql -c 1 -j 1 -T $secs $db   # $(tr '\n' ' ' <"$w/$f.sql")"
done
for n in 1000 1000000; do
	rcli FLUSHALL >/dev/null
	rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', ARGV[2] .. 'analytics:student:' .. (i % 1000) .. ':k' .. i, 'x') end" \
		0 "$n" "$(mlcache_ns "$db")" >/dev/null
	echo "keys in Redis: $(rcli DBSIZE)"
	for ((r = 1; r <= 2 * rounds; r++)); do
		f=same
		((r > rounds)) && f=distinct
		w0=$(cpu_ticks "$worker") r0=$(cpu_ticks "$redis") t0=$(date +%s.%N)
		out=$(pgbench -n -M simple -f "$w/$f.sql" -c 1 -j 1 -T "$secs" "$db" 2>/dev/null)
		w1=$(cpu_ticks "$worker") r1=$(cpu_ticks "$redis") t1=$(date +%s.%N)
		tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
		n_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
		awk -v n="$n" -v f="$f" -v r="$r" -v tps="$tps" -v tx="$n_tx" -v w="$((w1 - w0))" -v rd="$((r1 - r0))" -v hz="$hz" -v el="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
			'BEGIN {printf "%d keys, %s prefix, round %d: %.1f tps; worker %.0f%% of a core (%.1f us per invalidation), redis-server %.0f%% (%.1f us)\n",
				n, f, r, tps, 100 * w / hz / el, 1e6 * w / hz / tx, 100 * rd / hz / el, 1e6 * rd / hz / tx}'
	done
done
