#!/usr/bin/env bash
# test/subscriber.sh: a logical-replication subscriber's cache is invalidated
# when changes are applied.  Two PostgreSQL clusters of its own on unix
# sockets: a publisher (wal_level = logical) and a subscriber with mlcache,
# which watches the subscribed table and uses the harness's Redis.  An
# apply worker fires only row-level triggers (and statement-level TRUNCATE
# triggers), so this exercises watch()'s mlcache_watch_replica trigger.
# Checks, on the subscriber, after each change on the publisher is applied:
#   - UPDATE, INSERT, DELETE and a transaction of several rows invalidate the
#     watched keys they touch (the new value is read, computed again), while
#     a control key that no watch covers keeps its now-outdated value, which
#     shows that only the trigger made the difference;
#   - TRUNCATE invalidates the templates' prefixes;
#   - a local write on the subscriber still invalidates (statement triggers).
# Run under test/harness.sh; exits non-zero on failure.
set -euo pipefail
t0=$SECONDS
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
. "$here/lib.sh"
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"
pub_port=55441 sub_port=55442
base=$MLCACHE_TMP/subscriber
db=mlcache_sub
fail() { echo "subscriber: $*" >&2; exit 1; }
say() { echo "subscriber: $*"; }
pub() { psql_db "$db" -p "$pub_port" "$@"; }
sub() { psql_db "$db" -p "$sub_port" "$@"; }
# read KEY GRP: the cached sum of group GRP, and the level that answered
read_g() { sub -c "SELECT mlcache.get('$1', 'SELECT coalesce(sum(v), 0) FROM t WHERE grp = $2'), mlcache.last_level()"; }
# applied GRP SUM: the subscriber's table (not the cache) shows SUM for GRP
applied() { [[ $(sub -c "SELECT coalesce(sum(v), 0) FROM t WHERE grp = $1") == "$2" ]]; }
# fresh KEY GRP SUM: a read through the cache gives SUM (bounded wait: the
# generations are bumped in the apply worker's commit callback, just after
# its commit becomes visible)
fresh() { [[ $(read_g "$1" "$2") == "$3|"* ]]; }

rm -rf "$base"
mkdir -p "$base"
pg_init "$base/pub" "$pub_port"
echo "wal_level = logical" | as_pg tee "$base/pub/mlcache_test.conf" >/dev/null
on_exit pg_stop "$base/pub"
pg_start "$base/pub"
pg_init "$base/sub" "$sub_port"
on_exit pg_stop "$base/sub"
pg_start "$base/sub"

for port in "$pub_port" "$sub_port"; do
	command psql -X -q -p "$port" -d postgres -c "CREATE DATABASE $db"
done
schema='CREATE TABLE t (id int PRIMARY KEY, grp int NOT NULL, v int NOT NULL)'
pub -c "$schema" -c 'INSERT INTO t SELECT g, g % 3, 1 FROM generate_series(1, 30) g' \
	-c 'CREATE PUBLICATION mlcache_pub FOR TABLE t' >/dev/null
sub -c 'CREATE EXTENSION mlcache' -c "$schema" \
	-c "SELECT mlcache.watch('t', ARRAY['sub:grp:{grp}', 'sub:all:*'])" >/dev/null
on_exit quiet sub -c 'DROP SUBSCRIPTION IF EXISTS mlcache_sub'
sub -c "CREATE SUBSCRIPTION mlcache_sub CONNECTION 'host=$MLCACHE_TMP port=$pub_port dbname=$db user=postgres'
        PUBLICATION mlcache_pub" >/dev/null
wait_for 30 applied 1 10 || fail "the initial copy did not reach the subscriber"
say "publisher and subscriber are up; the subscriber watches t"

# Fill the cache on the subscriber: watched keys and an unwatched control.
for k in sub:grp:1 sub:all:g1 other:grp:1; do
	[[ $(read_g "$k" 1) == "10|compute" ]] || fail "first read of $k"
	[[ $(read_g "$k" 1) == 10\|l[12] ]] || fail "second read of $k was not a cache hit"
done
read_g sub:grp:2 2 >/dev/null

# UPDATE on the publisher.
pub -c 'UPDATE t SET v = v + 1 WHERE id = 1' >/dev/null # grp 1
wait_for 30 applied 1 11 || fail "the UPDATE was not applied"
wait_for 10 fresh sub:grp:1 1 11 || fail "the applied UPDATE did not invalidate sub:grp:1 (read $(read_g sub:grp:1 1))"
wait_for 10 fresh sub:all:g1 1 11 || fail "the applied UPDATE did not invalidate the prefix sub:all:*"
[[ $(read_g other:grp:1 1) == 10\|l[12] ]] ||
	fail "control: the unwatched key was not kept (read $(read_g other:grp:1 1)): the check proves nothing"
[[ $(read_g sub:grp:2 2) == 10\|l[12] ]] || fail "an UPDATE of group 1 invalidated group 2"
say "an UPDATE on the publisher invalidates the subscriber's watched keys once applied (an unwatched key stays outdated)"

# INSERT, DELETE, and a transaction of several rows that moves a row between groups.
read_g sub:grp:1 1 >/dev/null
pub -c 'INSERT INTO t VALUES (100, 1, 5)' >/dev/null
wait_for 30 applied 1 16 || fail "the INSERT was not applied"
wait_for 10 fresh sub:grp:1 1 16 || fail "the applied INSERT did not invalidate sub:grp:1"
pub -c 'DELETE FROM t WHERE id = 100' >/dev/null
wait_for 30 applied 1 11 || fail "the DELETE was not applied"
wait_for 10 fresh sub:grp:1 1 11 || fail "the applied DELETE did not invalidate sub:grp:1"
read_g sub:grp:2 2 >/dev/null
pub -c 'BEGIN' -c 'UPDATE t SET grp = 2 WHERE id = 4' -c 'UPDATE t SET v = v + 10 WHERE id = 7' -c 'COMMIT' >/dev/null
wait_for 30 applied 2 11 || fail "the transaction was not applied"
wait_for 10 fresh sub:grp:1 1 20 || fail "the applied transaction did not invalidate sub:grp:1"
wait_for 10 fresh sub:grp:2 2 11 || fail "the row moved into group 2 did not invalidate sub:grp:2"
say "INSERT, DELETE and a multi-row transaction on the publisher invalidate what they touch once applied"

# TRUNCATE: a statement-level trigger, which the apply worker fires.
for g in 1 2; do read_g "sub:grp:$g" "$g" >/dev/null; done
pub -c 'TRUNCATE t' >/dev/null
wait_for 30 applied 1 0 || fail "the TRUNCATE was not applied"
wait_for 10 fresh sub:grp:1 1 0 || fail "the applied TRUNCATE did not invalidate sub:grp:1"
wait_for 10 fresh sub:grp:2 2 0 || fail "the applied TRUNCATE did not invalidate sub:grp:2"
say "TRUNCATE on the publisher invalidates the subscriber's keys once applied"

# A local write on the subscriber still invalidates, through the statement-level triggers.
[[ $(read_g sub:grp:0 0) == 0\|* ]] || fail "read of group 0"
sub -c 'INSERT INTO t VALUES (1000, 0, 7)' >/dev/null
[[ $(read_g sub:grp:0 0) == "7|compute" ]] || fail "a local INSERT on the subscriber did not invalidate"
pending=$(sub -c "SELECT count(*) FROM pg_stat_subscription WHERE subname = 'mlcache_sub' AND pid IS NOT NULL")
((pending == 1)) || fail "the apply worker is not running (an error in the watch trigger?)"
say "local writes on the subscriber invalidate as before; the apply worker is healthy"
say "done in $((SECONDS - t0)) s"
