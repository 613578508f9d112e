-- mlcache 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION mlcache UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- The LMS pack leaves the core: it is now the extension mlcache_lms, with the
-- same functions under the same names in schema mlcache.  Nothing of the
-- pack holds data (its definitions, watches, views and warming tasks are
-- rows of the core's tables and stay), so its functions are dropped here and
-- CREATE EXTENSION mlcache_lms creates them again.  Run both in one
-- transaction so that no caller sees them missing:
--     BEGIN; ALTER EXTENSION mlcache UPDATE; CREATE EXTENSION mlcache_lms; COMMIT;
-- A DROP fails (and so the update) if some object of yours depends on a
-- pack function; nothing is dropped with CASCADE.
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF EXISTS (SELECT FROM mlcache.definitions
                WHERE name IN ('assignment_stats', 'analytics_student', 'analytics_assignment',
                               'analytics_progress', 'analytics_engagement')) THEN
        RAISE WARNING 'the LMS pack is now the extension mlcache_lms: its functions are gone until you create it'
            USING HINT = 'Run CREATE EXTENSION mlcache_lms (in the same transaction as this update, to keep them available throughout).';
    END IF;
END
$$;
DROP FUNCTION lms_warm_teacher(bigint,name,jsonb,jsonb);
DROP FUNCTION lms_assignment_cache_hit_rate(bigint,bigint,name,jsonb,jsonb);
DROP FUNCTION lms_generate(integer,name,double precision,integer);
DROP FUNCTION lms_gen_views(name,timestamp with time zone);
DROP FUNCTION lms_gen_progress(name,timestamp with time zone);
DROP FUNCTION lms_gen_grades(name);
DROP FUNCTION lms_gen_submissions(name);
DROP FUNCTION lms_gen_enrollments(name,integer,integer,timestamp with time zone);
DROP FUNCTION lms_gen_entities(name,integer,integer,timestamp with time zone);
DROP FUNCTION lms_create_schema(name);
DROP FUNCTION lms_setup(name,jsonb,jsonb);
DROP FUNCTION lms_create_views(name,jsonb,jsonb);
DROP FUNCTION lms_watch_keys(jsonb,text,text[]);
DROP FUNCTION lms_watches();
DROP FUNCTION lms_definitions();
DROP FUNCTION lms_analytics_engagement_live(bigint,name,jsonb,jsonb);
DROP FUNCTION lms_analytics_progress_live(bigint,bigint,name,jsonb,jsonb);
DROP FUNCTION lms_analytics_assignment_live(bigint,name,jsonb,jsonb);
DROP FUNCTION lms_analytics_student_live(bigint,name,jsonb,jsonb);
DROP FUNCTION lms_assignment_stats_live(bigint,name,jsonb,jsonb);
DROP FUNCTION lms_query(text,name,jsonb,jsonb);
DROP FUNCTION lms_render(text,jsonb,boolean);
DROP FUNCTION lms_template(text);
DROP FUNCTION lms_template_analytics_engagement();
DROP FUNCTION lms_template_analytics_progress();
DROP FUNCTION lms_template_analytics_assignment();
DROP FUNCTION lms_template_analytics_student();
DROP FUNCTION lms_template_assignment_stats();
DROP FUNCTION lms_not_found(text,bigint);
DROP FUNCTION lms_relation(jsonb,text);
DROP FUNCTION lms_table(jsonb,text);
DROP FUNCTION lms_resolve(name,jsonb,jsonb);
DROP FUNCTION lms_catalog();

-- ---------------------------------------------------------------------------
-- include_l1 is gone from invalidate() and invalidate_pattern(): it was
-- accepted and ignored (every invalidation reaches every level).
-- ---------------------------------------------------------------------------
DROP FUNCTION invalidate(text, boolean);
DROP FUNCTION invalidate_pattern(text, boolean);

CREATE FUNCTION invalidate(key text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_invalidate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION invalidate(text) IS
'Invalidate one key (taken literally) in every level and backend at commit';

CREATE FUNCTION invalidate_pattern(pattern text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mlcache_invalidate_pattern'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION invalidate_pattern(text) IS
'Invalidate every key a Redis glob can match, at commit; returns 1 if newly registered';

REVOKE ALL ON FUNCTION invalidate(text), invalidate_pattern(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invalidate(text) TO mlcache_reader;
GRANT EXECUTE ON FUNCTION invalidate_pattern(text) TO mlcache_admin;

-- ---------------------------------------------------------------------------
-- mlcache.stats gains hit_rate (overall, last column); key_stats() gains
-- l2_ttl (the L2 TTL the value was stored with).
-- ---------------------------------------------------------------------------
-- hit_rate, the headline: the percentage of reads that some level answered
-- (reads that computed their value are the misses; bypasses are not reads
-- of the cache and are not counted).  It is the last column so that an
-- update can add it with CREATE OR REPLACE VIEW.
CREATE OR REPLACE VIEW stats AS
    SELECT s.*,
           CASE WHEN s.l1_hits + s.l2_hits + s.l3_hits + s.computes = 0 THEN 0::float8
                ELSE round(100.0 * (s.l1_hits + s.l2_hits + s.l3_hits)
                           / (s.l1_hits + s.l2_hits + s.l3_hits + s.computes), 2)::float8
           END AS hit_rate
      FROM mlcache.stats_row() s;
COMMENT ON VIEW stats IS
'mlcache statistics since stats_reset: the overall hit rate (percent of reads answered by some level), hits, misses and hit rates (percent) per level, sizes, invalidations, Redis errors and breaker state';

DROP FUNCTION key_stats(text);

CREATE FUNCTION key_stats(key text,
    OUT hits bigint, OUT misses bigint, OUT total bigint, OUT hit_rate_percentage float8,
    OUT cache_key text, OUT ttl_seconds integer, OUT l2_ttl integer)
RETURNS record
AS 'MODULE_PATHNAME', 'mlcache_key_stats'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION key_stats(text) IS
'Hits, misses and hit rate of one key over the last 24 hours, its remaining TTL in Redis (ttl_seconds) and the L2 TTL it was stored with (l2_ttl)';

REVOKE ALL ON FUNCTION key_stats(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION key_stats(text) TO mlcache_admin;

-- ---------------------------------------------------------------------------
-- Issue #17, warming: a queued warm() is a job whose tasks the worker runs
-- in batches of batch_size, one transaction per batch (warm_queue.job,
-- .batch; warm_tasks shows them, and shows a task to the role that queued
-- it, warm_queue.queued_by); warm_sets() lets any role that may fetch a
-- definition warm given parameter sets of it (the LMS pack's
-- lms_warm_teacher); _warm_list() is warm()'s work list runner.
-- ---------------------------------------------------------------------------
ALTER TABLE warm_queue ADD COLUMN job bigint;
UPDATE warm_queue SET job = id;
ALTER TABLE warm_queue ALTER COLUMN job SET NOT NULL;
ALTER TABLE warm_queue ADD COLUMN batch integer NOT NULL DEFAULT 1;
ALTER TABLE warm_queue ADD COLUMN queued_by regrole;
COMMENT ON COLUMN warm_queue.job IS
'The warm() or warm_sets() call that queued the task: the id of its first task';
COMMENT ON COLUMN warm_queue.batch IS
'The task''s batch in its job (from 1): the worker runs a batch in one transaction';
COMMENT ON COLUMN warm_queue.queued_by IS
'The role that queued the task (warm_tasks shows the task to it)';

CREATE OR REPLACE VIEW warm_tasks WITH (security_barrier) AS
    SELECT q.id, q.definition, q.params, q.state, q.attempts, q.next_attempt, q.last_error,
           q.created_at, q.started_at, q.finished_at, q.job, q.batch, q.queued_by
      FROM mlcache.warm_queue q
     WHERE coalesce((SELECT pg_catalog.pg_has_role(d.owner, 'USAGE')
                       FROM mlcache.definitions d WHERE d.name = q.definition),
                    (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user))
        OR coalesce((SELECT pg_catalog.pg_has_role(r.oid, 'USAGE')
                       FROM pg_catalog.pg_roles r WHERE r.oid = q.queued_by), false);

DROP FUNCTION _warm_enqueue(text, text[]);

-- Queue one parameter set for the worker, in batch "batch" of job "job"
-- (NULL: a new job, numbered by the task's id, which it returns): the
-- definition must exist and the caller must be allowed to fetch it
-- (src/warm.c).
CREATE FUNCTION _warm_enqueue(name text, params text[], job bigint, batch integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mlcache_warm_enqueue'
LANGUAGE C;

-- 42704 unless the definition exists, 42501 unless the caller may fetch it.
CREATE FUNCTION _warm_check(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_warm_check'
LANGUAGE C;

-- Warm a work list, [{"d": definition, "p": [params as text]}, ...]: in
-- this call when the estimated time is under mlcache.warm_sync_limit,
-- otherwise queued as one job in batches of batch_size for the worker.
-- Nothing is written before the fetches (the work list is a jsonb value,
-- not a table): a transaction that has written stores nothing it computes.
-- Every fetch and every queued task is checked as the caller's (fetch,
-- _warm_enqueue), so any role may call it with any list.
CREATE FUNCTION _warm_list(tasks jsonb, batch_size integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    done integer[] := '{}';   -- positions (from 1) already warmed
    total integer := jsonb_array_length(tasks);
    warmed integer := 0;
    failed integer := 0;
    scheduled integer := 0;
    estimate float8 := 0;
    per_def float8;
    t record;
    job bigint;
    id bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
    IF estimate < extract(epoch FROM current_setting('mlcache.warm_sync_limit')::interval) * 1000 THEN
        FOR t IN SELECT e.x ->> 'd' AS definition, ARRAY(SELECT jsonb_array_elements_text(e.x -> 'p')) AS params
                   FROM jsonb_array_elements(tasks) WITH ORDINALITY e(x, i)
                  WHERE e.i <> ALL (done) ORDER BY e.i LOOP
            IF mlcache._warm_one(t.definition, t.params) THEN
                warmed := warmed + 1;
            ELSE
                failed := failed + 1;
            END IF;
        END LOOP;
    ELSE
        FOR t IN SELECT e.x ->> 'd' AS definition, ARRAY(SELECT jsonb_array_elements_text(e.x -> 'p')) AS params
                   FROM jsonb_array_elements(tasks) WITH ORDINALITY e(x, i)
                  WHERE e.i <> ALL (done) ORDER BY e.i LOOP
            id := mlcache._warm_enqueue(t.definition, t.params, job, scheduled / batch_size + 1);
            job := coalesce(job, id);
            scheduled := scheduled + 1;
        END LOOP;
        IF scheduled > 0 THEN
            PERFORM mlcache._warm_wake();
        END IF;
    END IF;
    RAISE LOG 'mlcache warmed % of % (% failed, % queued as job %, estimated % ms)',
        warmed, total, failed, scheduled, coalesce(job::text, '-'), round(estimate::numeric, 1);
    RETURN jsonb_build_object('total', total, 'warmed', warmed, 'failed', failed,
                              'async_scheduled', scheduled)
           || CASE WHEN job IS NOT NULL THEN jsonb_build_object('job', job) ELSE '{}' END;
END
$$;

CREATE OR REPLACE FUNCTION warm(query_types text[] DEFAULT NULL, batch_size integer DEFAULT 10)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tasks jsonb;
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
    RETURN mlcache._warm_list(tasks, batch_size);
END
$$;

-- Warm given parameter sets of one definition the caller may fetch (a
-- reader's warm(): no warm query involved), e.g. an application warming a
-- user's dashboard at login.  param_sets is a json array whose elements are
-- arrays of parameters, or single parameters: '[[1, 2], [3, 4]]', '[1, 2]'.
CREATE FUNCTION warm_sets(name text, param_sets jsonb, batch_size integer DEFAULT 10)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM mlcache._warm_check(name);   -- also: is mlcache loaded?
    IF jsonb_typeof(param_sets) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'parameter sets must be a json array' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Give one array of parameters per set, as in ''[[1, 2], [3, 4]]'', or one parameter per set, as in ''[1, 2]''.';
    END IF;
    RETURN mlcache._warm_list(
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'd', name,
                    'p', CASE jsonb_typeof(s) WHEN 'array' THEN s ELSE jsonb_build_array(s) END) ORDER BY i), '[]')
           FROM jsonb_array_elements(param_sets) WITH ORDINALITY a(s, i)),
        batch_size);
END
$$;

COMMENT ON FUNCTION warm_sets(text, jsonb, integer) IS
'Warm the given parameter sets of one definition the caller may fetch, in the call or queued in batches';

REVOKE ALL ON FUNCTION _warm_enqueue(text, text[], bigint, integer), _warm_check(text),
                       _warm_list(jsonb, integer), warm_sets(text, jsonb, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION _warm_one(text, text[]), _warm_wake(), _compute_estimate(text) FROM mlcache_admin;
GRANT EXECUTE ON FUNCTION warm_sets(text, jsonb, integer), _warm_list(jsonb, integer),
                          _warm_one(text, text[]), _warm_enqueue(text, text[], bigint, integer),
                          _warm_check(text), _warm_wake(), _compute_estimate(text)
      TO mlcache_reader;

-- ---------------------------------------------------------------------------
-- Issue #18: logical-replication subscribers.  A watch gains a fifth
-- trigger, mlcache_watch_replica: AFTER INSERT OR UPDATE OR DELETE ... FOR
-- EACH ROW, ENABLE REPLICA, for the apply workers of logical replication,
-- which fire no statement-level trigger.  Existing watches get it first,
-- while the DDL checks still expect four triggers; then the functions that
-- create and check a watch's triggers learn about it.  Adding the trigger
-- changes no data, so the DDL check (which would invalidate everything each
-- watch covers and mark its views dirty) is switched off meanwhile.
-- ---------------------------------------------------------------------------
ALTER EVENT TRIGGER mlcache_ddl_end DISABLE;
DO $$
DECLARE
    w record;
BEGIN
    FOR w IN SELECT tbl, keys FROM mlcache.watches LOOP
        EXECUTE format('CREATE TRIGGER mlcache_watch_replica AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION mlcache.watch_trigger(%s)', w.tbl,
                       array_to_string(ARRAY(SELECT quote_literal(k) FROM unnest(w.keys) k), ', '));
        EXECUTE format('ALTER TABLE %s ENABLE REPLICA TRIGGER mlcache_watch_replica', w.tbl);
    END LOOP;
END
$$;
ALTER EVENT TRIGGER mlcache_ddl_end ENABLE ALWAYS;

CREATE OR REPLACE FUNCTION _watch_trigger_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['mlcache_watch_ins', 'mlcache_watch_upd', 'mlcache_watch_del', 'mlcache_watch_trunc',
                   'mlcache_watch_replica']::name[] $$;

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
    EXECUTE format('CREATE TRIGGER mlcache_watch_replica AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION mlcache.watch_trigger(%s)', tbl, args);
    -- ALWAYS: the statement-level ones fire under session_replication_role =
    -- replica too.  REPLICA: the row-level one fires only there, where a
    -- logical-replication apply worker runs (and does nothing in any other
    -- session, which the statement-level ones cover).
    FOREACH trg IN ARRAY mlcache._watch_trigger_names() LOOP
        EXECUTE format('ALTER TABLE %s ENABLE %s TRIGGER %I', tbl,
                       CASE WHEN trg = 'mlcache_watch_replica' THEN 'REPLICA' ELSE 'ALWAYS' END, trg);
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

CREATE OR REPLACE FUNCTION _check_watch(w mlcache.watches)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    BEGIN
        PERFORM mlcache._check_templates(w.tbl, w.keys);
    EXCEPTION WHEN undefined_column THEN
        RAISE EXCEPTION 'cannot change table "%" in a way that breaks its mlcache watch', w.tbl
            USING ERRCODE = 'dependent_objects_still_exist', DETAIL = SQLERRM,
                  HINT = 'Call mlcache.unwatch() first, then watch the table again with new templates.';
    END;
    IF (SELECT count(*) FROM pg_trigger
         WHERE tgrelid = w.tbl AND tgname = ANY (mlcache._watch_trigger_names())
           AND tgenabled = CASE WHEN tgname = 'mlcache_watch_replica' THEN 'R' ELSE 'A' END)
       <> cardinality(mlcache._watch_trigger_names()) THEN
        RAISE EXCEPTION 'the mlcache watch triggers of table "%" must stay enabled', w.tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call mlcache.unwatch() to stop invalidating from this table.';
    END IF;
END
$$;
