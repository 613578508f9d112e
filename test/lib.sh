# test/lib.sh: shell helpers shared by the test, bench and demo scripts; source it, it has no side effects.
#
# Processes:   wait_for SECS CMD...   poll CMD every 0.1 s, at most SECS seconds (integer) and SECS*10 tries
#              quiet CMD...           CMD with its output thrown away (for wait_for on noisy commands)
#              alive PID / dead PID   the process exists and is not a zombie / the opposite
#              all_dead PID...        every PID is dead
#              proc_tree PID          PID and all its descendants, deepest first
#              as_pg CMD...           CMD as the 'postgres' OS user when we are root (initdb/pg_ctl refuse root)
# Redis:       redis_start / redis_stop / redis_kill / redis_signal SIG / redis_ping / redis_pid [WHERE [DIR]]
#              WHERE is a unix socket path (default $MLCACHE_TMP/redis.sock, what harness.sh exports as
#              $MLCACHE_REDIS_SOCKET)
#              or a loopback TCP port; DIR (default $MLCACHE_TMP/redis) holds its pid file, log and dump.
#              redis_start WHERE DIR ARGS...: extra ARGS go to redis-server (e.g. --replicaof 127.0.0.1 PORT,
#              --requirepass PW --masterauth PW); redis_ping/redis_stop then need REDISCLI_AUTH set for a password
#              rcli ARGS...           redis-cli on $MLCACHE_REDIS_SOCKET (bounded by $MLCACHE_RCLI_TIMEOUT s if set)
#              rport PORT ARGS...     redis-cli on a loopback port, bounded by 5 s (REDISCLI_AUTH for a password)
# Sentinel:    sentinel_start PORT DIR MASTER-NAME MASTER-PORT [CONF-LINES]: a sentinel (redis-server --sentinel)
#              on a loopback port, monitoring MASTER-NAME at 127.0.0.1:MASTER-PORT with quorum 2, fast timeouts
#              (down after 1 s); its own DIR/sentinel.conf (Sentinel rewrites it), pid file DIR/redis.pid, so
#              redis_stop PORT DIR stops it.  CONF-LINES (newline-separated) are appended to the conf file.
# PostgreSQL:  pg_init [DIR] [PORT] [PRELOAD]   initdb + the test settings (socket in $MLCACHE_TMP, no TCP)
#              pg_start / pg_stop / pg_restart / pg_running [DIR]; pg_stop_all: every cluster under $MLCACHE_TMP
#              DIR defaults to $MLCACHE_PGDATA, else $MLCACHE_TMP/pgdata; PORT to $PGPORT, else 55432.
#              psql_db DB ARGS...     psql -X -q -t -A -v ON_ERROR_STOP=1 -d DB ARGS
#              fresh_db DB            drop DB if it exists and create it again
#              mlcache_ns DB [ARGS...]  the Redis key namespace DB's sessions use (mlcache.key_prefix, or
#                                     "mlcache:<system identifier>:<database>:"), asked of the server; ARGS
#                                     go to psql (e.g. -p PORT for another cluster)
#              mlcache_worker_pid DB  the pid of the mlcache worker, as DB's pg_stat_activity shows it
# Processes:   cpu_ticks PID          its utime + stime in clock ticks (/proc/PID/stat); 0 once it is gone
# Clean-up:    on_exit CMD [ARGS...]  run CMD ARGS (as they are now) when the script exits, however it exits
#                                     (normal end, error under set -e, exit, SIGINT/SIGTERM/SIGHUP); the
#                                     commands run last-registered first and their failures are ignored
#              on_exit_pop            forget the last registered command (without running it)
#                                     $lib_exit_rc holds the exit status while the commands run
# The functions return non-zero on failure (never exit) and are safe under set -euo pipefail; messages
# go to stderr prefixed with the calling script's name.
# shellcheck shell=bash

lib_say() { echo "$(basename "$0"): $*" >&2 || true; }
# lib_fail_log LOG LINES MESSAGE: show the end of a server log and MESSAGE; returns 1.
lib_fail_log() {
	tail -n "$2" "$1" >&2 || true
	lib_say "$3"
	return 1
}

# ---- processes ----
wait_for() {
	local end=$((SECONDS + $1)) n=$(($1 * 10))
	shift
	while ((n-- > 0 && SECONDS <= end)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
quiet() { "$@" >/dev/null 2>&1; }
# PID 1 here may never reap, so a zombie counts as dead.
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $s != Z* ]]; }
dead() { ! alive "$1"; }
all_dead() {
	local p
	for p in "$@"; do ! alive "$p" || return 1; done
}
proc_tree() {
	local c
	for c in $(pgrep -P "$1"); do proc_tree "$c"; done
	echo "$1"
}
as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# ---- Redis ----
# redis_where [WHERE]: the socket path or port to use.
redis_where() { echo "${1:-${MLCACHE_TMP:?is not set}/redis.sock}"; }
redis_dir() { echo "${1:-${MLCACHE_TMP:?is not set}/redis}"; }
rcli() {
	local sock=${MLCACHE_REDIS_SOCKET:?is not set}
	if [[ -n ${MLCACHE_RCLI_TIMEOUT:-} ]]; then
		timeout "$MLCACHE_RCLI_TIMEOUT" redis-cli -s "$sock" "$@"
	else
		redis-cli -s "$sock" "$@"
	fi
}
# redis_ping [WHERE]: PONG within 2 s, on a socket path or a loopback port.
redis_ping() {
	local where to
	where=$(redis_where "${1:-}")
	if [[ $where == */* ]]; then to=(-s "$where"); else to=(-h 127.0.0.1 -p "$where"); fi
	[[ $(timeout 2 redis-cli "${to[@]}" PING 2>/dev/null) == PONG ]]
}
redis_pid() {
	local pid
	pid=$(cat "$(redis_dir "${2:-}")/redis.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] &&
		echo "$pid"
}
redis_start() {
	local where dir listen
	where=$(redis_where "${1:-}") dir=$(redis_dir "${2:-}")
	shift $(($# < 2 ? $# : 2))
	if redis_pid "$where" "$dir" >/dev/null && redis_ping "$where"; then return 0; fi
	mkdir -p "$dir"
	if [[ $where == */* ]]; then
		# --port 0: no TCP listener at all, only the unix socket.
		listen=(--port 0 --bind 127.0.0.1 --unixsocket "$where" --unixsocketperm 777)
	else
		listen=(--port "$where" --bind 127.0.0.1)
	fi
	redis-server "${listen[@]}" --save '' --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" \
		--logfile "$dir/redis.log" --daemonize yes "$@" || return 1
	wait_for 10 redis_ping "$where" && return 0
	lib_fail_log "$dir/redis.log" 20 "redis did not answer PING on $where within 10 s"
}
rport() {
	local port=$1
	shift
	timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@"
}
sentinel_start() {
	local port=$1 dir=$2 name=$3 mport=$4 extra=${5:-}
	mkdir -p "$dir"
	cat >"$dir/sentinel.conf" <<-EOF
		port $port
		bind 127.0.0.1
		daemonize yes
		pidfile $dir/redis.pid
		logfile $dir/redis.log
		dir $dir
		sentinel monitor $name 127.0.0.1 $mport 2
		sentinel down-after-milliseconds $name 1000
		sentinel failover-timeout $name 10000
		sentinel parallel-syncs $name 1
		$extra
	EOF
	redis-server "$dir/sentinel.conf" --sentinel || return 1
	wait_for 10 redis_ping "$port" && return 0
	lib_fail_log "$dir/redis.log" 20 "sentinel did not answer PING on $port within 10 s"
}
redis_stop() {
	local where dir pid
	where=$(redis_where "${1:-}") dir=$(redis_dir "${2:-}")
	if pid=$(redis_pid "$where" "$dir"); then
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true # a paused server must run to see the SIGTERM
		if ! wait_for 10 dead "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_for 5 dead "$pid" || { lib_say "redis (pid $pid) survived SIGKILL"; return 1; }
		fi
	fi
	rm -f "$dir/redis.pid"
	[[ $where != */* ]] || rm -f "$where"
}
# redis_kill: SIGKILL, a crash; a unix socket file stays behind.
redis_kill() {
	local dir pid
	dir=$(redis_dir "${2:-}")
	pid=$(redis_pid "" "$dir") || { lib_say "redis is not running"; return 1; }
	kill -KILL "$pid"
	wait_for 5 dead "$pid" || { lib_say "redis (pid $pid) survived SIGKILL"; return 1; }
	rm -f "$dir/redis.pid"
}
# redis_signal SIG [WHERE [DIR]]: e.g. STOP (connected but never answers) and CONT.
redis_signal() {
	local pid
	pid=$(redis_pid "" "$(redis_dir "${3:-}")") || { lib_say "redis is not running"; return 1; }
	kill "-$1" "$pid"
}

# ---- PostgreSQL ----
pg_dir() { echo "${1:-${MLCACHE_PGDATA:-${MLCACHE_TMP:?is not set}/pgdata}}"; }
pg_bin() { echo "$("${PG_CONFIG:-pg_config}" --bindir)/$1"; }
pg_init() {
	local dir port=${2:-${PGPORT:-55432}} preload=${3:-yes} log tmp=${MLCACHE_TMP:?is not set}
	dir=$(pg_dir "${1:-}")
	case $preload in
	no) preload= ;;
	yes) preload=${MLCACHE_PRELOAD-mlcache,pg_cron} ;;
	esac
	[[ ! -e $dir/PG_VERSION ]] || { lib_say "$dir is already initialized"; return 1; }
	mkdir -p "$dir"
	chmod 700 "$dir"
	((EUID != 0)) || chown postgres:postgres "$dir"
	log=$tmp/initdb.$(basename "$dir").log
	if ! as_pg "$(pg_bin initdb)" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$log" 2>&1; then
		cat "$log" >&2
		lib_say "initdb failed for $dir"
		return 1
	fi
	cat >>"$dir/postgresql.conf" <<-EOF

		# ---- mlcache test settings (test/servers.sh) ----
		listen_addresses = ''
		unix_socket_directories = '$tmp'
		port = $port
		shared_preload_libraries = '$preload'
		mlcache.redis_socket = '$(redis_where)'
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
pg_running() { as_pg "$(pg_bin pg_ctl)" status -D "$(pg_dir "${1:-}")" >/dev/null 2>&1; }
pg_start() {
	local dir
	dir=$(pg_dir "${1:-}")
	[[ -e $dir/PG_VERSION ]] || { lib_say "$dir is not initialized (run init-pg first)"; return 1; }
	! pg_running "$dir" || return 0
	as_pg "$(pg_bin pg_ctl)" start -D "$dir" -w -t 60 -s -l "$dir/server.log" && return 0
	lib_fail_log "$dir/server.log" 40 "PostgreSQL in $dir did not start"
}
pg_restart() {
	local dir
	dir=$(pg_dir "${1:-}")
	as_pg "$(pg_bin pg_ctl)" restart -D "$dir" -m fast -w -t 60 -s -l "$dir/server.log" && return 0
	lib_fail_log "$dir/server.log" 40 "PostgreSQL in $dir did not restart"
}
# pg_stop [DIR]: fast shutdown, then immediate, then SIGKILL the postmaster and its children.
pg_stop() {
	local dir pid pg_ctl
	dir=$(pg_dir "${1:-}") pg_ctl=$(pg_bin pg_ctl)
	pid=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
	as_pg "$pg_ctl" stop -D "$dir" -m fast -w -t 30 -s 2>/dev/null && return 0
	lib_say "fast shutdown of $dir timed out, trying immediate"
	as_pg "$pg_ctl" stop -D "$dir" -m immediate -w -t 15 -s 2>/dev/null && return 0
	lib_say "immediate shutdown of $dir timed out, sending SIGKILL"
	pkill -KILL -P "$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 5 dead "$pid" || { lib_say "postmaster (pid $pid) survived SIGKILL"; return 1; }
}
pg_stop_all() {
	local f rc=0
	while IFS= read -r f; do
		pg_stop "$(dirname "$f")" || rc=1
	done < <(find "${MLCACHE_TMP:?is not set}" -maxdepth 3 -name postmaster.pid 2>/dev/null)
	return "$rc"
}
psql_db() {
	local db=$1
	shift
	command psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$db" "$@"
}
fresh_db() { command psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$1\"" -c "CREATE DATABASE \"$1\""; }
mlcache_ns() {
	local db=$1
	shift
	psql_db "$db" "$@" -c "SELECT coalesce(nullif(current_setting('mlcache.key_prefix', true), ''),
		'mlcache:' || system_identifier || ':' ||
		replace(replace(current_database(), '%', '%25'), ':', '%3A') || ':') FROM pg_control_system()"
}
mlcache_worker_pid() { psql_db "$1" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'mlcache worker' LIMIT 1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ---- clean-up on every exit path ----
[[ -v lib_on_exit ]] || lib_on_exit=()
lib_exit_rc=0
on_exit() {
	lib_on_exit+=("$(printf '%q ' "$@")")
	if ((${#lib_on_exit[@]} == 1)); then
		trap lib_run_on_exit EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
		trap 'exit 129' HUP
	fi
}
on_exit_pop() {
	((${#lib_on_exit[@]})) || return 0
	unset 'lib_on_exit[-1]'
}
# shellcheck disable=SC2317 # reached through the EXIT trap
lib_run_on_exit() {
	local rc=$? i
	trap - EXIT
	trap '' INT TERM HUP PIPE # finish the clean-up even if signalled again or stderr is gone
	# shellcheck disable=SC2034 # read by the commands
	lib_exit_rc=$rc # the status the script exits with
	for ((i = ${#lib_on_exit[@]} - 1; i >= 0; i--)); do
		eval "${lib_on_exit[i]}" || true
	done
	lib_on_exit=()
	exit "$rc"
}
