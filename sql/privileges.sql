-- No role escalates through mlcache (DESIGN.md G13).  An application role
-- in mlcache_admin that is not a superuser (mlc_priv_app) tries every way
-- it had in 0.1.0 to make its code run as another role or to change what is
-- not its own; each attempt fails with 42501 and leaves nothing behind.
-- Then the positive path: the same role defines, fetches, watches, grants
-- and warms its own objects.
\set VERBOSITY terse
CREATE ROLE mlc_priv_app LOGIN IN ROLE mlcache_admin;
CREATE ROLE mlc_priv_other IN ROLE mlcache_admin;
CREATE ROLE mlc_priv_member IN ROLE mlcache_admin, mlc_priv_app;
CREATE ROLE mlc_priv_reader IN ROLE mlcache_reader;
CREATE ROLE mlc_priv_nobody;
CREATE SCHEMA mlc_priv AUTHORIZATION mlc_priv_app;
GRANT USAGE ON SCHEMA mlc_priv TO mlc_priv_other, mlc_priv_member, mlc_priv_reader;
GRANT EXECUTE ON FUNCTION expect_error(text) TO PUBLIC;

-- The superuser's definition over a table nobody else may read.
CREATE TABLE priv_secret (id int PRIMARY KEY, v text);
INSERT INTO priv_secret VALUES (1, 'secret one'), (2, 'secret two');
SELECT mlcache.define('priv_su', 'SELECT v FROM priv_secret WHERE id = $1', 'priv:su:{1}');
CREATE VIEW priv_su_row AS
    SELECT query, key_template, readers::text, max_stale, beta, warm_query,
           (SELECT rolsuper FROM pg_roles r WHERE r.oid = owner) AS owned_by_superuser
      FROM mlcache.definitions WHERE name = 'priv_su';
GRANT SELECT ON priv_su_row TO PUBLIC;
SELECT * FROM priv_su_row;

-- ---- the application role's objects ----
SET SESSION AUTHORIZATION mlc_priv_app;
SET search_path = mlc_priv, public;
CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, n int NOT NULL);
INSERT INTO items SELECT g, g % 3, g FROM generate_series(1, 12) g;
-- Writes are refused in warm queries (read-only): this one tries.
CREATE TABLE who_ran (who text, what text);
GRANT SELECT, INSERT ON who_ran TO PUBLIC;
CREATE FUNCTION record(what text) RETURNS int LANGUAGE sql
    AS $$ INSERT INTO mlc_priv.who_ran VALUES (current_user, what) RETURNING 1 $$;
GRANT EXECUTE ON FUNCTION record(text) TO PUBLIC;

-- ---- 1. the catalog changes only through the API ----
SELECT expect_error($$UPDATE mlcache.definitions SET owner = 'mlc_priv_app', readers = '{mlc_priv_app}'
                       WHERE name = 'priv_su'$$);
SELECT expect_error($$INSERT INTO mlcache.definitions (name, query, key_template, param_types, owner, search_path)
                      VALUES ('priv_planted', 'SELECT v FROM priv_secret', 'p', '{}', 'mlc_priv_app', 'public')$$);
SELECT expect_error($$DELETE FROM mlcache.definitions WHERE name = 'priv_su'$$);
SELECT expect_error($$INSERT INTO mlcache.watches (tbl, keys) VALUES ('priv_secret', '{x}')$$);
SELECT expect_error($$DELETE FROM mlcache.watches$$);
SELECT expect_error($$INSERT INTO mlcache.warm_queue (definition, params) VALUES ('priv_su', '{1}')$$);
SELECT expect_error($$UPDATE mlcache.warm_queue SET state = 'pending'$$);
SELECT expect_error($$INSERT INTO mlcache.stats_history (stats) VALUES ('{}')$$);
SELECT expect_error($$DELETE FROM mlcache.stats_history$$);

-- ---- 1. another owner's definition: no takeover, no change ----
SELECT expect_error($$SELECT mlcache.define('priv_su', 'SELECT v FROM priv_secret WHERE id = $1', 'priv:su:{1}')$$);
SELECT expect_error($$SELECT mlcache.undefine('priv_su')$$);
SELECT expect_error($$SELECT mlcache.grant_fetch('priv_su', 'mlc_priv_app')$$);
SELECT expect_error($$SELECT mlcache.revoke_fetch('priv_su', 'mlc_priv_app')$$);
SELECT expect_error($$SELECT mlcache.set_staleness('priv_su', 60, 1)$$);
SELECT expect_error($$SELECT mlcache.set_warm_query('priv_su', 'SELECT mlc_priv.record(''planted'')')$$);
SELECT expect_error($$SELECT mlcache.fetch('priv_su', 1)$$);
SELECT * FROM priv_su_row;

-- ---- 4. the caller is the current user, not the session's ----
-- A SECURITY DEFINER function of app, called by the superuser, runs as app:
-- it cannot give app what only the superuser may.
CREATE FUNCTION trap() RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM mlcache.grant_fetch('priv_su', 'mlc_priv_app');
    RETURN 'granted';
EXCEPTION WHEN insufficient_privilege THEN
    RETURN 'refused: ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION trap() TO PUBLIC;
RESET SESSION AUTHORIZATION;
SELECT mlc_priv.trap();
-- SET ROLE from a superuser's session: the role's rights, not the session's.
SET ROLE mlc_priv_app;
SELECT expect_error($$SELECT mlcache.grant_fetch('priv_su', 'mlc_priv_app')$$);
SELECT expect_error($$SELECT mlcache.define('priv_su', 'SELECT 1', 'priv:su')$$);
RESET ROLE;
SELECT * FROM priv_su_row;

-- ---- 5. define() parses the query, it never splices it ----
SET SESSION AUTHORIZATION mlc_priv_app;
SET search_path = mlc_priv, public;
SELECT expect_error($$SELECT mlcache.define('priv_inj', 'SELECT 1; CREATE TABLE mlc_priv.pwned ()', 'priv:inj')$$);
SELECT expect_error($$SELECT mlcache.define('priv_inj', 'SELECT 1 AS x; DEALLOCATE ALL', 'priv:inj')$$);
SELECT expect_error($$SELECT mlcache._param_types('')$$);
SELECT expect_error($$SELECT mlcache._param_types('SELECT $2::int')$$);
SELECT mlcache._param_types('SELECT $1::int + $2::bigint, $3::text');
-- A parameter's type must not run app's code when a caller's argument is
-- converted to it (as the caller): no domains (their CHECK may call any
-- function), no composite types.
CREATE FUNCTION evil(v int) RETURNS boolean LANGUAGE sql
    AS $$ SELECT mlc_priv.record('converted') = 1 $$;
CREATE DOMAIN evil_dom AS int CHECK (mlc_priv.evil(VALUE));
CREATE TYPE evil_row AS (a evil_dom);
SELECT expect_error($$SELECT mlcache.define('priv_dom', 'SELECT $1::mlc_priv.evil_dom', 'priv:dom:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('priv_dom', 'SELECT $1::mlc_priv.evil_dom[]', 'priv:dom:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('priv_dom', 'SELECT $1::mlc_priv.evil_row', 'priv:dom:{1}')$$);
SELECT mlcache._param_types('SELECT $1::int4range, $2::text[], $3::int[][]');
SELECT to_regclass('mlc_priv.pwned') IS NULL AS nothing_created,
       (SELECT count(*) FROM mlcache.definitions WHERE name = 'priv_inj') AS registered;

-- ---- the positive path: app's own definition, grants, staleness ----
SELECT mlcache.define('priv_items', 'SELECT sum(n) FROM items WHERE grp = $1', 'priv:items:{1}');
SELECT mlcache.define('priv_who', 'SELECT $1::text', 'priv:who:{1}');
SELECT name, owner, search_path, vary_on FROM mlcache.definitions
 WHERE name LIKE 'priv\_%' AND name <> 'priv_su' ORDER BY name;
SELECT mlcache.fetch('priv_items', 1), mlcache.fetch('priv_items', 1), mlcache.last_level();
SELECT mlcache.grant_fetch('priv_items', 'mlc_priv_reader');
SELECT mlcache.set_staleness('priv_items', 30, 0.5);
SELECT readers, max_stale, beta FROM mlcache.definitions WHERE name = 'priv_items';
SELECT mlcache.revoke_fetch('priv_items', 'mlc_priv_reader');
SELECT mlcache.grant_fetch('priv_items', 'mlc_priv_reader');
-- The catalog's own checks still apply.
SELECT expect_error($$SELECT mlcache.define('priv_bad', 'UPDATE items SET n = $1', 'priv:bad:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('priv_bad', 'SELECT $1::int', 'priv:bad')$$);
SELECT expect_error($$SELECT mlcache.define('priv_bad', 'SELECT 1', 'priv:bad', vary_on => ARRAY['bad name'])$$);
SELECT expect_error($$SELECT mlcache.define('priv_bad', 'SELECT 1', 'priv:bad', vary_on => ARRAY[NULL])$$);
SELECT expect_error($$SELECT mlcache.set_staleness('priv_items', -1, 0)$$);
SELECT expect_error($$SELECT mlcache.undefine('priv_no_such')$$);
SELECT expect_error($$SELECT mlcache.grant_fetch('priv_items', NULL)$$);
SELECT mlcache.define('priv_vary', 'SELECT 1', 'priv:vary', vary_on => ARRAY['TimeZone', 'app.tenant_id']);
SELECT vary_on FROM mlcache.definitions WHERE name = 'priv_vary';
SELECT mlcache.undefine('priv_vary');
-- vary_on has no three-argument get(): get(key, query, NULL) keeps meaning
-- the default l1_ttl.
SELECT mlcache.get('priv:null', 'SELECT 1', NULL);

-- ---- 2. warm queries run as the definition's owner ----
SELECT mlcache.set_warm_query('priv_who', 'SELECT current_user::text');
SELECT mlcache.set_warm_query('priv_items', 'SELECT DISTINCT grp FROM items ORDER BY 1');
-- (These fail while running as the owner with the definition's path: the
-- error restores the caller's.)
SET search_path = public;
SELECT expect_error($$SELECT mlcache.set_warm_query('priv_items', 'SELECT 1, 2')$$);
SELECT expect_error($$SELECT mlcache.set_warm_query('priv_items', 'DELETE FROM items RETURNING grp')$$);
SELECT expect_error($$SELECT mlcache.set_warm_query('priv_items', 'SELECT $1::int')$$);
SELECT current_user, current_setting('search_path') AS path;
SET search_path = mlc_priv, public;
SELECT mlcache.warm(ARRAY['priv_items', 'priv_who']);
RESET SESSION AUTHORIZATION;
-- The superuser's warm() (as pg_cron's daily job): app's warm query gives
-- app's name, so it ran as app.
SELECT * FROM mlcache._warm_tasks(ARRAY['priv_who']);
SELECT mlcache.invalidate_pattern('priv:*');
SELECT (mlcache.warm() -> 'failed')::int AS failed;
SELECT mlcache.fetch('priv_who', 'mlc_priv_app'), mlcache.last_level();
-- A planted write in a warm query runs as app, read-only: it fails (a
-- WARNING) and the other definitions are warmed all the same.
SET SESSION AUTHORIZATION mlc_priv_app;
SELECT mlcache.set_warm_query('priv_who', 'SELECT mlc_priv.record(''warm'')::text');
RESET SESSION AUTHORIZATION;
RESET search_path;
SELECT * FROM mlcache._warm_tasks(NULL::text[]) WHERE definition LIKE 'priv\_%';
SELECT count(*) AS recorded FROM mlc_priv.who_ran;
-- The failed warm query ran as app; the error restored the user and path.
SELECT current_user = session_user AS user_restored, current_setting('search_path') AS path;

-- ---- 2. warm() covers only the caller's definitions; the queue only fetchable ones ----
SET SESSION AUTHORIZATION mlc_priv_other;
SELECT expect_error($$SELECT mlcache.warm(ARRAY['priv_items'])$$);
SELECT expect_error($$SELECT * FROM mlcache._warm_tasks(ARRAY['priv_su'])$$);
SELECT mlcache.warm() - 'async_scheduled';
SELECT expect_error($$SELECT mlcache._warm_enqueue('priv_items', '{1}', NULL, 1)$$);
SELECT expect_error($$SELECT mlcache._warm_enqueue('priv_no_such', '{1}', NULL, 1)$$);
SELECT mlcache.warm('priv_items', '1');
RESET SESSION AUTHORIZATION;
SELECT count(*) AS queued FROM mlcache.warm_queue WHERE definition LIKE 'priv\_%';
-- app's warm() queues its own parameter sets through the API.
SET SESSION AUTHORIZATION mlc_priv_app;
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm(ARRAY['priv_items']) -> 'async_scheduled' AS queued_by_app;
RESET mlcache.warm_sync_limit;
RESET SESSION AUTHORIZATION;
SELECT definition, params FROM mlcache.warm_queue WHERE definition LIKE 'priv\_%' ORDER BY id;
-- The queue's parameters are app's data: mlcache.warm_tasks shows them to
-- app (and superusers), not to other roles; warm_queue itself to nobody.
SET ROLE mlc_priv_app;
SELECT count(*) AS app_sees FROM mlcache.warm_tasks WHERE definition LIKE 'priv\_%';
SET ROLE mlc_priv_other;
SELECT count(*) AS other_sees FROM mlcache.warm_tasks WHERE definition LIKE 'priv\_%';
SELECT expect_error($$SELECT * FROM mlcache.warm_queue$$);
RESET ROLE;
DELETE FROM mlcache.warm_queue WHERE definition LIKE 'priv\_%';

-- ---- 3. watch() and unwatch() for an admin who owns the table ----
SET SESSION AUTHORIZATION mlc_priv_app;
SET search_path = mlc_priv, public;
SELECT mlcache.watch('items', ARRAY['priv:items:{grp}']);
SELECT tbl, keys FROM mlcache.watches WHERE tbl = 'mlc_priv.items'::regclass;
SELECT mlcache.fetch('priv_items', 2), mlcache.fetch('priv_items', 2), mlcache.last_level();
UPDATE items SET n = n + 100 WHERE id = 2;
SELECT mlcache.fetch('priv_items', 2), mlcache.last_level() <> 'l1' AS recomputed;
-- DDL by the owner keeps working; the event triggers check it.
ALTER TABLE items ADD COLUMN note text;
SELECT expect_error($$ALTER TABLE items RENAME COLUMN grp TO g$$);
SELECT expect_error($$ALTER TABLE items DISABLE TRIGGER mlcache_watch_upd$$);
SELECT expect_error($$SELECT mlcache.watch('priv_secret', ARRAY['priv:su:{id}'])$$);
SELECT expect_error($$SELECT mlcache.unwatch('priv_secret')$$);
SELECT expect_error($$SELECT mlcache._catalog_watch('priv_secret', ARRAY['priv:su:{id}'], '{}')$$);
SELECT expect_error($$SELECT mlcache._catalog_unwatch('priv_secret')$$);
RESET SESSION AUTHORIZATION;
-- Another admin cannot unwatch or rewatch app's table.
SET SESSION AUTHORIZATION mlc_priv_other;
SELECT expect_error($$SELECT mlcache.unwatch('mlc_priv.items')$$);
SELECT expect_error($$SELECT mlcache.watch('mlc_priv.items', ARRAY['priv:other'])$$);
RESET SESSION AUTHORIZATION;
SELECT count(*) AS watched_by_app FROM mlcache.watches WHERE tbl = 'mlc_priv.items'::regclass;
SET SESSION AUTHORIZATION mlc_priv_app;
SET search_path = mlc_priv, public;
SELECT mlcache.unwatch('items');
SELECT mlcache.watch('items', ARRAY['priv:items:{grp}']);
-- Dropping a watched table (as its owner) forgets the watch.
CREATE TABLE scratch (id int);
SELECT mlcache.watch('scratch', ARRAY['priv:scratch']);
DROP TABLE scratch;
SELECT count(*) AS scratch_watches FROM mlcache.watches WHERE tbl::text LIKE '%scratch%';
RESET SESSION AUTHORIZATION;

-- ---- a member of the owner may redefine; it becomes the owner ----
SET SESSION AUTHORIZATION mlc_priv_member;
SET search_path = mlc_priv, public;
SELECT mlcache.define('priv_items', 'SELECT sum(n) * 10 FROM items WHERE grp = $1', 'priv:items:{1}');
SELECT owner, readers, warm_query IS NULL AS warm_query_dropped FROM mlcache.definitions WHERE name = 'priv_items';
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION mlc_priv_app;
-- app is not a member of mlc_priv_member: the definition is no longer its own.
SELECT expect_error($$SELECT mlcache.set_staleness('priv_items', 0, 0)$$);
RESET SESSION AUTHORIZATION;

-- ---- 6. readers: fetch what is granted, nothing else ----
SET ROLE mlc_priv_reader;
SELECT mlcache.fetch('priv_items', 1);
SELECT expect_error($$SELECT mlcache.fetch('priv_su', 1)$$);
SELECT expect_error($$SELECT * FROM mlcache.key_stats('priv:su:1')$$);
SELECT expect_error($$SELECT mlcache.define('priv_r', 'SELECT 1', 'priv:r')$$);
SELECT expect_error($$SELECT mlcache.grant_fetch('priv_items', 'mlc_priv_reader')$$);
SELECT expect_error($$SELECT * FROM mlcache._warm_tasks(NULL::text[])$$);
SELECT expect_error($$UPDATE mlcache.definitions SET readers = '{}'$$);
RESET ROLE;
SET ROLE mlc_priv_app;
SELECT hits >= 0 AS admin_sees_key_stats FROM mlcache.key_stats('priv:items:1');
RESET ROLE;
SET ROLE mlc_priv_nobody;
SELECT expect_error($$SELECT mlcache.fetch('priv_items', 1)$$);
RESET ROLE;

-- ---- nothing was left behind by the refused attempts ----
SELECT * FROM priv_su_row;
SELECT count(*) AS planted FROM mlcache.definitions WHERE name IN ('priv_planted', 'priv_inj', 'priv_bad', 'priv_r', 'priv_dom');
SELECT count(*) AS recorded FROM mlc_priv.who_ran;
SELECT mlcache.fetch('priv_su', 1);

-- ---- clean up ----
SELECT mlcache.undefine(name) FROM mlcache.definitions WHERE name LIKE 'priv\_%' ORDER BY name;
SELECT mlcache.unwatch('mlc_priv.items');
DROP SCHEMA mlc_priv CASCADE;
DROP VIEW priv_su_row;
DROP TABLE priv_secret;
DROP ROLE mlc_priv_app, mlc_priv_other, mlc_priv_member, mlc_priv_reader, mlc_priv_nobody;
