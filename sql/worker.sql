-- The background worker: after commit it removes invalidated keys from
-- Redis, but never a value stored after the invalidating commit.
SELECT backend_type, application_name FROM pg_stat_activity WHERE backend_type = 'mlcache worker';

-- An invalidated key is removed from Redis.
SELECT mlcache.get('wk:a', 'SELECT 1'), mlcache.get('wk:b', 'SELECT 2');
CALL settle();
SELECT counter('redis_unlinked') AS u0, counter('hygiene_done') AS d0 \gset
SELECT mlcache.invalidate('wk:a');
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked, counter('hygiene_done') - :d0 AS delivered;

-- A prefix is SCANned: both keys under it are removed, the other one stays.
SELECT mlcache.get('wk:p:1', 'SELECT 1'), mlcache.get('wk:p:2', 'SELECT 2'), mlcache.get('wk:q', 'SELECT 3');
CALL settle();
SELECT counter('redis_unlinked') AS u0 \gset
SELECT mlcache.invalidate_pattern('wk:p:*');
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked;
\c
SELECT mlcache.get('wk:q', 'SELECT 3'), mlcache.last_level();

-- Several prefixes of one namespace in a batch are cleaned in one SCAN pass
-- (MATCH on their common prefix, each key checked against every prefix):
-- the keys under them go, keys under none stay.
SELECT mlcache.get('wk:m:a:1', 'SELECT 1'), mlcache.get('wk:m:a:2', 'SELECT 2'),
       mlcache.get('wk:m:b:1', 'SELECT 3'), mlcache.get('wk:m:c:1', 'SELECT 4'),
       mlcache.get('wk:m:ab', 'SELECT 5');
CALL settle();
SELECT counter('redis_unlinked') AS u0 \gset
BEGIN;
SELECT mlcache.invalidate_pattern('wk:m:a:*');
SELECT mlcache.invalidate_pattern('wk:m:b:*');
COMMIT;
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked;
\c
SELECT mlcache.get('wk:m:c:1', 'SELECT 4'), mlcache.last_level();
SELECT mlcache.get('wk:m:ab', 'SELECT 5'), mlcache.last_level();
SELECT mlcache.get('wk:m:a:1', 'SELECT 1'), mlcache.last_level();

-- A watch trigger's prefix (left to the TTL) and invalidate_pattern() of the
-- same prefix in one transaction: the prefix is still SCANned.
CREATE TABLE wk_t (id int PRIMARY KEY, v int);
INSERT INTO wk_t VALUES (1, 0);
SELECT mlcache.watch('wk_t', ARRAY['wk:w:{id}:*']) IS NOT NULL AS watched;
SELECT mlcache.get('wk:w:1:a', 'SELECT 1'), mlcache.get('wk:w:1:b', 'SELECT 2');
CALL settle();
SELECT counter('redis_unlinked') AS u0 \gset
BEGIN;
UPDATE wk_t SET v = v + 1 WHERE id = 1;
SELECT mlcache.invalidate_pattern('wk:w:1:*') AS new_invalidation;
COMMIT;
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked;
SELECT mlcache.unwatch('wk_t') IS NOT NULL AS unwatched;
DROP TABLE wk_t;

-- A value stored right after the invalidating commit survives the clean-up,
-- whether the worker runs before the refill (and removes the old value) or
-- after it (and leaves the new one).  test/hygiene_late.sh holds the worker
-- back to test the second order deterministically.
SELECT counter('redis_unlinked') AS u0 \gset
BEGIN;
SELECT mlcache.invalidate('wk:b');
COMMIT;
SELECT mlcache.get('wk:b', 'SELECT 2'), mlcache.last_level();
CALL settle();
SELECT counter('redis_unlinked') - :u0 <= 1 AS at_most_the_old_value_unlinked;
\c
SELECT mlcache.get('wk:b', 'SELECT 2'), mlcache.last_level();

-- A namespace gets at most one SCAN pass per mlcache.scan_interval (here
-- 3 s), counted from the end of its last: a pattern delivered sooner waits
-- for the next pass (PUBLISHed already, pending in health() and not counted
-- as delivered) and one pass then cleans every pattern that waited.
ALTER SYSTEM SET mlcache.scan_interval = '3s';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT mlcache.get('wk:s:a:1', 'SELECT 1'), mlcache.get('wk:s:b:1', 'SELECT 2'),
       mlcache.get('wk:s:c:1', 'SELECT 3'), mlcache.get('wk:s:d:1', 'SELECT 4');
CALL settle();
SELECT counter('redis_unlinked') AS u0, counter('hygiene_done') AS d0 \gset
SELECT mlcache.invalidate_pattern('wk:s:a:*');
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS first_pass_unlinked, counter('hygiene_done') - :d0 AS delivered;
SELECT mlcache.invalidate_pattern('wk:s:b:*');
SELECT mlcache.invalidate_pattern('wk:s:c:*');
CALL wait_until($$(mlcache.health()->'worker'->>'scans_waiting')::int = 2$$);
SELECT counter('redis_unlinked') - :u0 AS unlinked_meanwhile, counter('hygiene_done') - :d0 AS delivered,
       (mlcache.health()->>'invalidations_pending')::int AS pending;
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked, counter('hygiene_done') - :d0 AS delivered,
       (mlcache.health()->'worker'->>'scans_waiting')::int AS scans_waiting;
\c
SELECT mlcache.get('wk:s:d:1', 'SELECT 4'), mlcache.last_level();
SELECT mlcache.get('wk:s:c:1', 'SELECT 3'), mlcache.last_level();
ALTER SYSTEM RESET mlcache.scan_interval;
SELECT pg_reload_conf();

-- A pass longer than the worker's step (16 SCAN pages of 1000 keys; the
-- worker delivers its batches between steps) resumes where it stopped and
-- runs to the end: with 20,000 other keys in the namespace, the three keys
-- under the prefix are all removed.
SELECT count(mlcache.set('wk:big:' || g, '1', 0)) AS big_keys FROM generate_series(1, 20000) g;
SELECT mlcache.get('wk:z:1', 'SELECT 1'), mlcache.get('wk:z:2', 'SELECT 2'), mlcache.get('wk:z:3', 'SELECT 3');
CALL settle();
SELECT counter('redis_unlinked') AS u0 \gset
SELECT mlcache.invalidate_pattern('wk:z:*');
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked;
SELECT mlcache.invalidate_pattern('wk:big:*');
CALL settle();
SELECT counter('redis_unlinked') - :u0 AS unlinked;

-- Nothing failed on the way.
SELECT counter('redis_errors') AS redis_errors, counter('hygiene_dropped') AS dropped;
