-- Which level answers, across sessions: compute, then L1 in the same
-- session, L2 in a new session, and compute again after invalidate or clear.
SELECT mlcache.last_level() IS NULL AS no_read_yet;
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();
\c
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();

-- invalidate: every level, at commit.
SELECT mlcache.invalidate('lv:a');
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();
\c
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();

-- clear: every key of this database's namespace.
SELECT mlcache.get('lv:b', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.clear();
SELECT mlcache.get('lv:a', 'SELECT sum(score) FROM scores WHERE assignment_id = 1'), mlcache.last_level();
SELECT mlcache.get('lv:b', 'SELECT 2'), mlcache.last_level();
\c
SELECT mlcache.get('lv:b', 'SELECT 2'), mlcache.last_level();

-- A TTL of 0 keeps the value out of that level.
SELECT mlcache.get('lv:no-l1', 'SELECT 3', 0), mlcache.last_level();
SELECT mlcache.get('lv:no-l1', 'SELECT 3', 0), mlcache.last_level();
SELECT mlcache.get('lv:no-l2', 'SELECT 4', NULL, 0), mlcache.last_level();
SELECT mlcache.get('lv:no-l2', 'SELECT 4', NULL, 0), mlcache.last_level();
\c
SELECT mlcache.get('lv:no-l2', 'SELECT 4', NULL, 0), mlcache.last_level();
SELECT mlcache.get('lv:none', 'SELECT 5', 0, 0), mlcache.last_level();
SELECT mlcache.get('lv:none', 'SELECT 5', 0, 0), mlcache.last_level();

-- The GUC defaults apply when the TTL arguments are NULL.
SET mlcache.l1_ttl = 0;
SELECT mlcache.get('lv:guc', 'SELECT 6'), mlcache.last_level();
SELECT mlcache.get('lv:guc', 'SELECT 6'), mlcache.last_level();
RESET mlcache.l1_ttl;
SELECT mlcache.get('lv:guc', 'SELECT 6'), mlcache.last_level();
SELECT mlcache.get('lv:guc', 'SELECT 6'), mlcache.last_level();

-- Counters move with the levels.
SELECT counter('l1_hits') > 0 AS l1_hits, counter('l2_hits') > 0 AS l2_hits,
       counter('computes') > 0 AS computes, counter('redis_errors') = 0 AS no_redis_errors;
