-- L3: a materialized view answers a definition's reads while it is fresh;
-- writes to watched tables make it dirty at commit, and the background
-- worker refreshes it after mlcache.refresh_delay.
CREATE TABLE marks (id int PRIMARY KEY, student_id int, score int);
INSERT INTO marks SELECT g, g % 5, g FROM generate_series(1, 50) g;
CREATE MATERIALIZED VIEW student_totals AS
    SELECT student_id, jsonb_build_object('n', count(*), 'total', sum(score)) AS value
      FROM marks GROUP BY student_id;

-- Wait (bounded: 15 s) until the worker has refreshed a view.
CREATE PROCEDURE wait_fresh(v regclass) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '15 s';
BEGIN
    WHILE coalesce((SELECT state FROM mlcache.views WHERE view = v), '') <> 'fresh' LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'view % was not refreshed within 15 s', v;
        END IF;
        PERFORM pg_sleep(0.05);
        COMMIT;
    END LOOP;
END
$$;

-- Registration needs the unique index REFRESH ... CONCURRENTLY needs.
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT jsonb_build_object(''n'', count(*), ''total'', sum(score)) FROM marks WHERE student_id = $1', 'st:{1}', 0, 0, 'student_totals', ARRAY['student_id'])$$);
CREATE UNIQUE INDEX ON student_totals (student_id);
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT 1 WHERE $1::int > 0', 'st:{1}', 0, 0, 'student_totals', ARRAY['nope'])$$);
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT 1 WHERE $1::int > 0', 'st:{1}', 0, 0, 'student_totals', ARRAY['student_id', 'value'])$$);
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT 1 WHERE $1::int > 0', 'st:{1}', 0, 0, 'student_totals', ARRAY['student_id'], 'student_id')$$);
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT 1 WHERE $1::int > 0', 'st:{1}', 0, 0, 'marks', ARRAY['student_id'])$$);
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT 1 WHERE $1::int > 0', 'st:{1}', 0, 0, 'no_such_view', ARRAY['student_id'])$$);
SELECT expect_error($$SELECT mlcache.define('st', 'SELECT 1 WHERE $1::int > 0', 'st:{1}', 0, 0, NULL, ARRAY['student_id'])$$);

-- L1 and L2 off (TTL 0), so that every read shows whether L3 answered.
SELECT mlcache.define('st',
       'SELECT jsonb_build_object(''n'', count(*), ''total'', sum(score)) FROM marks WHERE student_id = $1',
       'st:{1}', 0, 0, 'student_totals', ARRAY['student_id']);
SELECT mlcache.watch('marks', ARRAY['st:{student_id}'], ARRAY['student_totals'::regclass]);
CALL wait_fresh('student_totals');
SELECT view, state, refreshes > 0 AS refreshed, failures, error FROM mlcache.views;
SELECT mlcache.fetch('st', 1), mlcache.last_level();

-- A write makes the view dirty at commit: reads compute until it is refreshed.
UPDATE marks SET score = score + 100 WHERE id = 1;
SELECT state FROM mlcache.views WHERE view = 'student_totals'::regclass;
SELECT mlcache.fetch('st', 1), mlcache.last_level();
CALL wait_fresh('student_totals');
SELECT mlcache.fetch('st', 1), mlcache.last_level();

-- A rolled-back write leaves it fresh.
BEGIN;
UPDATE marks SET score = 0;
ROLLBACK;
SELECT state FROM mlcache.views WHERE view = 'student_totals'::regclass;
SELECT mlcache.fetch('st', 2), mlcache.last_level();

-- A parameter with no row in the view is computed.
SELECT mlcache.fetch('st', 99), mlcache.last_level();

-- TRUNCATE makes it dirty too.
TRUNCATE marks;
SELECT mlcache.fetch('st', 1), mlcache.last_level();
CALL wait_fresh('student_totals');
SELECT mlcache.fetch('st', 1), mlcache.last_level();

-- A failing refresh is recorded and retried later; the view is not used.
INSERT INTO marks VALUES (1, 1, 1);
DROP INDEX student_totals_student_id_idx;
SELECT pg_sleep(2.5);
SELECT state, failures > 0 AS failed, error FROM mlcache.views WHERE view = 'student_totals'::regclass;
SELECT mlcache.fetch('st', 1), mlcache.last_level();
CREATE UNIQUE INDEX ON student_totals (student_id);

SELECT mlcache.unwatch('marks');
SELECT mlcache.undefine('st');
-- A dropped view leaves mlcache.views.
DROP MATERIALIZED VIEW student_totals;
SELECT count(*) AS views_left FROM mlcache.views;
DROP TABLE marks;

-- A fresh view dropped while its definition stays: fetch computes, and the
-- backend does not crash.
CREATE TABLE pts (id int PRIMARY KEY, v int);
INSERT INTO pts VALUES (1, 10), (2, 20);
CREATE MATERIALIZED VIEW pts_view AS SELECT id, to_jsonb(v) AS value FROM pts;
CREATE UNIQUE INDEX ON pts_view (id);
SELECT mlcache.define('pv', 'SELECT v FROM pts WHERE id = $1', 'pv:{1}', 0, 0, 'pts_view', ARRAY['id']);
SELECT mlcache.refresh_views() > 0 AS asked;
CALL wait_fresh('pts_view');
SELECT mlcache.fetch('pv', 1), mlcache.last_level();
DROP MATERIALIZED VIEW pts_view;
SELECT mlcache.fetch('pv', 1), mlcache.last_level();
\c
SELECT mlcache.fetch('pv', 2), mlcache.last_level();
SELECT mlcache.undefine('pv');
DROP TABLE pts;
-- invalidate(), invalidate_pattern() and clear() mark every view of the
-- database dirty at commit: the data behind the keys they name may feed a
-- view too.  Here the table changes with no watch to tell mlcache (the view
-- keeps answering the old value until someone does), then each of them is
-- called: fetch computes the live value until the view is refreshed again.
CREATE TABLE unw (id int PRIMARY KEY, v int);
INSERT INTO unw VALUES (1, 10), (2, 20);
CREATE MATERIALIZED VIEW unw_view AS SELECT id, to_jsonb(v) AS value FROM unw;
CREATE UNIQUE INDEX ON unw_view (id);
SELECT mlcache.define('uv', 'SELECT v FROM unw WHERE id = $1', 'uv:{1}', 0, 0, 'unw_view', ARRAY['id']);
SELECT mlcache.refresh_views() > 0 AS asked;
CALL wait_fresh('unw_view');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
UPDATE unw SET v = 11 WHERE id = 1;
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
SELECT mlcache.invalidate('uv:1');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
CALL wait_fresh('unw_view');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();

UPDATE unw SET v = 12 WHERE id = 1;
SELECT mlcache.invalidate_pattern('uv:*');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
CALL wait_fresh('unw_view');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();

UPDATE unw SET v = 13 WHERE id = 1;
SELECT mlcache.clear();
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
CALL wait_fresh('unw_view');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();

-- Nothing before COMMIT, nothing on rollback.
UPDATE unw SET v = 14 WHERE id = 1;
BEGIN;
SELECT mlcache.invalidate('uv:1');
ROLLBACK;
SELECT mlcache.fetch('uv', 1), mlcache.last_level();

-- DDL on a watched table marks the views dirty as well (what it changed is
-- unknown): here the stale view is over another table.
CREATE TABLE other_watched (id int);
SELECT mlcache.watch('other_watched', ARRAY['ow:{id}']);
CALL wait_fresh('unw_view');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
UPDATE unw SET v = 15 WHERE id = 1;
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
ALTER TABLE other_watched ADD COLUMN note text;
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
CALL wait_fresh('unw_view');
SELECT mlcache.fetch('uv', 1), mlcache.last_level();
SELECT mlcache.unwatch('other_watched');
DROP TABLE other_watched;
SELECT mlcache.undefine('uv');
DROP MATERIALIZED VIEW unw_view;
DROP TABLE unw;

DROP PROCEDURE wait_fresh(regclass);
