-- mlcache 0.2.0: the core read-through cache and transactional invalidation.
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
CREATE FUNCTION invalidate(key text, include_l1 boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_invalidate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION invalidate(text, boolean) IS
'Invalidate one key (taken literally) in every level and backend at commit';

CREATE FUNCTION invalidate_pattern(pattern text, include_l1 boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mlcache_invalidate_pattern'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION invalidate_pattern(text, boolean) IS
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
                          invalidate(text, boolean),
                          counters(),
                          stats_reset_time()
      TO mlcache_reader;
GRANT EXECUTE ON FUNCTION invalidate_pattern(text, boolean),
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

-- The four triggers of a watch, created by watch() and checked by the DDL
-- event triggers below.
CREATE FUNCTION _watch_trigger_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['mlcache_watch_ins', 'mlcache_watch_upd', 'mlcache_watch_del', 'mlcache_watch_trunc']::name[] $$;

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
         WHERE tgrelid = w.tbl AND tgenabled = 'A'
           AND tgname = ANY (mlcache._watch_trigger_names())) <> 4 THEN
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

CREATE VIEW stats AS SELECT * FROM mlcache.stats_row();
COMMENT ON VIEW stats IS
'mlcache statistics since stats_reset: hits, misses and hit rates (percent) per level, sizes, invalidations, Redis errors and breaker state';

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
    OUT cache_key text, OUT ttl_seconds integer)
RETURNS record
AS 'MODULE_PATHNAME', 'mlcache_key_stats'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION key_stats(text) IS
'Hits, misses and hit rate of one key over the last 24 hours, and its remaining TTL in Redis';

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

-- ------------------------------------------------------------------
-- The LMS pack: canonical schema, data generator, analytics, setup.
-- ------------------------------------------------------------------
-- mlcache LMS pack: a canonical learning-management schema, a deterministic
-- data generator, the analytics queries (run live or through named cached
-- definitions), their materialized views (L3) and the watches that keep the
-- cache fresh.  Appended to the install script; every object is in schema
-- mlcache and every function pins its search_path.
--
-- Conventions of every analytics value (jsonb):
--   * numbers that are averages or rates are rounded (2 decimals; rates 4);
--   * timestamps are UTC, ISO 8601 without an offset ("2024-09-02T08:00:00"),
--     so a value never depends on the session's TimeZone or DateStyle;
--   * arrays are ordered (by id, date or score), so equal data give equal
--     values;
--   * a missing entity raises SQLSTATE P0002 (no_data_found), which is never
--     cached.
--
-- Keys of the cached definitions (each entity id is one key segment; every
-- key about one user shares the prefix analytics:user:<id>: so that one
-- prefix invalidation covers all of them):
--   assignment_stats            assignment_stats:{assignment}
--   analytics_assignment        analytics:assignment:{assignment}
--   analytics_student           analytics:user:{user}:student
--   analytics_progress          analytics:user:{user}:progress:{course}
--   analytics_engagement        analytics:engagement:{course}

-- ---------------------------------------------------------------------------
-- The logical model: the tables and columns the analytics read.
-- ---------------------------------------------------------------------------

-- Every logical column the pack reads, with its canonical type.  An existing
-- schema must provide these (under any name, see lms_setup's mappings);
-- other columns of the canonical schema (feedback, is_staff ...) are not
-- read.
CREATE FUNCTION lms_catalog(OUT tbl text, OUT col text, OUT typ text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('users', 'id', 'bigint'), ('users', 'username', 'text'),
           ('courses', 'id', 'bigint'), ('courses', 'title', 'text'),
           ('enrollments', 'course_id', 'bigint'), ('enrollments', 'student_id', 'bigint'),
           ('assignments', 'id', 'bigint'), ('assignments', 'course_id', 'bigint'),
           ('assignments', 'author_id', 'bigint'), ('assignments', 'title', 'text'),
           ('assignments', 'due_date', 'timestamptz'), ('assignments', 'max_score', 'numeric'),
           ('assignments', 'created_at', 'timestamptz'),
           ('submissions', 'id', 'bigint'), ('submissions', 'assignment_id', 'bigint'),
           ('submissions', 'student_id', 'bigint'), ('submissions', 'status', 'text'),
           ('submissions', 'score', 'numeric'), ('submissions', 'submitted_at', 'timestamptz'),
           ('submissions', 'graded_at', 'timestamptz'),
           ('grades', 'id', 'bigint'), ('grades', 'assignment_id', 'bigint'),
           ('grades', 'student_id', 'bigint'), ('grades', 'graded_by', 'bigint'),
           ('materials', 'id', 'bigint'), ('materials', 'course_id', 'bigint'),
           ('materials', 'title', 'text'),
           ('material_progress', 'material_id', 'bigint'), ('material_progress', 'user_id', 'bigint'),
           ('material_progress', 'progress_percentage', 'numeric'),
           ('material_progress', 'time_spent', 'integer'),
           ('material_progress', 'last_accessed', 'timestamptz'),
           ('material_views', 'material_id', 'bigint'), ('material_views', 'user_id', 'bigint'),
           ('material_views', 'viewed_at', 'timestamptz'),
           ('reports', 'kind', 'text'), ('reports', 'subject_id', 'bigint')
$$;

-- The full mapping for a schema: {"schema", "tables": {logical: actual},
-- "columns": {"table.column": actual}}, defaults filled in.  Unknown logical
-- names and non-string names are refused (22023).
CREATE FUNCTION lms_resolve(schema_name name, tables jsonb, columns jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'schema name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(coalesce(tables, '{}')) <> 'object' OR jsonb_typeof(coalesce(columns, '{}')) <> 'object' THEN
        RAISE EXCEPTION 'table and column mappings must be json objects' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(k) INTO bad FROM jsonb_object_keys(coalesce(tables, '{}')) k
     WHERE k NOT IN (SELECT tbl FROM mlcache.lms_catalog());
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown lms table "%"', bad USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Tables are users, courses, enrollments, assignments, submissions, grades, materials, material_progress, material_views, reports.';
    END IF;
    SELECT min(k) INTO bad FROM jsonb_object_keys(coalesce(columns, '{}')) k
     WHERE k NOT IN (SELECT tbl || '.' || col FROM mlcache.lms_catalog());
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown lms column "%"', bad USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Columns are written "table.column" and must be among those mlcache.lms_catalog() lists.';
    END IF;
    SELECT min(e.key) INTO bad FROM (SELECT * FROM jsonb_each(coalesce(tables, '{}'))
                                     UNION ALL SELECT * FROM jsonb_each(coalesce(columns, '{}'))) e
     WHERE jsonb_typeof(e.value) <> 'string' OR e.value #>> '{}' = '';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the name mapped to "%" must be a non-empty string', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN jsonb_build_object(
        'schema', schema_name,
        'tables', (SELECT jsonb_object_agg(t, coalesce(tables ->> t, t))
                     FROM (SELECT DISTINCT tbl AS t FROM mlcache.lms_catalog()) d),
        'columns', (SELECT jsonb_object_agg(tbl || '.' || col, coalesce(columns ->> (tbl || '.' || col), col))
                      FROM mlcache.lms_catalog()));
END
$$;

-- The actual table of a logical one, as a regclass; 42P01 if it is missing.
CREATE FUNCTION lms_table(m jsonb, tbl text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := to_regclass(format('%I.%I', m ->> 'schema', m -> 'tables' ->> tbl));
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table %.% (lms table %) does not exist',
            quote_ident(m ->> 'schema'), quote_ident(m -> 'tables' ->> tbl), tbl
            USING ERRCODE = 'undefined_table';
    END IF;
    RETURN rel;
END
$$;

-- A logical table as a subquery that renames (and, where the types differ,
-- converts) the actual columns to the canonical ones, e.g.
--   (SELECT "id" AS id, "points"::numeric AS score, ... FROM "app"."t")
-- Simple renaming subqueries are pulled up by the planner, so indexes on the
-- actual columns are used.  A missing column is 42703.
CREATE FUNCTION lms_relation(m jsonb, tbl text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := mlcache.lms_table(m, tbl);
    c record;
    actual text;
    atype regtype;
    items text[] := '{}';
BEGIN
    FOR c IN SELECT col, typ FROM mlcache.lms_catalog() WHERE lms_catalog.tbl = lms_relation.tbl ORDER BY col LOOP
        actual := m -> 'columns' ->> (tbl || '.' || c.col);
        SELECT a.atttypid INTO atype FROM pg_attribute a
         WHERE a.attrelid = rel AND a.attname = actual AND a.attnum > 0 AND NOT a.attisdropped;
        IF atype IS NULL THEN
            RAISE EXCEPTION 'column "%" of table % (lms column %.%) does not exist', actual, rel, tbl, c.col
                USING ERRCODE = 'undefined_column';
        END IF;
        items := items || (format(CASE WHEN atype = c.typ::regtype THEN '%I'
                                       WHEN atype = 'interval'::regtype AND c.typ = 'integer'
                                         THEN 'extract(epoch FROM %I)::integer'
                                       WHEN c.typ IN ('numeric', 'integer') THEN '%I::' || c.typ
                                       ELSE '%I' END, actual)
                           || format(' AS %I', c.col));
    END LOOP;
    RETURN format('(SELECT %s FROM %I.%I)', array_to_string(items, ', '),
                  m ->> 'schema', m -> 'tables' ->> tbl);
END
$$;

-- ---------------------------------------------------------------------------
-- The analytics queries, as templates.  {table} is a logical table (see
-- lms_relation); {not_found:kind:$n} raises P0002 for parameter $n.  Columns
-- are written with their canonical names.  Each template returns one row
-- with one jsonb column.
-- ---------------------------------------------------------------------------

-- Raise "<kind> <id> does not exist" with SQLSTATE P0002.  Called by the
-- queries for a missing entity (it never returns).
CREATE FUNCTION lms_not_found(kind text, id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% % does not exist', kind, coalesce(id::text, 'null')
        USING ERRCODE = 'no_data_found';
END
$$;

-- assignment_stats($1 = assignment id).  Definitions:
--   submitted = status <> 'draft'; graded = submitted with a non-NULL score.
--   statistics (over graded scores): mean, median, std_dev (population) rounded
--     to 2 decimals, min, max; all NULL when nothing is graded.
--     distribution: 10 buckets of max_score/10, [{"from","to","count"}], a
--     score in bucket i when from <= score < to (max_score and above in the
--     last, below 0 in the first); NULL when max_score is NULL or <= 0.
--   submission_stats: count (submitted), late_count (submitted_at > due_date),
--     ungraded_count (submitted, score NULL), submission_rate (distinct
--     submitting students / students enrolled in the course, 4 decimals; 0
--     when nobody is enrolled).  All 0 for an assignment without submissions.
--   time_stats (seconds, 2 decimals; NULL when there is nothing to average):
--     avg_time_to_grade = graded_at - submitted_at, avg_response_time =
--     submitted_at - the assignment's created_at.
CREATE FUNCTION lms_template_assignment_stats()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN a.id IS NULL THEN {not_found:assignment:$1}
ELSE jsonb_build_object(
    'assignment_id', p.id,
    'statistics', jsonb_build_object(
        'mean', round(g.mean, 2), 'median', round(g.median, 2), 'std_dev', round(g.std_dev, 2),
        'min', g.min, 'max', g.max, 'distribution', d.buckets),
    'submission_stats', jsonb_build_object(
        'count', s.n, 'late_count', s.late, 'ungraded_count', s.ungraded,
        'submission_rate', round(CASE WHEN e.n = 0 THEN 0 ELSE s.students::numeric / e.n END, 4)),
    'time_stats', jsonb_build_object(
        'avg_time_to_grade', round(s.to_grade, 2), 'avg_response_time', round(s.response, 2)))
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {assignments} a ON a.id = p.id
LEFT JOIN LATERAL (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE x.submitted_at > a.due_date) AS late,
           count(*) FILTER (WHERE x.score IS NULL) AS ungraded,
           count(DISTINCT x.student_id) AS students,
           avg(extract(epoch FROM x.graded_at - x.submitted_at)) AS to_grade,
           avg(extract(epoch FROM x.submitted_at - a.created_at)) AS response
      FROM {submissions} x
     WHERE x.assignment_id = p.id AND x.status <> 'draft') s ON true
LEFT JOIN LATERAL (
    SELECT avg(x.score) AS mean, stddev_pop(x.score) AS std_dev, min(x.score) AS min, max(x.score) AS max,
           (percentile_disc(0.5) WITHIN GROUP (ORDER BY x.score)
            + percentile_disc(0.5) WITHIN GROUP (ORDER BY x.score DESC)) / 2 AS median
      FROM {submissions} x
     WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.score IS NOT NULL) g ON true
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('from', round(a.max_score * (b - 1) / 10, 2),
                                        'to', round(a.max_score * b / 10, 2),
                                        'count', coalesce(c.n, 0)) ORDER BY b) AS buckets
      FROM generate_series(1, 10) b
      LEFT JOIN (SELECT least(greatest(width_bucket(x.score, 0, a.max_score, 10), 1), 10) AS bucket,
                        count(*) AS n
                   FROM {submissions} x
                  WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.score IS NOT NULL
                    AND a.max_score > 0
                  GROUP BY 1) c ON c.bucket = b
     WHERE a.max_score > 0) d ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {enrollments} y WHERE y.course_id = a.course_id) e ON true
$q$ $tmpl$;

-- analytics_student($1 = user id): submission_count (submitted),
-- graded_count, late_count, average_score, average_percentage (score * 100 /
-- max_score), grades_received (rows in grades), course_count and courses
-- (enrolled course ids), progress_average, materials_completed (progress
-- 100) and time_spent (seconds) over the user's material progress.
CREATE FUNCTION lms_template_analytics_student()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN u.id IS NULL THEN {not_found:user:$1}
ELSE jsonb_build_object(
    'student_id', p.id, 'username', u.username,
    'submission_count', s.n, 'graded_count', s.graded, 'late_count', s.late,
    'average_score', round(s.avg_score, 2), 'average_percentage', round(s.avg_pct, 2),
    'grades_received', gr.n,
    'course_count', e.n, 'courses', e.ids,
    'progress_average', round(mp.avg, 2), 'materials_completed', mp.completed,
    'time_spent', mp.time_spent)
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {users} u ON u.id = p.id
LEFT JOIN LATERAL (
    SELECT count(*) AS n, count(x.score) AS graded,
           count(*) FILTER (WHERE x.submitted_at > a.due_date) AS late,
           avg(x.score) AS avg_score,
           avg(x.score * 100 / a.max_score) FILTER (WHERE a.max_score > 0) AS avg_pct
      FROM {submissions} x JOIN {assignments} a ON a.id = x.assignment_id
     WHERE x.student_id = p.id AND x.status <> 'draft') s ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {grades} y WHERE y.student_id = p.id) gr ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n, coalesce(jsonb_agg(y.course_id ORDER BY y.course_id), '[]') AS ids
      FROM {enrollments} y WHERE y.student_id = p.id) e ON true
LEFT JOIN LATERAL (
    SELECT avg(y.progress_percentage) AS avg,
           count(*) FILTER (WHERE y.progress_percentage >= 100) AS completed,
           coalesce(sum(y.time_spent), 0) AS time_spent
      FROM {material_progress} y WHERE y.user_id = p.id) mp ON true
$q$ $tmpl$;

-- analytics_assignment($1 = assignment id): engagement over time, distinct
-- from assignment_stats: the assignment's course_id, author_id, title,
-- due_date; submissions_per_day ([{"date","count"}] by UTC day of
-- submitted_at), first_submission, last_submission; top_scores (the 5 best,
-- [{"student_id","score"}], ties by student id); grade_events (rows in
-- grades) and graders (distinct graded_by).
CREATE FUNCTION lms_template_analytics_assignment()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN a.id IS NULL THEN {not_found:assignment:$1}
ELSE jsonb_build_object(
    'assignment_id', p.id, 'course_id', a.course_id, 'author_id', a.author_id, 'title', a.title,
    'due_date', to_jsonb(a.due_date AT TIME ZONE 'UTC'),
    'submissions_per_day', d.days,
    'first_submission', to_jsonb(d.first AT TIME ZONE 'UTC'),
    'last_submission', to_jsonb(d.last AT TIME ZONE 'UTC'),
    'top_scores', t.top,
    'grade_events', gr.n, 'graders', gr.graders)
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {assignments} a ON a.id = p.id
LEFT JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object('date', z.day, 'count', z.n) ORDER BY z.day), '[]') AS days,
           min(z.first) AS first, max(z.last) AS last
      FROM (SELECT (x.submitted_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
                   min(x.submitted_at) AS first, max(x.submitted_at) AS last
              FROM {submissions} x
             WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.submitted_at IS NOT NULL
             GROUP BY 1) z) d ON true
LEFT JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object('student_id', z.student_id, 'score', z.score)
                              ORDER BY z.score DESC, z.student_id), '[]') AS top
      FROM (SELECT x.student_id, x.score FROM {submissions} x
             WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.score IS NOT NULL
             ORDER BY x.score DESC, x.student_id LIMIT 5) z) t ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n, count(DISTINCT y.graded_by) AS graders
      FROM {grades} y WHERE y.assignment_id = p.id) gr ON true
$q$ $tmpl$;

-- analytics_progress($1 = user id, $2 = course id): every material of the
-- course ([{"material_id","title","progress","time_spent","last_accessed",
-- "views"}], progress and time 0 when not started), material_count,
-- completed (progress 100), average_progress (not started counts as 0; NULL
-- without materials) and time_spent (seconds).
CREATE FUNCTION lms_template_analytics_progress()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN u.id IS NULL THEN {not_found:user:$1}
            WHEN c.id IS NULL THEN {not_found:course:$2}
ELSE jsonb_build_object(
    'user_id', p.uid, 'course_id', p.cid,
    'material_count', agg.n, 'completed', agg.completed,
    'average_progress', round(agg.avg, 2), 'time_spent', agg.time_spent,
    'materials', agg.list)
END
FROM (SELECT $1::bigint AS uid, $2::bigint AS cid) p
LEFT JOIN {users} u ON u.id = p.uid
LEFT JOIN {courses} c ON c.id = p.cid
LEFT JOIN LATERAL (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE mp.progress_percentage >= 100) AS completed,
           avg(coalesce(mp.progress_percentage, 0)) AS avg,
           coalesce(sum(mp.time_spent), 0) AS time_spent,
           coalesce(jsonb_agg(jsonb_build_object(
               'material_id', m.id, 'title', m.title,
               'progress', coalesce(mp.progress_percentage, 0),
               'time_spent', coalesce(mp.time_spent, 0),
               'last_accessed', to_jsonb(mp.last_accessed AT TIME ZONE 'UTC'),
               'views', v.n) ORDER BY m.id), '[]') AS list
      FROM {materials} m
      LEFT JOIN {material_progress} mp ON mp.material_id = m.id AND mp.user_id = p.uid
      LEFT JOIN LATERAL (SELECT count(*) AS n FROM {material_views} w
                          WHERE w.material_id = m.id AND w.user_id = p.uid) v ON true
     WHERE m.course_id = p.cid) agg ON true
$q$ $tmpl$;

-- analytics_engagement($1 = course id): reference_time (the latest viewed_at
-- in material_views, over all courses: the data's "now", so results do not
-- depend on the clock), enrolled_students, active_students_7d (enrolled
-- students who viewed a material of the course in (reference - 7 days,
-- reference]), total_views, and per material [{"material_id","title",
-- "views","unique_viewers"}].
CREATE FUNCTION lms_template_analytics_engagement()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN c.id IS NULL THEN {not_found:course:$1}
ELSE jsonb_build_object(
    'course_id', p.id,
    'reference_time', to_jsonb(r.ref AT TIME ZONE 'UTC'),
    'enrolled_students', e.n,
    'active_students_7d', act.n,
    'total_views', mv.total,
    'materials', mv.list)
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {courses} c ON c.id = p.id
CROSS JOIN (SELECT max(w.viewed_at) AS ref FROM {material_views} w) r
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {enrollments} y WHERE y.course_id = p.id) e ON true
LEFT JOIN LATERAL (
    SELECT count(DISTINCT w.user_id) AS n
      FROM {material_views} w JOIN {materials} m ON m.id = w.material_id
     WHERE m.course_id = p.id AND w.viewed_at > r.ref - interval '7 days'
       AND EXISTS (SELECT FROM {enrollments} y WHERE y.course_id = p.id AND y.student_id = w.user_id)) act ON true
LEFT JOIN LATERAL (
    SELECT coalesce(sum(z.views), 0) AS total,
           coalesce(jsonb_agg(jsonb_build_object('material_id', z.id, 'title', z.title,
                                                 'views', z.views, 'unique_viewers', z.viewers)
                              ORDER BY z.id), '[]') AS list
      FROM (SELECT m.id, m.title, count(w.material_id) AS views, count(DISTINCT w.user_id) AS viewers
              FROM {materials} m LEFT JOIN {material_views} w ON w.material_id = m.id
             WHERE m.course_id = p.id
             GROUP BY m.id, m.title) z) mv ON true
$q$ $tmpl$;

-- The template of a definition by name; 22023 for an unknown name.
CREATE FUNCTION lms_template(name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE name
        WHEN 'assignment_stats' THEN RETURN mlcache.lms_template_assignment_stats();
        WHEN 'analytics_student' THEN RETURN mlcache.lms_template_analytics_student();
        WHEN 'analytics_assignment' THEN RETURN mlcache.lms_template_analytics_assignment();
        WHEN 'analytics_progress' THEN RETURN mlcache.lms_template_analytics_progress();
        WHEN 'analytics_engagement' THEN RETURN mlcache.lms_template_analytics_engagement();
        ELSE RAISE EXCEPTION 'unknown lms query "%"', name USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Queries are assignment_stats, analytics_student, analytics_assignment, analytics_progress, analytics_engagement.';
    END CASE;
END
$$;

-- Render a template for a resolved mapping m.  for_view: the text used
-- inside a materialized view, where $n becomes the column mv_src.p<n> of the
-- row's entity and a missing entity cannot happen (NULL instead of raising).
-- One pass over the template: every placeholder is replaced once, and what
-- replaced it (names from the mapping, which may contain "{" or "$") is
-- never scanned again.
CREATE FUNCTION lms_render(tmpl text, m jsonb, for_view boolean DEFAULT false)
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

-- The query text of one analytics definition, with positional parameters
-- $1..$n, for the tables of schema_name (mapped as in lms_setup).  Its
-- single row's single jsonb column is the value.
CREATE FUNCTION lms_query(name text, schema_name name DEFAULT 'lms',
                          tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT mlcache.lms_render(mlcache.lms_template(name), mlcache.lms_resolve(schema_name, tables, columns))
$$;

-- ---------------------------------------------------------------------------
-- Live (uncached) runs of the queries: the reference implementations.
-- ---------------------------------------------------------------------------

CREATE FUNCTION lms_assignment_stats_live(assignment_id bigint, schema_name name DEFAULT 'lms',
                                          tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('assignment_stats', schema_name, tables, columns) INTO v USING assignment_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_student_live(user_id bigint, schema_name name DEFAULT 'lms',
                                           tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_student', schema_name, tables, columns) INTO v USING user_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_assignment_live(assignment_id bigint, schema_name name DEFAULT 'lms',
                                              tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_assignment', schema_name, tables, columns) INTO v USING assignment_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_progress_live(user_id bigint, course_id bigint, schema_name name DEFAULT 'lms',
                                            tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_progress', schema_name, tables, columns) INTO v USING user_id, course_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_engagement_live(course_id bigint, schema_name name DEFAULT 'lms',
                                              tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_engagement', schema_name, tables, columns) INTO v USING course_id;
    RETURN v;
END
$$;

-- ---------------------------------------------------------------------------
-- Definitions, materialized views (L3) and watches.
-- ---------------------------------------------------------------------------

-- The cached definitions: key template, TTLs (seconds) and, for those with
-- an L3 materialized view, its name (in the LMS schema), the logical table
-- whose rows are its entities and its parameter column.
CREATE FUNCTION lms_definitions(OUT name text, OUT key text, OUT l1_ttl integer, OUT l2_ttl integer,
                                OUT view_name text, OUT entity text, OUT param text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('assignment_stats', 'assignment_stats:{1}', 300, 300,
            'mlcache_assignment_stats', 'assignments', 'assignment_id'),
           ('analytics_student', 'analytics:user:{1}:student', 60, 3600,
            'mlcache_analytics_student', 'users', 'student_id'),
           ('analytics_assignment', 'analytics:assignment:{1}', 60, 3600, NULL, NULL, NULL),
           ('analytics_progress', 'analytics:user:{1}:progress:{2}', 60, 3600, NULL, NULL, NULL),
           ('analytics_engagement', 'analytics:engagement:{1}', 60, 3600,
            'mlcache_analytics_engagement', 'courses', 'course_id')
$$;

-- The watches, with logical column names in the {column} placeholders and
-- the definitions whose materialized views depend on the table.  Every
-- table a query reads is watched, so no cached value outlives a commit that
-- changes its result:
--   users              a user's keys (username, existence);
--   courses            the course's engagement; every user's keys (progress
--                      checks that the course exists; course edits are rare);
--   enrollments        every assignment's stats (submission_rate: the key
--                      names the assignment, not the course), the student's
--                      analytics, the course's engagement;
--   assignments        its stats and analytics; every user's keys (a student's
--                      late count and percentages use due_date and max_score);
--   submissions        the assignment's stats and analytics, the student's
--                      analytics;
--   grades             the assignment's analytics (grade_events, graders),
--                      the student's analytics (grades_received), and, as
--                      the app does on a grade change, the assignment's
--                      stats (which read submissions.score, not grades);
--   materials          the course's engagement; every user's keys (progress
--                      lists the course's materials);
--   material_progress  all of that user's keys;
--   material_views     that user's progress keys; every course's engagement
--                      (the row names a material, not a course, and the
--                      reference time is global);
--   reports            no query reads reports: a report about <kind> <id>
--                      invalidates analytics:<kind>:<id> and everything under
--                      analytics:<kind>:<id>: (kind user: all of the user's
--                      keys; assignment: its analytics; engagement: the
--                      course's engagement), so a generated report always
--                      starts from a fresh computation.
CREATE FUNCTION lms_watches(OUT tbl text, OUT keys text[], OUT views text[])
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('users', ARRAY['analytics:user:{id}:*'], ARRAY['analytics_student']),
           ('courses', ARRAY['analytics:engagement:{id}', 'analytics:user:*'],
            ARRAY['analytics_engagement']),
           ('enrollments', ARRAY['assignment_stats:*', 'analytics:user:{student_id}:student',
                                 'analytics:engagement:{course_id}'],
            ARRAY['assignment_stats', 'analytics_student', 'analytics_engagement']),
           ('assignments', ARRAY['assignment_stats:{id}', 'analytics:assignment:{id}', 'analytics:user:*'],
            ARRAY['assignment_stats', 'analytics_student']),
           ('submissions', ARRAY['assignment_stats:{assignment_id}', 'analytics:assignment:{assignment_id}',
                                 'analytics:user:{student_id}:student'],
            ARRAY['assignment_stats', 'analytics_student']),
           ('grades', ARRAY['assignment_stats:{assignment_id}', 'analytics:assignment:{assignment_id}',
                            'analytics:user:{student_id}:student'],
            ARRAY['analytics_student']),
           ('materials', ARRAY['analytics:engagement:{course_id}', 'analytics:user:*'],
            ARRAY['analytics_engagement']),
           ('material_progress', ARRAY['analytics:user:{user_id}:*'], ARRAY['analytics_student']),
           ('material_views', ARRAY['analytics:user:{user_id}:progress:*', 'analytics:engagement:*'],
            ARRAY['analytics_engagement']),
           ('reports', ARRAY['analytics:{kind}:{subject_id}', 'analytics:{kind}:{subject_id}:*'],
            ARRAY[]::text[])
$$;

-- Key templates of one watch with the logical placeholders replaced by the
-- actual column names of the mapping m.
CREATE FUNCTION lms_watch_keys(m jsonb, tbl text, keys text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg((SELECT string_agg(CASE WHEN part ~ '^\{[a-z_]+\}$'
                                             THEN '{' || (m -> 'columns' ->> (tbl || '.' || btrim(part, '{}'))) || '}'
                                             ELSE part END, '' ORDER BY i)
                        FROM regexp_matches(k, '\{[a-z_]+\}|[^{]+', 'g') WITH ORDINALITY r(parts, i),
                             LATERAL (SELECT r.parts[1] AS part) x)
                     ORDER BY o)
      FROM unnest(keys) WITH ORDINALITY u(k, o)
$$;

-- (Re)create the materialized views of the definitions that have one, in
-- schema_name: the parameter column (one row per entity, UNIQUE index, so
-- REFRESH ... CONCURRENTLY works) and "value", exactly what the query
-- returns for that parameter.  Returns {definition: view}.  An existing
-- view is dropped and created again, so after lms_setup call lms_setup
-- again rather than this alone (the definitions name the view's oid).
-- Scale 40: about 10 s.
CREATE FUNCTION lms_create_views(schema_name name DEFAULT 'lms', tables jsonb DEFAULT '{}',
                                 columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    d record;
    made jsonb := '{}';
BEGIN
    FOR d IN SELECT * FROM mlcache.lms_definitions() WHERE view_name IS NOT NULL LOOP
        IF to_regclass(format('%I.%I', schema_name, d.view_name)) IS NOT NULL THEN
            EXECUTE format('DROP MATERIALIZED VIEW %I.%I', schema_name, d.view_name);
        END IF;
        EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS SELECT mv_src.p1 AS %I, (%s) AS value '
                       'FROM (SELECT e.id::bigint AS p1 FROM %s e) mv_src',
                       schema_name, d.view_name, d.param,
                       mlcache.lms_render(mlcache.lms_template(d.name), m, true),
                       mlcache.lms_relation(m, d.entity));
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (%I)',
                       d.view_name || '_key', schema_name, d.view_name, d.param);
        made := made || jsonb_build_object(d.name, format('%I.%I', schema_name, d.view_name));
    END LOOP;
    RETURN made;
END
$$;

-- One call: materialized views, definitions (mlcache.define) and watches
-- (mlcache.watch) for the LMS tables of schema_name.  tables maps logical
-- table names to actual ones, columns maps "table.column" to actual column
-- names; what is not mapped keeps its canonical name.  Definitions are
-- global: the last lms_setup wins.  A table's existing watch is replaced.
-- Definitions run as their owner (the caller); let the application's role
-- read them with mlcache.grant_fetch(name, role).
CREATE FUNCTION lms_setup(schema_name name DEFAULT 'lms', tables jsonb DEFAULT '{}',
                          columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    views jsonb := mlcache.lms_create_views(schema_name, tables, columns);
    d record;
    w record;
    defs jsonb := '[]';
    watches jsonb := '[]';
    k text[];
    v regclass[];
BEGIN
    FOR d IN SELECT * FROM mlcache.lms_definitions() LOOP
        -- define(name, query, key, l1_ttl, l2_ttl, l3_view, l3_columns, l3_value)
        PERFORM mlcache.define(d.name, mlcache.lms_render(mlcache.lms_template(d.name), m), d.key,
                               d.l1_ttl, d.l2_ttl, (views ->> d.name)::regclass,
                               CASE WHEN d.param IS NOT NULL THEN ARRAY[d.param] END, 'value');
        defs := defs || jsonb_build_object('name', d.name, 'key', d.key, 'l1_ttl', d.l1_ttl,
                                           'l2_ttl', d.l2_ttl, 'l3_view', views ->> d.name);
    END LOOP;
    FOR w IN SELECT * FROM mlcache.lms_watches() LOOP
        k := mlcache.lms_watch_keys(m, w.tbl, w.keys);
        v := ARRAY(SELECT (views ->> x)::regclass FROM unnest(w.views) x);
        PERFORM mlcache.watch(mlcache.lms_table(m, w.tbl), k, v);
        watches := watches || jsonb_build_object('table', mlcache.lms_table(m, w.tbl)::text,
                                                 'keys', to_jsonb(k), 'views', to_jsonb(v::text[]));
    END LOOP;
    RETURN jsonb_build_object('schema', schema_name, 'tables', m -> 'tables', 'columns', m -> 'columns',
                              'definitions', defs, 'watches', watches);
END
$$;

-- ---------------------------------------------------------------------------
-- The canonical schema and the data generator.
-- ---------------------------------------------------------------------------

-- Create the canonical LMS tables (as a Django app's models would) in
-- schema_name, created if missing.  Every foreign key is indexed; a table
-- that already exists is an error (42P07).
CREATE FUNCTION lms_create_schema(schema_name name DEFAULT 'lms')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'schema name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regnamespace(quote_ident(schema_name)) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', schema_name);
    END IF;
    EXECUTE format($ddl$
        CREATE TABLE %1$I.users (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            username    text NOT NULL UNIQUE,
            is_teacher  boolean NOT NULL DEFAULT false,
            is_staff    boolean NOT NULL DEFAULT false,
            date_joined timestamptz NOT NULL DEFAULT now());
        CREATE TABLE %1$I.courses (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            title       text NOT NULL,
            teacher_id  bigint REFERENCES %1$I.users ON DELETE SET NULL,
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.courses (teacher_id);
        CREATE TABLE %1$I.enrollments (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            course_id   bigint NOT NULL REFERENCES %1$I.courses ON DELETE CASCADE,
            student_id  bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            enrolled_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (course_id, student_id));
        CREATE INDEX ON %1$I.enrollments (student_id);
        CREATE TABLE %1$I.assignments (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            course_id   bigint NOT NULL REFERENCES %1$I.courses ON DELETE CASCADE,
            author_id   bigint REFERENCES %1$I.users ON DELETE SET NULL,
            title       text NOT NULL,
            due_date    timestamptz,
            max_score   numeric NOT NULL DEFAULT 100 CHECK (max_score > 0),
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.assignments (course_id);
        CREATE INDEX ON %1$I.assignments (author_id);
        CREATE TABLE %1$I.submissions (
            id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            assignment_id bigint NOT NULL REFERENCES %1$I.assignments ON DELETE CASCADE,
            student_id    bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            status        text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'submitted', 'graded', 'returned')),
            score         numeric CHECK (score >= 0),
            feedback      text NOT NULL DEFAULT '',
            submitted_at  timestamptz,
            graded_at     timestamptz,
            UNIQUE (assignment_id, student_id));
        CREATE INDEX ON %1$I.submissions (student_id);
        CREATE TABLE %1$I.grades (
            id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            submission_id bigint NOT NULL REFERENCES %1$I.submissions ON DELETE CASCADE,
            assignment_id bigint NOT NULL REFERENCES %1$I.assignments ON DELETE CASCADE,
            student_id    bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            score         numeric NOT NULL CHECK (score >= 0),
            graded_by     bigint REFERENCES %1$I.users ON DELETE SET NULL,
            created_at    timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.grades (submission_id);
        CREATE INDEX ON %1$I.grades (assignment_id);
        CREATE INDEX ON %1$I.grades (student_id);
        CREATE INDEX ON %1$I.grades (graded_by);
        CREATE TABLE %1$I.materials (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            course_id   bigint NOT NULL REFERENCES %1$I.courses ON DELETE CASCADE,
            title       text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.materials (course_id);
        CREATE TABLE %1$I.material_progress (
            id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            material_id         bigint NOT NULL REFERENCES %1$I.materials ON DELETE CASCADE,
            user_id             bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            progress_percentage numeric NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
            time_spent          integer NOT NULL DEFAULT 0 CHECK (time_spent >= 0),  -- seconds
            last_accessed       timestamptz,
            UNIQUE (user_id, material_id));
        CREATE INDEX ON %1$I.material_progress (material_id);
        CREATE TABLE %1$I.material_views (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            material_id bigint NOT NULL REFERENCES %1$I.materials ON DELETE CASCADE,
            user_id     bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            viewed_at   timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.material_views (material_id);
        CREATE INDEX ON %1$I.material_views (user_id, material_id);
        CREATE INDEX ON %1$I.material_views (viewed_at);
        CREATE TABLE %1$I.reports (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            kind        text NOT NULL CHECK (kind IN ('assignment', 'user', 'engagement')),
            subject_id  bigint NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.reports (kind, subject_id);
    $ddl$, schema_name);
END
$$;

-- Generator, part 1: users, courses, assignments and materials, without
-- randomness.  The data are scale "campuses", each of 10 teachers (ids first),
-- students_per_campus students, 20 courses (2 per teacher), 5 assignments and
-- 10 materials per course.  Returns the number of teachers.
CREATE FUNCTION lms_gen_entities(s name, scale integer, students_per_campus integer, base timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nt integer := 10 * scale;
    t text;
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.users (id, username, is_teacher, is_staff, date_joined)
        SELECT g, CASE WHEN g <= $1 THEN 'teacher' ELSE 'student' END || g, g <= $1, g <= $1 AND g %% 10 = 1,
               $3 - make_interval(days => 30 + g %% 90)
          FROM generate_series(1, $1 + $2) g;
        INSERT INTO %1$I.courses (id, title, teacher_id, created_at)
        SELECT c, 'Course ' || c, (c - 1) / 20 * 10 + (c - 1) %% 20 / 2 + 1, $3 - interval '14 days'
          FROM generate_series(1, $1 * 2) c;
        INSERT INTO %1$I.assignments (id, course_id, author_id, title, due_date, max_score, created_at)
        SELECT (c.id - 1) * 5 + j, c.id, c.teacher_id, format('Course %%s assignment %%s', c.id, j),
               t.created + interval '7 days', (ARRAY[100, 50, 100, 20, 10])[j], t.created
          FROM %1$I.courses c, generate_series(1, 5) j,
               LATERAL (SELECT $3 + (j - 1) * interval '14 days' + c.id %% 7 * interval '1 hour' AS created) t;
        INSERT INTO %1$I.materials (id, course_id, title, created_at)
        SELECT (c.id - 1) * 10 + k, c.id, format('Course %%s material %%s', c.id, k),
               $3 + (k - 1) * interval '7 days'
          FROM %1$I.courses c, generate_series(1, 10) k;
    $q$, s) USING nt, students_per_campus * scale, base;
    -- Explicit ids: move the identity sequences past them.
    FOREACH t IN ARRAY ARRAY['users', 'courses', 'assignments', 'materials'] LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), (SELECT max(id) FROM %I.%I))',
                       format('%I.%I', s, t), s, t);
    END LOOP;
    RETURN nt;
END
$$;

-- Generator, part 2: each student enrols in each course of their campus
-- with probability 0.6 (about 300 students per course with 500 students per
-- campus).  Random numbers are drawn in a fixed row order (the ORDER BY
-- under OFFSET 0), so a seed gives the same data whatever the plan.
CREATE FUNCTION lms_gen_enrollments(s name, nt integer, students_per_campus integer, base timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.enrollments (course_id, student_id, enrolled_at)
        SELECT course_id, student_id, $2 - interval '7 days'
          FROM (SELECT x.*, random() AS r
                  FROM (SELECT c AS course_id, u.id AS student_id
                          FROM %1$I.users u,
                               generate_series((u.id - $1 - 1) / $3 * 20 + 1, (u.id - $1 - 1) / $3 * 20 + 20) c
                         WHERE NOT u.is_teacher
                         ORDER BY u.id, c) x
                OFFSET 0) y
         WHERE r < 0.6
    $q$, s) USING nt, base, students_per_campus;
END
$$;

-- Generator, part 3: submissions.  Per (assignment, enrolled student): 15%
-- missing; otherwise 4% draft (nothing submitted), 12% submitted and not
-- graded, 74% graded, 10% returned (graded, to revise).  submitted_at is
-- uniform over the 8 days after the assignment opened, so 1 in 8 is late
-- (due after 7 days).  The 5th assignment of every 10th course is not
-- released yet: no submissions.
CREATE FUNCTION lms_gen_submissions(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.submissions (assignment_id, student_id, status, score, feedback, submitted_at, graded_at)
        SELECT assignment_id, student_id, status,
               CASE WHEN status IN ('graded', 'returned')
                    THEN round(max_score * (0.35 + 0.65 * sqrt(r4))::numeric, 1) END,
               CASE status WHEN 'graded' THEN 'well done' WHEN 'returned' THEN 'please revise' ELSE '' END,
               CASE WHEN status <> 'draft' THEN submitted END,
               CASE WHEN status IN ('graded', 'returned')
                    THEN date_trunc('second', submitted + r5 * interval '4 days') END
          FROM (SELECT y.*, date_trunc('second', created_at + r3 * interval '8 days') AS submitted,
                       CASE WHEN r2 < 0.04 THEN 'draft' WHEN r2 < 0.16 THEN 'submitted'
                            WHEN r2 < 0.90 THEN 'graded' ELSE 'returned' END AS status
                  FROM (SELECT x.*, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                               random() AS r5
                          FROM (SELECT a.id AS assignment_id, e.student_id, a.max_score, a.created_at
                                  FROM %1$I.assignments a JOIN %1$I.enrollments e ON e.course_id = a.course_id
                                 WHERE NOT (a.course_id %% 10 = 0 AND a.id %% 5 = 0)
                                 ORDER BY a.id, e.student_id) x
                        OFFSET 0) y
                 WHERE r1 >= 0.15) z
    $q$, s);
END
$$;

-- Generator, part 4: one grade per graded submission, by the assignment's
-- author at graded_at, and for 5% of them an earlier grade (a regrade's
-- history) a day before, 20% lower.
CREATE FUNCTION lms_gen_grades(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.grades (submission_id, assignment_id, student_id, score, graded_by, created_at)
        SELECT y.id, y.assignment_id, y.student_id, v.score, y.author_id, v.at
          FROM (SELECT x.*, random() AS r
                  FROM (SELECT s.id, s.assignment_id, s.student_id, s.score, s.graded_at, a.author_id
                          FROM %1$I.submissions s JOIN %1$I.assignments a ON a.id = s.assignment_id
                         WHERE s.score IS NOT NULL
                         ORDER BY s.id) x
                OFFSET 0) y,
               LATERAL (VALUES (1, round(y.score * 0.8, 1), y.graded_at - interval '1 day'),
                               (2, y.score, y.graded_at)) v(k, score, at)
         WHERE v.k = 2 OR y.r < 0.05
         ORDER BY y.id, v.k
    $q$, s);
END
$$;

-- Generator, part 5: material progress for 40% of (enrolled student,
-- course material) pairs: 30% completed (100), else uniform; up to 2 hours
-- spent; last accessed in the 60 days after the term began.
CREATE FUNCTION lms_gen_progress(s name, base timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.material_progress (material_id, user_id, progress_percentage, time_spent, last_accessed)
        SELECT material_id, user_id,
               CASE WHEN r2 < 0.3 THEN 100 ELSE round((r3 * 100)::numeric, 1) END,
               (60 + r4 * 7140)::integer, date_trunc('second', $1 + r5 * interval '60 days')
          FROM (SELECT x.*, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
                  FROM (SELECT m.id AS material_id, e.student_id AS user_id
                          FROM %1$I.enrollments e JOIN %1$I.materials m ON m.course_id = e.course_id
                         ORDER BY m.id, e.student_id) x
                OFFSET 0) y
         WHERE r1 < 0.4
    $q$, s) USING base;
END
$$;

-- Generator, part 6: 0 to 3 views per progress row, at random times in the
-- 60 days after the term began.
CREATE FUNCTION lms_gen_views(s name, base timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.material_views (material_id, user_id, viewed_at)
        SELECT material_id, user_id, date_trunc('second', $1 + r * interval '60 days')
          FROM (SELECT z.*, random() AS r
                  FROM (SELECT y.material_id, y.user_id
                          FROM (SELECT p.*, random() AS n
                                  FROM (SELECT id, material_id, user_id FROM %1$I.material_progress ORDER BY id) p
                                OFFSET 0) y,
                               generate_series(1, floor(y.n * 4)::integer) g
                         ORDER BY y.id, g) z
                OFFSET 0) w
    $q$, s) USING base;
END
$$;

-- Fill the canonical tables of schema_name (emptied first, identities
-- restarted) with deterministic data: the same scale, seed and
-- students_per_campus always give the same rows.  Sizes per unit of scale,
-- with the default 500 students per campus: 10 teachers, 500 students, 20
-- courses, ~6k enrollments, 100 assignments, ~25k submissions (~255 per
-- released assignment), ~20k grades, 200 materials, ~24k progress rows,
-- ~36k views, 20 reports.  Everything but the teachers, courses, assignments,
-- materials and reports grows in proportion to students_per_campus: 5000
-- gives ~2,550 submissions per released assignment.  Returns the row counts.
CREATE FUNCTION lms_generate(scale integer DEFAULT 1, schema_name name DEFAULT 'lms', seed float8 DEFAULT 0.42,
                             students_per_campus integer DEFAULT 500)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base timestamptz := '2024-09-02 08:00:00+00';
    tbls text[] := ARRAY['users', 'courses', 'enrollments', 'assignments', 'submissions', 'grades',
                         'materials', 'material_progress', 'material_views', 'reports'];
    nt integer;
    t text;
    n bigint;
    counts jsonb := '{}';
BEGIN
    IF scale IS NULL OR scale < 1 THEN
        RAISE EXCEPTION 'scale must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seed IS NULL OR seed NOT BETWEEN -1 AND 1 THEN
        RAISE EXCEPTION 'seed must be between -1 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF students_per_campus IS NULL OR students_per_campus < 1 THEN
        RAISE EXCEPTION 'students_per_campus must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scale::bigint * (10 + students_per_campus::bigint) > 2147483647 THEN
        RAISE EXCEPTION 'scale * (10 + students_per_campus) users do not fit in an integer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE 'TRUNCATE ' || (SELECT string_agg(format('%I.%I', schema_name, x), ', ') FROM unnest(tbls) x)
            || ' RESTART IDENTITY CASCADE';
    PERFORM setseed(seed);
    nt := mlcache.lms_gen_entities(schema_name, scale, students_per_campus, base);
    PERFORM mlcache.lms_gen_enrollments(schema_name, nt, students_per_campus, base);
    PERFORM mlcache.lms_gen_submissions(schema_name);
    PERFORM mlcache.lms_gen_grades(schema_name);
    PERFORM mlcache.lms_gen_progress(schema_name, base);
    PERFORM mlcache.lms_gen_views(schema_name, base);
    -- Reports cycle through the kinds, about an assignment, a student, a course.
    EXECUTE format($q$
        INSERT INTO %1$I.reports (kind, subject_id, created_at)
        SELECT (ARRAY['assignment', 'user', 'engagement'])[g %% 3 + 1],
               CASE g %% 3 WHEN 0 THEN g * 7 %% ($1 * 10) + 1 WHEN 1 THEN $1 + g * 13 %% $3 + 1
                           ELSE g * 3 %% ($1 * 2) + 1 END,
               $2 + g * interval '1 day'
          FROM generate_series(1, $1 * 2) g
    $q$, schema_name) USING nt, base, scale * students_per_campus;
    FOREACH t IN ARRAY tbls LOOP
        EXECUTE format('ANALYZE %I.%I', schema_name, t);
        EXECUTE format('SELECT count(*) FROM %I.%I', schema_name, t) INTO n;
        counts := counts || jsonb_build_object(t, n);
    END LOOP;
    RETURN jsonb_build_object('scale', scale, 'seed', seed) || counts;
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC.  Readers may run the live queries (and
-- what they call); admins may create schemas, generate data and set up.
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
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

-- The hit rate of an assignment's statistics over the last 24 hours, shown
-- only to the assignment's author: anyone else gets 42501, a missing
-- assignment P0002.  The mapping arguments are those given to lms_setup.
-- It runs with the caller's privileges, who must be able to read the
-- assignments table.
CREATE FUNCTION lms_assignment_cache_hit_rate(assignment_id bigint, requesting_user_id bigint,
                                              schema_name name DEFAULT 'lms',
                                              tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}',
    OUT hits bigint, OUT misses bigint, OUT total bigint, OUT hit_rate_percentage float8,
    OUT cache_key text, OUT ttl_seconds integer)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    author bigint;
    n bigint;
BEGIN
    IF assignment_id IS NULL OR requesting_user_id IS NULL THEN
        RAISE EXCEPTION 'assignment and user must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SELECT %I::bigint FROM %s WHERE %I = $1',
                   m -> 'columns' ->> 'assignments.author_id', mlcache.lms_table(m, 'assignments'),
                   m -> 'columns' ->> 'assignments.id')
       INTO author USING assignment_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'assignment % does not exist', assignment_id USING ERRCODE = 'no_data_found';
    END IF;
    IF author IS DISTINCT FROM requesting_user_id THEN
        RAISE EXCEPTION 'only the author of assignment % may see its cache hit rate', assignment_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT k.hits, k.misses, k.total, k.hit_rate_percentage, k.cache_key, k.ttl_seconds
      INTO hits, misses, total, hit_rate_percentage, cache_key, ttl_seconds
      FROM mlcache.key_stats('assignment_stats:' || assignment_id) k;
END
$$;

COMMENT ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) IS
'Hit rate of assignment_stats:{id} over 24 hours, for the assignment''s author only';

REVOKE ALL ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) FROM PUBLIC;
-- It shows key_stats(), which is for admins only.
GRANT EXECUTE ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) TO mlcache_admin;

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
    settings     text[]
);
CREATE INDEX ON warm_queue (state, next_attempt) WHERE state = 'pending';
COMMENT ON TABLE warm_queue IS
'Warming tasks for the background worker; retried with exponential backoff';
COMMENT ON COLUMN warm_queue.settings IS
'Result-shaping settings (TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output, lc_monetary, lc_numeric) of the session that queued the task, applied while it runs';
SELECT pg_catalog.pg_extension_config_dump('mlcache.warm_queue', '');
SELECT pg_catalog.pg_extension_config_dump('mlcache.warm_queue_id_seq', '');

-- A task's parameters come from its definition's warm query: its owner's
-- data.  The view shows a task to those who have the privileges of the
-- definition's owner (superusers: all, also of removed definitions); a
-- security barrier keeps a caller's leaky functions from seeing the rest.
CREATE VIEW warm_tasks WITH (security_barrier) AS
    SELECT q.id, q.definition, q.params, q.state, q.attempts, q.next_attempt, q.last_error,
           q.created_at, q.started_at, q.finished_at
      FROM mlcache.warm_queue q
     WHERE coalesce((SELECT pg_catalog.pg_has_role(d.owner, 'USAGE')
                       FROM mlcache.definitions d WHERE d.name = q.definition),
                    (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user));

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

-- Queue one parameter set for the worker: the definition must exist and the
-- caller must be allowed to fetch it (src/catalog.c).
CREATE FUNCTION _warm_enqueue(name text, params text[])
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_warm_enqueue'
LANGUAGE C;

-- warm() writes nothing before it fetches (the work list is a jsonb value,
-- not a table): a transaction that has written stores nothing it computes.
CREATE FUNCTION warm(query_types text[] DEFAULT NULL, batch_size integer DEFAULT 10)
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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
REVOKE ALL ON mlcache.warm_queue, mlcache.warm_tasks FROM PUBLIC;
GRANT SELECT ON mlcache.warm_tasks TO mlcache_reader;
GRANT EXECUTE ON FUNCTION warm(text[], integer), warm(text, text[]), set_warm_query(text, text),
                          _warm_one(text, text[]), _warm_tasks(text[]), _warm_enqueue(text, text[]),
                          _warm_wake(), _compute_estimate(text)
      TO mlcache_admin;

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

-- Warm a teacher's dashboard: assignment_stats of the ten most recent
-- assignments the teacher wrote.  The mapping arguments are those given to
-- lms_setup.  Returns warm()'s summary.
CREATE FUNCTION lms_warm_teacher(teacher_id bigint, schema_name name DEFAULT 'lms',
                                 tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    ids bigint[];
    id bigint;
    warmed integer := 0;
    failed integer := 0;
BEGIN
    IF teacher_id IS NULL THEN
        RAISE EXCEPTION 'teacher must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SELECT array_agg(id) FROM (SELECT %I::bigint AS id FROM %s WHERE %I = $1'
                   ' ORDER BY %I DESC, %I DESC LIMIT 10) a',
                   m -> 'columns' ->> 'assignments.id', mlcache.lms_table(m, 'assignments'),
                   m -> 'columns' ->> 'assignments.author_id', m -> 'columns' ->> 'assignments.created_at',
                   m -> 'columns' ->> 'assignments.id')
       INTO ids USING teacher_id;
    FOREACH id IN ARRAY coalesce(ids, '{}') LOOP
        IF mlcache._warm_one('assignment_stats', ARRAY[id::text]) THEN
            warmed := warmed + 1;
        ELSE
            failed := failed + 1;
        END IF;
    END LOOP;
    RAISE LOG 'mlcache warmed % of % assignments of teacher %', warmed, cardinality(coalesce(ids, '{}')), teacher_id;
    RETURN jsonb_build_object('total', cardinality(coalesce(ids, '{}')), 'warmed', warmed,
                              'failed', failed, 'async_scheduled', 0);
END
$$;

COMMENT ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb) IS
'Warm assignment_stats of a teacher''s ten most recent assignments';

REVOKE ALL ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb) TO mlcache_admin;

-- Nothing for PUBLIC, whatever was created above.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
