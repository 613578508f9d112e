#!/usr/bin/env bash
# bench/tp_track.sh: the throughput group with and without key tracking, a
# remove-one-step variant run inside test/harness.sh:
#   bash test/harness.sh bash bench/tp_track.sh
# Runs bench/throughput.sh (TP_CLIENTS, default "1 16 32") with the default
# mlcache.track_max, then restarts the server with mlcache.track_max = 0
# (mlcache_track returns at once: no shared lock, no spinlock on a read) and
# runs it again.  The difference between the two runs' ratios is what key
# tracking costs the read path at each client count.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
export TP_CLIENTS=${TP_CLIENTS:-1 16 32}
echo "== mlcache.track_max = $(psql_db postgres -c 'SHOW mlcache.track_max')"
TP_OUT=$MLCACHE_TMP/tp_on.txt bash bench/throughput.sh
psql_db postgres -c 'ALTER SYSTEM SET mlcache.track_max = 0'
pg_restart
echo "== mlcache.track_max = $(psql_db postgres -c 'SHOW mlcache.track_max')"
TP_OUT=$MLCACHE_TMP/tp_off.txt bash bench/throughput.sh
