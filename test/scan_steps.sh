#!/usr/bin/env bash
# test/scan_steps.sh: the worker's stepped SCAN passes over a large keyspace.
# (1) A pass runs its steps back to back, whatever mlcache.hygiene_delay:
# under a 10 s delay and a steady flow of commits, a pass over 200,000 keys
# ends within 8 s of starting (1-2 s here; when each of its 13 steps waited
# for the gather first, it took 10 s).  (2) A pass whose Redis connection changes in the
# middle (here Redis closes it, CLIENT KILL, and the worker reconnects
# without a failure; in production also a restarted Redis or a new master
# found through Sentinel) starts over instead of resuming with a
# cursor that only the old connection's server understood: health()'s
# worker.scan_restarts counts it, and every key under the prefix is still
# removed.  Run under test/harness.sh; exits non-zero on failure.
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=mlcache_steps
psql() { psql_db "$db" "$@"; }
fail() { echo "scan_steps: $*" >&2; exit 1; }
worker() { psql -c "SELECT (mlcache.health()->'worker'->>'$1')::bigint"; }
waiting() { (($(worker scans_waiting) > 0)); }
idle() { (($(worker scans_waiting) == 0)); }
settings() { psql -c "ALTER SYSTEM $1" -c "SELECT pg_reload_conf()" >/dev/null; }
# fill PREFIX N: N keys PREFIX1..PREFIXN in Redis (not envelopes: the pass
# removes them), 100,000 per Lua call.
fill() {
	local from
	for ((from = 1; from <= $2; from += 100000)); do
		rcli EVAL "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do redis.call('SET', ARGV[1] .. i, 'x') end" \
			0 "$1" "$from" "$((from + 99999 < $2 ? from + 99999 : $2))" >/dev/null
	done
}
left() { rcli --scan --pattern "$1*" | wc -l; }

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache'
ns=$(mlcache_ns "$db")
on_exit settings "RESET mlcache.hygiene_delay"

# (1) 200,000 keys, a 10 s delay, commits flowing throughout.
settings "SET mlcache.hygiene_delay = 10000"
fill "${ns}steps:a:" 200000
echo "SELECT mlcache.invalidate('steps:noise:' || (random() * 1000)::int);" >"$MLCACHE_TMP/steps_noise.sql"
pgbench -n -M simple -f "$MLCACHE_TMP/steps_noise.sql" -c 1 -j 1 -T 40 "$db" >/dev/null 2>&1 &
noise=$!
on_exit quiet kill "$noise"
sleep 0.5
psql -c "SELECT mlcache.invalidate_pattern('steps:a:*')" >/dev/null
# The pattern reaches the worker with its batch (within the delay), and the
# pass starts at once (the namespace has had none).
wait_for 30 waiting || fail "the pattern did not reach the worker within 30 s"
t0=$SECONDS
wait_for 30 idle || fail "the pass over 200,000 keys did not end within 30 s"
took=$((SECONDS - t0))
kill "$noise" 2>/dev/null || true
n=$(left "${ns}steps:a:")
((n == 0)) || fail "$n of 200,000 keys are left after the pass"
((took <= 8)) || fail "the pass took $took s under a 10 s hygiene_delay: its steps waited for the delay"
echo "scan_steps: a pass over 200,000 keys ran its steps back to back under a 10 s hygiene_delay (${took} s)"
settings "RESET mlcache.hygiene_delay"

# (2) 1,000,000 keys; the connection changes while the pass runs.  No rest
# between passes (mlcache.scan_interval = 0), so that this pass starts at
# once; the connection is closed once it has removed some keys.
settings "SET mlcache.scan_interval = 0"
on_exit settings "RESET mlcache.scan_interval"
fill "${ns}steps:b:" 1000000
restarts0=$(worker scan_restarts)
keys0=$(rcli DBSIZE)
psql -c "SELECT mlcache.invalidate_pattern('steps:b:*')" >/dev/null
under_way() { local k; k=$(rcli DBSIZE); ((k < keys0 - 1000 && k > 100000)); }
wait_for 20 under_way || fail "the pass over 1,000,000 keys was not seen under way within 20 s"
rcli CLIENT KILL TYPE normal >/dev/null
wait_for 60 idle || fail "the pass over 1,000,000 keys did not end within 60 s"
restarts=$(worker scan_restarts)
n=$(left "${ns}steps:b:")
((n == 0)) || fail "$n of 1,000,000 keys are left after the pass"
((restarts > restarts0)) || fail "the pass did not start over when its connection changed (scan_restarts $restarts0 -> $restarts)"
echo "scan_steps: a pass whose connection changed started over ($((restarts - restarts0)) restart) and removed every key"
