-- test/pgtap/privileges.sql: who may execute which mlcache function, and who
-- may write mlcache's tables (nobody but their owner: sql/privileges.sql
-- tries the ways around it).
--
-- The install script revokes everything from PUBLIC, gives mlcache_reader
-- get/set/last_level/invalidate/counters/stats_reset_time and mlcache_admin
-- (a member of mlcache_reader) also invalidate_pattern/clear/reset_stats.
-- Checked on the catalog (has_function_privilege, through pgTAP) and by
-- calling the functions under SET ROLE.  The roles are created inside the
-- test transaction and vanish with its ROLLBACK; so do the invalidations,
-- which only take effect at commit.  reset_stats() is never called: it acts
-- at once, server-wide.  Run as a superuser, with mlcache preloaded.
BEGIN;
SELECT plan(199);

-- tap_nobody: no grants at all.  tap_usage_only: USAGE on the schema but no
-- function grant, so a call reaches the function's own ACL.
CREATE ROLE tap_nobody NOLOGIN;
CREATE ROLE tap_usage_only NOLOGIN;
GRANT USAGE ON SCHEMA mlcache TO tap_usage_only;
CREATE ROLE tap_reader NOLOGIN IN ROLE mlcache_reader;
CREATE ROLE tap_admin NOLOGIN IN ROLE mlcache_admin;

CREATE TEMP TABLE tap_fn (
    ord    int PRIMARY KEY,
    fname  name NOT NULL,
    args   name[] NOT NULL,
    reader boolean NOT NULL   -- granted to mlcache_reader (else admin only)
) ON COMMIT DROP;
GRANT SELECT ON tap_fn TO PUBLIC;
INSERT INTO tap_fn VALUES
 (1, 'get',                '{text,text,integer,integer,integer,double precision}', true),
 (35, 'get',               '{text,text}',                  true),
 (36, 'get',               '{text,text,integer}',          true),
 (37, 'get',               '{text,text,integer,integer}',  true),
 (38, 'get',               '{text,text,integer,integer,integer}', true),
 (42, 'get',               '{text,text,integer,integer,integer,double precision,text[]}', true),
 (2, 'set',                '{text,jsonb,integer,integer}', true),
 (39, 'set',               '{text,jsonb}',                 true),
 (40, 'set',               '{text,jsonb,integer}',         true),
 (3, 'last_level',         '{}',                           true),
 (4, 'invalidate',         '{text}',                       true),
 (5, 'counters',           '{}',                           true),
 (6, 'stats_reset_time',   '{}',                           true),
 (7, 'invalidate_pattern', '{text}',                       false),
 (8, 'clear',              '{}',                           false),
 (9, 'reset_stats',        '{}',                           false),
 (10, 'watch',             '{regclass,text[],regclass[]}', false),
 (11, 'unwatch',           '{regclass}',                   false),
 (12, 'fetch',             '{text,"\"any\""}',             true),
 (13, 'fetch',             '{text}',                       true),
 (14, 'stats_row',         '{}',                           true),
 (15, 'key_stats',         '{text}',                       false),
 (16, 'view_status',       '{}',                           true),
 (17, 'lms_assignment_cache_hit_rate', '{bigint,bigint,name,jsonb,jsonb}', false),
 (18, 'define',            '{text,text,text,integer,integer,regclass,text[],text,text[]}', false),
 (19, 'undefine',          '{text}',                       false),
 (20, 'grant_fetch',       '{text,regrole}',               false),
 (21, 'revoke_fetch',      '{text,regrole}',               false),
 (22, 'health',            '{}',                           false),
 (23, 'tracking_sweep',    '{}',                           false),
 (24, 'warm',              '{text[],integer}',             false),
 (25, 'warm',              '{text,text[]}',                false),
 (26, 'set_warm_query',    '{text,text}',                  false),
 (34, 'set_staleness',     '{text,integer,double precision}', false),
 (27, 'refresh_views',     '{}',                           false),
 (28, 'sweep',             '{}',                           false),
 (29, 'snapshot_stats',    '{}',                           false),
 (30, 'clean_orphans',     '{}',                           false),
 (31, 'schedule_maintenance', '{name}',                    false),
 (32, 'lms_setup',         '{name,jsonb,jsonb}',           false),
 (33, 'lms_generate',      '{integer,name,double precision,integer}', false),
 (43, 'warm_sets',         '{text,jsonb,integer}',         true),
 (44, 'lms_warm_teacher',  '{bigint,name,jsonb,jsonb,integer}', true);

-- ---- the catalog (1 + 4 x 43 + 4 + 8 = 185) ----
SELECT is_empty(
    $$SELECT p.oid::regprocedure
        FROM pg_proc p
       WHERE p.pronamespace = 'mlcache'::regnamespace
         AND (p.proacl IS NULL   -- NULL means the default: EXECUTE for PUBLIC
              OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0))$$,
    'no mlcache function has an ACL entry for PUBLIC'
);

SELECT function_privs_are('mlcache', fname, args, 'public', '{}',
                          format('PUBLIC cannot execute mlcache.%s()', fname))
  FROM tap_fn ORDER BY ord;

SELECT function_privs_are('mlcache', fname, args, 'tap_nobody', '{}',
                          format('a role without grants cannot execute mlcache.%s()', fname))
  FROM tap_fn ORDER BY ord;

SELECT function_privs_are('mlcache', fname, args, 'tap_reader',
                          CASE WHEN reader THEN '{EXECUTE}' ELSE '{}' END::name[],
                          format('a member of mlcache_reader %s execute mlcache.%s()',
                                 CASE WHEN reader THEN 'can' ELSE 'cannot' END, fname))
  FROM tap_fn ORDER BY ord;

SELECT function_privs_are('mlcache', fname, args, 'tap_admin', '{EXECUTE}',
                          format('a member of mlcache_admin can execute mlcache.%s()', fname))
  FROM tap_fn ORDER BY ord;

SELECT schema_privs_are('mlcache', 'public', '{}', 'PUBLIC has no privileges on schema mlcache');
SELECT schema_privs_are('mlcache', 'tap_nobody', '{}',
                        'a role without grants has no privileges on schema mlcache');
SELECT schema_privs_are('mlcache', 'tap_reader', '{USAGE}',
                        'a member of mlcache_reader has USAGE (only) on schema mlcache');
SELECT schema_privs_are('mlcache', 'tap_admin', '{USAGE}',
                        'a member of mlcache_admin has USAGE (only) on schema mlcache');

-- mlcache's tables change only through its API: readers and admins read them.
SELECT table_privs_are('mlcache', t, r, p::name[], format('%s may only %s mlcache.%s', r, p, t))
  FROM (VALUES ('definitions', 'tap_reader', '{SELECT}'), ('definitions', 'tap_admin', '{SELECT}'),
               ('watches', 'tap_reader', '{SELECT}'), ('watches', 'tap_admin', '{SELECT}'),
               ('warm_queue', 'tap_reader', '{}'), ('warm_queue', 'tap_admin', '{}'),
               ('stats_history', 'tap_reader', '{SELECT}'), ('stats_history', 'tap_admin', '{SELECT}')) v(t, r, p);

-- ---- calls: a role without grants (2) ----
SET ROLE tap_nobody;
SELECT throws_ok(
    $$SELECT mlcache.get('tap:x', 'SELECT 1')$$,
    '42501',
    'permission denied for schema mlcache',
    'a role without grants cannot call mlcache.get(): no USAGE on the schema'
);
RESET ROLE;

SET ROLE tap_usage_only;
SELECT throws_ok(
    $$SELECT mlcache.get('tap:x', 'SELECT 1')$$,
    '42501',
    'permission denied for function get',
    'a role with only USAGE on the schema cannot call mlcache.get(): no EXECUTE for PUBLIC'
);
RESET ROLE;

-- ---- calls: a member of mlcache_reader (9) ----
SET ROLE tap_reader;
SELECT is(
    mlcache.get('tap:x', 'SELECT 1'),
    '1'::jsonb,
    'a member of mlcache_reader calls mlcache.get(''tap:x'', ''SELECT 1'') and gets 1'
);
SELECT lives_ok(
    $$SELECT mlcache.set('tap:y', '2'::jsonb)$$,
    'a member of mlcache_reader can call mlcache.set()'
);
SELECT lives_ok(
    $$SELECT mlcache.last_level()$$,
    'a member of mlcache_reader can call mlcache.last_level()'
);
SELECT lives_ok(
    $$SELECT mlcache.invalidate('tap:y')$$,
    'a member of mlcache_reader can call mlcache.invalidate()'
);
SELECT lives_ok(
    $$SELECT count(*) FROM mlcache.counters()$$,
    'a member of mlcache_reader can call mlcache.counters()'
);
SELECT lives_ok(
    $$SELECT mlcache.stats_reset_time()$$,
    'a member of mlcache_reader can call mlcache.stats_reset_time()'
);
SELECT throws_ok(
    $$SELECT mlcache.clear()$$,
    '42501',
    'permission denied for function clear',
    'a member of mlcache_reader cannot call mlcache.clear()'
);
SELECT throws_ok(
    $$SELECT mlcache.invalidate_pattern('tap:*')$$,
    '42501',
    'permission denied for function invalidate_pattern',
    'a member of mlcache_reader cannot call mlcache.invalidate_pattern()'
);
SELECT throws_ok(
    $$SELECT mlcache.reset_stats()$$,
    '42501',
    'permission denied for function reset_stats',
    'a member of mlcache_reader cannot call mlcache.reset_stats()'
);
RESET ROLE;

-- ---- calls: a member of mlcache_admin (3) ----
SET ROLE tap_admin;
SELECT lives_ok(
    $$SELECT mlcache.clear()$$,
    'a member of mlcache_admin can call mlcache.clear()'
);
SELECT lives_ok(
    $$SELECT mlcache.invalidate_pattern('tap:*')$$,
    'a member of mlcache_admin can call mlcache.invalidate_pattern()'
);
SELECT is(
    mlcache.get('tap:x', 'SELECT 1'),
    '1'::jsonb,
    'a member of mlcache_admin can call mlcache.get() through mlcache_reader'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
