#!/usr/bin/env bash
# demo/demo.sh: an LMS dashboard on mlcache's three levels; `make demo` runs it inside
# test/harness.sh (throwaway PostgreSQL and Redis up, PG* and MLCACHE_TMP set).
#
# 1. creates database mlcache_demo with the LMS pack (lms_create_schema, lms_generate, lms_setup)
#    and waits for the L3 views to be fresh; then warms the cache before "peak hours": warm()
#    over lms_setup's warm queries (queued for the worker in batches, progress from
#    mlcache.warm_tasks) and lms_warm_teacher for one teacher;
# 2. runs the dashboard workload (demo/workload.py): reader sessions fetch assignment_stats,
#    analytics_student and analytics_engagement for Zipf-distributed ids while a writer changes
#    grades in bursts; a sample of reads is compared with the live computation;
# 3. prints hit rates (the overall one is mlcache.stats.hit_rate), latencies, mlcache.stats and
#    mlcache.health();
# 4. plots latency by level to demo/results/latency.png (gnuplot).
#
# Knobs: SCALE (default 2, ~50k submissions), DEMO_SECONDS (60), DEMO_READERS (4) and the others
# listed in demo/workload.py.  Exit status 0 on success; 1 if a sampled cached read differed from
# the live computation, a session failed or health() is not ok.
set -euo pipefail
: "${PGHOST:?is not set: run this with make demo (test/harness.sh)}"
: "${MLCACHE_TMP:?is not set: run this with make demo (test/harness.sh)}"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/../test/lib.sh"
db=mlcache_demo
python=/usr/bin/python3 # the interpreter that sees Debian's python3-psycopg2
data=$MLCACHE_TMP/demo
png=$here/results/latency.png
start=$SECONDS

if [[ -t 1 && ${TERM:-dumb} != dumb ]]; then bold=$'\033[1m' red=$'\033[31m' reset=$'\033[0m'; else bold='' red='' reset=''; fi
die() { echo "${red}demo: $*${reset}" >&2; exit 1; }
command -v gnuplot >/dev/null || die "gnuplot is missing: apt-get install -y gnuplot-nox"
"$python" -c 'import psycopg2' 2>/dev/null || die "psycopg2 is missing: apt-get install -y python3-psycopg2"

echo "${bold}mlcache demo: an LMS dashboard reading through L1 (backend memory), L2 (Redis) and L3 (materialized views)${reset}"
echo "PostgreSQL $(psql -X -At -c 'SHOW server_version'), Redis $(rcli INFO server |
	sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p'), $(nproc) cores; SCALE=${SCALE:-2} DEMO_SECONDS=${DEMO_SECONDS:-60}"

dropdb --if-exists "$db" 2>/dev/null || true
createdb "$db"

rc=0
"$python" "$here/workload.py" "$db" "$data" || rc=$?

if [[ -s $data/meta.gp ]]; then
	echo
	echo "${bold}== 6. Plot${reset}"
	mkdir -p "$here/results"
	if gnuplot -e "datadir='$data'; outfile='$png'" "$here/latency.gnuplot"; then
		echo "   latency by level: $png"
	else
		echo "${red}   gnuplot failed${reset}"
		rc=1
	fi
fi

echo
if ((rc == 0)); then
	echo "${bold}demo finished in $((SECONDS - start)) s${reset}"
else
	echo "${red}${bold}demo FAILED (exit $rc) after $((SECONDS - start)) s${reset}" >&2
fi
exit "$rc"
