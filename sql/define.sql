-- Named definitions: define(), fetch(), grants, and bad input.
CREATE TABLE grades (id int PRIMARY KEY, assignment_id int, student_id int, score numeric);
INSERT INTO grades SELECT g, g % 4, g % 10, g FROM generate_series(1, 100) g;

SELECT mlcache.define('a_sum',
       'SELECT jsonb_build_object(''n'', count(*), ''sum'', sum(score)) FROM grades WHERE assignment_id = $1',
       'a_sum:{1}', 300, 300);
SELECT name, key_template, param_types, l1_ttl, l2_ttl, owner, readers FROM mlcache.definitions;

-- fetch reads through the levels like get.
SELECT mlcache.fetch('a_sum', 1), mlcache.last_level();
SELECT mlcache.fetch('a_sum', 1), mlcache.last_level();
\c
SELECT mlcache.fetch('a_sum', 1), mlcache.last_level();
-- Parameters are converted to the query's types, never spliced into SQL.
SELECT mlcache.fetch('a_sum', '2'), mlcache.fetch('a_sum', 2::bigint), mlcache.last_level();
SELECT mlcache.fetch('a_sum', VARIADIC ARRAY[3]), mlcache.last_level();
SELECT mlcache.fetch('a_sum', '1; DROP TABLE grades');

-- Watched writes invalidate definitions' keys like any other.
SELECT mlcache.watch('grades', ARRAY['a_sum:{assignment_id}']);
SELECT mlcache.fetch('a_sum', 1), mlcache.last_level();
UPDATE grades SET score = score + 1 WHERE id = 1;
SELECT mlcache.fetch('a_sum', 1), mlcache.last_level();

-- Two parameters, and a definition without parameters.
SELECT mlcache.define('as_sum',
       'SELECT sum(score) FROM grades WHERE assignment_id = $1 AND student_id = $2', 'as_sum:{1}:{2}');
SELECT mlcache.fetch('as_sum', 1, 1), mlcache.fetch('as_sum', 1, 1), mlcache.last_level();
SELECT mlcache.define('total', 'SELECT sum(score) FROM grades', 'total');
SELECT mlcache.fetch('total'), mlcache.fetch('total'), mlcache.last_level();

-- Redefining replaces the query; values of the old query are not served.
SELECT mlcache.define('total', 'SELECT count(*) FROM grades', 'total');
SELECT mlcache.fetch('total'), mlcache.last_level();
-- Inside the redefining transaction the new query is used, and not cached.
BEGIN;
SELECT mlcache.define('total', 'SELECT 42', 'total');
SELECT mlcache.fetch('total'), mlcache.last_level();
ROLLBACK;
SELECT mlcache.fetch('total'), mlcache.last_level();

-- Bad input: clear errors, nothing registered half-way.
SELECT expect_error($$SELECT mlcache.define('bad', 'SELEC 1', 'bad')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT * FROM no_such_table WHERE id = $1', 'bad:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'UPDATE grades SET score = $1', 'bad:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT $1::int + $2::int', 'bad:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT $1::int', 'bad:{2}')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT $1::int', 'bad:{x}')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT $1::int', 'bad:*:{1}')$$);
SELECT expect_error($$SELECT mlcache.define('', 'SELECT 1', 'bad')$$);
SELECT expect_error($$SELECT mlcache.define(NULL, 'SELECT 1', 'bad')$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT 1', 'bad', -1)$$);
SELECT expect_error($$SELECT mlcache.define('bad', 'SELECT $1::int', 'bad:{1}', NULL, NULL, 'grades')$$);
SELECT count(*) AS registered_bad FROM mlcache.definitions WHERE name = 'bad';
SELECT expect_error($$SELECT mlcache.fetch('no_such', 1)$$);
SELECT expect_error($$SELECT mlcache.fetch(NULL, 1)$$);
SELECT expect_error($$SELECT mlcache.fetch('a_sum')$$);
SELECT expect_error($$SELECT mlcache.fetch('a_sum', 1, 2)$$);
SELECT expect_error($$SELECT mlcache.fetch('a_sum', 'abc')$$);
SELECT expect_error($$SELECT mlcache.fetch('a_sum', NULL::int)$$);
SELECT expect_error($$SELECT mlcache.fetch('a_sum', true)$$);
SELECT expect_error($$SELECT mlcache.undefine('no_such')$$);

-- Who may fetch: the owner, members of roles granted FETCH, superusers.
-- A definition runs with its owner's privileges, like a view, so all of
-- them share one cached value; others get 42501.
CREATE ROLE mlc_teacher LOGIN;
CREATE ROLE mlc_student LOGIN;
GRANT mlcache_reader TO mlc_teacher, mlc_student;
SELECT mlcache.grant_fetch('a_sum', 'mlc_teacher');
SELECT readers FROM mlcache.definitions WHERE name = 'a_sum';
SET ROLE mlc_teacher;
SELECT mlcache.fetch('a_sum', 1), mlcache.last_level();
-- (The teacher cannot read the table itself.)
SELECT expect_error($$SELECT sum(score) FROM grades$$);
SELECT expect_error($$SELECT mlcache.fetch('total')$$);
SELECT expect_error($$SELECT mlcache.grant_fetch('a_sum', 'mlc_student')$$);
SET ROLE mlc_student;
SELECT expect_error($$SELECT mlcache.fetch('a_sum', 1)$$);
RESET ROLE;
SELECT mlcache.revoke_fetch('a_sum', 'mlc_teacher');
SET ROLE mlc_teacher;
SELECT expect_error($$SELECT mlcache.fetch('a_sum', 1)$$);
RESET ROLE;

-- Definitions belong to the database, not to the key namespace: a session
-- with another mlcache.key_prefix sees a revoke committed in the default one.
SELECT mlcache.grant_fetch('a_sum', 'mlc_teacher');
SET mlcache.key_prefix = 'other_ns:';
SET ROLE mlc_teacher;
SELECT mlcache.fetch('a_sum', 1) IS NOT NULL AS fetched;
RESET ROLE;
RESET mlcache.key_prefix;
SELECT mlcache.revoke_fetch('a_sum', 'mlc_teacher');
SET mlcache.key_prefix = 'other_ns:';
SET ROLE mlc_teacher;
SELECT expect_error($$SELECT mlcache.fetch('a_sum', 1)$$);
RESET ROLE;
RESET mlcache.key_prefix;

-- Parameter values are escaped in keys ('%' as %25, ':' as %3A), so that
-- no two parameter lists share a key: ('x:y', 'z') and ('x', 'y:z') would
-- both give amb:x:y:z.
SELECT mlcache.define('amb', 'SELECT jsonb_build_array($1::text, $2::text)', 'amb:{1}:{2}', 300, 300);
SELECT mlcache.fetch('amb', 'x:y', 'z'), mlcache.last_level();
SELECT mlcache.fetch('amb', 'x', 'y:z'), mlcache.last_level();
SELECT mlcache.fetch('amb', 'x%3Ay', 'z'), mlcache.last_level();
SELECT mlcache.fetch('amb', 'x:y', 'z'), mlcache.last_level();
-- The keys as they are written: invalidating them by name recomputes.
SELECT mlcache.invalidate('amb:x%3Ay:z'), mlcache.invalidate('amb:x%253Ay:z');
SELECT mlcache.fetch('amb', 'x:y', 'z'), mlcache.last_level();
SELECT mlcache.fetch('amb', 'x%3Ay', 'z'), mlcache.last_level();
SELECT mlcache.fetch('amb', 'x', 'y:z'), mlcache.last_level();
SELECT mlcache.undefine('amb');

-- A definition's query may fetch the same definition (here recursively).
-- In the transaction that defines it, every call reloads the definition
-- (it reads around the cache), so the inner calls replace the version the
-- outer calls are still running: the outer calls keep theirs until they end.
BEGIN;
SELECT mlcache.define('rec',
       'SELECT CASE WHEN $1::int > 0 THEN to_jsonb($1::int + mlcache.fetch(''rec'', $1::int - 1)::text::int) ELSE to_jsonb(0) END',
       'rec:{1}');
SELECT mlcache.fetch('rec', 4);
SELECT mlcache.fetch('rec', 5), mlcache.fetch('rec', 3);
COMMIT;
SELECT mlcache.fetch('rec', 4), mlcache.last_level();
SELECT mlcache.fetch('rec', 4), mlcache.last_level();
SELECT mlcache.undefine('rec');

-- vary_on (the settings whose values join the key) is part of what a
-- definition's value means: changing it makes the values cached before
-- unreadable.  (With the 0.1.0 catalog the column is added here, and
-- dropped again at the end.)
CREATE TEMP TABLE vary_added AS
    SELECT NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'mlcache.definitions'::regclass
                                                  AND attname = 'vary_on' AND NOT attisdropped) AS added;
DO $$ BEGIN
    IF (SELECT added FROM vary_added) THEN
        ALTER TABLE mlcache.definitions ADD COLUMN vary_on text[] NOT NULL DEFAULT '{}';
    END IF;
END $$;
SELECT mlcache.define('vary', 'SELECT count(*) FROM grades WHERE assignment_id = $1', 'vary:{1}', 300, 300);
SELECT mlcache.fetch('vary', 1), mlcache.last_level();
SELECT mlcache.fetch('vary', 1), mlcache.last_level();
-- A reload alone (the grants changed) keeps the cached value.
SELECT mlcache.grant_fetch('vary', 'mlc_student');
SELECT mlcache.fetch('vary', 1), mlcache.last_level();
BEGIN;
UPDATE mlcache.definitions SET vary_on = ARRAY['timezone'] WHERE name = 'vary';
SELECT mlcache._definition_changed('vary');
COMMIT;
SELECT mlcache.fetch('vary', 1), mlcache.last_level();
SELECT mlcache.undefine('vary');
DO $$ BEGIN
    IF (SELECT added FROM vary_added) THEN
        ALTER TABLE mlcache.definitions DROP COLUMN vary_on;
    END IF;
END $$;

SELECT mlcache.undefine('as_sum');
SELECT expect_error($$SELECT mlcache.fetch('as_sum', 1, 1)$$);
SELECT mlcache.unwatch('grades');
DROP TABLE grades;
SELECT mlcache.undefine('a_sum'), mlcache.undefine('total');
DROP ROLE mlc_teacher, mlc_student;
