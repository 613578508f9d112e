#!/usr/bin/env bash
# demo/demo.sh: a short tour of mlcache's levels; `make demo` runs it inside test/harness.sh (servers up).
set -euo pipefail
: "${PGHOST:?is not set: run this with make demo (test/harness.sh)}"

db=mlcache_demo
demo_psql() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }

echo "== database $db: a table of 50,000 scores over 100 assignments"
dropdb --if-exists "$db" 2>/dev/null || true
createdb "$db"
demo_psql <<'SQL'
CREATE EXTENSION mlcache;
CREATE TABLE scores (id int PRIMARY KEY, assignment_id int, score numeric);
INSERT INTO scores
SELECT g, g % 100, round((g * 7919 % 1000) / 10.0, 1) FROM generate_series(1, 50000) g;
ANALYZE scores;
SELECT mlcache.invalidate('demo:avg:1') \g /dev/null
-- (start from an empty cache even on a rerun)
SQL

# Every session reads the same key; the query runs only when no level has the value.
read_sql=$(
	cat <<'SQL'
\set q 'SELECT avg(score) FROM scores WHERE assignment_id = 1'
\pset footer off
SQL
)

echo
echo "== session 1: the first read computes the value, the next two come from L1 (this backend's memory)"
demo_psql --echo-queries <<SQL
$read_sql
SELECT mlcache.get('demo:avg:1', :'q') AS value, mlcache.last_level() AS level;
SELECT mlcache.get('demo:avg:1', :'q') AS value, mlcache.last_level() AS level;
SELECT mlcache.get('demo:avg:1', :'q') AS value, mlcache.last_level() AS level;
SQL

echo
echo "== session 2: a new backend has an empty L1, so the value comes from L2 (Redis)"
demo_psql --echo-queries <<SQL
$read_sql
SELECT mlcache.get('demo:avg:1', :'q') AS value, mlcache.last_level() AS level;
\echo
\echo '== invalidate the key (at commit, in every level): the next read computes again'
SELECT mlcache.invalidate('demo:avg:1') \g /dev/null
SELECT mlcache.get('demo:avg:1', :'q') AS value, mlcache.last_level() AS level;
\echo
\echo '== timing: the live query three times, then the cached read (L1) three times'
\pset tuples_only on
\timing on
SELECT avg(score) FROM scores WHERE assignment_id = 1;
SELECT avg(score) FROM scores WHERE assignment_id = 1;
SELECT avg(score) FROM scores WHERE assignment_id = 1;
SELECT mlcache.get('demo:avg:1', :'q'), mlcache.last_level();
SELECT mlcache.get('demo:avg:1', :'q'), mlcache.last_level();
SELECT mlcache.get('demo:avg:1', :'q'), mlcache.last_level();
SQL
