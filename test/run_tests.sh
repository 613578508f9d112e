#!/usr/bin/env bash
# test/run_tests.sh: every mlcache test phase, run inside test/harness.sh (as `make test` does).
#
#   a. regress + isolation      make installcheck (REGRESS, then ISOLATION)
#   b. Redis down               Redis stopped, make installcheck REGRESS="$(REGRESS_DOWN)"; Redis restarted
#   c. not preloaded            a second cluster ($MLCACHE_TMP/noload, port 55433) runs sql/noload.sql
#   e. shell                    the randomized coherence checker, the late Redis clean-up, damaged
#                               Redis values, crash restart and an old Redis snapshot, a hot standby,
#                               the pg_cron schedule, the Django example's own test suite, and the
#                               fault-injection suite's short form (test/faults/run.sh --short)
#   d. pgTAP                    pg_prove on test/pgtap/*.sql in database mlcache_tap; its summary is the
#                               last output, so earlier failures are announced before it starts
# A failed phase does not stop the others; the exit status is 1 if any failed.
# MLCACHE_PHASE_TIMEOUT (seconds, default 1200) bounds each make/pg_prove run.
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"

limit=${MLCACHE_PHASE_TIMEOUT:-1200}
failed=()
# shellcheck source=test/lib.sh
. test/lib.sh
header() { printf '\n==== mlcache test phase %s ====\n' "$*"; }
# makevar NAME: a variable's value as the Makefile sets it.
# shellcheck disable=SC2016 # $($*) is for make, not the shell
makevar() { make -s --no-print-directory --eval='mlcache-print-%: ; @echo $($*)' "mlcache-print-$1"; }
# any_file PATTERN NAMES...: true if PATTERN with % replaced by some NAME is a file.
any_file() {
	local pat=$1 n
	shift
	for n in "$@"; do [[ -f ${pat//%/$n} ]] && return 0; done
	return 1
}
# installcheck LABEL [MAKE ARGS...]: make installcheck; on failure show the diffs and record LABEL.
installcheck() {
	local label=$1 f rc
	shift
	rm -f regression.diffs output_iso/regression.diffs
	timeout -k 30 "$limit" make -s --no-print-directory installcheck "$@"
	rc=$?
	((rc == 0)) && return 0
	((rc != 124)) || echo "mlcache: phase $label timed out after ${limit}s" >&2
	for f in regression.diffs output_iso/regression.diffs; do
		[[ -s $f ]] && printf '\n---- %s ----\n' "$f" && cat "$f"
	done
	failed+=("$label")
}

# ---- a ----
header "a: regress + isolation (make installcheck)"
read -ra regress <<<"$(makevar REGRESS)"
read -ra isolation <<<"$(makevar ISOLATION)"
if any_file sql/%.sql "${regress[@]}" || any_file test/isolation/specs/%.spec "${isolation[@]}"; then
	installcheck a
else
	echo "skipped: no sql/*.sql for REGRESS and no test/isolation/specs/*.spec"
fi

# ---- b ----
header "b: regress with Redis stopped (REGRESS_DOWN)"
read -ra down <<<"$(makevar REGRESS_DOWN)"
if any_file sql/%.sql "${down[@]}"; then
	# Let the worker deliver what earlier phases queued, so that this phase's
	# first read is the one that finds Redis gone (bounded: 10 s).
	drained() {
		[[ $(psql -X -t -A -d postgres -c "SELECT coalesce(sum(value) FILTER (WHERE counter = 'hygiene_queued')
			- sum(value) FILTER (WHERE counter IN ('hygiene_done', 'hygiene_dropped')), 0)
			FROM mlcache.counters()" 2>/dev/null) == 0 ]]
	}
	wait_for 10 drained
	if redis_stop; then
		installcheck b REGRESS="${down[*]}" ISOLATION=
	else
		failed+=(b)
	fi
	redis_start || failed+=(b-restart-redis)
else
	echo "skipped: no sql/*.sql for REGRESS_DOWN"
fi

# ---- c ----
header "c: not preloaded (second cluster on port 55433)"
if [[ -f sql/noload.sql ]]; then
	noload=$MLCACHE_TMP/noload
	if pg_init "$noload" 55433 no && pg_start "$noload"; then
		PGPORT=55433 installcheck c REGRESS=noload ISOLATION=
	else
		failed+=(c)
	fi
	pg_stop "$noload" || failed+=(c-stop)
else
	echo "skipped: no sql/noload.sql"
fi

# ---- e ----
header "e: concurrent coherence checker, Redis faults, late clean-up"
# shell LABEL CMD...: run a test program, recording LABEL if it fails.
shell() {
	local label=$1
	shift
	timeout -k 30 "$limit" "$@" || failed+=("$label")
}
shell e-coherence /usr/bin/python3 test/coherence_check.py --seconds 6
shell e-hygiene-late bash test/hygiene_late.sh
shell e-publish bash test/publish.sh
shell e-hygiene-outage bash test/hygiene_outage.sh
shell e-scan-steps bash test/scan_steps.sh
shell e-redis-spin bash test/redis_spin.sh
shell e-redis-values bash test/redis_values.sh
shell e-standby bash test/standby.sh
shell e-late-inval bash test/late_inval.sh
shell e-ha-sentinel bash test/ha_sentinel.sh
shell e-subscriber bash test/subscriber.sh
shell e-shared-redis bash test/shared_redis.sh
shell e-schedule bash test/schedule.sh
shell e-django bash test/django.sh
shell e-upgrade bash test/upgrade.sh
shell e-include-cycles /usr/bin/python3 test/include_cycles.py
# These kill Redis, which can leave the circuit breaker open for a while.
shell e-crash-restart bash test/crash_restart.sh
shell e-faults bash test/faults/run.sh --short

# ---- d ----
header "d: pgTAP (pg_prove)"
shopt -s nullglob
tap=(test/pgtap/*.sql)
if ((${#tap[@]} == 0)); then
	echo "skipped: no test/pgtap/*.sql"
	((${#failed[@]} == 0)) || echo "mlcache: failed phases: ${failed[*]}" >&2
	((${#failed[@]} == 0))
	exit
fi
if ! { dropdb --if-exists mlcache_tap 2>/dev/null; createdb mlcache_tap &&
	psql -X -q -v ON_ERROR_STOP=1 -d mlcache_tap \
		-c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION IF NOT EXISTS mlcache_lms CASCADE'; }; then
	failed+=(d-setup)
fi
((${#failed[@]} == 0)) || echo "mlcache: earlier phases failed: ${failed[*]} (exit status will be 1)" >&2
# Nothing is printed after pg_prove on success: its summary closes the run.
timeout -k 30 "$limit" pg_prove -f -d mlcache_tap "${tap[@]}" || exit 1
((${#failed[@]} == 0))
