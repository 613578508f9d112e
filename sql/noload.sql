-- Run on a server WITHOUT shared_preload_libraries = mlcache: every function
-- fails with SQLSTATE 55000 and a hint that says how to fix it.
CREATE EXTENSION mlcache;
CREATE FUNCTION try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || ' / HINT: ' || hint;
END
$$;
SELECT try($$SELECT mlcache.get('k', 'SELECT 1')$$);
SELECT try($$SELECT mlcache.set('k', '1')$$);
SELECT try($$SELECT mlcache.last_level()$$);
SELECT try($$SELECT mlcache.invalidate('k')$$);
SELECT try($$SELECT mlcache.invalidate_pattern('k:*')$$);
SELECT try($$SELECT mlcache.clear()$$);
SELECT try($$SELECT * FROM mlcache.counters()$$);
SELECT try($$SELECT mlcache.stats_reset_time()$$);
SELECT try($$SELECT mlcache.reset_stats()$$);
-- Every function of the extension is listed above.
SELECT count(*) AS functions FROM pg_proc WHERE pronamespace = 'mlcache'::regnamespace;
DROP EXTENSION mlcache;
