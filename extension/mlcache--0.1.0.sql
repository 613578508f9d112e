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
