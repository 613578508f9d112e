#!/usr/bin/env bash
# bench/ab.sh: compare two builds of mlcache.so, alternating, each under its
# own throwaway servers:
#   flock /tmp/mlcache-install.lock bash bench/ab.sh A.so B.so [N [SCRIPT...]]
# Runs `make install` once (the SQL files), then N (default 2) times: copies
# A.so, then B.so, into pg_config --pkglibdir and runs
# `bash test/harness.sh SCRIPT...` (default: bash bench/quick_read.sh) with
# each, labelling the output "== A run i" / "== B run i".  Leaves B.so
# installed (run `make install` again to restore the tree's build).  Must be
# run holding /tmp/mlcache-install.lock, as it installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
a=$1 b=$2 n=${3:-2}
shift $(($# < 3 ? $# : 3))
cmd=("$@")
((${#cmd[@]})) || cmd=(bash bench/quick_read.sh)
lib=$(pg_config --pkglibdir)
make install >/dev/null
for ((i = 1; i <= n; i++)); do
	for which in A B; do
		so=$a
		[[ $which == B ]] && so=$b
		install -m 755 "$so" "$lib/mlcache.so"
		echo "== $which run $i ($so, $(sha1sum "$so" | cut -c1-10))"
		bash test/harness.sh "${cmd[@]}" 2>&1 | grep -v 'NOTICE\|^$' || true
	done
done
