-- mlcache 0.1.0 -> 0.2.0: no role escalates through mlcache (DESIGN.md G13).
--  * mlcache's catalog tables change only through its API: the functions
--    that write them are C (src/catalog.c), check the caller (GetUserId())
--    and write as the tables' owner; nobody else may write them.
--  * A definition is changed only by its owner (or a member, or a
--    superuser); warm queries run as the definition's owner.
--  * watch() and unwatch() work for any owner of the table in mlcache_admin.
--  * key_stats() is for admins only.
--  * definitions.vary_on, define(..., vary_on) and get(..., vary_on).
--  * lms_render() substitutes each placeholder once.
-- The result is the same objects and privileges as a fresh install of 0.2.0
-- (test/upgrade.sh compares them).
\echo Use "ALTER EXTENSION mlcache UPDATE TO '0.2.0'" to load this file. \quit

-- ---- new columns ----
ALTER TABLE definitions ADD COLUMN vary_on text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN definitions.vary_on IS
'Names of settings whose current values are part of the definition''s cache keys';
ALTER TABLE warm_queue ADD COLUMN settings text[];
COMMENT ON COLUMN warm_queue.settings IS
'Result-shaping settings (TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output, lc_monetary, lc_numeric) of the session that queued the task, applied while it runs';

-- ---- get() with vary_on ----
-- vary_on: names of settings whose current values join the cache key (for
-- queries whose result depends on them, e.g. through row-level security).
-- Only with all the other arguments: a three-argument get(key, query,
-- vary_on) would make get(key, query, NULL) and get(key, query, '60')
-- ambiguous with get(key, query, l1_ttl).
CREATE FUNCTION get(key text, query text, l1_ttl integer, l2_ttl integer, max_stale integer, beta float8,
                    vary_on text[])
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get_vary'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text, integer, integer, integer, float8, text[]) IS
'Read key, with the values of the vary_on settings, through L1 and Redis; on a miss run query';


-- ---- watches: rows written through catalog.c ----
-- The rows of mlcache.watches change only through these two: they check
-- that the caller owns the table (as CREATE TRIGGER does) and write as the
-- catalog's owner (src/catalog.c).
CREATE FUNCTION _catalog_watch(tbl regclass, keys text[], views regclass[])
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_catalog_watch'
LANGUAGE C;

CREATE FUNCTION _catalog_unwatch(tbl regclass)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mlcache_catalog_unwatch'
LANGUAGE C;


CREATE OR REPLACE FUNCTION watch(tbl regclass, keys text[], views regclass[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text;
    v regclass;
    trg name;
BEGIN
    PERFORM mlcache._require_loaded();
    IF tbl IS NULL OR keys IS NULL OR views IS NULL THEN
        RAISE EXCEPTION 'table, key templates and views must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl
            USING ERRCODE = 'wrong_object_type';
    END IF;
    PERFORM mlcache._check_templates(tbl, keys);
    FOREACH v IN ARRAY views LOOP
        IF v IS NULL OR (SELECT relkind FROM pg_class WHERE oid = v) <> 'm' THEN
            RAISE EXCEPTION '"%" is not a materialized view', v
                USING ERRCODE = 'wrong_object_type';
        END IF;
    END LOOP;

    -- Replace an existing watch.  The catalog row goes first so that the
    -- DDL event triggers do not check a watch that is being rebuilt; it
    -- also checks that the caller owns the table.
    PERFORM mlcache._catalog_unwatch(tbl);
    PERFORM mlcache._drop_watch_triggers(tbl);

    args := array_to_string(ARRAY(SELECT quote_literal(k) FROM unnest(keys) k), ', ');
    EXECUTE format('CREATE TRIGGER mlcache_watch_ins AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS mlcache_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION mlcache.watch_trigger(%s)', tbl, args);
    EXECUTE format('CREATE TRIGGER mlcache_watch_upd AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS mlcache_old NEW TABLE AS mlcache_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION mlcache.watch_trigger(%s)', tbl, args);
    EXECUTE format('CREATE TRIGGER mlcache_watch_del AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS mlcache_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION mlcache.watch_trigger(%s)', tbl, args);
    EXECUTE format('CREATE TRIGGER mlcache_watch_trunc AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION mlcache.watch_trigger(%s)', tbl, args);
    -- ALWAYS: they fire under session_replication_role = replica too.
    FOREACH trg IN ARRAY mlcache._watch_trigger_names() LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', tbl, trg);
    END LOOP;

    PERFORM mlcache._catalog_watch(tbl, keys, views);
    FOREACH v IN ARRAY views LOOP
        PERFORM mlcache._register_view(v);
    END LOOP;
    PERFORM mlcache._watches_changed();
    -- Values cached before the watch existed were never protected by it.
    PERFORM mlcache._invalidate_templates(keys);
END
$$;

CREATE OR REPLACE FUNCTION unwatch(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM mlcache._require_loaded();
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT mlcache._catalog_unwatch(tbl) THEN
        RAISE EXCEPTION 'table "%" is not watched by mlcache', tbl
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM mlcache._watches_changed();
    PERFORM mlcache._drop_watch_triggers(tbl);
END
$$;

-- ---- definitions: the API in C ----
CREATE OR REPLACE FUNCTION _param_types(query text)
RETURNS regtype[]
AS 'MODULE_PATHNAME', 'mlcache_param_types'
LANGUAGE C;

DROP FUNCTION define(text, text, text, integer, integer, regclass, text[], text);

CREATE FUNCTION define(name text, query text, key text,
                       l1_ttl integer DEFAULT NULL, l2_ttl integer DEFAULT NULL,
                       l3_view regclass DEFAULT NULL, l3_columns text[] DEFAULT NULL,
                       l3_value text DEFAULT 'value', vary_on text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_define'
LANGUAGE C;

COMMENT ON FUNCTION define(text, text, text, integer, integer, regclass, text[], text, text[]) IS
'Register a parameterised query ($1, $2 ...) under a name, with a key template such as stats:{1}';

CREATE OR REPLACE FUNCTION undefine(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_undefine'
LANGUAGE C;

DROP FUNCTION _set_readers(text, regrole, boolean);

CREATE OR REPLACE FUNCTION grant_fetch(name text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_grant_fetch'
LANGUAGE C;

CREATE OR REPLACE FUNCTION revoke_fetch(name text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_revoke_fetch'
LANGUAGE C;

CREATE OR REPLACE FUNCTION set_staleness(name text, max_stale integer DEFAULT 0, beta float8 DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set_staleness'
LANGUAGE C;

CREATE OR REPLACE FUNCTION set_warm_query(name text, query text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set_warm_query'
LANGUAGE C;

-- ---- warming: warm queries run as the definition's owner ----
CREATE OR REPLACE FUNCTION _warm_tasks(query_types text[])
RETURNS TABLE (definition text, params text[])
AS 'MODULE_PATHNAME', 'mlcache_warm_tasks'
LANGUAGE C;

CREATE FUNCTION _warm_enqueue(name text, params text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_warm_enqueue'
LANGUAGE C;

CREATE OR REPLACE FUNCTION warm(query_types text[] DEFAULT NULL, batch_size integer DEFAULT 10)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tasks jsonb;              -- [{"d": definition, "p": [params]}, ...]
    done integer[] := '{}';   -- positions (from 1) already warmed
    total integer := 0;
    warmed integer := 0;
    failed integer := 0;
    scheduled integer := 0;
    estimate float8 := 0;
    per_def float8;
    t record;
    n integer := 0;
    sync boolean;
BEGIN
    PERFORM mlcache._require_loaded();
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF query_types IS NOT NULL AND EXISTS (SELECT FROM unnest(query_types) q
                                            WHERE q NOT IN (SELECT name FROM mlcache.definitions)) THEN
        RAISE EXCEPTION 'unknown mlcache definition in %', query_types USING ERRCODE = 'undefined_object';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object('d', w.definition, 'p', to_jsonb(w.params)) ORDER BY w.i), '[]')
      INTO tasks FROM mlcache._warm_tasks(query_types) WITH ORDINALITY w(definition, params, i);
    total := jsonb_array_length(tasks);
    -- Estimate from recorded compute times; a definition never computed
    -- here is timed on its first parameter set.
    FOR t IN SELECT e.x ->> 'd' AS definition, count(*) AS c, min(e.i) AS first
               FROM jsonb_array_elements(tasks) WITH ORDINALITY e(x, i) GROUP BY 1 ORDER BY 1 LOOP
        per_def := mlcache._compute_estimate(t.definition);
        IF per_def IS NULL THEN
            IF mlcache._warm_one(t.definition, ARRAY(SELECT jsonb_array_elements_text(tasks -> (t.first::integer - 1) -> 'p'))) THEN
                warmed := warmed + 1;
            ELSE
                failed := failed + 1;
            END IF;
            done := done || t.first::integer;
            per_def := coalesce(mlcache._compute_estimate(t.definition), 0);
            estimate := estimate + per_def * (t.c - 1);
        ELSE
            estimate := estimate + per_def * t.c;
        END IF;
    END LOOP;
    sync := estimate < extract(epoch FROM current_setting('mlcache.warm_sync_limit')::interval) * 1000;
    FOR t IN SELECT e.x ->> 'd' AS definition, ARRAY(SELECT jsonb_array_elements_text(e.x -> 'p')) AS params
               FROM jsonb_array_elements(tasks) WITH ORDINALITY e(x, i)
              WHERE e.i <> ALL (done) ORDER BY e.i LOOP
        IF sync THEN
            IF mlcache._warm_one(t.definition, t.params) THEN
                warmed := warmed + 1;
            ELSE
                failed := failed + 1;
            END IF;
            n := n + 1;
            IF n % batch_size = 0 THEN
                PERFORM pg_catalog.pg_sleep(0);   -- a batch boundary: let interrupts in
            END IF;
        ELSE
            PERFORM mlcache._warm_enqueue(t.definition, t.params);
            scheduled := scheduled + 1;
        END IF;
    END LOOP;
    IF scheduled > 0 THEN
        PERFORM mlcache._warm_wake();
    END IF;
    RAISE LOG 'mlcache warmed % of % (% failed, % queued, estimated % ms)',
        warmed, total, failed, scheduled, round(estimate::numeric, 1);
    RETURN jsonb_build_object('total', total, 'warmed', warmed, 'failed', failed,
                              'async_scheduled', scheduled);
END
$$;

-- A task's parameters come from its definition's warm query: its owner's
-- data.  The view shows a task to those who have the privileges of the
-- definition's owner (superusers: all, also of removed definitions); a
-- security barrier keeps a caller's leaky functions from seeing the rest.
CREATE OR REPLACE VIEW warm_tasks WITH (security_barrier) AS
    SELECT q.id, q.definition, q.params, q.state, q.attempts, q.next_attempt, q.last_error,
           q.created_at, q.started_at, q.finished_at
      FROM mlcache.warm_queue q
     WHERE coalesce((SELECT pg_catalog.pg_has_role(d.owner, 'USAGE')
                       FROM mlcache.definitions d WHERE d.name = q.definition),
                    (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user));

-- ---- maintenance: the writes of snapshot_stats() and sweep() ----
CREATE OR REPLACE FUNCTION snapshot_stats()
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ INSERT INTO mlcache.stats_history (stats) SELECT to_jsonb(s) FROM mlcache.stats s $$;

CREATE OR REPLACE FUNCTION sweep()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tracked bigint := mlcache.tracking_sweep();
    tasks bigint;
    snapshots bigint;
BEGIN
    DELETE FROM mlcache.warm_queue WHERE state IN ('done', 'failed') AND finished_at < now() - interval '1 day';
    GET DIAGNOSTICS tasks = ROW_COUNT;
    DELETE FROM mlcache.stats_history WHERE taken_at < now() - interval '30 days';
    GET DIAGNOSTICS snapshots = ROW_COUNT;
    RAISE LOG 'mlcache sweep: % tracked keys, % warming tasks, % stats snapshots removed',
        tracked, tasks, snapshots;
    RETURN jsonb_build_object('tracked_keys', tracked, 'warm_tasks', tasks, 'stats_snapshots', snapshots);
END
$$;

-- ---- LMS pack ----
CREATE OR REPLACE FUNCTION lms_render(tmpl text, m jsonb, for_view boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    placeholder constant text := '\{not_found:([a-z_]+):\$([0-9])\}|\{([a-z_]+)\}|\$([0-9])';
    parts text[] := regexp_split_to_array(tmpl, placeholder);
    q text := parts[1];
    r text[];
    i integer := 1;
BEGIN
    FOR r IN SELECT regexp_matches(tmpl, placeholder, 'g') LOOP
        i := i + 1;
        q := q || CASE WHEN r[1] IS NOT NULL AND for_view THEN 'NULL::jsonb'
                       WHEN r[1] IS NOT NULL THEN format('mlcache.lms_not_found(%L, $%s::bigint)', r[1], r[2])
                       WHEN r[3] IS NOT NULL THEN mlcache.lms_relation(m, r[3])
                       WHEN for_view THEN 'mv_src.p' || r[4]
                       ELSE '$' || r[4] END
               || parts[i];
    END LOOP;
    RETURN btrim(q, E' \n');
END
$$;

-- ---- privileges: exactly those of a fresh 0.2.0 ----
-- Nobody but the owner writes the catalog tables; every grant is made again.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC, mlcache_reader, mlcache_admin;
REVOKE ALL ON ALL TABLES IN SCHEMA mlcache FROM PUBLIC, mlcache_reader, mlcache_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA mlcache FROM PUBLIC, mlcache_reader, mlcache_admin;

GRANT USAGE ON SCHEMA mlcache TO mlcache_reader;
GRANT EXECUTE ON FUNCTION get(text, text), get(text, text, integer), get(text, text, integer, integer),
                          get(text, text, integer, integer, integer),
                          get(text, text, integer, integer, integer, float8),
                          get(text, text, integer, integer, integer, float8, text[]),
                          set(text, jsonb), set(text, jsonb, integer), set(text, jsonb, integer, integer),
                          last_level(),
                          invalidate(text, boolean),
                          counters(),
                          stats_reset_time()
      TO mlcache_reader;
GRANT EXECUTE ON FUNCTION invalidate_pattern(text, boolean),
                          clear(),
                          reset_stats()
      TO mlcache_admin;
GRANT SELECT ON mlcache.watches TO mlcache_reader;
GRANT EXECUTE ON FUNCTION watch(regclass, text[], regclass[]),
                          unwatch(regclass),
                          watch_trigger(), _check_templates(regclass, text[]),
                          _invalidate_templates(text[]), _watch_trigger_names(),
                          _drop_watch_triggers(regclass),
                          _catalog_watch(regclass, text[], regclass[]), _catalog_unwatch(regclass)
      TO mlcache_admin;
GRANT SELECT ON mlcache.definitions, mlcache.views TO mlcache_reader;
GRANT EXECUTE ON FUNCTION "fetch"(text, "any"), "fetch"(text), view_status() TO mlcache_reader;
GRANT EXECUTE ON FUNCTION define(text, text, text, integer, integer, regclass, text[], text, text[]),
                          undefine(text), grant_fetch(text, regrole), revoke_fetch(text, regrole),
                          _param_types(text), _check_definition(text, oid[], text),
                          _check_l3(regclass, text[], text, integer), _definition_changed(text),
                          _register_view(regclass), _watches_changed(), _require_loaded()
      TO mlcache_admin;
GRANT SELECT ON mlcache.stats TO mlcache_reader;
GRANT EXECUTE ON FUNCTION stats_row() TO mlcache_reader;
GRANT EXECUTE ON FUNCTION health(), _health() TO mlcache_admin;
GRANT SELECT ON mlcache.views TO mlcache_admin;
GRANT EXECUTE ON FUNCTION key_stats(text), tracking_sweep() TO mlcache_admin;
GRANT EXECUTE ON FUNCTION lms_catalog(), lms_resolve(name, jsonb, jsonb), lms_table(jsonb, text),
                          lms_relation(jsonb, text), lms_not_found(text, bigint),
                          lms_template_assignment_stats(), lms_template_analytics_student(),
                          lms_template_analytics_assignment(), lms_template_analytics_progress(),
                          lms_template_analytics_engagement(), lms_template(text),
                          lms_render(text, jsonb, boolean), lms_query(text, name, jsonb, jsonb),
                          lms_assignment_stats_live(bigint, name, jsonb, jsonb),
                          lms_analytics_student_live(bigint, name, jsonb, jsonb),
                          lms_analytics_assignment_live(bigint, name, jsonb, jsonb),
                          lms_analytics_progress_live(bigint, bigint, name, jsonb, jsonb),
                          lms_analytics_engagement_live(bigint, name, jsonb, jsonb),
                          lms_definitions(), lms_watches()
      TO mlcache_reader;
GRANT EXECUTE ON FUNCTION lms_watch_keys(jsonb, text, text[]),
                          lms_create_views(name, jsonb, jsonb),
                          lms_setup(name, jsonb, jsonb),
                          lms_create_schema(name),
                          lms_gen_entities(name, integer, integer, timestamptz),
                          lms_gen_enrollments(name, integer, integer, timestamptz),
                          lms_gen_submissions(name), lms_gen_grades(name),
                          lms_gen_progress(name, timestamptz), lms_gen_views(name, timestamptz),
                          lms_generate(integer, name, float8, integer)
      TO mlcache_admin;
GRANT EXECUTE ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) TO mlcache_admin;
GRANT SELECT ON mlcache.warm_tasks TO mlcache_reader;
GRANT EXECUTE ON FUNCTION warm(text[], integer), warm(text, text[]), set_warm_query(text, text),
                          _warm_one(text, text[]), _warm_tasks(text[]), _warm_enqueue(text, text[]),
                          _warm_wake(), _compute_estimate(text)
      TO mlcache_admin;
GRANT SELECT ON mlcache.stats_history TO mlcache_reader;
GRANT EXECUTE ON FUNCTION refresh_views(), clean_orphans(), snapshot_stats(), sweep(),
                          schedule_maintenance(name)
      TO mlcache_admin;
GRANT EXECUTE ON FUNCTION set_staleness(text, integer, float8) TO mlcache_admin;
GRANT EXECUTE ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb) TO mlcache_admin;
