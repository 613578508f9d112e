-- LMS operations on the data sql/lms.sql generated in schema lms: the
-- author-only cache hit rate of an assignment's statistics.
SELECT id AS a, author_id AS author FROM lms.assignments ORDER BY id LIMIT 1 \gset
SELECT count(*) > 0 AS other_user_exists FROM lms.users WHERE id <> :author;
SELECT min(id) AS other FROM lms.users WHERE id <> :author \gset

SELECT total AS t0 FROM mlcache.lms_assignment_cache_hit_rate(:a, :author) \gset
SELECT mlcache.fetch('assignment_stats', :a) IS NOT NULL AS fetched;
SELECT mlcache.fetch('assignment_stats', :a) IS NOT NULL AS fetched_again;
SELECT total - :t0 AS reads, cache_key = 'assignment_stats:' || :a AS right_key,
       hit_rate_percentage BETWEEN 0 AND 100 AS rate_ok
  FROM mlcache.lms_assignment_cache_hit_rate(:a, :author);

-- Anyone but the author: 42501; a missing assignment: P0002.
SELECT expect_error(format('SELECT * FROM mlcache.lms_assignment_cache_hit_rate(%s, %s)', :a, :other));
SELECT expect_error('SELECT * FROM mlcache.lms_assignment_cache_hit_rate(999999999, 1)');
SELECT expect_error('SELECT * FROM mlcache.lms_assignment_cache_hit_rate(NULL, 1)');
-- A plain reader may not call it at all (it shows key_stats(), for admins).
CREATE ROLE mlc_lms_reader IN ROLE mlcache_reader;
SET ROLE mlc_lms_reader;
SELECT expect_error('SELECT * FROM mlcache.lms_assignment_cache_hit_rate(1, 1)');
RESET ROLE;
DROP ROLE mlc_lms_reader;

-- ---------------------------------------------------------------------------
-- Warming, as a new user would try it: fresh data, lms_setup, warm().
-- lms_setup sets a warm query per definition (lms_warm_template): recent
-- assignments, the active students of the last day before the data's
-- reference time, their (student, course) pairs and courses.
-- ---------------------------------------------------------------------------
SELECT mlcache.lms_generate(1) ->> 'submissions' AS submissions;
SELECT mlcache.lms_setup() -> 'schema' AS set_up;
SELECT name, warm_query IS NOT NULL AS has_warm_query FROM mlcache.definitions
 WHERE name IN (SELECT name FROM mlcache.lms_definitions()) ORDER BY name;
-- The sets, bounded by a day's activity (the reference time is the latest
-- submission, 2024-11-05).
SELECT greatest((SELECT max(viewed_at) FROM lms.material_views), (SELECT max(submitted_at) FROM lms.submissions))
       AS ref \gset
SELECT :'ref'::timestamptz AT TIME ZONE 'UTC' AS reference_time;
SELECT definition, count(*) AS sets, min(params[1]::bigint) AS min_id, max(params[1]::bigint) AS max_id
  FROM mlcache._warm_tasks(ARRAY(SELECT name FROM mlcache.lms_definitions())) GROUP BY 1 ORDER BY 1;
-- Recent assignments: created in the last 14 days or due within 7 days;
-- active students: a view or a submission in the last 24 hours.
SELECT array_agg(params[1]::bigint ORDER BY params[1]::bigint)
       = (SELECT array_agg(id ORDER BY id) FROM lms.assignments
           WHERE created_at > :'ref'::timestamptz - interval '14 days'
              OR due_date BETWEEN :'ref'::timestamptz - interval '7 days' AND :'ref'::timestamptz + interval '7 days')
       AS recent_assignments
  FROM mlcache._warm_tasks(ARRAY['assignment_stats']);
SELECT array_agg(params[1]::bigint ORDER BY params[1]::bigint)
       = (SELECT array_agg(DISTINCT u ORDER BY u)
            FROM (SELECT user_id FROM lms.material_views WHERE viewed_at > :'ref'::timestamptz - interval '1 day'
                  UNION ALL
                  SELECT student_id FROM lms.submissions WHERE submitted_at > :'ref'::timestamptz - interval '1 day') a(u))
       AS active_students
  FROM mlcache._warm_tasks(ARRAY['analytics_student']);
-- warm() fills them all: queued here (a zero limit), in batches of 50, and
-- drained by the worker; then every set is in Redis.
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm(ARRAY(SELECT name FROM mlcache.lms_definitions()), 50) AS w \gset
RESET mlcache.warm_sync_limit;
SELECT (:'w'::jsonb ->> 'total')::int AS total, (:'w'::jsonb ->> 'failed')::int AS failed,
       (:'w'::jsonb ->> 'warmed')::int + (:'w'::jsonb ->> 'async_scheduled')::int = (:'w'::jsonb ->> 'total')::int AS all_taken;
CALL wait_until(format($$NOT EXISTS (SELECT FROM mlcache.warm_tasks WHERE job = %s AND state IN ('pending', 'running'))$$,
                       :'w'::jsonb ->> 'job'), 60);
SELECT state, count(*), count(DISTINCT batch) AS batches FROM mlcache.warm_tasks
 WHERE job = (:'w'::jsonb ->> 'job')::bigint GROUP BY 1;
\c
SELECT definition, count(*) AS sets, count(*) FILTER (WHERE lvl = 'l2') AS from_redis
  FROM (SELECT definition, CASE cardinality(params)
                             WHEN 1 THEN mlcache.fetch(definition, params[1])
                             ELSE mlcache.fetch(definition, params[1], params[2]) END IS NOT NULL,
               mlcache.last_level() AS lvl
          FROM mlcache._warm_tasks(ARRAY(SELECT name FROM mlcache.lms_definitions()))) r
 GROUP BY 1 ORDER BY 1;

-- ---------------------------------------------------------------------------
-- Warming a teacher's dashboard at login: the ten most recent assignments
-- they wrote, as the application's role (a plain reader granted fetch of
-- assignment_stats and SELECT on its own tables): in the call when the
-- estimate is small, else queued in batches that the role can follow.
-- ---------------------------------------------------------------------------
CREATE ROLE mlc_lms_app IN ROLE mlcache_reader;
CREATE ROLE mlc_lms_nofetch IN ROLE mlcache_reader;
CREATE ROLE mlc_lms_notable IN ROLE mlcache_reader;
GRANT USAGE ON SCHEMA lms TO mlc_lms_app, mlc_lms_nofetch, mlc_lms_notable;
GRANT SELECT ON lms.assignments TO mlc_lms_app, mlc_lms_nofetch;
SELECT mlcache.grant_fetch('assignment_stats', 'mlc_lms_app'), mlcache.grant_fetch('assignment_stats', 'mlc_lms_notable');
SELECT author_id AS teacher FROM lms.assignments GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 \gset
SELECT least(count(*), 10) AS expected FROM lms.assignments WHERE author_id = :teacher \gset
SELECT mlcache.invalidate_pattern('assignment_stats:*');
SET ROLE mlc_lms_app;
SELECT mlcache.lms_warm_teacher(:teacher) = jsonb_build_object('total', :expected, 'warmed', :expected,
                                                               'failed', 0, 'async_scheduled', 0) AS warmed_in_the_call;
RESET ROLE;
\c
SELECT count(*) FILTER (WHERE lvl = 'l2') = :expected AS all_in_redis
  FROM (SELECT mlcache.fetch('assignment_stats', a.id) IS NOT NULL, mlcache.last_level() AS lvl
          FROM (SELECT id FROM lms.assignments WHERE author_id = :teacher
                 ORDER BY created_at DESC, id DESC LIMIT 10) a) r;
-- Over the limit (here: zero): queued for the worker in batches of 4.
SELECT mlcache.invalidate_pattern('assignment_stats:*');
SET ROLE mlc_lms_app;
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.lms_warm_teacher(:teacher, batch_size => 4) AS w \gset
RESET mlcache.warm_sync_limit;
SELECT :'w'::jsonb - 'job' AS queued;
SELECT batch, count(*), bool_and(queued_by = 'mlc_lms_app'::regrole) AS queued_by_app
  FROM mlcache.warm_tasks WHERE job = (:'w'::jsonb ->> 'job')::bigint GROUP BY 1 ORDER BY 1;
CALL wait_until(format($$NOT EXISTS (SELECT FROM mlcache.warm_tasks WHERE job = %s AND state <> 'done')$$,
                       :'w'::jsonb ->> 'job'), 60);
SELECT count(*) AS done FROM mlcache.warm_tasks WHERE job = (:'w'::jsonb ->> 'job')::bigint AND state = 'done';
RESET ROLE;
\c
SELECT count(*) FILTER (WHERE lvl = 'l2') = :expected AS all_in_redis
  FROM (SELECT mlcache.fetch('assignment_stats', a.id) IS NOT NULL, mlcache.last_level() AS lvl
          FROM (SELECT id FROM lms.assignments WHERE author_id = :teacher
                 ORDER BY created_at DESC, id DESC LIMIT 10) a) r;
-- Without fetch of assignment_stats, or without SELECT on the table: 42501.
SET ROLE mlc_lms_nofetch;
SELECT expect_error(format('SELECT mlcache.lms_warm_teacher(%s)', :teacher));
SET ROLE mlc_lms_notable;
SELECT expect_error(format('SELECT mlcache.lms_warm_teacher(%s)', :teacher));
RESET ROLE;
SELECT expect_error('SELECT mlcache.lms_warm_teacher(NULL)');
SELECT expect_error(format('SELECT mlcache.lms_warm_teacher(%s, batch_size => 0)', :teacher));
SELECT mlcache.lms_warm_teacher(-1);
SELECT mlcache.revoke_fetch('assignment_stats', 'mlc_lms_app'), mlcache.revoke_fetch('assignment_stats', 'mlc_lms_notable');
REVOKE ALL ON lms.assignments FROM mlc_lms_app, mlc_lms_nofetch;
REVOKE ALL ON SCHEMA lms FROM mlc_lms_app, mlc_lms_nofetch, mlc_lms_notable;
DELETE FROM mlcache.warm_queue;
DROP ROLE mlc_lms_app;
DROP ROLE mlc_lms_nofetch;
DROP ROLE mlc_lms_notable;
