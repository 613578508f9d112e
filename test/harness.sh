#!/usr/bin/env bash
# test/harness.sh CMD [ARGS...]: run CMD with throwaway Redis and PostgreSQL servers up, then always tear them down.
#
# CMD gets: MLCACHE_TMP (private temp dir), PGHOST=$MLCACHE_TMP, PGPORT=55432, PGUSER=postgres,
# PGDATABASE=postgres, MLCACHE_PGDATA, MLCACHE_REDIS_SOCKET; test/lib.sh drives the servers.
# MLCACHE_KEEP_TMP=1 keeps the temp dir; MLCACHE_PRELOAD= (empty) skips preloading mlcache.
# The exit status is CMD's (130/143 on SIGINT/SIGTERM); on failure the server logs' tails go to stderr.
# shellcheck disable=SC2317 # functions reached only through the EXIT trap are not dead code
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"

MLCACHE_TMP=$(mktemp -d /tmp/mlcache.XXXXXX) || exit 1
chmod 755 "$MLCACHE_TMP" # postgres (server) and redis must reach the sockets here
((EUID != 0)) || chown postgres:postgres "$MLCACHE_TMP"
export MLCACHE_TMP PGHOST=$MLCACHE_TMP PGPORT=55432 PGUSER=postgres PGDATABASE=postgres
export MLCACHE_PGDATA=$MLCACHE_TMP/pgdata MLCACHE_REDIS_SOCKET=$MLCACHE_TMP/redis.sock
unset PGHOSTADDR PGSERVICE PGOPTIONS PGDATA

child=
# cleanup: on_exit runs it on every exit path (signals become exit 130/143/129).
cleanup() {
	local rc=$lib_exit_rc pids f
	if [[ -n $child ]] && alive "$child"; then
		# CMD is still running (we were signalled): SIGTERM its whole tree, SIGKILL after 10 s.
		pids=$(proc_tree "$child")
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null
		# shellcheck disable=SC2086
		wait_for 10 all_dead $pids
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
	fi
	if ((rc != 0)); then
		for f in "$MLCACHE_TMP"/*/server.log "$MLCACHE_TMP"/redis/redis.log; do
			[[ -s $f ]] || continue
			printf '\n==== last 40 lines of %s ====\n' "$f" >&2
			tail -n 40 "$f" >&2
		done
	fi
	pg_stop_all
	redis_stop
	if [[ ${MLCACHE_KEEP_TMP:-} == 1 ]]; then
		echo "harness.sh: kept $MLCACHE_TMP" >&2
	else
		rm -rf --one-file-system "$MLCACHE_TMP"
	fi
}
on_exit cleanup

redis_start || exit 1
pg_init || exit 1
pg_start || exit 1

# CMD runs in the background so that a signal to this script is handled at once; it keeps our
# stdin (if any) and gets default SIGINT/SIGQUIT back (bash ignores them in background jobs).
if [[ -e /proc/$$/fd/0 ]]; then exec 3<&0; else exec 3</dev/null; fi
env --default-signal=INT,QUIT -- "$@" <&3 3<&- &
child=$!
exec 3<&-
wait "$child"
exit $?
