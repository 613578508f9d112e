#!/usr/bin/env bash
# test/shared_redis.sh: two PostgreSQL clusters, each with a database of the
# same name, on one Redis (the harness's).  The default namespace carries
# each cluster's system identifier, so:
#   - each stores its values under its own keys, and each reads its own
#     value back from L2 after the other has stored one under the same key;
#   - neither's clean_orphans(), clear() nor invalidate_pattern() removes the
#     other's keys;
#   - control: with the second cluster's prefix set to the first's (as the
#     old default "mlcache:<database>:" did), the two evict each other.
# Also: a hot standby, which has its primary's system identifier, stores
# under its own standby:<epoch>: names, which the primary's clean_orphans()
# leaves alone.
# Run under test/harness.sh (the first cluster is its server); exits non-zero on failure.
set -euo pipefail
t0=$SECONDS
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
b_port=55443 s_port=55444
base=$MLCACHE_TMP/shared_redis
db=mlcache_shared
fail() { echo "shared_redis: $*" >&2; exit 1; }
say() { echo "shared_redis: $*"; }
a() { psql_db "$db" "$@"; }
b() { psql_db "$db" -p "$b_port" "$@"; }
# read CLUSTER VALUE: read key k (computing VALUE on a miss) and the level that answered
read_k() { "$1" -c "SELECT mlcache.get('k', 'SELECT $2', 0), mlcache.last_level()"; }
counter() { "$1" -c "SELECT value FROM mlcache.counters() WHERE counter = '$2'"; }
exists() { rcli EXISTS "$1"; }

rm -rf "$base"
mkdir -p "$base"
pg_init "$base/b" "$b_port"
on_exit pg_stop "$base/b"
pg_start "$base/b"
fresh_db "$db"
command psql -X -q -p "$b_port" -d postgres -c "CREATE DATABASE $db"
a -c 'CREATE EXTENSION mlcache' >/dev/null
b -c 'CREATE EXTENSION mlcache' >/dev/null
ns_a=$(mlcache_ns "$db")
ns_b=$(mlcache_ns "$db" -p "$b_port")
id_a=$(a -c 'SELECT system_identifier FROM pg_control_system()')
id_b=$(b -c 'SELECT system_identifier FROM pg_control_system()')
[[ $ns_a == "mlcache:$id_a:$db:" && $ns_b == "mlcache:$id_b:$db:" ]] ||
	fail "namespaces $ns_a and $ns_b do not name their clusters ($id_a, $id_b)"
[[ $ns_a != "$ns_b" ]] || fail "both clusters use the namespace $ns_a"
say "the clusters' namespaces are $ns_a and $ns_b"

# Each stores and reads back its own value under the same key name.
a -c 'SELECT mlcache.clear()' >/dev/null
b -c 'SELECT mlcache.clear()' >/dev/null
dec_a=$(counter a decode_failures) dec_b=$(counter b decode_failures)
[[ $(read_k a 1) == "1|compute" ]] || fail "first read on A"
[[ $(read_k b 2) == "2|compute" ]] || fail "first read on B"
[[ $(read_k a 1) == "1|l2" ]] || fail "A's value was not an L2 hit after B stored its own"
[[ $(read_k b 2) == "2|l2" ]] || fail "B's value was not an L2 hit"
[[ $(exists "${ns_a}k") == 1 && $(exists "${ns_b}k") == 1 ]] || fail "the values are not under their namespaces"
(($(counter a decode_failures) == dec_a && $(counter b decode_failures) == dec_b)) ||
	fail "a cluster met the other's value"
say "each cluster reads its own value of k from L2; neither met the other's"

# Clean-ups stay in their namespace.
removed=$(b -c 'SELECT mlcache.clean_orphans()')
((removed == 0)) || fail "B's clean_orphans() removed $removed keys"
b -c "SELECT mlcache.invalidate_pattern('*')" -c 'SELECT mlcache.clear()' >/dev/null
gone() { [[ $(exists "$1") == 0 ]]; }
wait_for 10 gone "${ns_b}k" || fail "B's clear() did not remove its own key (worker clean-up)"
[[ $(exists "${ns_a}k") == 1 ]] || fail "B's clear() or invalidate_pattern() removed A's key"
[[ $(read_k a 1) == "1|l2" ]] || fail "A's value is gone after B's clean-ups"
say "B's clean_orphans(), clear() and invalidate_pattern('*') left A's key alone"

# Control: one namespace for both, as the old default had it.  B's read is a
# miss on A's value (another secret) and overwrites it; A's next read misses.
b -c "SET mlcache.key_prefix = '$ns_a'" -c "SELECT mlcache.get('k', 'SELECT 2', 0)" >/dev/null
[[ $(read_k a 1) == "1|compute" ]] || fail "control: a shared namespace did not make the clusters collide"
say "control: sharing one namespace, the clusters evict each other"

# A hot standby of B has B's system identifier; it appends standby:<epoch>: to
# B's namespace, and B's clean_orphans() leaves the standby's values alone.
standby=$MLCACHE_TMP/shared_redis_standby
as_pg "$(pg_bin pg_basebackup)" -h "$MLCACHE_TMP" -p "$b_port" -U postgres -D "$standby" -R -X stream -c fast
echo "port = $s_port" | as_pg tee "$standby/mlcache_test.conf" >/dev/null
on_exit pg_stop "$standby"
pg_start "$standby"
s() { psql_db "$db" -p "$s_port" "$@"; }
b -c 'RESET mlcache.key_prefix' >/dev/null
standby_cached() { s -c "SELECT mlcache.get('sk', 'SELECT 5', 0)" >/dev/null && [[ -n $(rcli --scan --pattern "${ns_b}standby:*sk") ]]; }
wait_for 30 standby_cached || fail "the standby stored no value of its own in L2 within 30 s"
skey=$(rcli --scan --pattern "${ns_b}standby:*sk" | head -n 1)
[[ $skey =~ ^${ns_b}standby:[0-9a-f]{16}:sk$ ]] || fail "the standby's key is $skey"
b -c 'SELECT mlcache.clean_orphans()' >/dev/null
[[ $(exists "$skey") == 1 ]] || fail "the primary's clean_orphans() removed the standby's value $skey"
s -c 'SELECT mlcache.clean_orphans()' >/dev/null
[[ $(exists "$skey") == 1 ]] || fail "the standby's clean_orphans() removed its own value"
say "a standby stores under ${ns_b}standby:<epoch>:, and neither server's clean_orphans() removes it"
say "done in $((SECONDS - t0)) s"
