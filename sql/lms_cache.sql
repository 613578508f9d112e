-- The LMS pack through the cache: lms_setup() defines the analytics
-- (mlcache.define) and watches the LMS tables; mlcache.fetch() must always
-- equal the live query, be served from the cache until a commit changes
-- what it depends on, and miss right after.  Runs after sql/lms.sql, on the
-- schemas it leaves: lms (canonical) and lms_django (mapping in dj_map).
--
-- Probes: each reads one definition through mlcache.fetch() and compares it
-- with the live query on the current schema: "hit" (L1 or Redis answered),
-- "miss" (L3 or computed), "err" (both raised the same SQLSTATE), or
-- "STALE" (fetch differs from the live value: never expected).
CREATE TABLE probe_target (schema_name name, tables jsonb, columns jsonb);
INSERT INTO probe_target VALUES ('lms', '{}', '{}');

CREATE FUNCTION live_value(def text, a bigint, b bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    t probe_target;
BEGIN
    SELECT * INTO t FROM probe_target;
    RETURN CASE def
        WHEN 'assignment_stats' THEN mlcache.lms_assignment_stats_live(a, t.schema_name, t.tables, t.columns)
        WHEN 'analytics_student' THEN mlcache.lms_analytics_student_live(a, t.schema_name, t.tables, t.columns)
        WHEN 'analytics_assignment' THEN mlcache.lms_analytics_assignment_live(a, t.schema_name, t.tables, t.columns)
        WHEN 'analytics_progress' THEN mlcache.lms_analytics_progress_live(a, b, t.schema_name, t.tables, t.columns)
        WHEN 'analytics_engagement' THEN mlcache.lms_analytics_engagement_live(a, t.schema_name, t.tables, t.columns)
    END;
END
$$;

CREATE FUNCTION probe(def text, a bigint, b bigint DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v jsonb;
    live jsonb;
    lvl text;
BEGIN
    BEGIN
        v := CASE WHEN b IS NULL THEN mlcache.fetch(def, a) ELSE mlcache.fetch(def, a, b) END;
        lvl := mlcache.last_level();
    EXCEPTION WHEN OTHERS THEN
        v := to_jsonb(SQLSTATE);
        lvl := 'err';
    END;
    BEGIN
        live := live_value(def, a, b);
    EXCEPTION WHEN OTHERS THEN
        live := to_jsonb(SQLSTATE);
    END;
    RETURN CASE WHEN v IS DISTINCT FROM live THEN 'STALE'
                WHEN lvl IN ('l1', 'l2') THEN 'hit'
                WHEN lvl = 'err' THEN 'err'
                ELSE 'miss' END;
END
$$;

-- The probe set: two of each definition (assignment 1 and student 20 are
-- in course 1; assignment 11 in course 3; student 21).
CREATE FUNCTION probes() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(label || '=' || probe(def, a, b), ' ' ORDER BY ord)
      FROM (VALUES (1, 'stats:1', 'assignment_stats', 1, NULL), (2, 'stats:11', 'assignment_stats', 11, NULL),
                   (3, 'asg:1', 'analytics_assignment', 1, NULL), (4, 'asg:11', 'analytics_assignment', 11, NULL),
                   (5, 'stu:20', 'analytics_student', 20, NULL), (6, 'stu:21', 'analytics_student', 21, NULL),
                   (7, 'prog:20/1', 'analytics_progress', 20, 1), (8, 'prog:21/3', 'analytics_progress', 21, 3),
                   (9, 'eng:1', 'analytics_engagement', 1, NULL), (10, 'eng:3', 'analytics_engagement', 3, NULL))
           v(ord, label, def, a, b)
$$;
-- fetch compared with the live query: the level that answered, or STALE.
CREATE FUNCTION level(def text, a bigint, b bigint DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := CASE WHEN b IS NULL THEN mlcache.fetch(def, a) ELSE mlcache.fetch(def, a, b) END;
    lvl text := mlcache.last_level();
BEGIN
    RETURN CASE WHEN v IS DISTINCT FROM live_value(def, a, b) THEN 'STALE' ELSE lvl END;
END
$$;
-- Wait (bounded: 15 s) until the refresher has refreshed a view.
CREATE PROCEDURE lms_wait_fresh(v regclass) LANGUAGE plpgsql AS $$
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
-- Read every probe until it is cached: true when the second round all hit.
CREATE FUNCTION warm() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM probes();
    RETURN probes() !~ '=(miss|STALE)';
END
$$;

-- ---------------------------------------------------------------------------
-- Set-up on the canonical schema.
-- ---------------------------------------------------------------------------
SELECT jsonb_pretty(mlcache.lms_setup() - 'tables' - 'columns');
SELECT tbl, keys, views FROM mlcache.watches WHERE tbl::text LIKE 'lms.%' ORDER BY tbl::text;
-- Calling it again is fine (views rebuilt, definitions and watches replaced).
SELECT mlcache.lms_setup() -> 'schema' AS again;

-- ---------------------------------------------------------------------------
-- fetch equals the live query for every entity, first and second read.
-- ---------------------------------------------------------------------------
SELECT count(*) AS assignments,
       count(*) FILTER (WHERE mlcache.fetch('assignment_stats', id) = mlcache.lms_assignment_stats_live(id)) AS stats,
       count(*) FILTER (WHERE mlcache.fetch('assignment_stats', id) = mlcache.lms_assignment_stats_live(id)) AS again,
       count(*) FILTER (WHERE mlcache.fetch('analytics_assignment', id) = mlcache.lms_analytics_assignment_live(id)) AS analytics,
       count(*) FILTER (WHERE mlcache.fetch('analytics_assignment', id) = mlcache.lms_analytics_assignment_live(id)) AS again
  FROM lms.assignments;
SELECT count(*) AS users,
       count(*) FILTER (WHERE mlcache.fetch('analytics_student', id) = mlcache.lms_analytics_student_live(id)) AS student,
       count(*) FILTER (WHERE mlcache.fetch('analytics_student', id) = mlcache.lms_analytics_student_live(id)) AS again
  FROM lms.users;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE mlcache.fetch('analytics_progress', u.id, c.id)
                              = mlcache.lms_analytics_progress_live(u.id, c.id)) AS progress,
       count(*) FILTER (WHERE mlcache.fetch('analytics_progress', u.id, c.id)
                              = mlcache.lms_analytics_progress_live(u.id, c.id)) AS again
  FROM lms.users u, lms.courses c WHERE u.id % 50 = 0;
SELECT count(*) AS courses,
       count(*) FILTER (WHERE mlcache.fetch('analytics_engagement', id) = mlcache.lms_analytics_engagement_live(id)) AS engagement,
       count(*) FILTER (WHERE mlcache.fetch('analytics_engagement', id) = mlcache.lms_analytics_engagement_live(id)) AS again
  FROM lms.courses;
-- The second read is served from memory.
SELECT mlcache.fetch('assignment_stats', 1) = mlcache.lms_assignment_stats_live(1) AS equal, mlcache.last_level();
SELECT mlcache.fetch('analytics_progress', 50, 1) = mlcache.lms_analytics_progress_live(50, 1) AS equal,
       mlcache.last_level();
-- A missing entity raises P0002 through the cache too, and is not cached.
SELECT expect_error($$SELECT mlcache.fetch('assignment_stats', 999999)$$);
SELECT expect_error($$SELECT mlcache.fetch('analytics_student', 999999)$$);
SELECT expect_error($$SELECT mlcache.fetch('analytics_assignment', 999999)$$);
SELECT expect_error($$SELECT mlcache.fetch('analytics_progress', 20, 999999)$$);
SELECT expect_error($$SELECT mlcache.fetch('analytics_engagement', 999999)$$);
INSERT INTO lms.assignments (id, course_id, author_id, title, max_score) VALUES (999999, 1, 1, 'Now it exists', 10);
SELECT mlcache.fetch('assignment_stats', 999999) #> '{submission_stats,count}' AS created;
DELETE FROM lms.assignments WHERE id = 999999;
SELECT expect_error($$SELECT mlcache.fetch('assignment_stats', 999999)$$);

-- ---------------------------------------------------------------------------
-- L3: once refreshed, a view answers the keys that L1 and Redis do not hold,
-- with exactly the query's value; a write to a table it reads makes it
-- dirty (not read) until the refresher has refreshed it.
-- ---------------------------------------------------------------------------
CALL lms_wait_fresh('lms.mlcache_assignment_stats');
CALL lms_wait_fresh('lms.mlcache_analytics_student');
CALL lms_wait_fresh('lms.mlcache_analytics_engagement');
CALL lms_wait_fresh('lms.mlcache_analytics_assignment');
CALL lms_wait_fresh('lms.mlcache_analytics_progress');
SELECT view, state FROM mlcache.views WHERE view::text LIKE 'lms.%' ORDER BY view::text;
-- A key namespace of its own holds nothing in L1 or Redis, so the reads
-- reach the views.  (invalidate() or invalidate_pattern() would empty them
-- too, but they also mark every view dirty: the data behind a key may feed
-- any view.)
SET mlcache.key_prefix = 'lms_cache_l3a:';
SELECT level('assignment_stats', id) AS level, count(*) FROM lms.assignments GROUP BY 1;
SELECT level('analytics_student', id) AS level, count(*) FROM lms.users GROUP BY 1;
SELECT level('analytics_engagement', id) AS level, count(*) FROM lms.courses GROUP BY 1;
SELECT level('analytics_assignment', id) AS level, count(*) FROM lms.assignments GROUP BY 1;
-- Progress has a row per enrolment, keyed by both parameters; a pair
-- without an enrolment (a teacher in a course) has none and is computed.
SELECT level('analytics_progress', student_id, course_id) AS level, count(*)
  FROM lms.enrollments WHERE student_id % 7 = 0 GROUP BY 1;
SELECT level('analytics_progress', 1, 1) AS not_enrolled;
-- A write to submissions makes the stats, student and assignment views
-- dirty, not the engagement and progress views.
-- (The write is made in the default namespace, whose keys it invalidates.)
RESET mlcache.key_prefix;
UPDATE lms.submissions SET score = coalesce(score, 0) + 1 WHERE assignment_id = 1 AND student_id = 20;
SET mlcache.key_prefix = 'lms_cache_l3b:';
SELECT level('assignment_stats', 1) AS written, level('analytics_student', 20) AS written_too,
       level('analytics_assignment', 1) AS written_as_well,
       level('analytics_engagement', 2) AS untouched, level('analytics_progress', 20, 1) AS untouched_too;
-- Refreshed, the view answers with the written value.
CALL lms_wait_fresh('lms.mlcache_assignment_stats');
SET mlcache.key_prefix = 'lms_cache_l3c:';
SELECT level('assignment_stats', 1) AS refreshed;
RESET mlcache.key_prefix;

-- ---------------------------------------------------------------------------
-- Invalidation by the watches: warm every probe, change one table, commit,
-- probe.  What misses is what the watch covers (see lms_watches()).
-- ---------------------------------------------------------------------------
SELECT warm(), probes() AS nothing_changed;

-- submissions: the assignment's stats and analytics, the student's analytics.
SELECT warm();
UPDATE lms.submissions SET score = coalesce(score, 0) + 1 WHERE assignment_id = 1 AND student_id = 20;
SELECT probes() AS submissions_update;
SELECT warm();
INSERT INTO lms.submissions (assignment_id, student_id, status, submitted_at)
SELECT 11, e.student_id, 'submitted', '2024-09-05 00:00+00' FROM lms.enrollments e
 WHERE e.course_id = 3 AND NOT EXISTS (SELECT FROM lms.submissions s WHERE s.assignment_id = 11 AND s.student_id = e.student_id);
SELECT probes() AS submissions_insert;
SELECT warm();
DELETE FROM lms.submissions WHERE assignment_id = 11 AND submitted_at = '2024-09-05 00:00+00';
SELECT probes() AS submissions_delete;

-- grades: the assignment's stats and analytics, the student's analytics.
SELECT warm();
INSERT INTO lms.grades (submission_id, assignment_id, student_id, score, graded_by)
SELECT id, assignment_id, student_id, 1, 1 FROM lms.submissions WHERE assignment_id = 1 AND student_id = 20;
SELECT probes() AS grades_insert;
SELECT warm();
UPDATE lms.grades SET graded_by = 2 WHERE assignment_id = 1 AND student_id = 20 AND score = 1;
SELECT probes() AS grades_update;
SELECT warm();
DELETE FROM lms.grades WHERE assignment_id = 1 AND student_id = 20 AND score = 1;
SELECT probes() AS grades_delete;

-- assignments: its stats and analytics, every user's keys.
SELECT warm();
UPDATE lms.assignments SET due_date = due_date - interval '1 day' WHERE id = 1;
SELECT probes() AS assignments_update;
SELECT warm();
INSERT INTO lms.assignments (course_id, author_id, title, max_score) VALUES (3, 2, 'New', 10);
SELECT probes() AS assignments_insert;
SELECT warm();
DELETE FROM lms.assignments WHERE title = 'New';
SELECT probes() AS assignments_delete;

-- enrollments: every assignment's stats, the student's analytics, the course's engagement.
SELECT warm();
UPDATE lms.enrollments SET enrolled_at = enrolled_at - interval '1 day' WHERE course_id = 1 AND student_id = 20;
SELECT probes() AS enrollments_update;
SELECT warm();
INSERT INTO lms.enrollments (course_id, student_id) VALUES (3, 20);
SELECT probes() AS enrollments_insert;
SELECT warm();
DELETE FROM lms.enrollments WHERE course_id = 3 AND student_id = 20;
SELECT probes() AS enrollments_delete;

-- materials: the course's engagement, every user's keys.
SELECT warm();
UPDATE lms.materials SET title = title || ' (revised)' WHERE id = 1;
SELECT probes() AS materials_update;
SELECT warm();
INSERT INTO lms.materials (course_id, title) VALUES (3, 'Extra');
SELECT probes() AS materials_insert;
SELECT warm();
DELETE FROM lms.materials WHERE title = 'Extra';
SELECT probes() AS materials_delete;

-- material_progress: all of that user's keys.
SELECT warm();
INSERT INTO lms.material_progress (material_id, user_id, progress_percentage, time_spent)
SELECT m.id, 20, 50, 600 FROM lms.materials m
 WHERE m.course_id = 1 AND NOT EXISTS (SELECT FROM lms.material_progress p WHERE p.material_id = m.id AND p.user_id = 20);
SELECT probes() AS progress_insert;
SELECT warm();
UPDATE lms.material_progress SET progress_percentage = 100 WHERE user_id = 20 AND time_spent = 600;
SELECT probes() AS progress_update;
SELECT warm();
DELETE FROM lms.material_progress WHERE user_id = 20 AND time_spent = 600;
SELECT probes() AS progress_delete;

-- material_views: that user's progress keys, every course's engagement.
SELECT warm();
INSERT INTO lms.material_views (material_id, user_id, viewed_at) VALUES (1, 20, '2024-12-01 00:00+00');
SELECT probes() AS views_insert;
SELECT warm();
UPDATE lms.material_views SET viewed_at = '2024-12-02 00:00+00' WHERE viewed_at = '2024-12-01 00:00+00';
SELECT probes() AS views_update;
SELECT warm();
DELETE FROM lms.material_views WHERE viewed_at = '2024-12-02 00:00+00';
SELECT probes() AS views_delete;

-- users: all of that user's keys.
SELECT warm();
UPDATE lms.users SET username = username || '_renamed' WHERE id = 20;
SELECT probes() AS users_update;
SELECT warm();
INSERT INTO lms.users (username, is_teacher) VALUES ('newcomer', false);
SELECT probes() AS users_insert;
SELECT warm();
DELETE FROM lms.users WHERE username = 'newcomer';
SELECT probes() AS users_delete;

-- courses: the course's engagement, every user's keys.
SELECT warm();
UPDATE lms.courses SET title = title || ' (revised)' WHERE id = 3;
SELECT probes() AS courses_update;
SELECT warm();
INSERT INTO lms.courses (title, teacher_id) VALUES ('Elective', 1);
SELECT probes() AS courses_insert;
SELECT warm();
DELETE FROM lms.courses WHERE title = 'Elective';
SELECT probes() AS courses_delete;

-- reports: every key of what the report covers: kind user, all of the
-- user's keys; assignment, its stats and analytics; engagement, the
-- course's engagement.
SELECT warm();
INSERT INTO lms.reports (kind, subject_id) VALUES ('user', 20);
SELECT probes() AS report_user;
SELECT warm();
INSERT INTO lms.reports (kind, subject_id) VALUES ('assignment', 1), ('engagement', 3);
SELECT probes() AS report_assignment_engagement;
SELECT warm();
UPDATE lms.reports SET subject_id = 21 WHERE kind = 'user' AND subject_id = 20;
SELECT probes() AS reports_update;
SELECT warm();
DELETE FROM lms.reports WHERE kind = 'user' AND subject_id = 21;
SELECT probes() AS reports_delete;

-- Nothing before COMMIT, nothing on ROLLBACK.
SELECT warm();
BEGIN;
UPDATE lms.submissions SET score = coalesce(score, 0) + 1 WHERE assignment_id = 1 AND student_id = 20;
ROLLBACK;
SELECT probes() AS rolled_back;

-- ---------------------------------------------------------------------------
-- The Django-style schema: lms_setup with its mapping replaces the
-- definitions; its watches use the renamed columns.
-- ---------------------------------------------------------------------------
SELECT jsonb_pretty(mlcache.lms_setup('lms_django', dj_tables(), dj_columns()) -> 'watches');
UPDATE probe_target SET schema_name = 'lms_django', tables = dj_tables(), columns = dj_columns();
SELECT count(*) AS assignments,
       count(*) FILTER (WHERE mlcache.fetch('assignment_stats', id)
                              = mlcache.lms_assignment_stats_live(id, 'lms_django', dj_tables(), dj_columns())) AS stats
  FROM lms_django.assignments_assignment;
SELECT count(*) AS users,
       count(*) FILTER (WHERE mlcache.fetch('analytics_student', id)
                              = mlcache.lms_analytics_student_live(id, 'lms_django', dj_tables(), dj_columns())) AS student
  FROM lms_django.accounts_user;
SELECT warm(), probes() AS nothing_changed;

-- Renamed columns: points (score), user_id (enrollments.student_id),
-- student_id (material_progress.user_id), report_type/object_id.
SELECT warm();
UPDATE lms_django.assignments_assignmentsubmission SET points = coalesce(points, 0) + 1
 WHERE assignment_id = 1 AND student_id = 20;
SELECT probes() AS dj_submissions_update;
SELECT warm();
INSERT INTO lms_django.courses_enrollment (course_id, user_id) VALUES (3, 20);
SELECT probes() AS dj_enrollments_insert;
SELECT warm();
UPDATE lms_django.materials_materialprogress SET time_spent = time_spent + interval '1 minute' WHERE student_id = 20;
SELECT probes() AS dj_progress_update;
SELECT warm();
INSERT INTO lms_django.reports_report (report_type, object_id, created_at) VALUES ('user', 21, now());
SELECT probes() AS dj_report_user;

-- TRUNCATE invalidates each template's static prefix.  Leaves first, so
-- that every step still has entities to compare.
SELECT warm();
TRUNCATE lms_django.reports_report;
SELECT probes() AS truncate_reports;
SELECT warm();
TRUNCATE lms_django.materials_materialview;
SELECT probes() AS truncate_views;
SELECT warm();
TRUNCATE lms_django.materials_materialprogress;
SELECT probes() AS truncate_progress;
SELECT warm();
TRUNCATE lms_django.assignments_grade;
SELECT probes() AS truncate_grades;
SELECT warm();
TRUNCATE lms_django.assignments_assignmentsubmission CASCADE;
SELECT probes() AS truncate_submissions;
SELECT warm();
TRUNCATE lms_django.materials_material CASCADE;
SELECT probes() AS truncate_materials;
SELECT warm();
TRUNCATE lms_django.courses_enrollment;
SELECT probes() AS truncate_enrollments;
SELECT warm();
TRUNCATE lms_django.assignments_assignment CASCADE;
SELECT probes() AS truncate_assignments;
SELECT warm();
TRUNCATE lms_django.courses_course CASCADE;
SELECT probes() AS truncate_courses;
SELECT warm();
TRUNCATE lms_django.accounts_user CASCADE;
SELECT probes() AS truncate_users;

-- Back to the canonical schema.
SELECT mlcache.lms_setup() -> 'schema' AS canonical;
UPDATE probe_target SET schema_name = 'lms', tables = '{}', columns = '{}';
SELECT warm(), probes() AS canonical_again;
