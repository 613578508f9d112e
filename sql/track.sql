-- Per-key hit tracking over 24 hours: key_stats() and its hourly buckets.
SELECT * FROM mlcache.key_stats('tr:never');
-- A backend keeps its counts until the end of a transaction this long after
-- the oldest (0: every transaction), or until it exits: this session's are
-- flushed before the \c below, not as it exits.
SET mlcache.track_flush_interval = 0;

SELECT mlcache.get('tr:a', 'SELECT 1');                    -- miss (compute)
SELECT mlcache.get('tr:a', 'SELECT 1'), mlcache.get('tr:a', 'SELECT 1');  -- two L1 hits
\c
SELECT mlcache.get('tr:a', 'SELECT 1');                    -- L2 hit
SELECT hits, misses, total, hit_rate_percentage, cache_key, ttl_seconds BETWEEN 3500 AND 3600 AS ttl_ok
  FROM mlcache.key_stats('tr:a');

-- Buckets are hourly and kept for 24 hours.
SELECT mlcache._tracking_advance(5);
SELECT mlcache.get('tr:a', 'SELECT 1');
SELECT hits, misses, total FROM mlcache.key_stats('tr:a');
SELECT mlcache._tracking_advance(20);                      -- the first hour is now 25 hours old
SELECT hits, misses, total FROM mlcache.key_stats('tr:a');
SELECT mlcache._tracking_advance(5);                       -- and the second 25 hours old too
SELECT hits, misses, total FROM mlcache.key_stats('tr:a');

-- tracking_sweep() forgets keys not read for 24 hours.
SELECT mlcache.tracking_sweep() >= 1 AS swept;
SELECT hits, misses, total FROM mlcache.key_stats('tr:a');

-- Only the caller's key; no Redis write on an L1 hit (the TTL does not move).
SELECT ttl_seconds AS t0 FROM mlcache.key_stats('tr:a') \gset
SELECT mlcache.get('tr:a', 'SELECT 1');
SELECT ttl_seconds <= :t0 AS ttl_not_refreshed FROM mlcache.key_stats('tr:a');

-- Bad input, and who may call what.
SELECT expect_error($$SELECT * FROM mlcache.key_stats(NULL)$$);
SELECT expect_error($$SELECT * FROM mlcache.key_stats('')$$);
SELECT expect_error($$SELECT mlcache._tracking_advance(-1)$$);
CREATE ROLE tr_reader IN ROLE mlcache_reader;
SET ROLE tr_reader;
-- A key's statistics say who reads what: key_stats() is for admins only.
SELECT expect_error($$SELECT * FROM mlcache.key_stats('tr:a')$$);
SELECT expect_error($$SELECT mlcache._tracking_advance(1)$$);
SELECT expect_error($$SELECT mlcache.tracking_sweep()$$);
RESET ROLE;
CREATE ROLE tr_admin IN ROLE mlcache_admin;
SET ROLE tr_admin;
SELECT total >= 0 AS admin_sees_key_stats FROM mlcache.key_stats('tr:a');
RESET ROLE;
DROP ROLE tr_reader, tr_admin;

-- A full table (mlcache.track_max, 5000 here) makes room by evicting the 5%
-- of keys read least in the last 24 hours (ties in no set order): a
-- well-read key stays, and a stream of once-read keys fills the table up to
-- its cap and no further.
SELECT count(*) FROM (SELECT mlcache.get('tr:hot', 'SELECT 1', 0, 0) FROM generate_series(1, 30)) x;
SELECT count(*) FROM (SELECT mlcache.get('tr:cold:' || g, 'SELECT 1', 0, 0) FROM generate_series(1, 6000) g) x;
SELECT total >= 30 AS hot_kept FROM mlcache.key_stats('tr:hot');
SELECT count(*) FILTER (WHERE (SELECT total FROM mlcache.key_stats('tr:cold:' || g)) > 0)
       BETWEEN 4500 AND 5000 AS cold_tracked_up_to_cap
  FROM generate_series(1, 6000) g;

-- Counts kept for an hour are still flushed when the backend exits.
SET mlcache.track_flush_interval = '1h';
SELECT mlcache.get('tr:exit', 'SELECT 1') FROM generate_series(1, 4);
SELECT pg_backend_pid() AS tr_pid \gset
\c
-- The old backend leaves pg_stat_activity after its exit-time flush.
CREATE FUNCTION pg_temp.tr_gone(p int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..1000 LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = p) THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN false;
END $$;
SELECT pg_temp.tr_gone(:tr_pid);
SELECT hits, misses FROM mlcache.key_stats('tr:exit');

-- l2_ttl: the L2 TTL a value was stored with, next to ttl_seconds (what is
-- left of it in Redis); NULL for a key that is not in Redis.
SELECT mlcache.get('tr:ttl', 'SELECT 1', 30, 600) IS NOT NULL AS stored;
SELECT l2_ttl, ttl_seconds BETWEEN 1 AND 600 AS remaining FROM mlcache.key_stats('tr:ttl');
SELECT l2_ttl IS NULL AS not_in_redis, ttl_seconds IS NULL AS no_ttl FROM mlcache.key_stats('tr:not-there');

