#!/usr/bin/env bash
# A throwaway probe kept with its results; run from the repository root as
#   bash test/harness.sh bash bench/results/2026-12-06-scan/scanprobe.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
. test/lib.sh
db=mlcache_qs
fresh_db "$db" >/dev/null
psql_db "$db" -c 'CREATE EXTENSION mlcache' >/dev/null
w=$MLCACHE_TMP/qs; mkdir -p $w
printf "SELECT mlcache.invalidate_pattern('analytics:student:456:*');\n" >"$w/same.sql"
rcli FLUSHALL >/dev/null
rcli EVAL "for i = 1, tonumber(ARGV[1]) do redis.call('SET', ARGV[2] .. 'analytics:student:' .. (i % 1000) .. ':k' .. i, 'x') end" 0 1000000 "$(mlcache_ns "$db")" >/dev/null
rcli CONFIG RESETSTAT >/dev/null
t0=$(date +%s.%N)
rcli INFO commandstats | grep -i "scan\|eval" || true
for r in 1 2 3 4; do
  pgbench -n -M simple -f "$w/same.sql" -c 1 -j 1 -T 4 "$db" 2>/dev/null | grep "^tps"
  echo "t=$(awk -v a=$t0 -v b=$(date +%s.%N) 'BEGIN{print b-a}')"; rcli INFO commandstats | grep -i "cmdstat_scan" || true
done
sleep 3
echo "t=$(awk -v a=$t0 -v b=$(date +%s.%N) 'BEGIN{print b-a}')"; rcli INFO commandstats | grep -i "cmdstat_scan" || true
psql_db "$db" -c "SELECT string_agg(counter || '=' || value, ' ') FROM mlcache.counters() WHERE counter LIKE 'hygiene_%' OR counter = 'redis_unlinked'"
