-- Time to live: values expire from L1 and from Redis.
SELECT mlcache.get('ttl:l1', 'SELECT 1', 1, 60), mlcache.last_level();
SELECT mlcache.get('ttl:l1', 'SELECT 1', 1, 60), mlcache.last_level();
SELECT pg_sleep(1.2);
-- Gone from L1, still in Redis.
SELECT mlcache.get('ttl:l1', 'SELECT 1', 1, 60), mlcache.last_level();

SELECT mlcache.get('ttl:l2', 'SELECT 2', 0, 1), mlcache.last_level();
SELECT mlcache.get('ttl:l2', 'SELECT 2', 0, 1), mlcache.last_level();
SELECT pg_sleep(1.2);
-- Gone from Redis too.
SELECT mlcache.get('ttl:l2', 'SELECT 2', 0, 1), mlcache.last_level();

-- An L1 copy filled from Redis never outlives the Redis value it came from.
SELECT mlcache.get('ttl:both', 'SELECT 3', 60, 1), mlcache.last_level();
\c
SELECT mlcache.get('ttl:both', 'SELECT 3', 60, 1), mlcache.last_level();
SELECT pg_sleep(1.2);
SELECT mlcache.get('ttl:both', 'SELECT 3', 60, 1), mlcache.last_level();
