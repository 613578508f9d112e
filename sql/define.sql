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

SELECT mlcache.undefine('as_sum');
SELECT expect_error($$SELECT mlcache.fetch('as_sum', 1, 1)$$);
SELECT mlcache.unwatch('grades');
DROP TABLE grades;
SELECT mlcache.undefine('a_sum'), mlcache.undefine('total');
DROP ROLE mlc_teacher, mlc_student;
