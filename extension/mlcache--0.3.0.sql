-- mlcache 0.3.0: the core read-through cache and transactional invalidation.
-- The LMS pack is a separate extension, mlcache_lms (mlcache_lms--0.3.0.sql).
\echo Use "CREATE EXTENSION mlcache" to load this file. \quit

-- Roles.  They are cluster-wide, so they are created only if missing and are
-- not dropped with the extension.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlcache_reader') THEN
        CREATE ROLE mlcache_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlcache_admin') THEN
        CREATE ROLE mlcache_admin NOLOGIN;
    END IF;
END
$$;
GRANT mlcache_reader TO mlcache_admin;

-- Reading through the levels.  get() and set() have one signature per
-- number of arguments and no DEFAULTs: PostgreSQL re-reads a function's
-- default expressions while parsing and again while planning every call that
-- relies on them (19% of the CPU samples of a backend serving L1 hits).  A trailing argument
-- left out (or NULL) means the GUC default; max_stale and beta default to 0.
CREATE FUNCTION get(key text, query text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text) IS
'Read key through L1 and Redis; on a miss run query, store and return its result as jsonb';

CREATE FUNCTION get(key text, query text, l1_ttl integer)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text, integer) IS
'Read key through L1 and Redis; on a miss run query, store and return its result as jsonb';

CREATE FUNCTION get(key text, query text, l1_ttl integer, l2_ttl integer)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text, integer, integer) IS
'Read key through L1 and Redis; on a miss run query, store and return its result as jsonb';

CREATE FUNCTION get(key text, query text, l1_ttl integer, l2_ttl integer, max_stale integer)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text, integer, integer, integer) IS
'Read key through L1 and Redis; on a miss run query, store and return its result as jsonb';

CREATE FUNCTION get(key text, query text, l1_ttl integer, l2_ttl integer, max_stale integer, beta float8)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text, integer, integer, integer, float8) IS
'Read key through L1 and Redis; on a miss run query, store and return its result as jsonb';

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

CREATE FUNCTION set(key text, value jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION set(text, jsonb) IS
'Store a value under key when the transaction commits';

CREATE FUNCTION set(key text, value jsonb, l1_ttl integer)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION set(text, jsonb, integer) IS
'Store a value under key when the transaction commits';

CREATE FUNCTION set(key text, value jsonb, l1_ttl integer, l2_ttl integer)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION set(text, jsonb, integer, integer) IS
'Store a value under key when the transaction commits';

CREATE FUNCTION last_level()
RETURNS text
AS 'MODULE_PATHNAME', 'mlcache_last_level'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION last_level() IS
'Which level answered the last read in this session: l1, l2, l3 or compute';

-- Invalidation: every one takes effect when the transaction commits.
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

CREATE FUNCTION clear()
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_clear'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION clear() IS
'Invalidate every key of this database''s namespace at commit, in O(1)';

-- Counters.
CREATE FUNCTION counters(OUT counter text, OUT value bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mlcache_counters'
LANGUAGE C VOLATILE PARALLEL SAFE;

COMMENT ON FUNCTION counters() IS
'Server-wide mlcache counters since the last reset_stats()';

CREATE FUNCTION stats_reset_time()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'mlcache_stats_reset_time'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_reset_stats'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION reset_stats() IS
'Reset the counters shown by counters() (admin only)';

-- Privileges: nothing for PUBLIC; readers read, set and invalidate single
-- keys; admins also clear, invalidate by pattern and reset statistics.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
GRANT USAGE ON SCHEMA mlcache TO mlcache_reader;
GRANT EXECUTE ON FUNCTION get(text, text), get(text, text, integer), get(text, text, integer, integer),
                          get(text, text, integer, integer, integer),
                          get(text, text, integer, integer, integer, float8),
                          get(text, text, integer, integer, integer, float8, text[]),
                          set(text, jsonb), set(text, jsonb, integer), set(text, jsonb, integer, integer),
                          last_level(),
                          invalidate(text),
                          counters(),
                          stats_reset_time()
      TO mlcache_reader;
GRANT EXECUTE ON FUNCTION invalidate_pattern(text),
                          clear(),
                          reset_stats()
      TO mlcache_admin;

-- Watches: triggers that invalidate keys when a table's rows change.
CREATE TABLE watches (
    tbl        regclass PRIMARY KEY,
    keys       text[] NOT NULL,
    views      regclass[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE watches IS
'Tables watched by mlcache.watch(), with their key templates and dependent materialized views';
SELECT pg_catalog.pg_extension_config_dump('mlcache.watches', '');

CREATE FUNCTION watch_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'mlcache_watch_trigger'
LANGUAGE C;

CREATE FUNCTION _require_loaded()
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_require_loaded_sql'
LANGUAGE C;

CREATE FUNCTION _register_view(view regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_register_view'
LANGUAGE C STRICT;

CREATE FUNCTION _watches_changed()
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_watches_changed'
LANGUAGE C;

CREATE FUNCTION _check_templates(tbl regclass, keys text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_check_templates'
LANGUAGE C STRICT;

CREATE FUNCTION _invalidate_templates(keys text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_invalidate_templates'
LANGUAGE C STRICT;

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

-- The five triggers of a watch, created by watch() and checked by the DDL
-- event triggers below: four statement-level ones (ENABLE ALWAYS) and
-- mlcache_watch_replica, row-level (ENABLE REPLICA), for the apply workers
-- of logical replication, which fire no statement-level trigger.
CREATE FUNCTION _watch_trigger_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['mlcache_watch_ins', 'mlcache_watch_upd', 'mlcache_watch_del', 'mlcache_watch_trunc',
                   'mlcache_watch_replica']::name[] $$;

CREATE FUNCTION _drop_watch_triggers(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trg name;
BEGIN
    FOR trg IN SELECT tgname FROM pg_trigger
                WHERE tgrelid = tbl AND tgname = ANY (mlcache._watch_trigger_names()) LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg, tbl);
    END LOOP;
END
$$;

CREATE FUNCTION watch(tbl regclass, keys text[], views regclass[] DEFAULT '{}')
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

COMMENT ON FUNCTION watch(regclass, text[], regclass[]) IS
'Invalidate the keys rendered from templates such as ''stats:{col}'' whenever rows of tbl change';

CREATE FUNCTION unwatch(tbl regclass)
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

COMMENT ON FUNCTION unwatch(regclass) IS 'Remove a watch and its triggers';

-- DDL on watched tables.  A change that would break a watch (a renamed or
-- dropped column, a disabled, renamed or dropped trigger) is refused; any
-- other ALTER invalidates everything the watch covers, since it may have
-- rewritten the data (ALTER COLUMN ... TYPE ... USING).  A dropped table's
-- watch is forgotten and its keys invalidated.
CREATE FUNCTION _check_watch(w mlcache.watches)
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

CREATE FUNCTION _on_ddl_end()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w mlcache.watches;
BEGIN
    FOR w IN
        SELECT DISTINCT ON (wt.tbl) wt.*
          FROM pg_event_trigger_ddl_commands() c
          JOIN mlcache.watches wt
            ON wt.tbl::oid = CASE c.classid
                               WHEN 'pg_class'::regclass THEN c.objid
                               WHEN 'pg_trigger'::regclass
                                 THEN (SELECT tgrelid FROM pg_trigger WHERE oid = c.objid)
                             END
    LOOP
        PERFORM mlcache._check_watch(w);
        PERFORM mlcache._invalidate_templates(w.keys);
    END LOOP;
END
$$;

CREATE FUNCTION _on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w mlcache.watches;
BEGIN
    FOR w IN
        DELETE FROM mlcache.watches wt
         WHERE wt.tbl::oid IN (SELECT objid FROM pg_event_trigger_dropped_objects()
                                WHERE classid = 'pg_class'::regclass AND objsubid = 0)
        RETURNING wt.*
    LOOP
        PERFORM mlcache._invalidate_templates(w.keys);
        PERFORM mlcache._watches_changed();
    END LOOP;
    FOR w IN SELECT * FROM mlcache.watches LOOP
        PERFORM mlcache._check_watch(w);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER mlcache_ddl_end ON ddl_command_end
    EXECUTE FUNCTION _on_ddl_end();
CREATE EVENT TRIGGER mlcache_sql_drop ON sql_drop
    EXECUTE FUNCTION _on_sql_drop();
ALTER EVENT TRIGGER mlcache_ddl_end ENABLE ALWAYS;
ALTER EVENT TRIGGER mlcache_sql_drop ENABLE ALWAYS;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
REVOKE ALL ON mlcache.watches FROM PUBLIC;
GRANT SELECT ON mlcache.watches TO mlcache_reader;
-- watch() and unwatch() run as their caller, who must own the table: what
-- they call is granted to mlcache_admin too (watch_trigger() for CREATE
-- TRIGGER).  The event triggers are SECURITY DEFINER, so that DDL by any
-- role keeps the watches right.
GRANT EXECUTE ON FUNCTION watch(regclass, text[], regclass[]),
                          unwatch(regclass),
                          watch_trigger(), _check_templates(regclass, text[]),
                          _invalidate_templates(text[]), _watch_trigger_names(),
                          _drop_watch_triggers(regclass),
                          _catalog_watch(regclass, text[], regclass[]), _catalog_unwatch(regclass)
      TO mlcache_admin;

-- Named definitions: parameterised queries read through L1, Redis, an
-- optional materialized view (L3), then computed.
CREATE TABLE definitions (
    name         text PRIMARY KEY CHECK (name <> '' AND length(name) < 128),
    query        text NOT NULL,
    key_template text NOT NULL,
    param_types  regtype[] NOT NULL,
    l1_ttl       integer CHECK (l1_ttl >= 0),
    l2_ttl       integer CHECK (l2_ttl >= 0),
    l3_view      regclass,
    l3_columns   text[],
    l3_value     text,
    owner        regrole NOT NULL,
    readers      regrole[] NOT NULL DEFAULT '{}',
    search_path  text NOT NULL,
    max_stale    integer NOT NULL DEFAULT 0 CHECK (max_stale >= 0),
    beta         float8 NOT NULL DEFAULT 0 CHECK (beta >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    warm_query   text,
    vary_on      text[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE definitions IS
'Named cached analytics registered with mlcache.define()';
COMMENT ON COLUMN definitions.warm_query IS
'Query returning the parameter sets warm() fills, one row per set, one column per parameter';
COMMENT ON COLUMN definitions.vary_on IS
'Names of settings whose current values are part of the definition''s cache keys';
SELECT pg_catalog.pg_extension_config_dump('mlcache.definitions', '');

CREATE FUNCTION _check_definition(query text, param_types oid[], key text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_check_definition'
LANGUAGE C STRICT;

CREATE FUNCTION _definition_changed(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_definition_changed'
LANGUAGE C STRICT;

-- The parameter types PostgreSQL infers for a query (one statement, parsed
-- and analysed, never spliced into other SQL).  It runs with the caller's
-- search_path, as define() does: that is the path the definition records
-- and its query is resolved with.
CREATE FUNCTION _param_types(query text)
RETURNS regtype[]
AS 'MODULE_PATHNAME', 'mlcache_param_types'
LANGUAGE C;

-- An L3 view must be a materialized view with the parameter columns, a jsonb
-- value column, and a unique index on exactly the parameter columns (which
-- REFRESH ... CONCURRENTLY needs, and which makes the lookup one row).
CREATE FUNCTION _check_l3(view regclass, cols text[], value_col text, nparams integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = view) <> 'm' THEN
        RAISE EXCEPTION '"%" is not a materialized view', view USING ERRCODE = 'wrong_object_type';
    END IF;
    IF cols IS NULL OR cardinality(cols) <> nparams THEN
        RAISE EXCEPTION 'l3_columns must name one column of "%" per query parameter (%)', view, nparams
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM unnest(cols || value_col) c
                WHERE NOT EXISTS (SELECT FROM pg_attribute
                                   WHERE attrelid = view AND attname = c AND attnum > 0 AND NOT attisdropped)) THEN
        RAISE EXCEPTION 'materialized view "%" lacks a column of l3_columns or l3_value', view
            USING ERRCODE = 'undefined_column';
    END IF;
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = view AND attname = value_col) <> 'jsonb'::regtype THEN
        RAISE EXCEPTION 'column "%" of materialized view "%" must be of type jsonb', value_col, view
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_index i
         WHERE i.indrelid = view AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
           AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                  FROM pg_attribute a WHERE a.attrelid = view AND a.attnum = ANY (i.indkey))
               = (SELECT array_agg(c ORDER BY c) FROM unnest(cols) c)) THEN
        RAISE EXCEPTION 'materialized view "%" has no unique index on (%)', view, array_to_string(cols, ', ')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index, and the L3 lookup needs one row per parameter set.',
                  HINT = format('CREATE UNIQUE INDEX ON %s (%s);', view, array_to_string(cols, ', '));
    END IF;
END
$$;

-- define() and the functions below change mlcache.definitions; they are C
-- (src/catalog.c) so that they see the real caller.  The owner of a
-- definition is the role that defined it; only the owner, a member of it or
-- a superuser redefines, undefines or changes it.  Its query runs as the
-- owner, like a view's.
CREATE FUNCTION define(name text, query text, key text,
                       l1_ttl integer DEFAULT NULL, l2_ttl integer DEFAULT NULL,
                       l3_view regclass DEFAULT NULL, l3_columns text[] DEFAULT NULL,
                       l3_value text DEFAULT 'value', vary_on text[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_define'
LANGUAGE C;

COMMENT ON FUNCTION define(text, text, text, integer, integer, regclass, text[], text, text[]) IS
'Register a parameterised query ($1, $2 ...) under a name, with a key template such as stats:{1}';

CREATE FUNCTION undefine(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_undefine'
LANGUAGE C;

CREATE FUNCTION grant_fetch(name text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_grant_fetch'
LANGUAGE C;

CREATE FUNCTION revoke_fetch(name text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_revoke_fetch'
LANGUAGE C;

CREATE FUNCTION "fetch"(name text, VARIADIC params "any")
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_fetch'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION "fetch"(text, "any") IS
'Read a definition through L1, Redis, its materialized view (L3) and its query';

-- A definition without parameters is fetched with just its name.
CREATE FUNCTION "fetch"(name text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_fetch'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION view_status(OUT view oid, OUT state text, OUT last_refresh timestamptz,
                            OUT duration_ms float8, OUT refreshes bigint, OUT failures integer,
                            OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'mlcache_views'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW views AS
    SELECT s.view::regclass AS view, s.state, s.last_refresh, s.duration_ms, s.refreshes,
           s.failures, s.error
      FROM mlcache.view_status() s;
COMMENT ON VIEW views IS
'Materialized views used as L3: state, last refresh, its duration and the last error';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
REVOKE ALL ON mlcache.definitions, mlcache.views FROM PUBLIC;
GRANT SELECT ON mlcache.definitions, mlcache.views TO mlcache_reader;
GRANT EXECUTE ON FUNCTION "fetch"(text, "any"), "fetch"(text), view_status() TO mlcache_reader;
GRANT EXECUTE ON FUNCTION define(text, text, text, integer, integer, regclass, text[], text, text[]),
                          undefine(text), grant_fetch(text, regrole), revoke_fetch(text, regrole),
                          _param_types(text), _check_definition(text, oid[], text),
                          _check_l3(regclass, text[], text, integer), _definition_changed(text),
                          _register_view(regclass), _watches_changed(), _require_loaded()
      TO mlcache_admin;

-- Operations from psql: statistics and health.
CREATE FUNCTION stats_row(
    OUT l1_hits bigint, OUT l1_misses bigint, OUT l1_hit_rate float8,
    OUT l1_entries bigint, OUT l1_bytes bigint,
    OUT l2_hits bigint, OUT l2_misses bigint, OUT l2_hit_rate float8,
    OUT l2_keys bigint, OUT l2_keys_exact boolean, OUT l2_used_memory bigint,
    OUT l3_hits bigint, OUT l3_misses bigint, OUT l3_hit_rate float8,
    OUT l3_views integer, OUT l3_refreshes bigint,
    OUT computes bigint, OUT bypasses bigint, OUT rejected_fills bigint,
    OUT invalidations bigint, OUT invalidations_pending bigint, OUT hygiene_dropped bigint,
    OUT redis_errors bigint, OUT breaker_state text, OUT breaker_opened bigint,
    OUT stats_reset timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'mlcache_stats_row'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- hit_rate, the headline: the percentage of reads that some level answered
-- (reads that computed their value are the misses; bypasses are not reads
-- of the cache and are not counted).  It is the last column so that an
-- update can add it with CREATE OR REPLACE VIEW.
CREATE VIEW stats AS
    SELECT s.*,
           CASE WHEN s.l1_hits + s.l2_hits + s.l3_hits + s.computes = 0 THEN 0::float8
                ELSE round(100.0 * (s.l1_hits + s.l2_hits + s.l3_hits)
                           / (s.l1_hits + s.l2_hits + s.l3_hits + s.computes), 2)::float8
           END AS hit_rate
      FROM mlcache.stats_row() s;
COMMENT ON VIEW stats IS
'mlcache statistics since stats_reset: the overall hit rate (percent of reads answered by some level), hits, misses and hit rates (percent) per level, sizes, invalidations, Redis errors and breaker state';

CREATE FUNCTION _health()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_health'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- _health() with each L3 view's freshness added.
CREATE FUNCTION health()
RETURNS jsonb
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_set(
             jsonb_set(h, '{l3,views}',
                       coalesce((SELECT jsonb_agg(jsonb_build_object('view', v.view::text, 'state', v.state,
                                                                      'last_refresh', v.last_refresh,
                                                                      'error', v.error) ORDER BY v.view::text)
                                   FROM mlcache.views v), '[]')),
             '{l3,status}',
             to_jsonb(CASE WHEN EXISTS (SELECT FROM mlcache.views v WHERE v.state = 'failed')
                           THEN 'degraded' ELSE 'ok' END))
      FROM mlcache._health() h
$$;

COMMENT ON FUNCTION health() IS
'Status of every level, the Redis round trip and breaker, the worker and pending invalidations; never raises because a part is down';

REVOKE ALL ON FUNCTION stats_row(), _health(), health() FROM PUBLIC;
REVOKE ALL ON mlcache.stats FROM PUBLIC;
GRANT SELECT ON mlcache.stats TO mlcache_reader;
GRANT EXECUTE ON FUNCTION stats_row() TO mlcache_reader;
GRANT EXECUTE ON FUNCTION health(), _health() TO mlcache_admin;
GRANT SELECT ON mlcache.views TO mlcache_admin;

-- Per-key hit tracking over 24 hours.
CREATE FUNCTION key_stats(key text,
    OUT hits bigint, OUT misses bigint, OUT total bigint, OUT hit_rate_percentage float8,
    OUT cache_key text, OUT ttl_seconds integer, OUT l2_ttl integer)
RETURNS record
AS 'MODULE_PATHNAME', 'mlcache_key_stats'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION key_stats(text) IS
'Hits, misses and hit rate of one key over the last 24 hours, its remaining TTL in Redis (ttl_seconds) and the L2 TTL it was stored with (l2_ttl)';

CREATE FUNCTION tracking_sweep()
RETURNS bigint
AS 'MODULE_PATHNAME', 'mlcache_tracking_sweep'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION tracking_sweep() IS
'Forget tracked keys with no read in the last 24 hours; returns how many';

CREATE FUNCTION _tracking_advance(hours integer)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_tracking_advance'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION _tracking_advance(integer) IS
'Testing aid: move the tracking clock forward (superuser only)';

REVOKE ALL ON FUNCTION key_stats(text), tracking_sweep(), _tracking_advance(integer) FROM PUBLIC;
-- A key's statistics (hits, misses, TTL) say who reads what: admins only.
GRANT EXECUTE ON FUNCTION key_stats(text), tracking_sweep() TO mlcache_admin;


-- Warming: fill the cache ahead of reads, synchronously when it is quick,
-- otherwise through a durable queue that the background worker drains.
CREATE TABLE warm_queue (
    id           bigserial PRIMARY KEY,
    definition   text NOT NULL,
    params       text[] NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL DEFAULT now(),
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    settings     text[],
    job          bigint NOT NULL,
    batch        integer NOT NULL DEFAULT 1,
    queued_by    regrole
);
CREATE INDEX ON warm_queue (state, next_attempt) WHERE state = 'pending';
COMMENT ON TABLE warm_queue IS
'Warming tasks for the background worker; retried with exponential backoff';
COMMENT ON COLUMN warm_queue.settings IS
'Result-shaping settings (TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output, lc_monetary, lc_numeric) of the session that queued the task, applied while it runs';
COMMENT ON COLUMN warm_queue.job IS
'The warm() or warm_sets() call that queued the task: the id of its first task';
COMMENT ON COLUMN warm_queue.batch IS
'The task''s batch in its job (from 1): the worker runs a batch in one transaction';
COMMENT ON COLUMN warm_queue.queued_by IS
'The role that queued the task (warm_tasks shows the task to it)';
SELECT pg_catalog.pg_extension_config_dump('mlcache.warm_queue', '');
SELECT pg_catalog.pg_extension_config_dump('mlcache.warm_queue_id_seq', '');

-- A task's parameters come from its definition's warm query (its owner's
-- data) or from the role that queued it.  The view shows a task to those
-- who have the privileges of the definition's owner or of the role that
-- queued it (superusers: all, also of removed definitions); a security
-- barrier keeps a caller's leaky functions from seeing the rest.  A job's
-- progress is its tasks' states: a batch's tasks become done together.
CREATE VIEW warm_tasks WITH (security_barrier) AS
    SELECT q.id, q.definition, q.params, q.state, q.attempts, q.next_attempt, q.last_error,
           q.created_at, q.started_at, q.finished_at, q.job, q.batch, q.queued_by
      FROM mlcache.warm_queue q
     WHERE coalesce((SELECT pg_catalog.pg_has_role(d.owner, 'USAGE')
                       FROM mlcache.definitions d WHERE d.name = q.definition),
                    (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user))
        OR coalesce((SELECT pg_catalog.pg_has_role(r.oid, 'USAGE')
                       FROM pg_catalog.pg_roles r WHERE r.oid = q.queued_by), false);

CREATE FUNCTION _warm_wake()
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_warm_wake'
LANGUAGE C;

CREATE FUNCTION _compute_estimate(name text)
RETURNS float8
AS 'MODULE_PATHNAME', 'mlcache_compute_estimate'
LANGUAGE C STRICT;

-- Only the definition's owner sets its warm query, which runs as the owner.
CREATE FUNCTION set_warm_query(name text, query text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set_warm_query'
LANGUAGE C;

COMMENT ON FUNCTION set_warm_query(text, text) IS
'Set the query whose rows are the parameter sets warm() fills for a definition';

-- Fetch one parameter set; false (and a WARNING) if it failed.
CREATE FUNCTION _warm_one(name text, params text[])
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM mlcache.fetch(name, VARIADIC params);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'mlcache could not warm %(%): %', name, array_to_string(params, ', '), SQLERRM;
    RETURN false;
END
$$;

-- The work list: every parameter set of the chosen definitions whose owner
-- the caller has the privileges of; warm queries run as that owner
-- (src/warm.c).
CREATE FUNCTION _warm_tasks(query_types text[])
RETURNS TABLE (definition text, params text[])
AS 'MODULE_PATHNAME', 'mlcache_warm_tasks'
LANGUAGE C;

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

CREATE FUNCTION warm(query_types text[] DEFAULT NULL, batch_size integer DEFAULT 10)
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

COMMENT ON FUNCTION warm(text[], integer) IS
'Warm every definition (or those named) over the parameter sets of its warm query';

CREATE FUNCTION warm(name text, VARIADIC params text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ok boolean;
BEGIN
    PERFORM mlcache._require_loaded();
    ok := mlcache._warm_one(name, params);
    RETURN jsonb_build_object('total', 1, 'warmed', CASE WHEN ok THEN 1 ELSE 0 END,
                              'failed', CASE WHEN ok THEN 0 ELSE 1 END, 'async_scheduled', 0);
END
$$;

COMMENT ON FUNCTION warm(text, text[]) IS 'Warm one parameter set of one definition';

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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
REVOKE ALL ON mlcache.warm_queue, mlcache.warm_tasks FROM PUBLIC;
GRANT SELECT ON mlcache.warm_tasks TO mlcache_reader;
GRANT EXECUTE ON FUNCTION warm(text[], integer), warm(text, text[]), set_warm_query(text, text),
                          _warm_tasks(text[])
      TO mlcache_admin;
-- warm_sets() is for any role that may fetch: each fetch and each queued
-- task is checked as the caller's.
GRANT EXECUTE ON FUNCTION warm_sets(text, jsonb, integer), _warm_list(jsonb, integer),
                          _warm_one(text, text[]), _warm_enqueue(text, text[], bigint, integer),
                          _warm_check(text), _warm_wake(), _compute_estimate(text)
      TO mlcache_reader;

-- Maintenance: plain functions, also scheduled in pg_cron by
-- schedule_maintenance().
CREATE FUNCTION refresh_views()
RETURNS integer
AS 'MODULE_PATHNAME', 'mlcache_refresh_views'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION refresh_views() IS
'Ask the worker to refresh every L3 view of this database; returns how many';

CREATE FUNCTION clean_orphans()
RETURNS bigint
AS 'MODULE_PATHNAME', 'mlcache_clean_orphans'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION clean_orphans() IS
'Remove Redis keys under this database''s prefix that no read can use (older epoch, foreign values)';

CREATE TABLE stats_history (
    taken_at timestamptz NOT NULL DEFAULT now(),
    stats    jsonb NOT NULL
);
CREATE INDEX ON stats_history (taken_at);
COMMENT ON TABLE stats_history IS 'Snapshots of mlcache.stats taken by snapshot_stats()';
SELECT pg_catalog.pg_extension_config_dump('mlcache.stats_history', '');

-- snapshot_stats() and sweep() write mlcache's tables, which no role but
-- their owner may write: they are SECURITY DEFINER, with fixed statements.
CREATE FUNCTION snapshot_stats()
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ INSERT INTO mlcache.stats_history (stats) SELECT to_jsonb(s) FROM mlcache.stats s $$;

CREATE FUNCTION sweep()
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

COMMENT ON FUNCTION sweep() IS
'Forget keys not read for 24 hours, warming tasks finished a day ago and stats snapshots older than 30 days';

-- Register the maintenance jobs in pg_cron, idempotently (jobs are named).
-- pg_cron runs in one database (cron.database_name): call this there, with
-- the database whose cache the jobs maintain.
CREATE FUNCTION schedule_maintenance(database_name name DEFAULT current_database())
RETURNS TABLE (job text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    IF to_regnamespace('cron') IS NULL OR to_regproc('cron.schedule_in_database') IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add pg_cron to shared_preload_libraries, run CREATE EXTENSION pg_cron in the database named by cron.database_name, and call mlcache.schedule_maintenance() there.';
    END IF;
    FOR j IN SELECT * FROM (VALUES
            ('warm',            '0 7 * * *',    'SELECT mlcache.warm()'),
            ('refresh-views',   '*/30 * * * *', 'SELECT mlcache.refresh_views()'),
            ('sweep',           '0 * * * *',    'SELECT mlcache.sweep()'),
            ('snapshot-stats',  '0 */6 * * *',  'SELECT mlcache.snapshot_stats()'),
            ('clean-orphans',   '0 */12 * * *', 'SELECT mlcache.clean_orphans()')) v(name, sched, cmd) LOOP
        job := 'mlcache-' || j.name || '-' || database_name;
        schedule := j.sched;
        command := j.cmd;
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
           INTO jobid USING job, schedule, command, database_name::text;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION schedule_maintenance(name) IS
'Register mlcache''s maintenance jobs in pg_cron (warm daily at 07:00 UTC, refresh views every 30 min, sweep hourly, snapshot stats every 6 h, clean orphans every 12 h)';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
REVOKE ALL ON mlcache.stats_history FROM PUBLIC;
GRANT SELECT ON mlcache.stats_history TO mlcache_reader;
GRANT EXECUTE ON FUNCTION refresh_views(), clean_orphans(), snapshot_stats(), sweep(),
                          schedule_maintenance(name)
      TO mlcache_admin;

-- Opt-in staleness of a definition (G8): serve a value up to max_stale
-- seconds past its TTL or invalidation while one session recomputes it, and
-- XFetch early recomputation with strength beta.  Both 0 (off) by default.
CREATE FUNCTION set_staleness(name text, max_stale integer DEFAULT 0, beta float8 DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_set_staleness'
LANGUAGE C;

COMMENT ON FUNCTION set_staleness(text, integer, float8) IS
'Opt a definition into stale-while-revalidate (max_stale seconds) and XFetch (beta); 0 turns them off';

REVOKE ALL ON FUNCTION set_staleness(text, integer, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_staleness(text, integer, float8) TO mlcache_admin;

-- Nothing for PUBLIC, whatever was created above.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
