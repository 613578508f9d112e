-- mlcache 0.1.0: the core read-through cache and transactional invalidation.
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

-- Reading through the levels.
CREATE FUNCTION get(key text, query text,
                    l1_ttl integer DEFAULT NULL, l2_ttl integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlcache_get'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION get(text, text, integer, integer) IS
'Read key through L1 and Redis; on a miss run query, store and return its result as jsonb';

CREATE FUNCTION set(key text, value jsonb,
                    l1_ttl integer DEFAULT NULL, l2_ttl integer DEFAULT NULL)
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
GRANT EXECUTE ON FUNCTION get(text, text, integer, integer),
                          set(text, jsonb, integer, integer),
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
    -- DDL event triggers do not check a watch that is being rebuilt.
    DELETE FROM mlcache.watches w WHERE w.tbl = watch.tbl;
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

    INSERT INTO mlcache.watches (tbl, keys, views) VALUES (tbl, keys, views);
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
    DELETE FROM mlcache.watches w WHERE w.tbl = unwatch.tbl;
    IF NOT FOUND THEN
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
GRANT EXECUTE ON FUNCTION watch(regclass, text[], regclass[]),
                          unwatch(regclass)
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
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE definitions IS
'Named cached analytics registered with mlcache.define()';
SELECT pg_catalog.pg_extension_config_dump('mlcache.definitions', '');

CREATE FUNCTION _check_definition(query text, param_types oid[], key text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_check_definition'
LANGUAGE C STRICT;

CREATE FUNCTION _definition_changed(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'mlcache_definition_changed'
LANGUAGE C STRICT;

-- The parameter types PostgreSQL infers for a query, through PREPARE.  It
-- runs with the caller's search_path, as define() does: that is the path the
-- definition records and its query is resolved with.
CREATE FUNCTION _param_types(query text)
RETURNS regtype[]
LANGUAGE plpgsql
AS $$
DECLARE
    stmt text := 'mlcache_define_' || pg_catalog.pg_backend_pid();
    types regtype[];
BEGIN
    EXECUTE pg_catalog.format('PREPARE %I AS %s', stmt, query);
    SELECT p.parameter_types INTO types FROM pg_catalog.pg_prepared_statements p WHERE p.name = stmt;
    EXECUTE pg_catalog.format('DEALLOCATE %I', stmt);
    RETURN types;
END
$$;

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

CREATE FUNCTION define(name text, query text, key text,
                       l1_ttl integer DEFAULT NULL, l2_ttl integer DEFAULT NULL,
                       l3_view regclass DEFAULT NULL, l3_columns text[] DEFAULT NULL,
                       l3_value text DEFAULT 'value')
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    types regtype[];
    path text := current_setting('search_path');
BEGIN
    PERFORM mlcache._require_loaded();
    IF name IS NULL OR query IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'definition name, query and key must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name = '' OR length(name) >= 128 OR name ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'invalid definition name "%"', name USING ERRCODE = 'invalid_name',
            DETAIL = 'A name is 1 to 127 characters long, without control characters.';
    END IF;
    IF l1_ttl < 0 OR l2_ttl < 0 THEN
        RAISE EXCEPTION 'TTLs must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    types := mlcache._param_types(query);
    PERFORM mlcache._check_definition(query, types::oid[], key);
    IF l3_view IS NOT NULL THEN
        PERFORM mlcache._check_l3(l3_view, l3_columns, coalesce(l3_value, 'value'), cardinality(types));
    ELSIF l3_columns IS NOT NULL THEN
        RAISE EXCEPTION 'l3_columns given without l3_view' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO mlcache.definitions AS d
           (name, query, key_template, param_types, l1_ttl, l2_ttl, l3_view, l3_columns, l3_value,
            owner, search_path)
    VALUES (define.name, define.query, define.key, types, define.l1_ttl, define.l2_ttl,
            define.l3_view, define.l3_columns,
            CASE WHEN define.l3_view IS NOT NULL THEN coalesce(define.l3_value, 'value') END,
            current_user::regrole, path)
    ON CONFLICT ON CONSTRAINT definitions_pkey DO UPDATE
       SET query = excluded.query, key_template = excluded.key_template,
           param_types = excluded.param_types, l1_ttl = excluded.l1_ttl, l2_ttl = excluded.l2_ttl,
           l3_view = excluded.l3_view, l3_columns = excluded.l3_columns, l3_value = excluded.l3_value,
           owner = excluded.owner, search_path = excluded.search_path, created_at = now();
    IF l3_view IS NOT NULL THEN
        PERFORM mlcache._register_view(l3_view);
    END IF;
    PERFORM mlcache._definition_changed(name);
END
$$;

COMMENT ON FUNCTION define(text, text, text, integer, integer, regclass, text[], text) IS
'Register a parameterised query ($1, $2 ...) under a name, with a key template such as stats:{1}';

CREATE FUNCTION undefine(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM mlcache._require_loaded();
    DELETE FROM mlcache.definitions d WHERE d.name = undefine.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mlcache definition "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM mlcache._definition_changed(name);
END
$$;

-- Only the owner of a definition (or a superuser) changes who may fetch it.
CREATE FUNCTION _set_readers(name text, role regrole, add boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d mlcache.definitions;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO d FROM mlcache.definitions x WHERE x.name = _set_readers.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mlcache definition "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_has_role(session_user, d.owner, 'USAGE')
       AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
        RAISE EXCEPTION 'must be owner of mlcache definition "%"', name USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE mlcache.definitions x
       SET readers = CASE WHEN add THEN array(SELECT DISTINCT r FROM unnest(x.readers || role) r)
                          ELSE array_remove(x.readers, role) END
     WHERE x.name = _set_readers.name;
    PERFORM mlcache._definition_changed(name);
END
$$;

CREATE FUNCTION grant_fetch(name text, role regrole)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT mlcache._set_readers(name, role, true) $$;

CREATE FUNCTION revoke_fetch(name text, role regrole)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT mlcache._set_readers(name, role, false) $$;

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
GRANT EXECUTE ON FUNCTION define(text, text, text, integer, integer, regclass, text[], text),
                          undefine(text), grant_fetch(text, regrole), revoke_fetch(text, regrole),
                          _param_types(text), _check_definition(text, oid[], text),
                          _check_l3(regclass, text[], text, integer), _definition_changed(text),
                          _register_view(regclass), _watches_changed(), _require_loaded()
      TO mlcache_admin;
GRANT INSERT, UPDATE, DELETE ON mlcache.definitions TO mlcache_admin;

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
