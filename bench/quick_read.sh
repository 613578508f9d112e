#!/usr/bin/env bash
# bench/quick_read.sh: a quick read-path comparison, run inside test/harness.sh:
#   bash test/harness.sh bash bench/quick_read.sh
# QR_ROUNDS (default 5) pgbench runs of QR_SECONDS (default 10), one client,
# simple protocol, each transaction's script drawn at random from:
#   floor   SELECT 1
#   call    SELECT mlcachz.get('bench:l1', 'SELECT 1'): a C function that
#           returns the jsonb 1 (bench/noop_trigger.c), under a name as long
#           as mlcache.get: PostgreSQL's own cost of the call, the floor
#           under any L1 hit
#   l1      SELECT mlcache.get('bench:l1', 'SELECT 1'): an L1 hit
#   l2      SELECT mlcache.get('bench:l2', 'SELECT 1', 0): an L2 hit
#   peer    SELECT memcache_get('bench:peer') of the value 1, if memcached and
#           pgmemcache are installed (then pgmemcache is loaded in every
#           session, whatever script it runs)
# QR_L2_TCP=1 starts a second Redis listening on a TCP loopback port and
# points mlcache at it (ALTER SYSTEM, reload), so that the L2 hit and
# pgmemcache (memcached on TCP loopback) cross the same kind of socket; by
# default mlcache reaches the harness's Redis over a unix socket.
# Interleaved transaction by transaction, the machine's drift (other work,
# frequency changes) falls on every script alike.  Each script's figure is
# 1e6 / its mean latency in us from pgbench's per-transaction log (with one
# client, its throughput); printed per round with the ratios l1/floor,
# l1/call, call/floor, l2/floor and l2/peer, then the ratios' medians.  Used
# to compare two builds by installing each in turn (bench/ab.sh); the ratios
# of one run are the figures, never the raw tps.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
# shellcheck source=bench/write_tables.sh
. bench/write_tables.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
rounds=${QR_ROUNDS:-5}
secs=${QR_SECONDS:-10}
db=postgres
w=$MLCACHE_TMP/qr
mkdir -p "$w"
chmod 755 "$w"
psql_db "$db" -c 'CREATE EXTENSION IF NOT EXISTS mlcache' >/dev/null
if [[ ${QR_L2_TCP:-0} == 1 ]]; then
	rtcp=$((30000 + RANDOM % 10000))
	redis_start "$rtcp" "$MLCACHE_TMP/redis_tcp"
	on_exit quiet redis_stop "$rtcp" "$MLCACHE_TMP/redis_tcp"
	bench_settings "mlcache.redis_socket = ; mlcache.redis_host = 127.0.0.1; mlcache.redis_port = $rtcp"
	echo "L2 over TCP: redis-server on 127.0.0.1:$rtcp"
fi
bench_noop_so "$w"
bench_call_floor "$db" "$w"
printf 'SELECT 1;\n' >"$w/floor.sql"
printf "SELECT mlcachz.get('bench:l1', 'SELECT 1');\n" >"$w/call.sql"
printf "SELECT mlcache.get('bench:l1', 'SELECT 1');\n" >"$w/l1.sql"
printf "SELECT mlcache.get('bench:l2', 'SELECT 1', 0);\n" >"$w/l2.sql"
scripts="floor call l1 l2"
if command -v memcached >/dev/null && [[ -e $(pg_config --sharedir)/extension/pgmemcache.control ]]; then
	mcport=$((20000 + RANDOM % 10000))
	memcached -l 127.0.0.1 -p "$mcport" -U 0 -u memcache &
	on_exit quiet kill "$!"
	mc_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$mcport") 2>/dev/null; }
	wait_for 5 mc_listens || true
	psql_db "$db" -c "ALTER DATABASE $db SET session_preload_libraries = 'pgmemcache'" \
		-c "ALTER DATABASE $db SET pgmemcache.default_servers = '127.0.0.1:$mcport'" >/dev/null
	psql_db "$db" -c 'CREATE EXTENSION IF NOT EXISTS pgmemcache' -c "SELECT memcache_set('bench:peer', '1')" >/dev/null
	printf "SELECT memcache_get('bench:peer');\n" >"$w/peer.sql"
	scripts+=" peer"
fi
args=()
for s in $scripts; do args+=(-f "$w/$s.sql"); done
pgbench -n -M simple "${args[@]}" -T 2 "$db" >/dev/null 2>&1
echo "pgbench -n -M simple $(for s in $scripts; do printf -- '-f %s.sql ' "$s"; done)-c 1 -j 1 -T $secs -l $db   # $(for s in $scripts; do printf '%s: %s ' "$s" "$(cat "$w/$s.sql")"; done)"
: >"$w/rounds"
for ((r = 1; r <= rounds; r++)); do
	rm -f "$w"/log*
	pgbench -n -M simple "${args[@]}" -c 1 -j 1 -T "$secs" -l --log-prefix="$w/log" "$db" >/dev/null 2>&1
	# log line: client transaction latency_us script_no epoch epoch_us
	cat "$w"/log* | awk -v r="$r" -v names="$scripts" 'BEGIN {n = split(names, nm, " ")}
		{c[$4]++; s[$4] += $3}
		END {line = "round " r; for (i = 1; i <= n; i++) line = line " " nm[i] "=" sprintf("%.1f", c[i - 1] ? 1e6 * c[i - 1] / s[i - 1] : 0); print line}' |
		tee -a "$w/rounds"
done
# Each round's ratios, then their medians.
awk '{for (i = 3; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
      printf "ratios round %s: l1/floor=%.3f l1/call=%.3f call/floor=%.3f l2/floor=%.3f", $2, v["l1"] / v["floor"], v["l1"] / v["call"], v["call"] / v["floor"], v["l2"] / v["floor"]
      if ("peer" in v) printf " l2/peer=%.3f", v["l2"] / v["peer"]
      printf "\n"}' "$w/rounds" | tee "$w/ratios"
for k in l1/floor l1/call call/floor l2/floor l2/peer; do
	grep -o " $k=[0-9.]*" "$w/ratios" | cut -d= -f2 | sort -g |
		awk -v k="$k" '{a[NR] = $1} END {if (NR) printf "median %s=%.3f (%d rounds, %s to %s)\n", k, (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2, NR, a[1], a[NR]}'
done
