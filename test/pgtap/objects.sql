-- test/pgtap/objects.sql: the objects extension/mlcache--0.3.0.sql and
-- extension/mlcache_lms--0.3.0.sql install.
--
-- Schema, extension and version; every function with its exact signature,
-- argument names and defaults, return type, language, C symbol, volatility,
-- parallel safety, strictness and security; the two roles and their
-- membership.  Run by pg_prove in a database where pgtap and mlcache are
-- installed.
BEGIN;
SELECT plan(453);

-- ---- schema and extension (4) ----
SELECT has_schema('mlcache', 'schema mlcache exists');
SELECT has_extension('mlcache', 'mlcache', 'extension mlcache is installed in schema mlcache');
SELECT is(
    (SELECT extversion FROM pg_extension WHERE extname = 'mlcache'),
    '0.3.0',
    'installed extension version is 0.3.0'
);
SELECT is(
    (SELECT default_version FROM pg_available_extensions WHERE name = 'mlcache'),
    (SELECT extversion FROM pg_extension WHERE extname = 'mlcache'),
    'installed version equals the control file''s default_version'
);

-- ---- functions ----
-- One row per function of the install script: the single source of truth
-- for every per-function test below (48 C functions x 9 tests = 432; get and set have one signature per arity).
CREATE TEMP TABLE tap_fn (
    ord      int PRIMARY KEY,
    fname    name NOT NULL,
    args     name[] NOT NULL,
    arglist  text NOT NULL,   -- pg_get_function_arguments(): names, modes, defaults
    returns  text NOT NULL,   -- as pgTAP spells it (setof ...)
    vol      text NOT NULL,
    parallel "char" NOT NULL,
    csym     text NOT NULL,
    strict   bool NOT NULL DEFAULT false
) ON COMMIT DROP;
INSERT INTO tap_fn VALUES
 (1, 'get', '{text,text,integer,integer,integer,"double precision"}',
     'key text, query text, l1_ttl integer, l2_ttl integer, max_stale integer, beta double precision',
     'jsonb', 'VOLATILE', 'u', 'mlcache_get', false),
 (30, 'get', '{text,text}', 'key text, query text', 'jsonb', 'VOLATILE', 'u', 'mlcache_get', false),
 (31, 'get', '{text,text,integer}', 'key text, query text, l1_ttl integer',
     'jsonb', 'VOLATILE', 'u', 'mlcache_get', false),
 (32, 'get', '{text,text,integer,integer}', 'key text, query text, l1_ttl integer, l2_ttl integer',
     'jsonb', 'VOLATILE', 'u', 'mlcache_get', false),
 (33, 'get', '{text,text,integer,integer,integer}',
     'key text, query text, l1_ttl integer, l2_ttl integer, max_stale integer',
     'jsonb', 'VOLATILE', 'u', 'mlcache_get', false),
 (2, 'set', '{text,jsonb,integer,integer}',
     'key text, value jsonb, l1_ttl integer, l2_ttl integer',
     'void', 'VOLATILE', 'u', 'mlcache_set', false),
 (34, 'set', '{text,jsonb}', 'key text, value jsonb', 'void', 'VOLATILE', 'u', 'mlcache_set', false),
 (35, 'set', '{text,jsonb,integer}', 'key text, value jsonb, l1_ttl integer',
     'void', 'VOLATILE', 'u', 'mlcache_set', false),
 (3, 'last_level', '{}', '', 'text', 'VOLATILE', 'u', 'mlcache_last_level', false),
 (4, 'invalidate', '{text}', 'key text',
     'void', 'VOLATILE', 'u', 'mlcache_invalidate', false),
 (5, 'invalidate_pattern', '{text}', 'pattern text',
     'bigint', 'VOLATILE', 'u', 'mlcache_invalidate_pattern', false),
 (6, 'clear', '{}', '', 'void', 'VOLATILE', 'u', 'mlcache_clear', false),
 (7, 'counters', '{}', 'OUT counter text, OUT value bigint',
     'setof record', 'VOLATILE', 's', 'mlcache_counters', false),
 (8, 'stats_reset_time', '{}', '', 'timestamp with time zone', 'STABLE', 's', 'mlcache_stats_reset_time', false),
 (9, 'reset_stats', '{}', '', 'void', 'VOLATILE', 'u', 'mlcache_reset_stats', false),
 (10, 'watch_trigger', '{}', '', 'trigger', 'VOLATILE', 'u', 'mlcache_watch_trigger', false),
 (11, '_check_templates', '{regclass,text[]}', 'tbl regclass, keys text[]',
     'void', 'VOLATILE', 'u', 'mlcache_check_templates', true),
 (12, '_invalidate_templates', '{text[]}', 'keys text[]',
     'void', 'VOLATILE', 'u', 'mlcache_invalidate_templates', true),
 (13, '_require_loaded', '{}', '', 'void', 'VOLATILE', 'u', 'mlcache_require_loaded_sql', false),
 (14, 'fetch', '{text,"\"any\""}', 'name text, VARIADIC params "any"', 'jsonb', 'VOLATILE', 'u', 'mlcache_fetch', false),
 (15, 'fetch', '{text}', 'name text', 'jsonb', 'VOLATILE', 'u', 'mlcache_fetch', false),
 (16, 'view_status', '{}',
     'OUT view oid, OUT state text, OUT last_refresh timestamp with time zone, OUT duration_ms double precision, OUT refreshes bigint, OUT failures integer, OUT error text',
     'setof record', 'VOLATILE', 's', 'mlcache_views', false),
 (17, '_register_view', '{regclass}', 'view regclass', 'void', 'VOLATILE', 'u', 'mlcache_register_view', true),
 (18, '_watches_changed', '{}', '', 'void', 'VOLATILE', 'u', 'mlcache_watches_changed', false),
 (19, '_check_definition', '{text,oid[],text}', 'query text, param_types oid[], key text',
     'void', 'VOLATILE', 'u', 'mlcache_check_definition', true),
 (20, '_definition_changed', '{text}', 'name text', 'void', 'VOLATILE', 'u', 'mlcache_definition_changed', true),
 (21, '_health', '{}', '', 'jsonb', 'VOLATILE', 'r', 'mlcache_health', false),
 (22, 'stats_row', '{}',
     'OUT l1_hits bigint, OUT l1_misses bigint, OUT l1_hit_rate double precision, OUT l1_entries bigint, OUT l1_bytes bigint, OUT l2_hits bigint, OUT l2_misses bigint, OUT l2_hit_rate double precision, OUT l2_keys bigint, OUT l2_keys_exact boolean, OUT l2_used_memory bigint, OUT l3_hits bigint, OUT l3_misses bigint, OUT l3_hit_rate double precision, OUT l3_views integer, OUT l3_refreshes bigint, OUT computes bigint, OUT bypasses bigint, OUT rejected_fills bigint, OUT invalidations bigint, OUT invalidations_pending bigint, OUT hygiene_dropped bigint, OUT redis_errors bigint, OUT breaker_state text, OUT breaker_opened bigint, OUT stats_reset timestamp with time zone',
     'record', 'VOLATILE', 'r', 'mlcache_stats_row', false),
 (23, 'key_stats', '{text}',
     'key text, OUT hits bigint, OUT misses bigint, OUT total bigint, OUT hit_rate_percentage double precision, OUT cache_key text, OUT ttl_seconds integer, OUT l2_ttl integer',
     'record', 'VOLATILE', 'r', 'mlcache_key_stats', false),
 (24, 'tracking_sweep', '{}', '', 'bigint', 'VOLATILE', 'u', 'mlcache_tracking_sweep', false),
 (25, '_tracking_advance', '{integer}', 'hours integer', 'void', 'VOLATILE', 'u', 'mlcache_tracking_advance', true),
 (26, '_warm_wake', '{}', '', 'void', 'VOLATILE', 'u', 'mlcache_warm_wake', false),
 (27, '_compute_estimate', '{text}', 'name text', 'double precision', 'VOLATILE', 'u', 'mlcache_compute_estimate', true),
 (28, 'refresh_views', '{}', '', 'integer', 'VOLATILE', 'u', 'mlcache_refresh_views', false),
 (29, 'clean_orphans', '{}', '', 'bigint', 'VOLATILE', 'u', 'mlcache_clean_orphans', false),
 (37, 'get', '{text,text,integer,integer,integer,"double precision",text[]}',
     'key text, query text, l1_ttl integer, l2_ttl integer, max_stale integer, beta double precision, vary_on text[]',
     'jsonb', 'VOLATILE', 'u', 'mlcache_get_vary', false),
 (38, '_catalog_watch', '{regclass,text[],regclass[]}', 'tbl regclass, keys text[], views regclass[]',
     'void', 'VOLATILE', 'u', 'mlcache_catalog_watch', false),
 (39, '_catalog_unwatch', '{regclass}', 'tbl regclass', 'boolean', 'VOLATILE', 'u', 'mlcache_catalog_unwatch', false),
 (40, '_param_types', '{text}', 'query text', 'regtype[]', 'VOLATILE', 'u', 'mlcache_param_types', false),
 (41, 'define', '{text,text,text,integer,integer,regclass,text[],text,text[]}',
     'name text, query text, key text, l1_ttl integer DEFAULT NULL::integer, l2_ttl integer DEFAULT NULL::integer, l3_view regclass DEFAULT NULL::regclass, l3_columns text[] DEFAULT NULL::text[], l3_value text DEFAULT ''value''::text, vary_on text[] DEFAULT ''{}''::text[]',
     'void', 'VOLATILE', 'u', 'mlcache_define', false),
 (42, 'undefine', '{text}', 'name text', 'void', 'VOLATILE', 'u', 'mlcache_undefine', false),
 (43, 'grant_fetch', '{text,regrole}', 'name text, role regrole', 'void', 'VOLATILE', 'u', 'mlcache_grant_fetch', false),
 (44, 'revoke_fetch', '{text,regrole}', 'name text, role regrole', 'void', 'VOLATILE', 'u', 'mlcache_revoke_fetch', false),
 (45, 'set_staleness', '{text,integer,"double precision"}',
     'name text, max_stale integer DEFAULT 0, beta double precision DEFAULT 0',
     'void', 'VOLATILE', 'u', 'mlcache_set_staleness', false),
 (46, 'set_warm_query', '{text,text}', 'name text, query text', 'void', 'VOLATILE', 'u', 'mlcache_set_warm_query', false),
 (47, '_warm_tasks', '{text[]}', 'query_types text[]', 'setof record', 'VOLATILE', 'u', 'mlcache_warm_tasks', false),
 (48, '_warm_enqueue', '{text,text[],bigint,integer}', 'name text, params text[], job bigint, batch integer',
     'bigint', 'VOLATILE', 'u', 'mlcache_warm_enqueue', false),
 (49, '_warm_check', '{text}', 'name text', 'void', 'VOLATILE', 'u', 'mlcache_warm_check', false);

-- Exactly these functions, no more (1).
SELECT functions_are(
    'mlcache',
    ARRAY['get', 'set', 'last_level', 'invalidate', 'invalidate_pattern',
          'clear', 'counters', 'stats_reset_time', 'reset_stats',
          'watch_trigger', '_check_templates', '_invalidate_templates', '_require_loaded',
          'watch', 'unwatch', '_watch_trigger_names', '_drop_watch_triggers',
          '_check_watch', '_on_ddl_end', '_on_sql_drop',
          'fetch', 'view_status', '_register_view', '_watches_changed', '_check_definition',
          '_definition_changed', 'define', 'undefine', 'grant_fetch', 'revoke_fetch',
          '_catalog_watch', '_catalog_unwatch', '_warm_enqueue', '_param_types', '_check_l3', '_health', 'health', 'stats_row',
          'key_stats', 'tracking_sweep', '_tracking_advance',
          '_warm_wake', '_compute_estimate', 'set_warm_query', '_warm_one', '_warm_tasks', 'warm',
          '_warm_check', '_warm_list', 'warm_sets',
          'refresh_views', 'clean_orphans', 'snapshot_stats', 'sweep', 'schedule_maintenance',
          'set_staleness',
          'lms_analytics_assignment_live', 'lms_analytics_engagement_live', 'lms_analytics_progress_live', 'lms_analytics_student_live',
          'lms_assignment_stats_live', 'lms_catalog', 'lms_create_schema', 'lms_create_views',
          'lms_definitions', 'lms_gen_enrollments', 'lms_gen_entities', 'lms_gen_grades',
          'lms_gen_progress', 'lms_gen_submissions', 'lms_gen_views', 'lms_generate',
          'lms_not_found', 'lms_query', 'lms_relation', 'lms_render',
          'lms_resolve', 'lms_setup', 'lms_table', 'lms_template',
          'lms_template_analytics_assignment', 'lms_template_analytics_engagement', 'lms_template_analytics_progress', 'lms_template_analytics_student',
          'lms_template_assignment_stats', 'lms_watch_keys', 'lms_watches', 'lms_assignment_cache_hit_rate', 'lms_warm_teacher',
          'lms_warm_template', 'lms_view_entities', 'lms_invalidate_analytics'],
    'schema mlcache has exactly the functions of the install scripts of mlcache and mlcache_lms'
);

-- Exact signature (9).
SELECT has_function('mlcache', fname, args,
                    format('mlcache.%s(%s) exists', fname, array_to_string(args, ', ')))
  FROM tap_fn ORDER BY ord;

-- Argument names, OUT parameters and defaults (9).
SELECT is(pg_get_function_arguments(
              to_regprocedure(format('mlcache.%I(%s)', fname, array_to_string(args, ',')))),
          arglist,
          format('mlcache.%s() arguments are (%s)', fname, arglist))
  FROM tap_fn ORDER BY ord;

-- Return type (9).
SELECT function_returns('mlcache', fname, args, returns,
                        format('mlcache.%s() returns %s', fname, returns))
  FROM tap_fn ORDER BY ord;

-- Language C (9).
SELECT function_lang_is('mlcache', fname, args, 'c',
                        format('mlcache.%s() is written in C', fname))
  FROM tap_fn ORDER BY ord;

-- C symbol and library (9).
SELECT is((SELECT p.prosrc || ' in ' || p.probin
             FROM pg_proc p
            WHERE p.oid = to_regprocedure(format('mlcache.%I(%s)', fname, array_to_string(args, ',')))),
          csym || ' in $libdir/mlcache',
          format('mlcache.%s() is %s in $libdir/mlcache', fname, csym))
  FROM tap_fn ORDER BY ord;

-- Volatility (9).
SELECT volatility_is('mlcache', fname, args, vol,
                     format('mlcache.%s() is %s', fname, vol))
  FROM tap_fn ORDER BY ord;

-- Parallel safety (9).
SELECT is((SELECT p.proparallel
             FROM pg_proc p
            WHERE p.oid = to_regprocedure(format('mlcache.%I(%s)', fname, array_to_string(args, ',')))),
          parallel,
          format('mlcache.%s() is PARALLEL %s', fname,
                 CASE parallel WHEN 's' THEN 'SAFE' WHEN 'r' THEN 'RESTRICTED' ELSE 'UNSAFE' END))
  FROM tap_fn ORDER BY ord;

-- The SQL API is not STRICT: the C code reports NULL arguments itself.
SELECT CASE WHEN strict
            THEN is_strict('mlcache', fname, args, format('mlcache.%s() is STRICT', fname))
            ELSE isnt_strict('mlcache', fname, args, format('mlcache.%s() is not STRICT', fname))
       END
  FROM tap_fn ORDER BY ord;

-- SECURITY INVOKER: the privileges of the caller apply (9).
SELECT isnt_definer('mlcache', fname, args, format('mlcache.%s() is SECURITY INVOKER', fname))
  FROM tap_fn ORDER BY ord;

-- Every function belongs to an extension: lms_* to mlcache_lms, the rest to
-- mlcache (1).
SELECT is(
    (SELECT count(*)::int
       FROM pg_depend d
       JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
      WHERE p.pronamespace = 'mlcache'::regnamespace
        AND d.refclassid = 'pg_extension'::regclass
        AND d.refobjid = (SELECT oid FROM pg_extension
                           WHERE extname = CASE WHEN p.proname LIKE 'lms\_%' THEN 'mlcache_lms' ELSE 'mlcache' END)
        AND d.deptype = 'e'),
    (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'mlcache'::regnamespace),
    'every lms_* function is a member of mlcache_lms, every other one of mlcache'
);

-- ---- watches (10) ----
SELECT has_function('mlcache', 'watch', ARRAY['regclass', 'text[]', 'regclass[]'],
                    'mlcache.watch(regclass, text[], regclass[]) exists');
SELECT is(pg_get_function_arguments('mlcache.watch(regclass, text[], regclass[])'::regprocedure),
          'tbl regclass, keys text[], views regclass[] DEFAULT ''{}''::regclass[]',
          'mlcache.watch() arguments are (tbl, keys, views DEFAULT ''{}'')');
SELECT has_function('mlcache', 'unwatch', ARRAY['regclass'], 'mlcache.unwatch(regclass) exists');
SELECT has_table('mlcache', 'watches', 'catalog table mlcache.watches exists');
SELECT columns_are('mlcache', 'watches', ARRAY['tbl', 'keys', 'views', 'created_at'],
                   'mlcache.watches has tbl, keys, views, created_at');
SELECT ok((SELECT 'mlcache.watches'::regclass::oid = ANY (extconfig)
             FROM pg_extension WHERE extname = 'mlcache'),
          'mlcache.watches is an extension configuration table (kept by pg_dump)');
SELECT has_pk('mlcache', 'watches', 'mlcache.watches has a primary key');
SELECT is((SELECT array_agg(evtname::text || ':' || evtevent || ':' || evtenabled::text ORDER BY evtname)
             FROM pg_event_trigger WHERE evtname LIKE 'mlcache%'),
          ARRAY['mlcache_ddl_end:ddl_command_end:A', 'mlcache_sql_drop:sql_drop:A'],
          'the DDL event triggers exist and are ENABLE ALWAYS');
SELECT ok((SELECT prosecdef FROM pg_proc WHERE oid = 'mlcache._on_ddl_end()'::regprocedure)
          AND (SELECT prosecdef FROM pg_proc WHERE oid = 'mlcache._on_sql_drop()'::regprocedure),
          'event trigger functions are SECURITY DEFINER (DDL by any user must not fail)');
SELECT ok((SELECT bool_and(EXISTS (SELECT 1 FROM unnest(proconfig) c WHERE c LIKE 'search_path=%'))
             FROM pg_proc WHERE pronamespace = 'mlcache'::regnamespace AND prolang <> 13),
          'every SQL or plpgsql function of mlcache pins its search_path');
-- (1) SECURITY DEFINER only where a fixed statement needs the catalog's owner.
SELECT is((SELECT array_agg(proname::text ORDER BY proname) FROM pg_proc
            WHERE pronamespace = 'mlcache'::regnamespace AND prosecdef),
          ARRAY['_on_ddl_end', '_on_sql_drop', 'snapshot_stats', 'sweep'],
          'the only SECURITY DEFINER functions are the event triggers, snapshot_stats() and sweep()');

-- ---- roles (4) ----
SELECT has_role('mlcache_reader', 'role mlcache_reader exists');
SELECT has_role('mlcache_admin', 'role mlcache_admin exists');
SELECT is_member_of('mlcache_reader', 'mlcache_admin', 'mlcache_admin is a member of mlcache_reader');
SELECT ok(
    NOT pg_has_role('mlcache_reader', 'mlcache_admin', 'MEMBER'),
    'mlcache_reader is not a member of mlcache_admin'
);

SELECT * FROM finish();
ROLLBACK;
