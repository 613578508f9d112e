#!/usr/bin/env bash
# bench/quick_read.sh: a quick read-path comparison, run inside test/harness.sh:
#   bash test/harness.sh bash bench/quick_read.sh
# Five interleaved rounds of 6 s pgbench runs (one client, simple protocol) of
# SELECT 1, a get() L1 hit and a get() L2 hit (l1_ttl 0), printing each
# round's tps. Used to compare two builds by installing each in turn; the
# ratios to SELECT 1 of one run are the figures, never the raw tps.
set -uo pipefail
psql -X -q -c 'CREATE EXTENSION IF NOT EXISTS mlcache' postgres
w=$(mktemp -d)
printf 'SELECT 1;\n' > $w/floor.sql
printf "SELECT mlcache.get('bench:l1', 'SELECT 1');\n" > $w/l1.sql
printf "SELECT mlcache.get('bench:l2', 'SELECT 1', 0);\n" > $w/l2.sql
for s in floor l1 l2; do pgbench -n -f $w/$s.sql -T 2 postgres >/dev/null 2>&1; done
for r in 1 2 3 4 5; do
  line="round $r"
  for s in floor l1 l2; do
    t=$(pgbench -n -f $w/$s.sql -c 1 -j 1 -T 6 postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    line="$line $s=$t"
  done
  echo "$line"
done
