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
