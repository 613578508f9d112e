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
# The envelope decoder with the MAC (libpgcommon's frontend HMAC, on OpenSSL)
# and the jsonb validator.
"$cc" "${flags[@]}" -I"$inc" -w fuzz/fuzz_envelope.c src/envelope.c src/jsonb_check.c \
	"$libdir/libpgcommon.a" "$libdir/libpgport.a" -lcrypto -o "$out/fuzz_envelope"

printf 'assignment_stats:{assignment_id}' >"$out/corpus-template/a"
printf 'analytics:student:{student_id}:*' >"$out/corpus-template/b"
printf 'x:{a}{b}:y' >"$out/corpus-template/c"
# Valid, truncated and wrongly signed envelopes, and bare jsonb bodies.
/usr/bin/python3 fuzz/seeds.py "$out/corpus-envelope"

for t in template envelope; do
	echo "fuzz: $t for ${secs}s"
	"$out/fuzz_$t" -max_total_time="$secs" -max_len=2048 -print_final_stats=1 \
		"$out/corpus-$t" 2>&1 | tail -n 12
done
echo "fuzz: no crash"
