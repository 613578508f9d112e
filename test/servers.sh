#!/usr/bin/env bash
# test/servers.sh SUBCOMMAND [ARGS]: manage the throwaway Redis and PostgreSQL servers kept under $MLCACHE_TMP.
#
#   start-redis | stop-redis       start (waits for PONG) / SIGTERM, then SIGKILL; removes the socket
#   kill-redis                     SIGKILL: a crash, leaves a stale socket file behind
#   pause-redis | resume-redis     SIGSTOP / SIGCONT: Redis stays connected but never answers
#   init-pg [DIR] [PORT] [PRELOAD] initdb + test settings; PRELOAD=no: empty shared_preload_libraries
#   start-pg | stop-pg | restart-pg [DIR]
#   stop-all-pg                    stop every cluster found under $MLCACHE_TMP
# DIR defaults to $MLCACHE_PGDATA, else $MLCACHE_TMP/pgdata; PORT to $PGPORT, else 55432.
# MLCACHE_PRELOAD (default 'mlcache,pg_cron') is what init-pg preloads; set it empty (MLCACHE_PRELOAD=)
# to run the servers before the mlcache library is built and installed.
# A thin command line over test/lib.sh, where the work is done (scripts that source it call it directly).
# shellcheck disable=SC2119 # test/lib.sh functions take optional arguments
set -euo pipefail

: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
# shellcheck source=test/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
shift || true
case $cmd in
start-redis) redis_start ;;
stop-redis) redis_stop ;;
kill-redis) redis_kill ;;
pause-redis) redis_signal STOP ;;
resume-redis) redis_signal CONT ;;
init-pg) pg_init "$@" ;;
start-pg) pg_start "$@" ;;
stop-pg) pg_stop "$@" ;;
restart-pg) pg_restart "$@" ;;
stop-all-pg) pg_stop_all ;;
*)
	lib_say "usage: servers.sh {start|stop|kill|pause|resume}-redis | init-pg [DIR] [PORT] [PRELOAD] | {start|stop|restart}-pg [DIR] | stop-all-pg"
	exit 1
	;;
esac
