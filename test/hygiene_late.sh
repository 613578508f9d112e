#!/usr/bin/env bash
# test/hygiene_late.sh: a late Redis clean-up must not delete a value stored
# after the invalidating commit.  Holds the mlcache worker with SIGSTOP while
# a key is invalidated and refilled, then lets it run.  Run under
# test/harness.sh; exits non-zero on failure.
set -euo pipefail
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
db=mlcache_hygiene
psql() { psql_db "$db" "$@"; }

fresh_db "$db"
psql -c 'CREATE EXTENSION mlcache'
pid=$(mlcache_worker_pid "$db")
[[ -n $pid ]] || { echo "hygiene_late: no mlcache worker running" >&2; exit 1; }
counter() { psql -c "SELECT value FROM mlcache.counters() WHERE counter = '$1'"; }

psql -c "SELECT mlcache.get('late:k', 'SELECT 1')" >/dev/null
kill -STOP "$pid"
on_exit quiet kill -CONT "$pid"
queued=$(counter hygiene_queued)
psql -c "SELECT mlcache.invalidate('late:k')" >/dev/null
# Refill while the worker is held: the fresh value is in Redis before the
# clean-up of the commit that preceded it runs.
level=$(psql -c "SELECT mlcache.get('late:k', 'SELECT 2'), mlcache.last_level()")
[[ $level == "2|compute" ]] || { echo "hygiene_late: refill gave '$level'" >&2; exit 1; }
kill -CONT "$pid"
delivered() { (($(counter hygiene_done) + $(counter hygiene_dropped) >= queued + 1)); }
wait_for 10 delivered || true
(($(counter hygiene_done) >= queued + 1)) || { echo "hygiene_late: worker did not deliver" >&2; exit 1; }
level=$(psql -c "SELECT mlcache.get('late:k', 'SELECT 2'), mlcache.last_level()")
if [[ $level != "2|l2" ]]; then
	echo "hygiene_late: after the late clean-up a new session read '$level', expected '2|l2'" >&2
	exit 1
fi
echo "hygiene_late: a value stored after the invalidating commit survived a late clean-up"
