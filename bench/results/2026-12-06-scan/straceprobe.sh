#!/usr/bin/env bash
# A throwaway probe kept with its results; run from the repository root as
#   bash test/harness.sh bash bench/results/2026-12-06-scan/straceprobe.sh
# strace -c of the backend serving an L2 hit (Redis on TCP loopback) and of
# one serving pgmemcache memcache_get (memcached on TCP loopback), 3 s each.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
. test/lib.sh
. bench/write_tables.sh
db=postgres
w=$MLCACHE_TMP/sp; mkdir -p $w; chmod 777 $w
psql_db $db -c 'CREATE EXTENSION IF NOT EXISTS mlcache' >/dev/null
rtcp=$((30000 + RANDOM % 10000))
redis_start "$rtcp" "$MLCACHE_TMP/redis_tcp"
on_exit quiet redis_stop "$rtcp" "$MLCACHE_TMP/redis_tcp"
bench_settings "mlcache.redis_socket = ; mlcache.redis_host = 127.0.0.1; mlcache.redis_port = $rtcp"
mcport=$((20000 + RANDOM % 10000))
memcached -l 127.0.0.1 -p "$mcport" -U 0 -u memcache &
on_exit quiet kill "$!"
sleep 0.5
fresh_db mcp >/dev/null
psql_db mcp -c "ALTER DATABASE mcp SET session_preload_libraries = 'pgmemcache'" -c "ALTER DATABASE mcp SET pgmemcache.default_servers = '127.0.0.1:$mcport'" >/dev/null
psql_db mcp -c 'CREATE EXTENSION pgmemcache' >/dev/null
psql_db mcp -c "SELECT memcache_set('bench:peer', '1')" >/dev/null
psql_db $db -c "SELECT mlcache.set('bench:l2v', '1', 0)" >/dev/null
printf "SELECT mlcache.get('bench:l2v', 'SELECT 0', 0);\n" > $w/l2.sql
printf "SELECT memcache_get('bench:peer');\n" > $w/peer.sql
for which in l2 peer; do
  d=$db; [[ $which == peer ]] && d=mcp
  PGAPPNAME=sp_$which pgbench -n -M simple -f $w/$which.sql -c 1 -j 1 -T 6 $d > $w/$which.out 2>&1 & pgpid=$!
  sleep 1
  pid=$(psql_db $d -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'sp_$which'")
  timeout 3 strace -c -f -p $pid -o $w/$which.strace 2>/dev/null || true
  wait $pgpid
  echo "== $which: $(grep '^tps' $w/$which.out)"
  cat $w/$which.strace | head -20
done
