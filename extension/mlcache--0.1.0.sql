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
