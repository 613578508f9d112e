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
-- Issue #18: logical-replication subscribers.  A watch gains a fifth
-- trigger, mlcache_watch_replica: AFTER INSERT OR UPDATE OR DELETE ... FOR
-- EACH ROW, ENABLE REPLICA, for the apply workers of logical replication,
-- which fire no statement-level trigger.  Existing watches get it first,
-- while the DDL checks still expect four triggers; then the functions that
-- create and check a watch's triggers learn about it.
-- ---------------------------------------------------------------------------
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
