-- G13: a cached value reaches a reader only if its query would give that
-- reader the same result now.  GRANT and REVOKE on a relation, and changes
-- of role membership, invalidate every cached value when they commit (L1 of
-- every backend and L2, whose values carry the role and the security
-- generation), so a reader who lost a privilege gets the error its query
-- gives (42501), not the value cached while it had it.  A rolled-back REVOKE
-- changes nothing.
CREATE ROLE rv_app IN ROLE mlcache_reader;
CREATE ROLE rv_grp;
CREATE TABLE rv_t (x int);
INSERT INTO rv_t VALUES (1), (2), (3);
GRANT SELECT ON rv_t TO rv_app;
-- The SQLSTATE and message of a statement's error (the shared expect_error
-- is not executable by every role in every order of the tests).
CREATE FUNCTION rv_error(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Cached while rv_app may read the table: compute, then L1.
SET ROLE rv_app;
SELECT mlcache.get('rv:sum', 'SELECT sum(x) FROM rv_t'), mlcache.last_level();
SELECT mlcache.get('rv:sum', 'SELECT sum(x) FROM rv_t'), mlcache.last_level();
RESET ROLE;

-- REVOKE: the next read runs the query and gets its error, in this backend
-- (L1) ...
REVOKE SELECT ON rv_t FROM rv_app;
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:sum', 'SELECT sum(x) FROM rv_t')$$);
SELECT rv_error($$SELECT mlcache.get('rv:sum', 'SELECT sum(x) FROM rv_t')$$);
RESET ROLE;
-- ... and in a new backend, whose L1 is empty: the value in Redis is not
-- served either.
\c
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:sum', 'SELECT sum(x) FROM rv_t')$$);
RESET ROLE;

-- The L2 path alone: cache a value in Redis from one backend, REVOKE, then
-- read it first from a new backend.
GRANT SELECT ON rv_t TO rv_app;
CALL settle();
SET ROLE rv_app;
SELECT mlcache.get('rv:l2', 'SELECT count(*) FROM rv_t'), mlcache.last_level();
RESET ROLE;
\c
SET ROLE rv_app;
SELECT mlcache.get('rv:l2', 'SELECT count(*) FROM rv_t'), mlcache.last_level();
RESET ROLE;
REVOKE SELECT ON rv_t FROM rv_app;
\c
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:l2', 'SELECT count(*) FROM rv_t')$$);
RESET ROLE;

-- The privilege held only through membership in another role: revoking the
-- membership is enough.
GRANT SELECT ON rv_t TO rv_grp;
GRANT rv_grp TO rv_app;
SET ROLE rv_app;
SELECT mlcache.get('rv:grp', 'SELECT max(x) FROM rv_t'), mlcache.last_level();
SELECT mlcache.get('rv:grp', 'SELECT max(x) FROM rv_t'), mlcache.last_level();
RESET ROLE;
REVOKE rv_grp FROM rv_app;
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:grp', 'SELECT max(x) FROM rv_t')$$);
RESET ROLE;
\c
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:grp', 'SELECT max(x) FROM rv_t')$$);
RESET ROLE;

-- A column privilege revoked: the same.
GRANT SELECT (x) ON rv_t TO rv_app;
SET ROLE rv_app;
SELECT mlcache.get('rv:col', 'SELECT min(x) FROM rv_t'), mlcache.last_level();
SELECT mlcache.get('rv:col', 'SELECT min(x) FROM rv_t'), mlcache.last_level();
RESET ROLE;
REVOKE SELECT (x) ON rv_t FROM rv_app;
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:col', 'SELECT min(x) FROM rv_t')$$);
RESET ROLE;

-- A REVOKE that is rolled back (whole transaction, or savepoint) leaves
-- the cached value served.
GRANT SELECT ON rv_t TO rv_app;
CALL settle();
SET ROLE rv_app;
SELECT mlcache.get('rv:rb', 'SELECT sum(x) * 10 FROM rv_t'), mlcache.last_level();
SELECT mlcache.get('rv:rb', 'SELECT sum(x) * 10 FROM rv_t'), mlcache.last_level();
RESET ROLE;
BEGIN;
REVOKE SELECT ON rv_t FROM rv_app;
ROLLBACK;
BEGIN;
SAVEPOINT sp;
REVOKE SELECT ON rv_t FROM rv_app;
ROLLBACK TO SAVEPOINT sp;
COMMIT;
SET ROLE rv_app;
SELECT mlcache.get('rv:rb', 'SELECT sum(x) * 10 FROM rv_t'), mlcache.last_level();
RESET ROLE;
\c
SET ROLE rv_app;
SELECT mlcache.get('rv:rb', 'SELECT sum(x) * 10 FROM rv_t'), mlcache.last_level();
RESET ROLE;

-- A REVOKE inside a transaction: the transaction's own reads already see
-- it (PostgreSQL checks privileges against the transaction's catalog
-- view), and it takes effect for everyone at commit.
BEGIN;
REVOKE SELECT ON rv_t FROM rv_app;
SET LOCAL ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:rb', 'SELECT sum(x) * 10 FROM rv_t')$$);
COMMIT;
SET ROLE rv_app;
SELECT rv_error($$SELECT mlcache.get('rv:rb', 'SELECT sum(x) * 10 FROM rv_t')$$);
RESET ROLE;

DROP TABLE rv_t;
DROP FUNCTION rv_error(text);
DROP ROLE rv_app, rv_grp;
