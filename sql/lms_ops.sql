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

-- Warming a teacher's dashboard: the ten most recent assignments they wrote.
SELECT author_id AS teacher FROM lms.assignments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1 \gset
SELECT least(count(*), 10) AS expected FROM lms.assignments WHERE author_id = :teacher \gset
SELECT mlcache.invalidate_pattern('assignment_stats:*');
SELECT counter('computes') AS c0 \gset
SELECT mlcache.lms_warm_teacher(:teacher) = jsonb_build_object('total', :expected, 'warmed', :expected,
                                                               'failed', 0, 'async_scheduled', 0) AS warmed_all;
SELECT counter('computes') - :c0 <= :expected AS at_most_one_compute_each;
\c
SELECT count(*) FILTER (WHERE lvl = 'l2') = :expected AS all_in_redis
  FROM (SELECT mlcache.fetch('assignment_stats', a.id) IS NOT NULL, mlcache.last_level() AS lvl
          FROM (SELECT id FROM lms.assignments WHERE author_id = :teacher
                 ORDER BY created_at DESC, id DESC LIMIT 10) a) r;
SELECT expect_error('SELECT mlcache.lms_warm_teacher(NULL)');
SELECT mlcache.lms_warm_teacher(-1);
