-- Operations from psql: mlcache.stats and mlcache.health().
SELECT mlcache.reset_stats();
SELECT l1_hits, l1_misses, l2_hits, l2_misses, computes, hit_rate, stats_reset > now() - interval '1 minute' AS reset_now
  FROM mlcache.stats;

SELECT mlcache.get('ops:a', 'SELECT 1'), mlcache.get('ops:a', 'SELECT 1'), mlcache.get('ops:a', 'SELECT 1');
SELECT l1_hits, l1_misses, l1_hit_rate, l1_entries >= 1 AS l1_has_entries, l1_bytes > 0 AS l1_has_bytes,
       l2_misses, computes, l2_keys >= 1 AS redis_has_keys, l2_keys_exact, l2_used_memory > 0 AS redis_memory,
       breaker_state, redis_errors
  FROM mlcache.stats;
\c
SELECT mlcache.get('ops:a', 'SELECT 1');
SELECT l2_hits, l2_hit_rate FROM mlcache.stats;
-- The overall hit rate: 3 of the 4 reads were answered by L1 or L2.
SELECT l1_hits + l2_hits AS hits, computes, hit_rate FROM mlcache.stats;

-- Invalidations: sent at commit, queued for the worker (the key, and the
-- mark that makes the database's L3 views dirty).
SELECT invalidations AS i0 FROM mlcache.stats \gset
SELECT mlcache.invalidate('ops:a');
SELECT invalidations - :i0 AS invalidations, invalidations_pending >= 0 AS pending_known FROM mlcache.stats;

-- L1 sizes are summed over backends; a backend that exits leaves nothing.
SELECT l1_entries AS e0 FROM mlcache.stats \gset
SELECT count(mlcache.get('ops:n' || i, 'SELECT 1')) FROM generate_series(1, 5) i;
SELECT l1_entries - :e0 AS new_entries FROM mlcache.stats;
\c
-- (psql opens the new connection before closing the old one: wait for it.)
SELECT set_config('ops.limit', (:e0 + 5)::text, false) IS NOT NULL AS noted;
DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '10 s';
BEGIN
    WHILE (SELECT l1_entries FROM mlcache.stats) >= current_setting('ops.limit')::bigint LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'the exited backend still counts in l1_entries';
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END
$$;

-- health(): every part reports; nothing raises.
SELECT h->>'status' AS status, h->'l1'->>'status' AS l1, h->'l2'->>'status' AS l2,
       h->'l2'->>'breaker' AS breaker, (h->'l2'->>'rtt_ms')::float8 >= 0 AS rtt_measured,
       h->'worker'->>'alive' AS worker_alive, h->'l3'->>'status' AS l3,
       jsonb_typeof(h->'l3'->'views') AS l3_views, h ? 'invalidations_pending' AS has_pending
  FROM mlcache.health() h;

-- reset_stats is for admins only.
CREATE ROLE ops_reader IN ROLE mlcache_reader;
SET ROLE ops_reader;
SELECT l1_hits >= 0 AS reader_sees_stats FROM mlcache.stats;
SELECT expect_error($$SELECT mlcache.reset_stats()$$);
SELECT expect_error($$SELECT mlcache.health()$$);
RESET ROLE;
DROP ROLE ops_reader;
