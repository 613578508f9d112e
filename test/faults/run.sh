#!/usr/bin/env bash
# test/faults/run.sh [--short] [--seconds N] [--results FILE] [--only CASE...]:
# mlcache's fault-injection suite.  Run it under test/harness.sh (make faults
# does: bash test/harness.sh bash test/faults/run.sh).
#
# One case per fault.  Each runs the concurrent checker test/coherence_check.py
# (3 writers commit or roll back increments of a watched table, 4 readers read
# cached sums; every read must lie between the commits that had returned
# before it began and those issued by its end) while its fault happens, in a
# database of its own, and fails on any stale read, any ERROR surfaced to a
# reader, any lost commit (beyond what a PostgreSQL crash itself loses with
# synchronous_commit = off), a final cached read that differs from the table,
# or a hang (every wait is bounded; each case is also killed after its time
# plus 120 s).  Each case prints one result line; at the end a markdown table
# goes to test/faults/results.md (a complete full run) or
# $MLCACHE_TMP/faults/results.md (--short, --only), or to --results FILE.
# test/faults/slowdowns.py measures, separately, the reader slowdowns found
# while writing this suite (breaker backoff, single-flight during outages).
#
#   (default)  the full form: 12 s per case, plus a no-fault baseline (a few minutes)
#   --short    the quick form make test runs: 3 s per case (under a minute).  To
#              fit, it runs with mlcache.redis_retry_interval = 100ms (default 1 s),
#              so that the breaker's backoff after one case does not eat the next
#              case's time; the full form runs with the defaults.
#   --only     run only the named cases (numbers or fault modes)
#
#   1 stop                  Redis SIGSTOPped past the command timeout, then SIGCONT
#   2 kill                  Redis killed (SIGKILL) and restarted empty
#   3 rdb                   Redis restarted from an RDB snapshot taken before some writes
#   4 flushall              FLUSHALL, repeatedly
#   5a maxmemory-random     maxmemory 1mb, allkeys-random; then just above the memory in use
#   5b maxmemory-noeviction maxmemory 1mb, noeviction: SETs refused with OOM
#   6 client-kill           CLIENT KILL TYPE normal every 150 ms
#   7 foreign               foreign values (garbage, other types, other keys' and older
#                           envelopes, truncated, bit-flipped) under mlcache keys
#   8 crash                 a writer's backend killed with SIGKILL mid-transaction:
#                           crash restart; the checker reconnects and counts per server life
#   9 cancel                pg_cancel_backend and statement_timeout while Redis is stopped:
#                           each read answered or cancelled (57014) within 2 s
#   10 worker-kill          the mlcache worker (SIGSTOPped with clean-ups pending) killed
#                           with SIGKILL: crash restart, the worker and its clean-ups resume
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=test/lib.sh
. "$root/test/lib.sh"
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh (make faults)}"

short=0
seconds=
seconds_arg=
results=
only=()
while (($#)); do
	case $1 in
	--short) short=1 ;;
	--seconds) seconds=$2 seconds_arg=1; shift ;;
	--results) results=$2; shift ;;
	--only) shift; only+=("$@"); break ;;
	*) echo "usage: $0 [--short] [--seconds N] [--results FILE] [--only CASE...]" >&2; exit 2 ;;
	esac
	shift
done
if ((short)); then
	seconds=${seconds:-3} drain=3 retry=100ms
	results=${results:-$MLCACHE_TMP/faults/results.md}
	cmd="bash test/harness.sh bash test/faults/run.sh --short${seconds_arg:+ --seconds $seconds}"
else
	seconds=${seconds:-12} drain=15 retry=
	# Only a complete full run replaces the committed table.
	((${#only[@]})) && results=${results:-$MLCACHE_TMP/faults/results.md}
	results=${results:-$here/results.md}
	cmd="make faults"
	[[ -n $seconds_arg ]] && cmd="bash test/harness.sh bash test/faults/run.sh --seconds $seconds"
fi
out=$MLCACHE_TMP/faults
mkdir -p "$out"
rm -f "$out"/*.json

PY=/usr/bin/python3 # the one that sees Debian's python3-psycopg2
MLCACHE_RCLI_TIMEOUT=5 # rcli: no case may hang on a stopped Redis
pg_q() { psql_db postgres "$@"; }
conf=$MLCACHE_PGDATA/mlcache_test.conf

# Put the servers back in shape between cases, whatever the last one left.
restore() {
	quiet redis_signal CONT || true
	rm -f "$MLCACHE_TMP/redis/dump.rdb"
	redis_start || return 1
	rcli CONFIG SET maxmemory 0 >/dev/null
	rcli CONFIG SET maxmemory-policy noeviction >/dev/null
	# bounded: 30 s (a crash restart may still be running)
	wait_for 30 quiet pg_q -c 'SELECT 1' && return 0
	echo "faults: PostgreSQL does not answer" >&2
	return 1
}

# --short: a shorter breaker backoff, in mlcache_test.conf (kept as it was found).
had_conf=0
[[ -e $conf ]] && had_conf=1 && cp -p "$conf" "$out/mlcache_test.conf.orig"
cleanup() {
	if [[ -n $retry ]]; then
		if ((had_conf)); then cp -p "$out/mlcache_test.conf.orig" "$conf"; else rm -f "$conf"; fi
		quiet pg_q -c 'SELECT pg_reload_conf()' || true
	fi
}
on_exit cleanup
if [[ -n $retry ]]; then
	echo "mlcache.redis_retry_interval = $retry   # test/faults/run.sh --short" >>"$conf"
	chown postgres "$conf" 2>/dev/null || true
	pg_q -c 'SELECT pg_reload_conf()' >/dev/null
fi

cases=(
	"1 stop" "2 kill" "3 rdb" "4 flushall" "5a maxmemory-random" "5b maxmemory-noeviction"
	"6 client-kill" "7 foreign" "8 crash" "9 cancel" "10 worker-kill"
)
((short)) || cases=("0 none" "${cases[@]}")

selected() {
	local o
	((${#only[@]})) || return 0
	for o in "${only[@]}"; do [[ $o == "$1" || $o == "$2" ]] && return 0; done
	return 1
}

echo "mlcache fault injection: ${#cases[@]} cases, $seconds s each${retry:+, mlcache.redis_retry_interval = $retry}"
failed=()
files=()
start=$SECONDS
for c in "${cases[@]}"; do
	read -r label fault <<<"$c"
	selected "$label" "$fault" || continue
	printf '\n---- case %s: %s ----\n' "$label" "$fault"
	if ! restore; then
		failed+=("$label")
		continue
	fi
	json=$out/$label.json
	timeout -k 10 $((${seconds%.*} + 120)) "$PY" "$root/test/coherence_check.py" --fault "$fault" \
		--seconds "$seconds" --dbname "mlcache_fault_${label}" --label "$label" \
		--drain-seconds "$drain" --result "$json" 2>&1 | sed 's/^/  /'
	rc=${PIPESTATUS[0]}
	if [[ -s $json ]]; then
		files+=("$json")
		"$PY" "$here/report.py" line "$json"
	else
		echo "case $label $fault: no result (exit status $rc)"
	fi
	((rc == 0)) || failed+=("$label")
done
restore >/dev/null 2>&1 || true

printf '\n==== results (%d s) ====\n' $((SECONDS - start))
if ((${#files[@]})); then
	"$PY" "$here/report.py" table "$results" "$cmd" "${files[@]}"
	echo "written to $results"
fi
if ((${#failed[@]})); then
	echo "faults: FAILED cases: ${failed[*]}" >&2
	exit 1
fi
echo "faults: every case passed: no stale read, no ERROR to a reader, nothing lost"
