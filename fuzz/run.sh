#!/usr/bin/env bash
# fuzz/run.sh [SECONDS]: build the libFuzzer targets with AddressSanitizer and
# run each for SECONDS (default 60), from a small seed corpus.  Needs clang.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-60}
out=fuzz/build
mkdir -p "$out" "$out/corpus-template" "$out/corpus-envelope"
inc=$(pg_config --includedir-server)
libdir=$(pg_config --pkglibdir)
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Isrc)

cc=$(command -v clang || command -v clang-14)
"$cc" "${flags[@]}" fuzz/fuzz_template.c src/template.c -o "$out/fuzz_template"
"$cc" "${flags[@]}" -I"$inc" -w fuzz/fuzz_envelope.c src/envelope.c \
	"$libdir/libpgport.a" -o "$out/fuzz_envelope"

printf 'assignment_stats:{assignment_id}' >"$out/corpus-template/a"
printf 'analytics:student:{student_id}:*' >"$out/corpus-template/b"
printf 'x:{a}{b}:y' >"$out/corpus-template/c"
printf 'MLC\002\000\000\000\000' >"$out/corpus-envelope/a"

for t in template envelope; do
	echo "fuzz: $t for ${secs}s"
	"$out/fuzz_$t" -max_total_time="$secs" -max_len=512 -print_final_stats=1 \
		"$out/corpus-$t" 2>&1 | tail -n 12
done
echo "fuzz: no crash"
