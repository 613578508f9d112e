#!/usr/bin/env bash
# bench/throughput.sh: read throughput at several client counts, run inside
# test/harness.sh (bench.sh runs it as its throughput group; alone:
#   bash test/harness.sh bash bench/throughput.sh).
# At each of TP_CLIENTS (default "1 4 16 32") clients, pgbench runs of
# TP_SECONDS (default 5) seconds, simple protocol, -j 2, of SELECT 1, the
# call floor (mlcachz.get(text, text), a C function returning the jsonb 1:
# bench/noop_trigger.c, built here), a get() L1 hit and a get() L2 hit
# (l1_ttl 0), interleaved over TP_ROUNDS (default 3) rounds, each starting
# and ending with SELECT 1 (the mean of the two is the round's reference).
# The tps figures are the medians of the rounds; the ratios to SELECT 1 at
# the same client count, what it reports, are the medians of the rounds'
# own ratios.  Every backend
# reads the same key, so any shared lock or atomic on the read path is
# contended at the higher counts.  Writes TP_OUT (default
# $MLCACHE_TMP/throughput.txt): one line per client count,
#   clients floor_tps l1_tps l2_tps l1_ratio l2_ratio call_tps call_ratio
# (the call columns are "-" when noop_trigger.c cannot be compiled)
# and the pgbench commands to TP_OUT.commands.  TP_DB (default
# mlcache_tp) is created unless it exists.  Nothing here asserts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh
# shellcheck source=bench/write_tables.sh
. bench/write_tables.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
clients=${TP_CLIENTS:-1 4 16 32}
secs=${TP_SECONDS:-5}
rounds=${TP_ROUNDS:-3}
out=${TP_OUT:-$MLCACHE_TMP/throughput.txt}
db=${TP_DB:-mlcache_tp}
w=$MLCACHE_TMP/tp
mkdir -p "$w"
if [[ -z $(psql_db postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
	fresh_db "$db"
fi
psql_db "$db" -c 'CREATE EXTENSION IF NOT EXISTS mlcache CASCADE' >/dev/null
have_call=0
if bench_noop_so "$w" && bench_call_floor "$db" "$w"; then
	have_call=1
fi
printf 'SELECT 1;\n' >"$w/floor.sql"
printf "SELECT mlcachz.get('bench:tp:l1', 'SELECT 1');\n" >"$w/call.sql"
printf "SELECT mlcache.get('bench:tp:l1', 'SELECT 1');\n" >"$w/l1.sql"
printf "SELECT mlcache.get('bench:tp:l2', 'SELECT 1', 0);\n" >"$w/l2.sql"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
median3() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
tps() { pgbench -n -M simple -f "$w/$1.sql" -c "$2" -j 2 -T "$secs" "$db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'; }
: >"$out"
: >"$out.commands"
for s in floor call l1 l2; do
	printf 'pgbench -n -M simple -f %s.sql -c N -j 2 -T %s %s   # %s\n' "$s" "$secs" "$db" "$(cat "$w/$s.sql")" >>"$out.commands"
done
for c in $clients; do
	# Warm: every backend's L1, and Redis.
	pgbench -n -M simple -f "$w/l1.sql" -f "$w/l2.sql" -c "$c" -j 2 -t 5 "$db" >/dev/null 2>&1 || true
	f=() l1=() l2=() call=()
	r1=() r2=() rk=()
	for ((r = 0; r < rounds; r++)); do
		fa=$(tps floor "$c")
		if ((have_call)); then call+=("$(tps call "$c")"); fi
		l1+=("$(tps l1 "$c")")
		l2+=("$(tps l2 "$c")")
		fb=$(tps floor "$c")
		# SELECT 1 before and after the round: its mean is the round's reference.
		f+=("$(awk -v a="$fa" -v b="$fb" 'BEGIN {printf "%.1f", (a + b) / 2}')")
		r1+=("$(awk -v a="${l1[r]}" -v f="${f[r]}" 'BEGIN {printf "%.4f", a / f}')")
		r2+=("$(awk -v a="${l2[r]}" -v f="${f[r]}" 'BEGIN {printf "%.4f", a / f}')")
		if ((have_call)); then rk+=("$(awk -v a="${call[r]}" -v f="${f[r]}" 'BEGIN {printf "%.4f", a / f}')"); fi
	done
	mf=$(median "${f[@]}") m1=$(median "${l1[@]}") m2=$(median "${l2[@]}") mc=- mrk=-
	if ((have_call)); then mc=$(median "${call[@]}") mrk=$(median3 "${rk[@]}"); fi
	# The ratios are medians of each round's ratios, not ratios of medians.
	printf '%s %s %s %s %s %s %s %s\n' "$c" "$mf" "$m1" "$m2" "$(median3 "${r1[@]}")" "$(median3 "${r2[@]}")" "$mc" "$mrk" >>"$out"
	printf 'throughput: %s clients: SELECT 1 %s, call floor %s, L1 %s, L2 %s tps (rounds: %s / %s / %s / %s)\n' \
		"$c" "$mf" "$mc" "$m1" "$m2" "${f[*]}" "${call[*]}" "${l1[*]}" "${l2[*]}" >&2
done
cat "$out"
