#!/usr/bin/env bash
# test/valgrind.sh: check mlcache's memory safety with valgrind memcheck.
#
#   bash test/valgrind.sh
#
# What it does, all inside a private temp dir:
#   1. starts a throwaway Redis (unix socket only) with test/servers.sh, and initdb's a PostgreSQL 15
#      cluster (port 55490, unix socket in the temp dir, no TCP, shared_preload_libraries = mlcache,
#      mlcache.redis_socket = that Redis);
#   2. starts its postmaster under valgrind memcheck, so every backend, auxiliary process and the
#      mlcache worker it forks runs under memcheck too (one log per process, valgrind.<pid>.log);
#   3. runs the project's pg_regress suite (Makefile REGRESS) and isolation specs (ISOLATION) with
#      `make installcheck`, each bounded by VG_SUITE_TIMEOUT; outputs go to the temp dir, not the
#      work tree;
#   4. stops PostgreSQL and Redis, always (also on failure or a signal; every wait is bounded);
#   5. summarises the valgrind logs: every error with an mlcache frame in any of its stacks (main,
#      origin, alloc'd or free'd) is printed in full, with the process and test it came from; the
#      others are counted by kind and top frames.  test/valgrind.supp holds the suppressions of
#      PostgreSQL-internal false positives; each error in the logs is followed by a generated one.
#
# It tests the INSTALLED library ($PG_CONFIG --pkglibdir)/mlcache.so (run `make && make install`
# first); it needs debug symbols (-g, the PGXS default) for file:line in the stacks, and the sql/ and
# test/isolation/ files of this checkout must match it.  With Debian's release build of PostgreSQL
# (no USE_VALGRIND) memcheck sees each palloc'd chunk only as part of a larger malloc'd block: it
# reports reads of never-written bytes, overruns past the end of a block, and everything in plain
# malloc memory (hiredis), but NOT a use of a pfree'd chunk or an overrun into a neighbouring chunk
# of the same block.  Point PG_CONFIG at a PostgreSQL built with -DUSE_VALGRIND (and mlcache built
# and installed against it) for chunk-level checking.
#
# Run as root (the servers then run as the 'postgres' OS user, as in test/servers.sh) or as a user
# who may run initdb.  Needs valgrind, redis-server, python3, nm and PostgreSQL 15 with PGXS.
#
# Exit status: 0 no valgrind error involves mlcache; 1 some do; 2 the run itself failed (a server
# did not start, a suite timed out, no valgrind logs).  Test diffs are printed but do not change the
# exit status: under valgrind (~30x slower) the TTL test's 1-second TTLs and sleeps, and other
# timing-dependent checks, can legitimately differ.
#
# Environment:
#   PG_CONFIG          pg_config of the PostgreSQL to use (default: pg_config on PATH)
#   VG_PORT            the server's port (default 55490; it listens on a unix socket only)
#   VG_SUITE_TIMEOUT   seconds per make installcheck run (default 5400)
#   VG_START_TIMEOUT   seconds for the postmaster to accept connections (default 600)
#   VG_SUITES          which suites to run (default "regress isolation"; empty: none)
#   VG_REGRESS         the regress tests to run instead of the Makefile's REGRESS (e.g. to leave
#                      out the LMS data-generator tests, which take long under valgrind)
#   VG_EXTRA_CMD       a shell command run after the suites, against the same server (optional)
#   VG_KEEP_TMP=1      keep the temp dir: valgrind/valgrind.<pid>.log, postmaster.log, the suites'
#                      regression.diffs, and src-at-start/ (src/ as it was, to read stacks against)
# shellcheck disable=SC2317 # functions reached only through the EXIT trap are not dead code
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${VG_PORT:-55490}
SUITE_TIMEOUT=${VG_SUITE_TIMEOUT:-5400}
START_TIMEOUT=${VG_START_TIMEOUT:-600}
export PG_CONFIG=${PG_CONFIG:-pg_config} # also read by test/servers.sh and the Makefile
PGBIN=$("$PG_CONFIG" --bindir)
PKGLIB=$("$PG_CONFIG" --pkglibdir)
LIB=$PKGLIB/mlcache.so
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
started=$SECONDS

say() { printf '[valgrind.sh %4ds] %s\n' "$((SECONDS - started))" "$*"; }
warn() { printf '[valgrind.sh %4ds] %s\n' "$((SECONDS - started))" "$*" >&2; }
# alive, proc_tree, all_dead, wait_for and as_pg come from test/lib.sh.
# shellcheck source=test/lib.sh
. "$REPO/test/lib.sh"
# wait_dead SECS PID...: wait (bounded) until none of the PIDs is alive.
wait_dead() {
	local secs=$1
	shift
	wait_for "$secs" all_dead "$@"
}

for tool in valgrind redis-server "$PGBIN/postgres" "$PY"; do
	command -v "$tool" >/dev/null || { warn "missing: $tool"; exit 2; }
done
[[ -f $LIB ]] || { warn "$LIB is not installed: run 'make && make install' first"; exit 2; }

TMP=$(mktemp -d /tmp/mlcache-valgrind.XXXXXX) || exit 2
chmod 755 "$TMP" # the postgres user must reach the sockets and write the logs here
((EUID != 0)) || chown postgres:postgres "$TMP"
PGDATA_DIR=$TMP/pgdata
VGDIR=$TMP/valgrind
SERVER_LOG=$TMP/postmaster.log
mkdir -p "$VGDIR" "$TMP/regress" "$TMP/isolation"
((EUID != 0)) || chown postgres:postgres "$VGDIR"
cp "$REPO/test/valgrind.supp" "$TMP/valgrind.supp" # readable by the postgres user wherever REPO is
chmod 644 "$TMP/valgrind.supp"

# The clients (make installcheck) talk to the private server only.
unset PGHOSTADDR PGSERVICE PGOPTIONS PGDATA PGDATABASE
export MLCACHE_TMP=$TMP PGHOST=$TMP PGPORT=$PORT PGUSER=postgres
export MLCACHE_PRELOAD=mlcache # what the header says: only mlcache (pg_cron need not be built for this server)
export PGISOLATIONTIMEOUT=$SUITE_TIMEOUT # isolationtester's limit on a blocked step (default 300 s)

servers() { bash "$REPO/test/servers.sh" "$@"; }
pm_pid= # the postmaster (valgrind runs in-process, so this is also valgrind's pid)
launcher= # the runuser (or postgres) process we started in the background
child= # the make run in progress, if any
stopped=0

# stop_pg: fast shutdown, then immediate, then SIGKILL of the postmaster's process tree, by pid.
stop_pg() {
	local pids
	if [[ -z $pm_pid ]]; then # e.g. interrupted while starting
		pm_pid=$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)
		[[ $pm_pid =~ ^[0-9]+$ ]] || pm_pid=
	fi
	if [[ -n $pm_pid ]] && alive "$pm_pid"; then
		pids=$(proc_tree "$pm_pid")
		say "stopping PostgreSQL (fast shutdown, up to 300 s under valgrind)"
		if ! as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 300 -s; then
			warn "fast shutdown timed out, trying immediate"
			as_pg "$PGBIN/pg_ctl" stop -D "$PGDATA_DIR" -m immediate -w -t 60 -s ||
				warn "immediate shutdown timed out"
		fi
		# Valgrind writes each process's final summary as it exits: give them time.
		# shellcheck disable=SC2086
		if ! wait_dead 120 $pids; then
			warn "processes still alive after shutdown, sending SIGKILL: ${pids//$'\n'/ }"
			# shellcheck disable=SC2086
			kill -KILL $pids 2>/dev/null
			# shellcheck disable=SC2086
			wait_dead 10 $pids || warn "processes survived SIGKILL: ${pids//$'\n'/ }"
		fi
	fi
	# The process we started (runuser, valgrind): if it or anything under it still runs (say the
	# postmaster never wrote its pid file), end that tree too.
	if [[ -n $launcher ]] && ! wait_dead 10 "$launcher"; then
		pids=$(proc_tree "$launcher")
		warn "ending what is left of the server: ${pids//$'\n'/ }"
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null
		# shellcheck disable=SC2086
		wait_dead 30 $pids || kill -KILL $pids 2>/dev/null
	fi
	pm_pid=
}

stop_all() {
	((stopped)) && return 0
	stopped=1
	if [[ -n $child ]] && alive "$child"; then
		# A suite is still running (we were signalled): its timeout process forwards SIGTERM.
		kill -TERM "$child" 2>/dev/null
		wait_dead 30 "$child" || kill -KILL "$child" 2>/dev/null
	fi
	stop_pg
	servers stop-redis || warn "could not stop redis"
}

cleanup() {
	local rc=$?
	trap - EXIT
	trap '' INT TERM HUP PIPE # finish the clean-up even if signalled again
	stop_all
	if [[ ${VG_KEEP_TMP:-} == 1 ]]; then
		say "kept $TMP"
	else
		rm -rf --one-file-system "$TMP"
	fi
	say "runtime $((SECONDS - started)) s"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# run_bounded SECS CMD...: CMD in the background (so a signal to us is handled at once), bounded.
run_bounded() {
	local secs=$1 rc
	shift
	timeout -k 60 "$secs" "$@" &
	child=$!
	wait "$child"
	rc=$?
	child=
	return "$rc"
}

# ---- 1. servers ----
say "library under test: $LIB (md5 $(md5sum <"$LIB" | cut -c1-32)); server $PGBIN/postgres"
say "sources: $REPO at $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '(not a git checkout)')"
# text_md5 SO: checksum of the code alone (debug info differs between build directories).
text_md5() { objcopy -O binary --only-section=.text "$1" /dev/stdout 2>/dev/null | md5sum | cut -c1-32; }
if [[ -f $REPO/mlcache.so ]] && command -v objcopy >/dev/null &&
	[[ $(text_md5 "$LIB") != "$(text_md5 "$REPO/mlcache.so")" ]]; then
	warn "note: the code of $LIB differs from $REPO/mlcache.so (not installed since the last build?)"
fi
# The sources as they are now, for reading the stacks later (the installed library should match).
cp -a "$REPO/src" "$TMP/src-at-start" 2>/dev/null
say "temp dir $TMP; starting Redis"
servers start-redis || exit 2
servers init-pg "$PGDATA_DIR" "$PORT" || exit 2
cat >"$PGDATA_DIR/mlcache_test.conf" <<EOF
# ---- test/valgrind.sh ----
# Map valgrind.<pid>.log files to processes and tests: %b backend type, %a application name
# (pg_regress/<test>, isolation/<spec>/<session>).
log_line_prefix = '%m [%p] %b [%a] '
log_connections = on
# Fewer processes competing for the CPUs under valgrind; neither is what is tested here.
autovacuum = off
jit = off
# Redis is native and fast, but with everything under valgrind on few cores a 50 ms bound can trip
# the circuit breaker spuriously, and then the Redis code paths would not be exercised.
mlcache.redis_connect_timeout = '2s'
mlcache.redis_command_timeout = '2s'
EOF
((EUID != 0)) || chown postgres:postgres "$PGDATA_DIR/mlcache_test.conf"

# No --error-exitcode: PostgreSQL gives its children's exit codes a meaning (the startup process
# exiting 1 stops the server; a checkpointer exiting non-zero is a crash), so any error anywhere
# would change how the server behaves.  The exit status comes from the log summary instead.
# shellcheck disable=SC2054 # the commas in --error-markers are valgrind's syntax
vg_opts=(
	--tool=memcheck
	--trace-children=yes # also anything the servers exec (forked backends are always followed)
	--track-origins=yes  # where an uninitialised value was created
	--read-var-info=no
	--leak-check=no   # PostgreSQL frees by memory context and at exit: leak reports are noise
	--num-callers=40  # full stacks, down through the executor to mlcache
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END # delimit each error for the summary
	--gen-suppressions=all # a ready-made suppression after each error, for test/valgrind.supp
	--fullpath-after=  # full source paths: mlcache's src/guc.c is not PostgreSQL's guc.c
	--vgdb=no          # no gdbserver FIFOs left behind in /tmp
	--suppressions="$TMP/valgrind.supp"
	--log-file="$VGDIR/valgrind.%p.log"
)
say "starting the postmaster under valgrind (port $PORT; up to ${START_TIMEOUT}s)"
if ((EUID == 0)); then
	(cd / && exec runuser -u postgres -- valgrind "${vg_opts[@]}" "$PGBIN/postgres" -D "$PGDATA_DIR") \
		>"$SERVER_LOG" 2>&1 </dev/null &
else
	(cd / && exec valgrind "${vg_opts[@]}" "$PGBIN/postgres" -D "$PGDATA_DIR") >"$SERVER_LOG" 2>&1 </dev/null &
fi
launcher=$!
ready=0
for ((i = 0; i < START_TIMEOUT * 2; i++)); do
	if [[ -z $pm_pid && -f $PGDATA_DIR/postmaster.pid ]]; then
		pm_pid=$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null)
		[[ $pm_pid =~ ^[0-9]+$ ]] || pm_pid=
	fi
	if "$PGBIN/pg_isready" -q -h "$TMP" -p "$PORT" -t 5 2>/dev/null; then
		ready=1
		break
	fi
	alive "$launcher" || break
	sleep 0.5
done
if ((!ready)); then
	warn "PostgreSQL under valgrind did not accept connections; last lines of $SERVER_LOG:"
	tail -n 40 "$SERVER_LOG" >&2
	exit 2
fi
say "postmaster pid $pm_pid is up"
# snapshot_procs: record the server's processes (checkpointer, mlcache worker, ...) from
# pg_stat_activity, to label the valgrind logs of processes that never write to the server log.
# (Under valgrind, ps does not show PostgreSQL's process titles.)
snapshot_procs() {
	timeout 120 "$PGBIN/psql" -X -q -A -t -F '|' -d postgres \
		-c 'SELECT pid, backend_type, application_name FROM pg_stat_activity' \
		>>"$TMP/processes.txt" 2>/dev/null
	return 0
}
snapshot_procs

# ---- 2. the suites ----
# makevar NAME: a variable's value as the Makefile sets it.
# shellcheck disable=SC2016 # $($*) is for make, not the shell
makevar() { make -C "$REPO" -s --no-print-directory --eval='vg-print-%: ; @echo $($*)' "vg-print-$1"; }
infra_failed=()
suites_failed=()
# wait_ready: wait (bounded) until the server accepts connections, e.g. after a crash restart.
wait_ready() {
	local i
	for ((i = 0; i < START_TIMEOUT * 2; i++)); do
		"$PGBIN/pg_isready" -q -h "$TMP" -p "$PORT" -t 5 2>/dev/null && return 0
		alive "$pm_pid" || break
		sleep 0.5
	done
	warn "the server does not accept connections"
	infra_failed+=(not-ready)
	return 1
}
# suite LABEL MAKE-ARGS...: make installcheck with outputs under $TMP/LABEL.
suite() {
	local label=$1 rc t0=$SECONDS f
	shift
	wait_ready || return
	say "running the $label suite: make installcheck $*"
	run_bounded "$SUITE_TIMEOUT" make -C "$REPO" -s --no-print-directory installcheck "$@" \
		EXTRA_REGRESS_OPTS="--outputdir=$TMP/$label"
	rc=$?
	say "$label suite finished in $((SECONDS - t0)) s with status $rc"
	if ((rc == 124 || rc == 137)); then
		warn "the $label suite timed out after ${SUITE_TIMEOUT}s"
		infra_failed+=("$label-timeout")
	elif ((rc != 0)); then
		suites_failed+=("$label")
		f=$TMP/$label/regression.diffs
		if [[ -s $f ]]; then
			printf '\n---- %s (first 300 lines) ----\n' "$f"
			head -n 300 "$f"
			printf -- '---- end of %s ----\n\n' "$f"
		fi
	fi
}
for name in ${VG_SUITES-regress isolation}; do
	case $name in
	regress)
		if [[ -n ${VG_REGRESS:-} ]]; then
			suite regress ISOLATION= "REGRESS=$VG_REGRESS"
		elif [[ -n $(makevar REGRESS) ]]; then
			suite regress ISOLATION=
		fi
		;;
	isolation) [[ -n $(makevar ISOLATION) ]] && suite isolation REGRESS= ;;
	*) warn "unknown suite in VG_SUITES: $name" ;;
	esac
done
if [[ -n ${VG_EXTRA_CMD:-} ]]; then
	# Extra probes, e.g. hand-written SQL, against the same server (PGHOST/PGPORT/PGUSER are set).
	wait_ready
	say "running VG_EXTRA_CMD: $VG_EXTRA_CMD"
	run_bounded "$SUITE_TIMEOUT" bash -c "$VG_EXTRA_CMD"
	say "VG_EXTRA_CMD finished with status $?"
fi
snapshot_procs

if grep -E 'terminated by signal|was terminated by exception|exited with exit code [^01]|^TRAP:' "$SERVER_LOG"; then
	warn "a server process crashed (see the lines above, from $SERVER_LOG)"
	infra_failed+=(crash)
fi

# ---- 3. stop ----
stop_all

# ---- 4. the valgrind logs ----
say "summarising $(find "$VGDIR" -name 'valgrind.*.log' | wc -l) valgrind logs in $VGDIR"
"$PY" - "$VGDIR" "$SERVER_LOG" "$TMP/processes.txt" "$LIB" "$REPO/src" <<'PYEOF'
"""Summarise valgrind memcheck logs: print errors with mlcache frames, count the others."""
import collections, glob, os, re, subprocess, sys

vgdir, server_log, proc_list, lib, srcdir = sys.argv[1:6]

# What counts as an mlcache frame: a frame in mlcache.so, a function defined in it, or a source
# location in one of its files ("<dir>/src/<file>.c"; PostgreSQL's own guc.c etc. live deeper).
syms = set()
try:
    out = subprocess.run(["nm", "--defined-only", lib], capture_output=True, text=True).stdout
    syms = {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3 and l.split()[1] in "Tt"}
except OSError:
    pass
srcfiles = {f for f in os.listdir(srcdir) if f.endswith((".c", ".h"))}
FRAME = re.compile(r"^\s+(?:at|by) 0x[0-9A-Fa-f]+: (.*?) \((.*)\)$")

def is_mlcache_frame(line):
    m = FRAME.match(line)
    if not m:
        return False
    fn, loc = m.group(1), m.group(2)
    if loc.startswith("in "):
        obj = os.path.basename(loc[3:])
        return obj.startswith("mlcache") and ".so" in obj or (fn in syms and obj == "???")
    path = loc.rsplit(":", 1)[0]
    if os.path.basename(path) in srcfiles and (path.endswith("/src/" + os.path.basename(path))
                                               or path == "src/" + os.path.basename(path)):
        return True
    return fn in syms and "/src/backend/" not in path

def frames(lines):
    return [l for l in lines if FRAME.match(l)]

def signature(lines):
    """The error without addresses and pids: identical stacks give identical signatures."""
    return "\n".join(re.sub(r"0x[0-9A-Fa-f]+", "0x", l) for l in lines)

# pid -> label from the server log ('%m [%p] %b [%a] ').
labels = {}
LOGLINE = re.compile(r"\[(\d+)\] (.*?) \[(.*?)\] ")
try:
    with open(server_log, errors="replace") as f:
        for line in f:
            m = LOGLINE.search(line)
            if not m:
                continue
            pid, btype, app = m.groups()
            app = "" if app == "[unknown]" else app
            a = re.search(r"application_name=(\S+)", line)
            app = app or (a.group(1) if a else "")
            old = labels.get(pid, ("", ""))
            labels[pid] = (btype or old[0], app or old[1])
except OSError:
    pass
try:
    with open(proc_list, errors="replace") as f:
        for line in f:
            pid, btype, app = (line.rstrip("\n").split("|") + ["", ""])[:3]
            if pid.isdigit() and not labels.get(pid, ("",))[0]:
                labels[pid] = (btype, app)
except OSError:
    pass

def label(pid):
    b, a = labels.get(pid, ("", ""))
    return (b + (" " + a if a else "")) or "?"

ml_errors = collections.OrderedDict()  # signature -> [lines, [(pid, file)]]
other = collections.Counter()
other_example = {}
crashes, unfinished = [], []
nlogs = shown = occurrences = suppressed = 0
for path in sorted(glob.glob(os.path.join(vgdir, "valgrind.*.log")),
                   key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0)):
    nlogs += 1
    pid = re.sub(r"\D", "", os.path.basename(path))
    block, in_err, crash, finished = None, False, None, False
    with open(path, errors="replace") as f:
        for raw in f:
            m = re.match(r"^==\d+== ?(.*)$", raw.rstrip("\n"))
            if not m:
                continue  # a generated suppression, printed without the ==pid== prefix
            line = m.group(1)
            if line == "VALGRINDERROR-BEGIN":
                block, in_err = [], True
                continue
            if line == "VALGRINDERROR-END":
                in_err = False
                while block and not block[-1].strip():
                    block.pop()
                shown += 1
                sig = signature(block)
                if any(is_mlcache_frame(l) for l in block):
                    ml_errors.setdefault(sig, [block, []])[1].append((pid, path))
                else:
                    fr = [FRAME.match(l).group(1) for l in frames(block)[:4]]
                    key = block[0] + "  |  " + " < ".join(fr)
                    other[key] += 1
                    other_example.setdefault(key, (pid, path))
                continue
            if in_err:
                block.append(line)
                continue
            if line.startswith("Process terminating with default action of signal"):
                crash = [line]
                continue
            if crash is not None:
                if line.strip():
                    crash.append(line)
                    continue
                crashes.append((pid, path, crash))
                crash = None
            s = re.match(r"ERROR SUMMARY: (\d+) errors from \d+ contexts \(suppressed: (\d+) from", line)
            if s:
                finished = True
                occurrences += int(s.group(1))
                suppressed += int(s.group(2))
    if crash is not None:
        crashes.append((pid, path, crash))
    if not finished:
        unfinished.append((pid, path))

print(f"\n==== valgrind summary: {nlogs} process logs; {shown} errors reported (a repeated error is "
      f"reported once per process; {occurrences} occurrences); {suppressed} occurrences suppressed "
      "by valgrind.supp or valgrind's defaults ====")
if nlogs == 0:
    print("no valgrind logs: valgrind did not run")
    sys.exit(3)

n_ml = sum(len(v[1]) for v in ml_errors.values())
print(f"\n---- errors with an mlcache frame: {n_ml} ({len(ml_errors)} distinct) ----")
for i, (sig, (block, where)) in enumerate(ml_errors.items(), 1):
    pid, path = where[0]
    print(f"\n[{i}] pid {pid} ({label(pid)}), {os.path.basename(path)}")
    for l in block:
        print("    " + l)
    if len(where) > 1:
        print("    the same error also in: " +
              ", ".join(f"pid {p} ({label(p)})" for p, _ in where[1:]))

print(f"\n---- errors without mlcache frames: {sum(other.values())} "
      f"({len(other)} distinct kinds and stacks) ----")
for key, n in other.most_common():
    pid, path = other_example[key]
    print(f"{n:5d}  {key}\n       e.g. pid {pid} ({label(pid)}), {os.path.basename(path)}")

ml_crash = 0
if crashes:
    print(f"\n---- processes killed by a signal under valgrind: {len(crashes)} ----")
    for pid, path, lines in crashes:
        involved = any(is_mlcache_frame(l) for l in lines)
        ml_crash += involved
        print(f"pid {pid} ({label(pid)}), {os.path.basename(path)}"
              + (" [mlcache frame]" if involved else ""))
        for l in lines:
            print("    " + l)
if unfinished:
    print(f"\nnote: {len(unfinished)} logs have no final ERROR SUMMARY (process killed or still "
          "running): " + ", ".join(f"pid {p} ({label(p)})" for p, _ in unfinished))

sys.exit(1 if n_ml or ml_crash else 0)
PYEOF
vg_rc=$?

echo
((${#suites_failed[@]} == 0)) || say "test suites with diffs (not counted in the exit status): ${suites_failed[*]}"
((${#infra_failed[@]} == 0)) || say "run problems: ${infra_failed[*]}"
case $vg_rc in
0) say "no valgrind error involves mlcache" ;;
1) say "FAILED: valgrind errors (or a crash) with mlcache frames, above" ;;
*) say "the valgrind logs could not be summarised"; infra_failed+=(summary) ;;
esac
((vg_rc == 1)) && exit 1
((${#infra_failed[@]} == 0)) || exit 2
exit 0
