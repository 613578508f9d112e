#!/usr/bin/env bash
# test/schedule.sh: mlcache.schedule_maintenance() registers its five jobs in
# pg_cron (preloaded by the test server, cron.database_name = postgres),
# idempotently, and a job's command runs by hand.  Run under test/harness.sh.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
psql() { psql_db postgres "$@"; }
fail() { echo "schedule: $*" >&2; exit 1; }

psql -c 'CREATE EXTENSION IF NOT EXISTS pg_cron' -c 'CREATE EXTENSION IF NOT EXISTS mlcache'
first=$(psql -c "SELECT string_agg(job || ' ' || schedule || ' ' || jobid, ', ' ORDER BY job) FROM mlcache.schedule_maintenance()")
second=$(psql -c "SELECT string_agg(job || ' ' || schedule || ' ' || jobid, ', ' ORDER BY job) FROM mlcache.schedule_maintenance()")
[[ $first == "$second" ]] || fail "not idempotent: '$first' then '$second'"
jobs=$(psql -c "SELECT string_agg(jobname || '=' || schedule || '=' || command, '; ' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'mlcache-%'")
expected="mlcache-clean-orphans-postgres=0 */12 * * *=SELECT mlcache.clean_orphans(); mlcache-refresh-views-postgres=*/30 * * * *=SELECT mlcache.refresh_views(); mlcache-snapshot-stats-postgres=0 */6 * * *=SELECT mlcache.snapshot_stats(); mlcache-sweep-postgres=0 * * * *=SELECT mlcache.sweep(); mlcache-warm-postgres=0 7 * * *=SELECT mlcache.warm()"
[[ $jobs == "$expected" ]] || fail "jobs are '$jobs'"
# Run one job's command by hand, as pg_cron would.
cmd=$(psql -c "SELECT command FROM cron.job WHERE jobname = 'mlcache-snapshot-stats-postgres'")
before=$(psql -c 'SELECT count(*) FROM mlcache.stats_history')
psql -c "$cmd" >/dev/null
after=$(psql -c 'SELECT count(*) FROM mlcache.stats_history')
((after == before + 1)) || fail "the snapshot job did not add a snapshot"
echo "schedule: five maintenance jobs in pg_cron, idempotent; the snapshot job ran by hand"
