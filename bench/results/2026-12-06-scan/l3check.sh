#!/usr/bin/env bash
# A throwaway probe kept with its results; run from the repository root as
#   bash test/harness.sh bash bench/results/2026-12-06-scan/l3check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
. test/lib.sh
db=l3c
fresh_db $db >/dev/null
p() { psql_db $db "$@"; }
p -c 'CREATE EXTENSION mlcache_lms CASCADE' >/dev/null
p -c "SELECT mlcache.lms_create_schema('lms')" >/dev/null
p -c "SELECT mlcache.lms_generate(scale => 1, students_per_campus => ${L3_CAMPUS:-5000})" >/dev/null
p -c "SELECT mlcache.lms_setup('lms')" -c 'VACUUM ANALYZE' >/dev/null
p -c "SELECT mlcache.define('bench_l3', (SELECT query FROM mlcache.definitions WHERE name = 'assignment_stats'), 'bench_l3:{1}', 0, 0, 'lms.mlcache_assignment_stats', ARRAY['assignment_id'])" >/dev/null
views_fresh() { [[ $(p -c "SELECT count(*) FILTER (WHERE state <> 'fresh') FROM mlcache.views") == 0 ]]; }
wait_for 120 views_fresh || true
aid=$(p -c 'SELECT assignment_id FROM lms.submissions GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1')
w=$MLCACHE_TMP/l3c; mkdir -p $w; chmod 777 $w; cd $w
printf "SELECT mlcache.fetch('assignment_stats', %s);\n" $aid > f1.sql
printf "SELECT mlcache.fetch('bench_l3', %s);\n" $aid > f3.sql
printf "SELECT 1;\n" > s1.sql
p -c "SELECT mlcache.fetch('bench_l3', $aid), mlcache.last_level()"
for r in 1 2 3 4; do
  rm -f lg*
  pgbench -n -M simple -f s1.sql -f f1.sql -f f3.sql -T ${L3_SECS:-6} -l --log-prefix=lg $db >/dev/null 2>&1
  cat lg* | awk '{s[$4]+=$3; n[$4]++} END {printf "round: s1 %.0f f1 %.0f f3 %.0f  f3/f1 %.3f\n", 1e6*n[0]/s[0], 1e6*n[1]/s[1], 1e6*n[2]/s[2], (n[2]/s[2])/(n[1]/s[1])}'
done
