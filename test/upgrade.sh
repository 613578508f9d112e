#!/usr/bin/env bash
# test/upgrade.sh: ALTER EXTENSION mlcache UPDATE from 0.1.0 to 0.2.0 and
# then to 0.3.0, where the LMS pack becomes its own extension, mlcache_lms.
#
# 1. In a fresh database, install 0.1.0 and fill it: a definition with a
#    grant, staleness, a warm query and an L3 view, a second one, a watch,
#    and warming tasks.  Update to 0.2.0 and check that all of it is still
#    there and works: fetch gives the right value, the watch triggers still
#    invalidate, warm() warms, and the privileges are the new ones.
# 2. At 0.2.0, set the LMS pack up (schema, data, definitions, views,
#    watches) and read through it.  Update to 0.3.0 and create mlcache_lms
#    in the same transaction; check that the pack's definitions, watches
#    and views are kept and work, and what 0.3.0 changed.
# 3. Install mlcache_lms 0.3.0 fresh (CASCADE) in a second database and
#    compare every object of both extensions (functions with their
#    definitions, comments and ACLs, tables, columns, defaults,
#    constraints, indexes, views, sequences, event triggers, configuration
#    tables, initial privileges) with the updated ones: they must be
#    identical.
# Run under test/harness.sh (PG* variables set, a superuser); exits 1 on
# the first failed check.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=test/lib.sh
. test/lib.sh
: "${MLCACHE_TMP:?is not set: run this under test/harness.sh}"

old=mlcache_upgrade_old
new=mlcache_upgrade_new
role=mlc_upg_reader
fail() {
	echo "test/upgrade.sh: FAIL: $*" >&2
	exit 1
}
q() { psql_db "$1" -c "$2"; }
# check DB LABEL SQL EXPECTED: the query's output must be EXPECTED.
check() {
	local got
	got=$(q "$1" "$3" 2>&1) || fail "$2: $got"
	[[ $got == "$4" ]] || fail "$2: expected [$4], got [$got]"
	echo "ok - $2"
}

for db in $old $new; do
	dropdb --if-exists "$db" && createdb "$db" || fail "could not create $db"
done
psql -X -q -d postgres -c "DROP ROLE IF EXISTS $role" || fail "could not drop $role"
drop_all() { dropdb --if-exists $old; dropdb --if-exists $new; psql -X -q -d postgres -c "DROP ROLE IF EXISTS $role"; }
on_exit drop_all

# ---- 1. a filled 0.1.0 installation ----
psql -X -q -v ON_ERROR_STOP=1 -d $old <<SQL || fail "could not fill 0.1.0"
CREATE EXTENSION mlcache VERSION '0.1.0';
CREATE ROLE $role IN ROLE mlcache_reader;
CREATE TABLE up_scores (id int PRIMARY KEY, grp int, score int);
INSERT INTO up_scores SELECT g, g % 3, g FROM generate_series(1, 30) g;
CREATE MATERIALIZED VIEW up_mv AS
    SELECT grp, to_jsonb(sum(score)) AS value FROM up_scores GROUP BY grp;
CREATE UNIQUE INDEX ON up_mv (grp);
SELECT mlcache.define('up_sum', 'SELECT sum(score) FROM up_scores WHERE grp = \$1', 'up:sum:{1}',
                      60, 60, 'up_mv', ARRAY['grp']);
SELECT mlcache.define('up_total', 'SELECT sum(score) FROM up_scores', 'up:total');
SELECT mlcache.grant_fetch('up_sum', '$role');
SELECT mlcache.set_staleness('up_sum', 30, 1.5);
SELECT mlcache.set_warm_query('up_sum', 'SELECT DISTINCT grp FROM up_scores ORDER BY 1');
SELECT mlcache.watch('up_scores', ARRAY['up:sum:{grp}', 'up:total'], ARRAY['up_mv'::regclass]);
INSERT INTO mlcache.warm_queue (definition, params, state, finished_at)
    VALUES ('up_sum', '{1}', 'done', now()), ('up_sum', '{2}', 'failed', now());
SELECT mlcache.fetch('up_sum', 1), mlcache.fetch('up_total');
SQL
check $old "0.1.0 is installed" "SELECT extversion FROM pg_extension WHERE extname = 'mlcache'" "0.1.0"
before=$(q $old "SELECT name, query, key_template, param_types, l1_ttl, l2_ttl, l3_view, l3_columns, l3_value,
                        owner, readers, search_path, max_stale, beta, warm_query
                   FROM mlcache.definitions ORDER BY name")

q $old "ALTER EXTENSION mlcache UPDATE TO '0.2.0'" >/dev/null || fail "ALTER EXTENSION mlcache UPDATE failed"
check $old "the update reached 0.2.0" "SELECT extversion FROM pg_extension WHERE extname = 'mlcache'" "0.2.0"
after=$(q $old "SELECT name, query, key_template, param_types, l1_ttl, l2_ttl, l3_view, l3_columns, l3_value,
                       owner, readers, search_path, max_stale, beta, warm_query
                  FROM mlcache.definitions ORDER BY name")
[[ $before == "$after" ]] || fail "definitions changed in the update: [$before] became [$after]"
echo "ok - every definition kept its query, key, TTLs, L3 view, owner, readers, path, staleness, warm query"
check $old "vary_on is empty for old definitions" \
	"SELECT string_agg(name || '=' || vary_on::text, ',' ORDER BY name) FROM mlcache.definitions" \
	"up_sum={},up_total={}"
check $old "the watch is kept" \
	"SELECT tbl::text || ' ' || keys::text || ' ' || views::text FROM mlcache.watches" \
	"up_scores {\"up:sum:{grp}\",up:total} {up_mv}"
check $old "the warming tasks are kept" \
	"SELECT string_agg(definition || params::text || state, ',' ORDER BY id) FROM mlcache.warm_queue" \
	"up_sum{1}done,up_sum{2}failed"

# What works after the update.
check $old "fetch gives the right value" "SELECT mlcache.fetch('up_sum', 1), mlcache.fetch('up_total')" "145|465"
check $old "a granted reader fetches" \
	"SET ROLE $role; SELECT mlcache.fetch('up_sum', 2)" "155"
check $old "the value is cached" "SELECT mlcache.fetch('up_total'), mlcache.last_level()" "465|l2"
q $old "UPDATE up_scores SET score = score + 100 WHERE id = 3" >/dev/null || fail "UPDATE failed"
check $old "a watched write invalidates (triggers of 0.1.0)" \
	"SELECT mlcache.fetch('up_total'), mlcache.last_level()" "565|compute"
q $old "SELECT mlcache.invalidate_pattern('up:*')" >/dev/null || fail "invalidate_pattern failed"
check $old "warm() warms through the warm query" \
	"SELECT mlcache.warm(ARRAY['up_sum', 'up_total']) - 'async_scheduled'" '{"total": 4, "failed": 0, "warmed": 4}'
check $old "a warmed value is served from the cache" \
	"SELECT mlcache.fetch('up_sum', 0), mlcache.last_level() IN ('l1', 'l2')" "265|t"
q $old "SELECT mlcache.define('up_v', 'SELECT 1', 'up:v', vary_on => ARRAY['TimeZone'])" >/dev/null ||
	fail "define() with vary_on failed"
check $old "define() takes vary_on" "SELECT vary_on FROM mlcache.definitions WHERE name = 'up_v'" "{TimeZone}"
q $old "SELECT mlcache.undefine('up_v')" >/dev/null || fail "undefine failed"
check $old "no role but the owner writes the catalog tables" \
	"SELECT count(*) FROM (VALUES ('mlcache.definitions'), ('mlcache.watches'), ('mlcache.warm_queue'),
	                              ('mlcache.stats_history')) t(tbl),
	                      (VALUES ('mlcache_admin'), ('mlcache_reader'), ('public')) r(role),
	                      (VALUES ('INSERT'), ('UPDATE'), ('DELETE')) p(priv)
	  WHERE has_table_privilege(r.role, t.tbl, p.priv)" "0"
check $old "key_stats() is for admins only" \
	"SELECT has_function_privilege('mlcache_reader', 'mlcache.key_stats(text)', 'EXECUTE'),
	        has_function_privilege('mlcache_admin', 'mlcache.key_stats(text)', 'EXECUTE')" "f|t"
check $old "_set_readers() is gone" "SELECT to_regproc('mlcache._set_readers') IS NULL" "t"

# ---- 2. the LMS pack at 0.2.0, then 0.3.0 with mlcache_lms ----
psql -X -q -v ON_ERROR_STOP=1 -d $old <<SQL >/dev/null || fail "could not set the LMS pack up at 0.2.0"
SELECT mlcache.lms_create_schema('upl');
SELECT mlcache.lms_generate(1, 'upl', 0.42, 20);
SELECT mlcache.lms_setup('upl');
SELECT mlcache.fetch('assignment_stats', 1);
SQL
pack_before=$(q $old "SELECT string_agg(name || ' ' || key_template || ' ' || coalesce(l3_view::text, '-'), ',' ORDER BY name)
                        FROM mlcache.definitions WHERE name NOT LIKE 'up\_%'")
watches_before=$(q $old "SELECT string_agg(tbl::text || ' ' || keys::text, ',' ORDER BY tbl::text) FROM mlcache.watches")
[[ -n $pack_before ]] || fail "lms_setup defined nothing at 0.2.0"
out=$(psql -X -q -v ON_ERROR_STOP=1 -d $old -c 'BEGIN' -c 'ALTER EXTENSION mlcache UPDATE' \
	-c 'CREATE EXTENSION mlcache_lms' -c 'COMMIT' 2>&1) || fail "the update to 0.3.0 with mlcache_lms failed: $out"
[[ $out == *"the LMS pack is now the extension mlcache_lms"* ]] ||
	fail "the update did not warn that the pack moved: [$out]"
echo "ok - the update warns that the pack is now mlcache_lms"
check $old "both extensions are at 0.3.0" \
	"SELECT string_agg(extname || ' ' || extversion, ',' ORDER BY extname) FROM pg_extension
	  WHERE extname LIKE 'mlcache%'" "mlcache 0.3.0,mlcache_lms 0.3.0"
check $old "the pack's functions belong to mlcache_lms" \
	"SELECT count(*) FILTER (WHERE x.extname = 'mlcache_lms') > 30, count(*) FILTER (WHERE x.extname = 'mlcache')
	   FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	   JOIN pg_extension x ON x.oid = d.refobjid
	  WHERE p.pronamespace = 'mlcache'::regnamespace AND p.proname LIKE 'lms\\_%'" "t|0"
check $old "the pack's definitions are kept" \
	"SELECT string_agg(name || ' ' || key_template || ' ' || coalesce(l3_view::text, '-'), ',' ORDER BY name)
	   FROM mlcache.definitions WHERE name NOT LIKE 'up\_%'" "$pack_before"
check $old "the watches are kept" \
	"SELECT string_agg(tbl::text || ' ' || keys::text, ',' ORDER BY tbl::text) FROM mlcache.watches" "$watches_before"
check $old "a pack value equals the live query" \
	"SELECT mlcache.fetch('assignment_stats', 1) = mlcache.lms_assignment_stats_live(1, 'upl')" "t"
check $old "and is then served from the cache" \
	"SELECT mlcache.fetch('assignment_stats', 1) IS NOT NULL, mlcache.last_level() <> 'compute'" "t|t"
q $old "UPDATE upl.submissions SET score = 0 WHERE assignment_id = 1 AND score IS NOT NULL" >/dev/null ||
	fail "UPDATE of a watched pack table failed"
# Not from L1 or L2: computed, or read from the view if the worker has
# already refreshed it after the write (it answers only when fresh).
check $old "a watched pack write invalidates after the update" \
	"SELECT mlcache.fetch('assignment_stats', 1) = mlcache.lms_assignment_stats_live(1, 'upl'),
	        mlcache.last_level() IN ('compute', 'l3')" "t|t"
check $old "include_l1 is gone" \
	"SELECT string_agg(oid::regprocedure::text, ',' ORDER BY 1) FROM pg_proc
	  WHERE pronamespace = 'mlcache'::regnamespace AND proname IN ('invalidate', 'invalidate_pattern')" \
	"mlcache.invalidate(text),mlcache.invalidate_pattern(text)"
check $old "stats has the overall hit rate" "SELECT hit_rate BETWEEN 0 AND 100 FROM mlcache.stats" "t"
check $old "key_stats shows the L2 TTL a value was stored with" \
	"SELECT l2_ttl FROM mlcache.key_stats('assignment_stats:1')" \
	"$(q $old "SELECT l2_ttl FROM mlcache.definitions WHERE name = 'assignment_stats'")"
check $old "DROP EXTENSION mlcache_lms leaves the core" \
	"DROP EXTENSION mlcache_lms; SELECT count(*) FROM pg_proc
	  WHERE pronamespace = 'mlcache'::regnamespace AND proname LIKE 'lms\\_%'" "0"
q $old "CREATE EXTENSION mlcache_lms" >/dev/null || fail "CREATE EXTENSION mlcache_lms after DROP failed"

# ---- 3. the same objects as a fresh 0.3.0 ----
q $new "CREATE EXTENSION mlcache_lms CASCADE" >/dev/null || fail "CREATE EXTENSION mlcache_lms CASCADE failed"
check $new "a fresh install is 0.3.0" \
	"SELECT string_agg(extname || ' ' || extversion, ',' ORDER BY extname) FROM pg_extension
	  WHERE extname LIKE 'mlcache%'" "mlcache 0.3.0,mlcache_lms 0.3.0"
# describe DB EXT: one line per property of every member of extension EXT.
describe() {
	q "$1" "
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = '$2'),
members AS (SELECT classid, objid FROM pg_depend, ext
             WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e')
SELECT * FROM (
  SELECT 'function ' || p.oid::regprocedure::text || E'\n' ||
         CASE WHEN p.prokind = 'a' THEN '' ELSE pg_get_functiondef(p.oid) END || E'\n  comment: ' ||
         coalesce(obj_description(p.oid, 'pg_proc'), '-') || E'\n  acl: ' ||
         coalesce((SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
                                     || '=' || x.privilege_type, ',' ORDER BY 1)
                     FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x), '-')
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
  UNION ALL
  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || E'\n  comment: ' ||
         coalesce(obj_description(c.oid, 'pg_class'), '-') || E'\n  acl: ' ||
         coalesce((SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
                                     || '=' || x.privilege_type, ',' ORDER BY 1)
                     FROM aclexplode(coalesce(c.relacl, CASE c.relkind WHEN 'S' THEN acldefault('s', c.relowner)
                                                                       ELSE acldefault('r', c.relowner) END)) x), '-') ||
         E'\n  view: ' || coalesce(pg_get_viewdef(c.oid), '-') ||
         coalesce((SELECT string_agg(E'\n  column ' || a.attnum || ' ' || a.attname || ' ' ||
                                     format_type(a.atttypid, a.atttypmod) ||
                                     CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
                                     coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') ||
                                     coalesce(' comment ' || col_description(c.oid, a.attnum), ''), '' ORDER BY a.attnum)
                     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ||
         coalesce((SELECT string_agg(E'\n  constraint ' || co.conname || ' ' || pg_get_constraintdef(co.oid), ''
                                     ORDER BY co.conname)
                     FROM pg_constraint co WHERE co.conrelid = c.oid), '') ||
         coalesce((SELECT string_agg(E'\n  index ' || pg_get_indexdef(i.indexrelid), '' ORDER BY 1)
                     FROM pg_index i WHERE i.indrelid = c.oid), '') ||
         coalesce((SELECT string_agg(E'\n  trigger ' || pg_get_triggerdef(t.oid), '' ORDER BY 1)
                     FROM pg_trigger t WHERE t.tgrelid = c.oid), '') ||
         E'\n  config: ' || (c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = '$2')::oid[]))::text
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  UNION ALL
  SELECT 'event trigger ' || e.evtname || ' ' || e.evtevent || ' ' || e.evtenabled::text || ' ' || e.evtfoid::regproc::text
    FROM members m JOIN pg_event_trigger e ON m.classid = 'pg_event_trigger'::regclass AND e.oid = m.objid
  UNION ALL
  SELECT 'type ' || t.oid::regtype::text
    FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
  UNION ALL
  SELECT 'other member ' || pg_describe_object(m.classid, m.objid, 0)
    FROM members m
   WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_event_trigger'::regclass,
                           'pg_type'::regclass)
  UNION ALL
  SELECT 'initial privileges ' || pg_describe_object(i.classoid, i.objoid, i.objsubid) || ': ' ||
         (SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
                            || '=' || x.privilege_type, ',' ORDER BY 1) FROM aclexplode(i.initprivs) x)
    FROM pg_init_privs i JOIN members m ON m.classid = i.classoid AND m.objid = i.objoid
   -- An explicit copy of the default ACL is the default (0.1.0 granted on
   -- warm_queue_id_seq; the update's REVOKE leaves the owner's entry).
   WHERE (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(i.initprivs) x)
         IS DISTINCT FROM
         (SELECT string_agg(x::text, ',' ORDER BY x::text)
            FROM unnest(CASE i.classoid
                          WHEN 'pg_class'::regclass
                            THEN (SELECT CASE c.relkind WHEN 'S' THEN acldefault('s', c.relowner)
                                                        ELSE acldefault('r', c.relowner) END
                                    FROM pg_class c WHERE c.oid = i.objoid)
                          WHEN 'pg_proc'::regclass
                            THEN (SELECT acldefault('f', p.proowner) FROM pg_proc p WHERE p.oid = i.objoid)
                        END) x)
  UNION ALL
  SELECT 'schema acl ' || coalesce((SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                                           ELSE x.grantee::regrole::text END
                                                      || '=' || x.privilege_type, ',' ORDER BY 1)
                                      FROM aclexplode(n.nspacl) x), '-')
    FROM pg_namespace n WHERE n.nspname = 'mlcache'
) d(line) ORDER BY 1"
}
for ext in mlcache mlcache_lms; do
	describe $old $ext >"$MLCACHE_TMP/upgrade_old.txt" || fail "could not describe the updated $ext"
	describe $new $ext >"$MLCACHE_TMP/upgrade_new.txt" || fail "could not describe the fresh $ext"
	[[ -s $MLCACHE_TMP/upgrade_new.txt ]] || fail "the description of the fresh $ext is empty"
	if ! diff -u "$MLCACHE_TMP/upgrade_new.txt" "$MLCACHE_TMP/upgrade_old.txt"; then
		fail "$ext updated from 0.1.0 to 0.3.0 differs from a fresh 0.3.0 (diff: - fresh, + updated)"
	fi
	echo "ok - $ext updated from 0.1.0 to 0.3.0 has exactly the objects, definitions, comments and privileges of a fresh 0.3.0 ($(grep -c '^function ' "$MLCACHE_TMP/upgrade_new.txt") functions)"
done
echo "test/upgrade.sh: all checks passed"
