-- Maintenance functions, and their schedule (pg_cron lives in the database
-- "postgres" of the test server; see also test/schedule.sh).
SELECT mlcache.refresh_views() >= 0 AS requested;
SELECT mlcache.snapshot_stats();
SELECT count(*) AS snapshots, bool_and(stats ? 'l1_hits') AS has_stats FROM mlcache.stats_history;
SELECT jsonb_object_keys(mlcache.sweep()) AS swept ORDER BY 1;

-- clean_orphans(): values no read can use go; current ones stay.
SELECT mlcache.get('mt:good', 'SELECT 1');
SELECT mlcache.clean_orphans() >= 0 AS cleaned;
\c
SELECT mlcache.get('mt:good', 'SELECT 1'), mlcache.last_level();

-- Without pg_cron in this database: a clear error and how to fix it.
SELECT expect_error($$SELECT * FROM mlcache.schedule_maintenance()$$);
