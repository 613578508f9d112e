#!/usr/bin/env bash
# bench/scale.sh: how read latencies grow with the data, run inside
# test/harness.sh by `make bench-scale`.
#
# For each size in BENCH_SCALES (lms_generate scales, default "1 4"), with
# BENCH_CAMPUS students per campus (default 5000: about 250k and 1M
# submissions), in a fresh database with the LMS pack set up, and for the
# reads assignment_stats (per assignment) and analytics_student (per student):
#   live   the live query's mean latency, ids uniformly random;
#   L1     fetch(), an L1 hit: one key, read again and again by one backend;
#   L3     fetch() of the same query defined with L1 and L2 off and the
#          pack's materialized view as L3, ids uniformly random;
#   miss   the first fetch() of BENCH_MISSES (default 20) keys of the same
#          query defined without a view: computed and stored in L1 and L2.
# live, L1 and L3 are pgbench runs of BENCH_SECONDS (default 5) with one
# client (pgbench's latency average, client round trip included); miss is the
# mean of psql's \timing of each first fetch in one session.
# Results: bench/results/scale.md (machine, versions, exact commands).
# Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"

secs=${BENCH_SECONDS:-5}
campus=${BENCH_CAMPUS:-5000}
read -ra scales <<<"${BENCH_SCALES:-1 4}"
misses=${BENCH_MISSES:-20}
load_start=$(cut -d" " -f1-3 /proc/loadavg)
started=$(date +%s)
out=bench/results/scale.md
work=$MLCACHE_TMP/scale
mkdir -p "$work" bench/results
db=
psql() { psql_db "$db" "$@"; }
log() { printf '%s\n' "$*" >&2; }
views_fresh() { [[ $(psql -c "SELECT count(*) FILTER (WHERE state <> 'fresh') FROM mlcache.views") == 0 ]]; }
secs_since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.1f", t1 - t0}'; }
ran=$work/commands.txt
: >"$ran"

# latency SCRIPT: pgbench's mean latency (ms) of a BENCH_SECONDS run, one
# client; prints "MS TRANSACTIONS".
latency() {
	local o
	printf 'pgbench -n -f %s -c 1 -j 1 -T %s DB   # %s\n' "$(basename "$1")" "$secs" \
		"$(tr '\n' ' ' <"$1" | sed 's/ *$//')" >>"$ran"
	o=$(pgbench -n -f "$1" -c 1 -j 1 -T "$secs" "$db" 2>/dev/null)
	printf '%s %s\n' "$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$o")" \
		"$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$o")"
}
# levels: the cluster's l1_hits l2_hits l3_hits computes and the views'
# refreshes, space-separated.
levels() {
	psql -F ' ' -c "SELECT sum(value) FILTER (WHERE counter = 'l1_hits'), sum(value) FILTER (WHERE counter = 'l2_hits'),
	                       sum(value) FILTER (WHERE counter = 'l3_hits'), sum(value) FILTER (WHERE counter = 'computes'),
	                       (SELECT coalesce(sum(refreshes), 0) FROM mlcache.views)
	                  FROM mlcache.counters()"
}
# first_miss DEF IDS...: mean ms of the first fetch(DEF, id) of each id after
# the first (the first warms the session up), timed by psql's \timing; checks
# that each was computed.
first_miss() {
	local def=$1 c0 c1 n id
	shift
	c0=$(psql -c "SELECT value FROM mlcache.counters() WHERE counter = 'computes'")
	{
		printf '%s\n' '\timing on'
		for id in "$@"; do printf "SELECT length(mlcache.fetch('%s', %s)::text);\n" "$def" "$id"; done
	} | psql | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n +2 >"$work/miss.txt"
	c1=$(psql -c "SELECT value FROM mlcache.counters() WHERE counter = 'computes'")
	n=$(wc -l <"$work/miss.txt")
	((c1 - c0 == $#)) || log "  warning: $((c1 - c0)) computations for $# first fetches of $def"
	((n == $# - 1)) || log "  warning: $n timings for $(($# - 1)) fetches of $def"
	awk '{s += $1} END {printf "%.2f", s / NR}' "$work/miss.txt"
}

# Per size, in sz_* and r_* (indexed by the position in scales).
sz_subs=() sz_per_asg=() sz_students=() sz_per_stu=() sz_db=() sz_gen=() sz_setup=()
declare -A r=() n=() by=()
reads=(asg stu)
declare -A read_name=([asg]=assignment_stats [stu]=analytics_student)
declare -A view=([asg]=mlcache_assignment_stats [stu]=mlcache_analytics_student)
declare -A param=([asg]=assignment_id [stu]=student_id)
declare -A live_fn=([asg]=lms_assignment_stats_live [stu]=lms_analytics_student_live)
declare -A table=([asg]=assignments [stu]=users)
# Per size: the ids of each read (lo to hi) and its L1 key.
declare -A lo=() hi=() fixed=()

for i in "${!scales[@]}"; do
	scale=${scales[i]}
	db=mlcache_scale_$scale
	log "bench-scale: scale $scale, $campus students per campus (database $db)"
	fresh_db "$db"
	psql -c 'CREATE EXTENSION mlcache_lms CASCADE' -c "SELECT mlcache.lms_create_schema('lms')" >/dev/null
	t0=$(date +%s.%N)
	psql -c "SELECT mlcache.lms_generate(scale => $scale, students_per_campus => $campus)" >/dev/null
	sz_gen[i]=$(secs_since "$t0")
	t0=$(date +%s.%N)
	psql -c "SELECT mlcache.lms_setup('lms')" -c 'VACUUM ANALYZE' >/dev/null
	sz_setup[i]=$(secs_since "$t0")
	read -r nt na ns < <(psql -F ' ' -c "SELECT count(*) FILTER (WHERE is_teacher), (SELECT count(*) FROM lms.assignments),
	                                            count(*) FILTER (WHERE NOT is_teacher) FROM lms.users")
	sz_subs[i]=$(psql -c 'SELECT count(*) FROM lms.submissions')
	sz_per_asg[i]=$(awk -v s="${sz_subs[i]}" -v a="$na" 'BEGIN {printf "%.0f", s / a}')
	sz_students[i]=$ns
	sz_per_stu[i]=$(awk -v s="${sz_subs[i]}" -v a="$ns" 'BEGIN {printf "%.0f", s / a}')
	sz_db[i]=$(psql -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
	log "  ${sz_subs[i]} submissions (${sz_per_asg[i]} per assignment, ${sz_per_stu[i]} per student), ${sz_db[i]}; generated in ${sz_gen[i]} s, set up in ${sz_setup[i]} s"
	# The same queries: with L1 and L2 off and the view as L3; with no view.
	for x in "${reads[@]}"; do
		q="(SELECT query FROM mlcache.definitions WHERE name = '${read_name[$x]}')"
		psql -c "SELECT mlcache.define('scale_l3_$x', $q, 'scale_l3_$x:{1}', 0, 0, 'lms.${view[$x]}', ARRAY['${param[$x]}'])" \
			-c "SELECT mlcache.define('scale_miss_$x', $q, 'scale_miss_$x:{1}', 300, 300)" >/dev/null
	done
	wait_for 300 views_fresh || log "  warning: the views are not all fresh after 5 min"
	lo[asg]=1 hi[asg]=$na lo[stu]=$((nt + 1)) hi[stu]=$((nt + ns))
	# The L1 key: the assignment, and the student, with the most submissions.
	fixed[asg]=$(psql -c 'SELECT assignment_id FROM lms.submissions GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1')
	fixed[stu]=$(psql -c 'SELECT student_id FROM lms.submissions GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1')
	for x in "${reads[@]}"; do
		printf '\\set id random(%s, %s)\nSELECT mlcache.%s(:id);\n' "${lo[$x]}" "${hi[$x]}" "${live_fn[$x]}" >"$work/live_$x.sql"
		printf "SELECT mlcache.fetch('%s', %s);\n" "${read_name[$x]}" "${fixed[$x]}" >"$work/l1_$x.sql"
		printf '\\set id random(%s, %s)\nSELECT mlcache.fetch(%s, :id);\n' "${lo[$x]}" "${hi[$x]}" "'scale_l3_$x'" >"$work/l3_$x.sql"
		# Check the levels once: an L3 hit, then an L1 hit.
		lv=$(psql -c "SELECT length(mlcache.fetch('scale_l3_$x', ${lo[$x]})::text)" -c 'SELECT mlcache.last_level()' | tail -n 1)
		[[ $lv == l3 ]] || log "  warning: scale_l3_$x was answered by $lv, not l3"
		lv=$(psql -c "SELECT length(mlcache.fetch('${read_name[$x]}', ${fixed[$x]})::text)" \
			-c "SELECT length(mlcache.fetch('${read_name[$x]}', ${fixed[$x]})::text)" -c 'SELECT mlcache.last_level()' | tail -n 1)
		[[ $lv == l1 ]] || log "  warning: ${read_name[$x]} was answered by $lv, not l1"
		# The view's rows, values included, into shared buffers first: the L3
		# figure is then a read of a warm view.
		psql -c "SELECT sum(length(value::text)) FROM lms.${view[$x]}" >/dev/null
		for l in live l1 l3; do
			read -ra c0 < <(levels)
			read -r "r[$x,$l,$i]" "n[$x,$l,$i]" < <(latency "$work/${l}_$x.sql")
			read -ra c1 < <(levels)
			by[$x,$l,$i]="L1 $((c1[0] - c0[0])), L2 $((c1[1] - c0[1])), L3 $((c1[2] - c0[2])), computed $((c1[3] - c0[3])); view refreshes $((c1[4] - c0[4]))"
		done
		log "  ${read_name[$x]}: answered by level (L1 run) ${by[$x,l1,$i]}; (L3 run) ${by[$x,l3,$i]}"
		mapfile -t ids < <(psql -c "SELECT id FROM lms.${table[$x]} WHERE id BETWEEN ${lo[$x]} AND ${hi[$x]}
		                            ORDER BY md5(id::text) LIMIT $((misses + 1))")
		r[$x,miss,$i]=$(first_miss "scale_miss_$x" "${ids[@]}")
		n[$x,miss,$i]=$misses
		log "  ${read_name[$x]}: live ${r[$x,live,$i]} ms, L1 hit ${r[$x,l1,$i]} ms, L3 hit ${r[$x,l3,$i]} ms, first miss ${r[$x,miss,$i]} ms"
	done
	command psql -X -q -d postgres -c "DROP DATABASE $db"
done

# --------------------------------------------------------------- report --
last=$((${#scales[@]} - 1))
grow() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }
declare -A level_name=([live]='live query (mean, random ids)' [l1]='fetch, L1 hit (one key)'
	[l3]='fetch, L3 hit (view only, random ids)' [miss]="fetch, first miss: compute + store in L1 and L2 (mean of $misses keys)")
{
	echo "# mlcache: read latency against data size"
	echo
	echo "Produced by \`make bench-scale\` (bench/scale.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), in $(($(date +%s) - started)) s."
	echo "pgbench runs last ${secs} s with one client; one run per figure."
	echo
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
	echo "- load average (1, 5, 15 min) at the start: ${load_start}; at the end: $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
	echo "- $(command psql -X -t -A -d postgres -c 'SELECT version()')"
	echo "- $(redis-server --version | cut -d' ' -f1-3), hiredis $(dpkg-query -W -f='${Version}' libhiredis-dev 2>/dev/null)"
	echo "- mlcache $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" mlcache.control); servers as started by test/harness.sh (unix sockets, fsync off, shared_buffers $(command psql -X -t -A -d postgres -c 'SHOW shared_buffers'))"
	echo
	echo "## Data"
	echo
	echo "| lms_generate | students | submissions | per assignment | per student | database | generation | lms_setup + VACUUM ANALYZE |"
	echo "|---|---|---|---|---|---|---|---|"
	for i in "${!scales[@]}"; do
		echo "| scale ${scales[i]}, $campus students per campus | ${sz_students[i]} | ${sz_subs[i]} | ${sz_per_asg[i]} | ${sz_per_stu[i]} | ${sz_db[i]} | ${sz_gen[i]} s | ${sz_setup[i]} s |"
	done
	echo
	echo "## Latency (ms)"
	echo
	head="| read | figure |" rule="|---|---|"
	for i in "${!scales[@]}"; do head+=" ${sz_subs[i]} submissions |"; rule+="---|"; done
	if ((last > 0)); then head+=" growth (last / first) |"; rule+="---|"; fi
	echo "$head"
	echo "$rule"
	for x in "${reads[@]}"; do
		for l in live l1 l3 miss; do
			line="| ${read_name[$x]} | ${level_name[$l]} |"
			for i in "${!scales[@]}"; do line+=" ${r[$x,$l,$i]} |"; done
			((last == 0)) || line+=" $(grow "${r[$x,$l,0]}" "${r[$x,$l,$last]}") |"
			echo "$line"
		done
	done
	echo
	line="Transactions per pgbench run:"
	for x in "${reads[@]}"; do
		for l in live l1 l3; do
			line+=" ${read_name[$x]} $l"
			for i in "${!scales[@]}"; do line+=" ${n[$x,$l,$i]}"; done
			line+=";"
		done
	done
	echo "${line%;}."
	echo
	echo "Reads answered by each level during the L1 and L3 runs (mlcache.counters(), whole cluster),"
	echo "and the L3 views' refreshes meanwhile:"
	echo
	for x in "${reads[@]}"; do
		for l in l1 l3; do
			for i in "${!scales[@]}"; do
				echo "- ${read_name[$x]}, $l run, ${sz_subs[i]} submissions: ${by[$x,$l,$i]}"
			done
		done
	done
	echo
	echo "The data grow by campuses of the same size, so each key's answer covers the"
	echo "same amount of data at every size (about ${sz_per_asg[0]} submissions per assignment,"
	echo "${sz_per_stu[0]} per student): what grows is the tables and indexes each query"
	echo "searches, and the share of them that is not in shared buffers. The live"
	echo "queries and the L3 reads pick a random id on each transaction, over every"
	echo "assignment (2% not released yet, with no submissions) or every student; the"
	echo "L1 reads repeat the assignment, or the student, with the most submissions."
	echo "Before the L3 run each view is read whole once (\`SELECT sum(length(value::text))\`),"
	echo "so that its pages are in shared buffers; the live runs start from whatever the"
	echo "earlier steps left there."
	echo "A first miss reads L1 and Redis (both miss), computes the definition's query"
	echo "and stores the value in L1 and Redis. The live figure is the pack's"
	echo "\`lms_*_live()\` function, as in \`make bench\`: it renders the query and plans it"
	echo "on each call, as an application's ad-hoc SQL is planned, while mlcache keeps the"
	echo "plan of a definition's query (prepared once per session, at the first miss that"
	echo "is not counted), so a first miss can take less time than a live call."
	echo
	echo "## Commands"
	echo
	echo '```'
	echo "BENCH_SECONDS=$secs BENCH_SCALES=\"${scales[*]}\" BENCH_CAMPUS=$campus BENCH_MISSES=$misses make bench-scale"
	for s in "${scales[@]}"; do
		echo "SELECT mlcache.lms_generate(scale => $s, students_per_campus => $campus); SELECT mlcache.lms_setup('lms'); VACUUM ANALYZE;   -- database mlcache_scale_$s"
	done
	echo "SELECT mlcache.define('scale_l3_asg', (SELECT query FROM mlcache.definitions WHERE name = 'assignment_stats'), 'scale_l3_asg:{1}', 0, 0, 'lms.mlcache_assignment_stats', ARRAY['assignment_id'])"
	echo "SELECT mlcache.define('scale_l3_stu', (SELECT query FROM mlcache.definitions WHERE name = 'analytics_student'), 'scale_l3_stu:{1}', 0, 0, 'lms.mlcache_analytics_student', ARRAY['student_id'])"
	echo "SELECT mlcache.define('scale_miss_asg', (SELECT query FROM mlcache.definitions WHERE name = 'assignment_stats'), 'scale_miss_asg:{1}', 300, 300)"
	echo "SELECT mlcache.define('scale_miss_stu', (SELECT query FROM mlcache.definitions WHERE name = 'analytics_student'), 'scale_miss_stu:{1}', 300, 300)"
	sort -u "$ran"
	printf '%s\n' "psql: \\timing on; SELECT length(mlcache.fetch('scale_miss_asg', ID)::text); ... for $((misses + 1)) ids (ORDER BY md5(id::text)), the first not counted; same for scale_miss_stu"
	echo '```'
} >"$out"
cat "$out"
