-- lms_invalidate_analytics(entity, id): every pack key about one user
-- (student), assignment or course is invalidated at commit, and nothing
-- else; called by an application role that is neither superuser nor
-- mlcache_admin, holding EXECUTE on it and on invalidate_pattern (as
-- examples/django_lms grants).  Runs on the canonical lms schema that
-- sql/lms_cache.sql set up last.
CREATE ROLE mlc_inv_app IN ROLE mlcache_reader;
CREATE ROLE mlc_inv_reader IN ROLE mlcache_reader;
SELECT count(*) AS granted FROM (SELECT mlcache.grant_fetch(name, r::regrole)
  FROM mlcache.lms_definitions(), unnest(ARRAY['mlc_inv_app', 'mlc_inv_reader']) r) g;
GRANT EXECUTE ON FUNCTION mlcache.lms_invalidate_analytics(text, bigint),
                          mlcache.invalidate_pattern(text) TO mlc_inv_app;
SELECT has_function_privilege('mlcache_admin', 'mlcache.lms_invalidate_analytics(text, bigint)', 'EXECUTE')
           AS admin_may,
       has_function_privilege('mlcache_reader', 'mlcache.lms_invalidate_analytics(text, bigint)', 'EXECUTE')
           AS reader_may;

-- A student with progress in a course (u, c), another student (v), an
-- assignment of another course (a).
SELECT user_id AS u, m.course_id AS c FROM lms.material_progress p JOIN lms.materials m ON m.id = p.material_id
 ORDER BY 1, 2 LIMIT 1 \gset
SELECT min(student_id) AS v FROM lms.enrollments WHERE student_id <> :u \gset
SELECT min(id) AS a FROM lms.assignments WHERE course_id <> :c \gset
SELECT min(id) AS a2 FROM lms.assignments WHERE course_id = :c \gset

SET SESSION AUTHORIZATION mlc_inv_app;
SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       pg_has_role('mlcache_admin', 'MEMBER') AS admin;

-- The keys of the test, each read by fetch(name, p...).
CREATE TEMP TABLE probe (i int, label text, name text, p bigint[]);
INSERT INTO probe VALUES (1, 'student u', 'analytics_student', ARRAY[:u]),
                         (2, 'student v', 'analytics_student', ARRAY[:v]),
                         (3, 'progress u c', 'analytics_progress', ARRAY[:u, :c]),
                         (4, 'progress v c', 'analytics_progress', ARRAY[:v, :c]),
                         (5, 'stats a', 'assignment_stats', ARRAY[:a]),
                         (6, 'analytics a', 'analytics_assignment', ARRAY[:a]),
                         (7, 'stats a2', 'assignment_stats', ARRAY[:a2]),
                         (8, 'engagement c', 'analytics_engagement', ARRAY[:c]);
-- The level that answered fetch(name, p...).
CREATE FUNCTION pg_temp.lvl(name text, p bigint[]) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p) = 1 THEN
        PERFORM mlcache.fetch(name, p[1]);
    ELSE
        PERFORM mlcache.fetch(name, p[1], p[2]);
    END IF;
    RETURN mlcache.last_level();
END $$;
-- Read every key twice: true if each one is then in this backend's L1.
CREATE FUNCTION pg_temp.fill() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    k record;
    ok boolean := true;
BEGIN
    FOR k IN SELECT * FROM probe ORDER BY i LOOP
        PERFORM pg_temp.lvl(k.name, k.p);
        ok := ok AND pg_temp.lvl(k.name, k.p) = 'l1';
    END LOOP;
    RETURN ok;
END $$;
-- The keys that L1 no longer answers (recomputed, or answered by a view).
CREATE FUNCTION pg_temp.missed() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(label, ', ' ORDER BY i), 'none')
      FROM (SELECT i, label, pg_temp.lvl(name, p) AS l FROM probe ORDER BY i) k
     WHERE l <> 'l1'
$$;

SELECT pg_temp.fill() AS cached;
SELECT pg_temp.missed() AS nothing_yet;

-- A user (or student: the same keys) is every key under analytics:user:{id}:.
SELECT mlcache.lms_invalidate_analytics('student', :u) = ARRAY['analytics:user:' || :u || ':*'] AS student_keys;
SELECT pg_temp.missed() AS student_u;
SELECT pg_temp.fill() AS cached;
SELECT mlcache.lms_invalidate_analytics('user', :v) = ARRAY['analytics:user:' || :v || ':*'] AS user_keys;
SELECT pg_temp.missed() AS user_v;

-- An assignment: its statistics and analytics.
SELECT pg_temp.fill() AS cached;
SELECT mlcache.lms_invalidate_analytics('assignment', :a)
       = ARRAY['assignment_stats:' || :a, 'analytics:assignment:' || :a] AS assignment_keys;
SELECT pg_temp.missed() AS assignment_a;

-- A course: its engagement and every user's progress in it (the glob
-- reaches every user's keys: its literal prefix is analytics:user:).
SELECT pg_temp.fill() AS cached;
SELECT mlcache.lms_invalidate_analytics('course', :c)
       = ARRAY['analytics:engagement:' || :c, 'analytics:user:*:progress:' || :c] AS course_keys;
SELECT pg_temp.missed() AS course_c;

-- At commit only: a rolled-back call invalidates nothing.
SELECT pg_temp.fill() AS cached;
BEGIN;
SELECT cardinality(mlcache.lms_invalidate_analytics('course', :c)) AS in_transaction;
ROLLBACK;
SELECT pg_temp.missed() AS rolled_back;

-- Unknown entity types, NULLs.
SELECT expect_error('SELECT mlcache.lms_invalidate_analytics(''school'', 1)');
SELECT expect_error('SELECT mlcache.lms_invalidate_analytics(''User'', 1)');
SELECT expect_error('SELECT mlcache.lms_invalidate_analytics(NULL, 1)');
SELECT expect_error('SELECT mlcache.lms_invalidate_analytics(''user'', NULL)');
DROP FUNCTION pg_temp.missed(), pg_temp.fill(), pg_temp.lvl(text, bigint[]);
DROP TABLE probe;
RESET SESSION AUTHORIZATION;

-- A reader that was not granted EXECUTE: 42501.
SET SESSION AUTHORIZATION mlc_inv_reader;
SELECT expect_error(format('SELECT mlcache.lms_invalidate_analytics(%L, %s)', 'user', :u));
RESET SESSION AUTHORIZATION;

SELECT count(*) AS revoked FROM (SELECT mlcache.revoke_fetch(name, r::regrole)
  FROM mlcache.lms_definitions(), unnest(ARRAY['mlc_inv_app', 'mlc_inv_reader']) r) g;
REVOKE ALL ON FUNCTION mlcache.lms_invalidate_analytics(text, bigint), mlcache.invalidate_pattern(text)
    FROM mlc_inv_app;
DROP ROLE mlc_inv_app;
DROP ROLE mlc_inv_reader;
