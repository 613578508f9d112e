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
set -euo pipefail

: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
PGBIN=$("${PG_CONFIG:-pg_config}" --bindir)
PGDATA_DEFAULT=${MLCACHE_PGDATA:-$MLCACHE_TMP/pgdata}
REDIS_DIR=$MLCACHE_TMP/redis
REDIS_SOCK=$MLCACHE_TMP/redis.sock
REDIS_PIDFILE=$REDIS_DIR/redis.pid

die() { echo "servers.sh: $*" >&2; exit 1; }

# wait_for SECS CMD...: poll CMD every 0.1 s, for at most SECS seconds and SECS*10 tries.
wait_for() {
	local end=$((SECONDS + $1)) n=$(($1 * 10))
	shift
	while ((n-- > 0 && SECONDS <= end)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# alive PID: the process exists and is not a zombie (PID 1 here may never reap).
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }
dead() { ! alive "$1"; }

# as_pg CMD...: initdb/pg_ctl refuse to run as root, so root runs them as the 'postgres' user.
as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# ---- Redis ----
redis_pid() {
	local pid
	pid=$(cat "$REDIS_PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] &&
		echo "$pid"
}
redis_ping() { [[ $(timeout 2 redis-cli -s "$REDIS_SOCK" PING 2>/dev/null) == PONG ]]; }

start_redis() {
	if redis_pid >/dev/null && redis_ping; then return 0; fi
	mkdir -p "$REDIS_DIR"
	# --port 0: no TCP listener at all, only the unix socket.
	redis-server --port 0 --bind 127.0.0.1 --unixsocket "$REDIS_SOCK" --unixsocketperm 777 \
		--save '' --appendonly no --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" \
		--logfile "$REDIS_DIR/redis.log" --daemonize yes
	wait_for 10 redis_ping && return 0
	tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
	die "redis did not answer PING on $REDIS_SOCK within 10 s"
}

stop_redis() {
	local pid
	if pid=$(redis_pid); then
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true # a paused server must run to see the SIGTERM
		if ! wait_for 10 dead "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_for 5 dead "$pid" || die "redis (pid $pid) survived SIGKILL"
		fi
	fi
	rm -f "$REDIS_PIDFILE" "$REDIS_SOCK"
}

kill_redis() {
	local pid
	pid=$(redis_pid) || die "redis is not running"
	kill -KILL "$pid"
	wait_for 5 dead "$pid" || die "redis (pid $pid) survived SIGKILL"
	rm -f "$REDIS_PIDFILE"
}

signal_redis() {
	local pid
	pid=$(redis_pid) || die "redis is not running"
	kill "-$1" "$pid"
}

# ---- PostgreSQL ----
init_pg() {
	local dir=${1:-$PGDATA_DEFAULT} port=${2:-${PGPORT:-55432}} preload=${3:-yes} log
	case $preload in
	no) preload= ;;
	yes) preload=${MLCACHE_PRELOAD-mlcache,pg_cron} ;;
	esac
	[[ ! -e $dir/PG_VERSION ]] || die "$dir is already initialized"
	mkdir -p "$dir"
	chmod 700 "$dir"
	((EUID != 0)) || chown postgres:postgres "$dir"
	log=$MLCACHE_TMP/initdb.$(basename "$dir").log
	if ! as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$log" 2>&1; then
		cat "$log" >&2
		die "initdb failed for $dir"
	fi
	cat >>"$dir/postgresql.conf" <<-EOF

		# ---- mlcache test settings (test/servers.sh) ----
		listen_addresses = ''
		unix_socket_directories = '$MLCACHE_TMP'
		port = $port
		shared_preload_libraries = '$preload'
		mlcache.redis_socket = '$REDIS_SOCK'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 60
		max_prepared_transactions = 10
		logging_collector = off
		log_min_messages = warning
		# tests may write extra settings here, then reload or restart-pg
		cron.database_name = 'postgres'
		include_if_exists = 'mlcache_test.conf'
	EOF
}

pg_running() { as_pg "$PGBIN/pg_ctl" status -D "$1" >/dev/null 2>&1; }

start_pg() {
	local dir=${1:-$PGDATA_DEFAULT}
	[[ -e $dir/PG_VERSION ]] || die "$dir is not initialized (run init-pg first)"
	! pg_running "$dir" || return 0
	as_pg "$PGBIN/pg_ctl" start -D "$dir" -w -t 60 -s -l "$dir/server.log" && return 0
	tail -n 40 "$dir/server.log" >&2 || true
	die "PostgreSQL in $dir did not start"
}

restart_pg() {
	local dir=${1:-$PGDATA_DEFAULT}
	as_pg "$PGBIN/pg_ctl" restart -D "$dir" -m fast -w -t 60 -s -l "$dir/server.log" && return 0
	tail -n 40 "$dir/server.log" >&2 || true
	die "PostgreSQL in $dir did not restart"
}

# stop_pg [DIR]: fast shutdown, then immediate, then SIGKILL the postmaster and its children.
stop_pg() {
	local dir=${1:-$PGDATA_DEFAULT} pid
	pid=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
	as_pg "$PGBIN/pg_ctl" stop -D "$dir" -m fast -w -t 30 -s 2>/dev/null && return 0
	echo "servers.sh: fast shutdown of $dir timed out, trying immediate" >&2 || true
	as_pg "$PGBIN/pg_ctl" stop -D "$dir" -m immediate -w -t 15 -s 2>/dev/null && return 0
	echo "servers.sh: immediate shutdown of $dir timed out, sending SIGKILL" >&2 || true
	pkill -KILL -P "$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 5 dead "$pid" || { echo "servers.sh: postmaster (pid $pid) survived SIGKILL" >&2; return 1; }
}

stop_all_pg() {
	local f rc=0
	while IFS= read -r f; do
		stop_pg "$(dirname "$f")" || rc=1
	done < <(find "$MLCACHE_TMP" -maxdepth 3 -name postmaster.pid 2>/dev/null)
	return "$rc"
}

cmd=${1:-}
shift || true
case $cmd in
start-redis) start_redis ;;
stop-redis) stop_redis ;;
kill-redis) kill_redis ;;
pause-redis) signal_redis STOP ;;
resume-redis) signal_redis CONT ;;
init-pg) init_pg "$@" ;;
start-pg) start_pg "$@" ;;
stop-pg) stop_pg "$@" ;;
restart-pg) restart_pg "$@" ;;
stop-all-pg) stop_all_pg ;;
*) die "usage: servers.sh {start|stop|kill|pause|resume}-redis | init-pg [DIR] [PORT] [PRELOAD] | {start|stop|restart}-pg [DIR] | stop-all-pg" ;;
esac
