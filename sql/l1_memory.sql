-- The L1 memory cap: LRU eviction, and values larger than the cap are not
-- kept in L1 (they still go to Redis).
SET mlcache.l1_max_memory = '64kB';
SELECT counter('l1_evictions') AS ev0 \gset

-- Ten values of about 10 kB each cannot all fit in 64 kB.
SELECT count(mlcache.get('mem:' || i, format('SELECT repeat(%L, 10000) || %s', 'x', i)))
FROM generate_series(1, 10) i;
SELECT counter('l1_evictions') - :ev0 > 0 AS evicted;

-- The most recent keys are in L1; the oldest were evicted and come from Redis.
SELECT length(mlcache.get('mem:10', format('SELECT repeat(%L, 10000) || %s', 'x', 10)) #>> '{}'),
       mlcache.last_level();
SELECT length(mlcache.get('mem:1', format('SELECT repeat(%L, 10000) || %s', 'x', 1)) #>> '{}'),
       mlcache.last_level();

-- Reading mem:1 made it recent again, so it stays while others go.
SELECT count(mlcache.get('mem:' || i, format('SELECT repeat(%L, 10000) || %s', 'x', i)))
FROM generate_series(2, 5) i;
SELECT mlcache.get('mem:1', format('SELECT repeat(%L, 10000) || %s', 'x', 1)) IS NOT NULL,
       mlcache.last_level();

-- A value larger than the whole cap is not kept in L1.
SELECT length(mlcache.get('mem:huge', 'SELECT repeat(''y'', 100000)') #>> '{}'), mlcache.last_level();
SELECT length(mlcache.get('mem:huge', 'SELECT repeat(''y'', 100000)') #>> '{}'), mlcache.last_level();

-- A cap of 0 disables L1.
SET mlcache.l1_max_memory = 0;
SELECT mlcache.get('mem:zero', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('mem:zero', 'SELECT 1'), mlcache.last_level();
RESET mlcache.l1_max_memory;
