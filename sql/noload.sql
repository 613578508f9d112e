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
SELECT try($$SELECT mlcache._invalidate_templates(ARRAY['x:{id}'])$$);
-- A watch trigger (as restored by pg_dump, say) does nothing without shared
-- memory, since no cache can exist then; writes are never refused.
CREATE TABLE t (id int);
SELECT try($$SELECT mlcache.watch('t', ARRAY['t:{id}'])$$);
SELECT try($$SELECT mlcache.unwatch('t')$$);
SELECT try($$SELECT mlcache._require_loaded()$$);
SELECT try($$SELECT mlcache.define('d', 'SELECT $1::int', 'd:{1}')$$);
SELECT try($$SELECT mlcache.undefine('d')$$);
SELECT try($$SELECT mlcache.fetch('d', 1)$$);
SELECT try($$SELECT mlcache.fetch('d')$$);
SELECT try($$SELECT * FROM mlcache.views$$);
SELECT try($$SELECT mlcache._check_definition('SELECT 1', '{}', 'k')$$);
SELECT try($$SELECT mlcache._definition_changed('d')$$);
SELECT try($$SELECT mlcache._register_view('t')$$);
SELECT try($$SELECT mlcache._watches_changed()$$);
SELECT try($$SELECT * FROM mlcache.stats$$);
SELECT try($$SELECT mlcache.health()$$);
SELECT try($$SELECT * FROM mlcache.key_stats('k')$$);
SELECT try($$SELECT mlcache.tracking_sweep()$$);
SELECT try($$SELECT mlcache._tracking_advance(1)$$);
SELECT try($$SELECT mlcache.warm()$$);
SELECT try($$SELECT mlcache.warm('d', '1')$$);
SELECT try($$SELECT mlcache.warm_sets('d', '[1]')$$);
SELECT try($$SELECT mlcache._warm_enqueue('d', '{1}', NULL, 1)$$);
SELECT try($$SELECT mlcache._warm_wake()$$);
SELECT try($$SELECT mlcache._compute_estimate('d')$$);
SELECT try($$SELECT mlcache.refresh_views()$$);
SELECT try($$SELECT mlcache.clean_orphans()$$);
CREATE TRIGGER w AFTER UPDATE ON t REFERENCING OLD TABLE AS o NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION mlcache.watch_trigger('t:{id}');
CREATE TRIGGER w_trunc AFTER TRUNCATE ON t
    FOR EACH STATEMENT EXECUTE FUNCTION mlcache.watch_trigger('t:{id}');
INSERT INTO t VALUES (1);
UPDATE t SET id = 2;
TRUNCATE t;
-- The internal helpers refuse too.
SELECT try($$SELECT mlcache._check_templates('t', ARRAY['t:{nope}'])$$);
-- The C-language functions of the extension (get and set have one per
-- arity, on the entry points exercised above).
SELECT count(*) AS c_functions FROM pg_proc WHERE pronamespace = 'mlcache'::regnamespace AND prolang = 13;
DROP TABLE t;
DROP EXTENSION mlcache;
