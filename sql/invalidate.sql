-- Transactional invalidation: nothing before COMMIT, nothing on rollback.
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();

-- Inside a transaction the key is invalidated only at commit; the transaction
-- itself reads around the cache (read-your-writes) and stores nothing.
BEGIN;
UPDATE scores SET score = score + 1 WHERE id = 1;
SELECT mlcache.invalidate('inv:a');
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();
COMMIT;
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();

-- Rollback invalidates nothing.
BEGIN;
SELECT mlcache.invalidate('inv:a');
ROLLBACK;
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();

-- A rolled-back savepoint invalidates nothing; a released one does, at commit.
BEGIN;
SAVEPOINT s1;
SELECT mlcache.invalidate('inv:a');
ROLLBACK TO SAVEPOINT s1;
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();
COMMIT;
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();
BEGIN;
SAVEPOINT s1;
SELECT mlcache.invalidate('inv:a');
RELEASE SAVEPOINT s1;
SAVEPOINT s2;
SELECT mlcache.invalidate('inv:other');
ROLLBACK TO SAVEPOINT s2;
COMMIT;
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();

-- A failed statement inside a plpgsql exception block is a rolled-back
-- subtransaction too.
DO $$
BEGIN
    BEGIN
        PERFORM mlcache.invalidate('inv:a');
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
END
$$;
SELECT mlcache.get('inv:a', 'SELECT sum(score) FROM scores'), mlcache.last_level();

-- Duplicates in one transaction count once (the key, the prefix, and the
-- mark that makes the database's L3 views dirty, which both add).
SELECT counter('invalidations') AS i0 \gset
BEGIN;
SELECT mlcache.invalidate('inv:d');
SELECT mlcache.invalidate('inv:d');
SELECT mlcache.invalidate_pattern('inv:p:*');
SELECT mlcache.invalidate_pattern('inv:p:*');
COMMIT;
SELECT counter('invalidations') - :i0 AS invalidations;

-- Prefix patterns: 'inv:s:1:*' hits every key under that prefix and no other.
SELECT mlcache.get('inv:s:1:x', 'SELECT 1'), mlcache.get('inv:s:1:y:z', 'SELECT 2'),
       mlcache.get('inv:s:2:x', 'SELECT 3'), mlcache.get('inv:s:1', 'SELECT 4');
SELECT mlcache.invalidate_pattern('inv:s:1:*');
SELECT mlcache.get('inv:s:1:x', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('inv:s:1:y:z', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.get('inv:s:2:x', 'SELECT 3'), mlcache.last_level();
SELECT mlcache.get('inv:s:1', 'SELECT 4'), mlcache.last_level();

-- Other globs are narrowed to the prefix before their first glob character,
-- cut at its last ':' -- conservative: 'inv:g:a?' also drops 'inv:g:b'.
SELECT mlcache.get('inv:g:a1', 'SELECT 1'), mlcache.get('inv:g:b', 'SELECT 2'),
       mlcache.get('inv:h', 'SELECT 3');
SELECT mlcache.invalidate_pattern('inv:g:a?');
SELECT mlcache.get('inv:g:a1', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('inv:g:b', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.get('inv:h', 'SELECT 3'), mlcache.last_level();
-- A glob without any ':' before its first glob character drops the namespace.
SELECT mlcache.invalidate_pattern('inv*');
SELECT mlcache.get('inv:h', 'SELECT 3'), mlcache.last_level();
-- A pattern without glob characters is one exact key.
SELECT mlcache.invalidate_pattern('inv:h');
SELECT mlcache.get('inv:h', 'SELECT 3'), mlcache.last_level();
SELECT mlcache.get('inv:g:b', 'SELECT 2'), mlcache.last_level();

-- Invalidation reaches Redis too: a new session recomputes.
SELECT mlcache.get('inv:r', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.invalidate('inv:r');
\c
SELECT mlcache.get('inv:r', 'SELECT 1'), mlcache.last_level();

-- REPEATABLE READ reads around the cache and stores nothing.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT mlcache.get('inv:rr', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('inv:rr', 'SELECT 1'), mlcache.last_level();
COMMIT;
SELECT mlcache.get('inv:rr', 'SELECT 1'), mlcache.last_level();
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT mlcache.get('inv:rr', 'SELECT 1'), mlcache.last_level();
COMMIT;

-- PREPARE TRANSACTION with pending invalidations is refused.
BEGIN;
SELECT mlcache.invalidate('inv:2pc');
PREPARE TRANSACTION 'mlcache_2pc';
SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'mlcache_2pc';
BEGIN;
SELECT mlcache.set('inv:2pc', '1');
PREPARE TRANSACTION 'mlcache_2pc';
-- Without pending work it is allowed.
BEGIN;
SELECT mlcache.get('inv:2pc', 'SELECT 1') IS NOT NULL;
PREPARE TRANSACTION 'mlcache_2pc';
COMMIT PREPARED 'mlcache_2pc';

-- The same key invalidated under two namespaces in one transaction (a SET of
-- mlcache.key_prefix between) is invalidated in both.
SET mlcache.key_prefix = 'inv_nsb:';
SELECT mlcache.get('inv:ns', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('inv:ns', 'SELECT 1'), mlcache.last_level();
BEGIN;
SET LOCAL mlcache.key_prefix = 'inv_nsa:';
SELECT mlcache.invalidate('inv:ns');
SET LOCAL mlcache.key_prefix = 'inv_nsb:';
SELECT mlcache.invalidate('inv:ns');
COMMIT;
SELECT mlcache.get('inv:ns', 'SELECT 1'), mlcache.last_level();
RESET mlcache.key_prefix;
