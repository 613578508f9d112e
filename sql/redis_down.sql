-- Run with Redis stopped: results stay correct, last_level says compute, no
-- ERROR is raised, and a single WARNING reports the breaker opening.
CREATE TABLE down_t (v int);
INSERT INTO down_t VALUES (1), (2), (3);
SELECT counter('breaker_opened') AS b0, counter('redis_errors') AS e0 \gset

SELECT mlcache.get('down:a', 'SELECT sum(v) FROM down_t'), mlcache.last_level();
-- L1 still works, and is still proved fresh by the generations.
SELECT mlcache.get('down:a', 'SELECT sum(v) FROM down_t'), mlcache.last_level();
-- Not kept in L1: computed each time, with no further WARNING.
SELECT mlcache.get('down:b', 'SELECT sum(v) FROM down_t', 0), mlcache.last_level();
SELECT mlcache.get('down:b', 'SELECT sum(v) FROM down_t', 0), mlcache.last_level();

-- set and invalidate do not fail the transaction.
SELECT mlcache.set('down:c', '"c"');
INSERT INTO down_t VALUES (4);
SELECT mlcache.invalidate('down:a');
SELECT mlcache.get('down:a', 'SELECT sum(v) FROM down_t'), mlcache.last_level();
SELECT mlcache.clear();
SELECT mlcache.invalidate_pattern('down:*');
SELECT mlcache.get('down:c', 'SELECT ''computed''::text'), mlcache.last_level();

-- A new session: L2 is skipped while the breaker is open, and still no ERROR.
\c
SELECT mlcache.get('down:a', 'SELECT sum(v) FROM down_t'), mlcache.last_level();
SELECT counter('breaker_opened') - :b0 AS breaker_opened, counter('redis_errors') > :e0 AS redis_errors;
DROP TABLE down_t;

-- While Redis is down the worker retries at its retry interval, not at each
-- commit: with a 1-hour interval, 20 commits that each queue clean-up work
-- cause at most one retry after the reload, plus one already under way.
ALTER SYSTEM SET mlcache.redis_retry_interval = '1h';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SELECT counter('hygiene_retries') AS r0, counter('hygiene_queued') AS q0 \gset
DO $$ BEGIN FOR i IN 1..20 LOOP PERFORM mlcache.invalidate('down:retry:' || i); COMMIT; END LOOP; END $$;
SELECT counter('hygiene_queued') - :q0 AS queued, counter('hygiene_retries') - :r0 <= 3 AS few_retries;
ALTER SYSTEM RESET mlcache.redis_retry_interval;
SELECT pg_reload_conf();

-- health() and mlcache.stats report the outage instead of failing.
SELECT h->>'status' AS status, h->'l2'->>'status' IN ('down', 'skipped') AS l2_not_ok,
       h->'l2'->>'rtt_ms' AS rtt, h->'l1'->>'status' AS l1
  FROM mlcache.health() h;
SELECT l2_keys, l2_used_memory, breaker_state <> 'closed' AS breaker_not_closed FROM mlcache.stats;
