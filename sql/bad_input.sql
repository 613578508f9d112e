-- Bad input: a clear error with an explicit SQLSTATE, and nothing cached.
SELECT counter('computes') AS c0 \gset

-- A query with a syntax error reports its own error.
SELECT expect_error($$SELECT mlcache.get('bad:syntax', 'SELEC 1')$$);
SELECT expect_error($$SELECT mlcache.get('bad:missing', 'SELECT * FROM no_such_table')$$);
SELECT expect_error($$SELECT mlcache.get('bad:div', 'SELECT 1 / 0')$$);

-- Queries that write are refused before they run (25006) ...
SELECT expect_error($$SELECT mlcache.get('bad:update', 'UPDATE scores SET score = 0')$$);
SELECT expect_error($$SELECT mlcache.get('bad:insert', 'INSERT INTO scores VALUES (1000, 1, 1)')$$);
SELECT expect_error($$SELECT mlcache.get('bad:cte', 'WITH d AS (DELETE FROM scores RETURNING 1) SELECT count(*) FROM d')$$);
SELECT expect_error($$SELECT mlcache.get('bad:lock', 'SELECT id FROM scores FOR UPDATE')$$);
SELECT expect_error($$SELECT mlcache.get('bad:into', 'SELECT 1 INTO new_table')$$);
SELECT expect_error($$SELECT mlcache.get('bad:ddl', 'CREATE TABLE t2 (a int)')$$);
SELECT expect_error($$SELECT mlcache.get('bad:multi', 'SELECT 1; SELECT 2')$$);
-- ... and writes hidden in a function fail because the query runs read-only.
CREATE FUNCTION sneaky_write() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    UPDATE scores SET score = -1 WHERE id = 1;
    RETURN 1;
END
$$;
SELECT expect_error($$SELECT mlcache.get('bad:hidden', 'SELECT sneaky_write()')$$);
SELECT score FROM scores WHERE id = 1;
-- The read-only mark does not leak into the caller's transaction.
BEGIN;
SELECT expect_error($$SELECT mlcache.get('bad:hidden', 'SELECT sneaky_write()')$$);
UPDATE scores SET score = score WHERE id = 1;
SHOW transaction_read_only;
ROLLBACK;

-- NULL query, negative TTLs (22023).
SELECT expect_error($$SELECT mlcache.get('bad:null', NULL)$$);
SELECT expect_error($$SELECT mlcache.get('bad:ttl', 'SELECT 1', -1)$$);
SELECT expect_error($$SELECT mlcache.get('bad:ttl', 'SELECT 1', NULL, -5)$$);
SELECT expect_error($$SELECT mlcache.set('bad:ttl', '1', -1)$$);
SELECT expect_error($$SELECT mlcache.set('bad:ttl', '1', 1, -1)$$);
SELECT expect_error($$SELECT mlcache.set('bad:nullvalue', NULL)$$);
SELECT expect_error($$SET mlcache.l1_ttl = -1$$);
SELECT expect_error($$SET mlcache.l2_ttl = 'soon'$$);
SELECT expect_error($$SET mlcache.nonsense = 1$$);

-- None of the failed calls computed or cached anything.
SELECT counter('computes') - :c0 AS computes_after_errors;
SELECT mlcache.get('bad:syntax', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('bad:update', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.get('bad:ttl', 'SELECT 3'), mlcache.last_level();

-- Huge TTLs are accepted and kept without overflow.
SELECT mlcache.get('bad:huge_ttl', 'SELECT 4', 2147483647, 2147483647), mlcache.last_level();
SELECT mlcache.get('bad:huge_ttl', 'SELECT 4', 2147483647, 2147483647), mlcache.last_level();
SELECT mlcache.get('bad:huge_ttl', 'SELECT 4', 0, 2147483647), mlcache.last_level();

-- A value over mlcache.max_value_size is returned but cached nowhere.
SET mlcache.max_value_size = '1kB';
SELECT counter('too_large') AS t0 \gset
SELECT length(mlcache.get('bad:big', 'SELECT repeat(''x'', 5000)') #>> '{}'), mlcache.last_level();
SELECT length(mlcache.get('bad:big', 'SELECT repeat(''x'', 5000)') #>> '{}'), mlcache.last_level();
SELECT counter('too_large') - :t0 AS too_large;
RESET mlcache.max_value_size;
SELECT expect_error($$SET mlcache.max_value_size = '1TB'$$);
