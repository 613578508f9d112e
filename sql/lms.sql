-- The LMS pack without the cache: the canonical schema,
-- the deterministic generator, every analytics query checked field by field
-- against an independent computation written here, the materialized views,
-- and the same queries on a Django-style schema with other table and column
-- names.  sql/lms_cache.sql (run after this file, on the data it leaves)
-- checks the cached definitions.

-- The pack is its own extension; CASCADE would install mlcache too.
CREATE EXTENSION mlcache_lms;
SELECT e.extname, r.extname AS requires
  FROM pg_extension e, pg_depend d, pg_extension r
 WHERE e.extname = 'mlcache_lms' AND d.classid = 'pg_extension'::regclass AND d.objid = e.oid
   AND d.refclassid = 'pg_extension'::regclass AND d.refobjid = r.oid;
-- Every pack function is a member of mlcache_lms, none of mlcache.
SELECT count(*) FILTER (WHERE x.extname = 'mlcache_lms') > 30 AS pack_members,
       count(*) FILTER (WHERE x.extname IS DISTINCT FROM 'mlcache_lms') AS elsewhere
  FROM pg_proc p
  LEFT JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  LEFT JOIN pg_extension x ON x.oid = d.refobjid
 WHERE p.pronamespace = 'mlcache'::regnamespace AND p.proname LIKE 'lms\_%';

-- ---------------------------------------------------------------------------
-- The canonical schema.
-- ---------------------------------------------------------------------------
SELECT mlcache.lms_create_schema();
SELECT c.relname AS table_name,
       (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_class c WHERE c.relnamespace = 'lms'::regnamespace AND c.relkind = 'r' ORDER BY 1;
-- Every foreign key leads an index (no rows).
SELECT c.conrelid::regclass, c.conname FROM pg_constraint c
 WHERE c.contype = 'f' AND c.connamespace = 'lms'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1]);
SELECT expect_error($$SELECT mlcache.lms_create_schema()$$);
SELECT expect_error($$SELECT mlcache.lms_create_schema(NULL)$$);

-- ---------------------------------------------------------------------------
-- The generator: sizes, shape and determinism.
-- ---------------------------------------------------------------------------
SELECT mlcache.lms_generate(1);

-- A fingerprint of every table's rows.
CREATE FUNCTION lms_fingerprint(s name) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    t text;
    acc text := '';
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'courses', 'enrollments', 'assignments', 'submissions', 'grades',
                             'materials', 'material_progress', 'material_views', 'reports'] LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(x::text, '';'' ORDER BY x.id), '''')) FROM %I.%I x', s, t)
            INTO STRICT t;
        acc := acc || t;
    END LOOP;
    RETURN md5(acc);
END
$$;
SELECT lms_fingerprint('lms') AS fp1 \gset
SELECT mlcache.lms_generate(1, 'lms', 0.1) ->> 'submissions' AS other_seed_submissions;
SELECT lms_fingerprint('lms') <> :'fp1' AS other_seed_other_data;
SELECT mlcache.lms_generate(1) ->> 'submissions' AS submissions;
SELECT lms_fingerprint('lms') = :'fp1' AS same_seed_same_data;
SELECT expect_error($$SELECT mlcache.lms_generate(0)$$);
SELECT expect_error($$SELECT mlcache.lms_generate(1, 'lms', 2)$$);
SELECT expect_error($$SELECT mlcache.lms_generate(1, 'no_such_schema')$$);
-- students_per_campus (last, default 500): the students, and with them the
-- enrollments and submissions, of each campus.  Submissions per released
-- assignment are about 0.6 (enrolled) * 0.85 (not missing) of it.  A small
-- run in a schema of its own, so that lms keeps the default data.
SELECT expect_error($$SELECT mlcache.lms_generate(1, 'lms', 0.42, 0)$$);
SELECT expect_error($$SELECT mlcache.lms_generate(1, 'lms', 0.42, NULL)$$);
SELECT expect_error($$SELECT mlcache.lms_generate(2, 'lms', 0.42, 2147483647)$$);
SELECT mlcache.lms_create_schema('lms_small');
SELECT mlcache.lms_generate(2, 'lms_small', students_per_campus => 50) - 'seed' - 'scale' AS small;
SELECT count(*) AS released, round(avg(n)) AS per_assignment, min(n), max(n)
  FROM (SELECT a.id, count(s.id) AS n FROM lms_small.assignments a
          JOIN lms_small.submissions s ON s.assignment_id = a.id GROUP BY a.id) x;
-- Campus k (from 0) has students 21 + 50k to 70 + 50k and courses 1 + 20k
-- to 20 + 20k; nobody enrols in another campus's course.
SELECT count(DISTINCT e.student_id) AS enrolled_students,
       count(*) FILTER (WHERE (e.student_id - 21) / 50 <> (e.course_id - 1) / 20) AS across_campuses
  FROM lms_small.enrollments e;
SET client_min_messages = warning;
DROP SCHEMA lms_small CASCADE;
RESET client_min_messages;

-- Who is who.
SELECT is_teacher, is_staff, count(*) FROM lms.users GROUP BY 1, 2 ORDER BY 1, 2;
-- Statuses, and what each one carries.
SELECT status, count(*),
       bool_and(score IS NOT NULL) AS all_scored, bool_and(score IS NULL) AS none_scored,
       bool_and(submitted_at IS NOT NULL) AS all_submitted, bool_and(graded_at IS NOT NULL) AS all_graded_at
  FROM lms.submissions GROUP BY status ORDER BY status;
-- Late, ungraded and missing submissions all occur.
SELECT count(*) FILTER (WHERE s.submitted_at > a.due_date) AS late,
       count(*) FILTER (WHERE s.status = 'submitted' AND s.score IS NULL) AS ungraded,
       (SELECT count(*) FROM lms.assignments a2 JOIN lms.enrollments e ON e.course_id = a2.course_id
         WHERE NOT EXISTS (SELECT FROM lms.submissions s2
                            WHERE s2.assignment_id = a2.id AND s2.student_id = e.student_id)) AS missing
  FROM lms.submissions s JOIN lms.assignments a ON a.id = s.assignment_id;
-- Every graded submission has a final grade with its score; some have an earlier one.
SELECT count(*) AS graded,
       count(*) FILTER (WHERE g.score = s.score) AS final_grade_matches,
       (SELECT count(*) FROM lms.grades) - count(*) AS earlier_grades
  FROM lms.submissions s
  LEFT JOIN LATERAL (SELECT score FROM lms.grades g WHERE g.submission_id = s.id
                      ORDER BY created_at DESC LIMIT 1) g ON true
 WHERE s.score IS NOT NULL;
-- Unreleased assignments have no submissions.
SELECT array_agg(a.id ORDER BY a.id) AS without_submissions FROM lms.assignments a
 WHERE NOT EXISTS (SELECT FROM lms.submissions s WHERE s.assignment_id = a.id);
SELECT min(progress_percentage), max(progress_percentage), count(*) FILTER (WHERE progress_percentage = 100) AS completed
  FROM lms.material_progress;
SELECT kind, count(*) FROM lms.reports GROUP BY 1 ORDER BY 1;

-- ---------------------------------------------------------------------------
-- Hand-made cases in a small course "Test course" (8 students enrolled):
-- assignment 'Late' (max 20, opened 2024-01-01, due 2024-01-08):
--   student A graded 10 (on time, 1 day after opening; graded 1 h later)
--   student B graded 20 (late, due + 1 h; graded 3 h later)
--   student C submitted, not graded (late, due + 2 h)
--   student D draft (not counted)
--   student E returned 15 (2 days after opening; graded 2 h later)
-- by hand: count 4, late_count 2, ungraded_count 1, submission_rate 4/8 =
-- 0.5; mean 15, median 15, std_dev sqrt(50/3) = 4.08, min 10, max 20;
-- buckets of 2: 10 in [10,12), 15 in [14,16), 20 (= max) in the last;
-- avg_time_to_grade (3600 + 10800 + 7200) / 3 = 7200; avg_response_time
-- (86400 + 608400 + 612000 + 172800) / 4 = 369900.
-- assignment 'Empty': no submissions.
-- course "Nobody enrolled" with assignment 'Lonely', submitted by a student
-- not enrolled: submission_rate 0.
-- ---------------------------------------------------------------------------
INSERT INTO lms.courses (title, teacher_id) VALUES ('Test course', 1), ('Nobody enrolled', 1);
SELECT id AS tc FROM lms.courses WHERE title = 'Test course' \gset
SELECT id AS nc FROM lms.courses WHERE title = 'Nobody enrolled' \gset
INSERT INTO lms.enrollments (course_id, student_id) SELECT :tc, g FROM generate_series(11, 18) g;
INSERT INTO lms.assignments (course_id, author_id, title, due_date, max_score, created_at) VALUES
    (:tc, 1, 'Late', '2024-01-08 00:00+00', 20, '2024-01-01 00:00+00'),
    (:tc, 1, 'Empty', '2024-01-08 00:00+00', 20, '2024-01-01 00:00+00'),
    (:nc, 1, 'Lonely', '2024-01-08 00:00+00', 100, '2024-01-01 00:00+00');
SELECT id AS late FROM lms.assignments WHERE title = 'Late' \gset
SELECT id AS empty FROM lms.assignments WHERE title = 'Empty' \gset
SELECT id AS lonely FROM lms.assignments WHERE title = 'Lonely' \gset
INSERT INTO lms.submissions (assignment_id, student_id, status, score, submitted_at, graded_at) VALUES
    (:late, 11, 'graded', 10, '2024-01-02 00:00+00', '2024-01-02 01:00+00'),
    (:late, 12, 'graded', 20, '2024-01-08 01:00+00', '2024-01-08 04:00+00'),
    (:late, 13, 'submitted', NULL, '2024-01-08 02:00+00', NULL),
    (:late, 14, 'draft', NULL, NULL, NULL),
    (:late, 15, 'returned', 15, '2024-01-03 00:00+00', '2024-01-03 02:00+00'),
    (:lonely, 19, 'submitted', NULL, '2024-01-02 00:00+00', NULL);

SELECT jsonb_pretty(mlcache.lms_assignment_stats_live(:late));
SELECT mlcache.lms_assignment_stats_live(:late) = $$
{"assignment_id": 0,
 "statistics": {"mean": 15, "median": 15, "std_dev": 4.08, "min": 10, "max": 20,
                "distribution": [{"from": 0, "to": 2, "count": 0}, {"from": 2, "to": 4, "count": 0},
                                 {"from": 4, "to": 6, "count": 0}, {"from": 6, "to": 8, "count": 0},
                                 {"from": 8, "to": 10, "count": 0}, {"from": 10, "to": 12, "count": 1},
                                 {"from": 12, "to": 14, "count": 0}, {"from": 14, "to": 16, "count": 1},
                                 {"from": 16, "to": 18, "count": 0}, {"from": 18, "to": 20, "count": 1}]},
 "submission_stats": {"count": 4, "late_count": 2, "ungraded_count": 1, "submission_rate": 0.5},
 "time_stats": {"avg_time_to_grade": 7200, "avg_response_time": 369900}}$$::jsonb
    || jsonb_build_object('assignment_id', :late) AS late_case_by_hand;
-- No submissions: counts and rate 0, statistics and times NULL, empty buckets.
SELECT mlcache.lms_assignment_stats_live(:empty);
SELECT mlcache.lms_assignment_stats_live(:lonely) -> 'submission_stats' AS nobody_enrolled;
-- A missing assignment is P0002.
SELECT expect_error($$SELECT mlcache.lms_assignment_stats_live(999999)$$);
SELECT expect_error($$SELECT mlcache.lms_assignment_stats_live(NULL)$$);

-- ---------------------------------------------------------------------------
-- Independent computations.  Written without the pack's queries: procedural,
-- one fact at a time, with other formulas (median from a sorted array,
-- std_dev from sums, buckets by floor division, timestamps by to_char).
-- ---------------------------------------------------------------------------
CREATE FUNCTION ref_ts(t timestamptz) RETURNS jsonb LANGUAGE sql AS $$
    SELECT to_jsonb(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'))
$$;

CREATE FUNCTION ref_assignment_stats(aid bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    a lms.assignments;
    sc numeric[];
    n int;
    sx numeric;
    sxx numeric;
    med numeric;
    buckets jsonb;
    cnt bigint; late bigint; ungraded bigint; students bigint; enrolled bigint;
    grade_secs numeric; ngraded bigint; resp_secs numeric; nresp bigint;
BEGIN
    SELECT * INTO a FROM lms.assignments WHERE id = aid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'assignment % does not exist', aid USING ERRCODE = 'P0002';
    END IF;
    SELECT coalesce(array_agg(score ORDER BY score), '{}') INTO sc FROM lms.submissions
     WHERE assignment_id = aid AND status <> 'draft' AND score IS NOT NULL;
    n := cardinality(sc);
    SELECT sum(x), sum(x * x) INTO sx, sxx FROM unnest(sc) x;
    IF n > 0 THEN
        med := CASE WHEN n % 2 = 1 THEN sc[(n + 1) / 2] ELSE (sc[n / 2] + sc[n / 2 + 1]) / 2 END;
    END IF;
    SELECT jsonb_agg(jsonb_build_object('from', round(a.max_score * i / 10, 2),
                                        'to', round(a.max_score * (i + 1) / 10, 2),
                                        'count', (SELECT count(*) FROM unnest(sc) x
                                                   WHERE greatest(least(floor(x * 10 / a.max_score), 9), 0) = i))
                     ORDER BY i)
      INTO buckets FROM generate_series(0, 9) i;
    SELECT sum(CASE WHEN status <> 'draft' THEN 1 ELSE 0 END),
           sum(CASE WHEN status <> 'draft' AND submitted_at > a.due_date THEN 1 ELSE 0 END),
           sum(CASE WHEN status <> 'draft' AND score IS NULL THEN 1 ELSE 0 END)
      INTO cnt, late, ungraded FROM lms.submissions WHERE assignment_id = aid;
    SELECT count(*) INTO students FROM (SELECT DISTINCT student_id FROM lms.submissions
                                         WHERE assignment_id = aid AND status <> 'draft') d;
    SELECT count(*) INTO enrolled FROM lms.enrollments WHERE course_id = a.course_id;
    SELECT sum(extract(epoch FROM graded_at) - extract(epoch FROM submitted_at)), count(*)
      INTO grade_secs, ngraded FROM lms.submissions
     WHERE assignment_id = aid AND status <> 'draft' AND graded_at IS NOT NULL AND submitted_at IS NOT NULL;
    SELECT sum(extract(epoch FROM submitted_at) - extract(epoch FROM a.created_at)), count(*)
      INTO resp_secs, nresp FROM lms.submissions
     WHERE assignment_id = aid AND status <> 'draft' AND submitted_at IS NOT NULL;
    RETURN jsonb_build_object(
        'assignment_id', aid,
        'statistics', jsonb_build_object(
            'mean', round(sx / nullif(n, 0), 2),
            'median', round(med, 2),
            'std_dev', round(sqrt((n * sxx - sx * sx) / nullif(n * n, 0)), 2),
            'min', sc[1], 'max', sc[n],
            'distribution', buckets),
        'submission_stats', jsonb_build_object(
            'count', coalesce(cnt, 0), 'late_count', coalesce(late, 0),
            'ungraded_count', coalesce(ungraded, 0),
            'submission_rate', CASE WHEN enrolled = 0 THEN 0 ELSE round(students::numeric / enrolled, 4) END),
        'time_stats', jsonb_build_object(
            'avg_time_to_grade', round(grade_secs / nullif(ngraded, 0), 2),
            'avg_response_time', round(resp_secs / nullif(nresp, 0), 2)));
END
$$;

CREATE FUNCTION ref_student(uid bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    uname text;
    v jsonb;
BEGIN
    SELECT username INTO uname FROM lms.users WHERE id = uid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist', uid USING ERRCODE = 'P0002';
    END IF;
    SELECT jsonb_build_object(
               'submission_count', count(*), 'graded_count', sum(CASE WHEN s.score IS NULL THEN 0 ELSE 1 END),
               'late_count', sum(CASE WHEN s.submitted_at > a.due_date THEN 1 ELSE 0 END),
               'average_score', round(sum(s.score) / nullif(count(s.score), 0), 2),
               'average_percentage', round(sum(s.score * 100 / a.max_score) / nullif(count(s.score), 0), 2))
      INTO v
      FROM lms.submissions s, lms.assignments a
     WHERE a.id = s.assignment_id AND s.student_id = uid AND s.status <> 'draft';
    v := v || jsonb_build_object('graded_count', coalesce((v ->> 'graded_count')::int, 0),
                                 'late_count', coalesce((v ->> 'late_count')::int, 0));
    RETURN v || jsonb_build_object(
        'student_id', uid, 'username', uname,
        'grades_received', (SELECT count(*) FROM lms.grades WHERE student_id = uid),
        'course_count', (SELECT count(*) FROM lms.enrollments WHERE student_id = uid),
        'courses', to_jsonb(ARRAY(SELECT course_id FROM lms.enrollments WHERE student_id = uid ORDER BY 1)),
        'progress_average', (SELECT round(sum(progress_percentage) / nullif(count(*), 0), 2)
                               FROM lms.material_progress WHERE user_id = uid),
        'materials_completed', (SELECT count(*) FROM lms.material_progress
                                 WHERE user_id = uid AND progress_percentage = 100),
        'time_spent', (SELECT coalesce(sum(time_spent), 0) FROM lms.material_progress WHERE user_id = uid));
END
$$;

CREATE FUNCTION ref_assignment(aid bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    a lms.assignments;
    days jsonb;
    top jsonb;
BEGIN
    SELECT * INTO a FROM lms.assignments WHERE id = aid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'assignment % does not exist', aid USING ERRCODE = 'P0002';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object('date', d, 'count', n) ORDER BY d), '[]') INTO days
      FROM (SELECT to_char(submitted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d, count(*) AS n
              FROM lms.submissions WHERE assignment_id = aid AND status <> 'draft' AND submitted_at IS NOT NULL
             GROUP BY 1) x;
    SELECT coalesce(jsonb_agg(jsonb_build_object('student_id', student_id, 'score', score)
                              ORDER BY rn), '[]') INTO top
      FROM (SELECT student_id, score, row_number() OVER (ORDER BY score DESC, student_id) AS rn
              FROM lms.submissions WHERE assignment_id = aid AND status <> 'draft' AND score IS NOT NULL) x
     WHERE rn <= 5;
    RETURN jsonb_build_object(
        'assignment_id', aid, 'course_id', a.course_id, 'author_id', a.author_id, 'title', a.title,
        'due_date', ref_ts(a.due_date),
        'submissions_per_day', days,
        'first_submission', (SELECT ref_ts(min(submitted_at)) FROM lms.submissions
                              WHERE assignment_id = aid AND status <> 'draft'),
        'last_submission', (SELECT ref_ts(max(submitted_at)) FROM lms.submissions
                             WHERE assignment_id = aid AND status <> 'draft'),
        'top_scores', top,
        'grade_events', (SELECT count(*) FROM lms.grades WHERE assignment_id = aid),
        'graders', (SELECT count(*) FROM (SELECT DISTINCT graded_by FROM lms.grades
                                           WHERE assignment_id = aid AND graded_by IS NOT NULL) g));
END
$$;

CREATE FUNCTION ref_progress(uid bigint, cid bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    m record;
    p record;
    list jsonb := '[]';
    n int := 0;
    done int := 0;
    total numeric := 0;
    secs bigint := 0;
BEGIN
    IF NOT EXISTS (SELECT FROM lms.users WHERE id = uid) THEN
        RAISE EXCEPTION 'user % does not exist', uid USING ERRCODE = 'P0002';
    END IF;
    IF NOT EXISTS (SELECT FROM lms.courses WHERE id = cid) THEN
        RAISE EXCEPTION 'course % does not exist', cid USING ERRCODE = 'P0002';
    END IF;
    FOR m IN SELECT id, title FROM lms.materials WHERE course_id = cid ORDER BY id LOOP
        SELECT progress_percentage AS pct, time_spent, last_accessed INTO p
          FROM lms.material_progress WHERE material_id = m.id AND user_id = uid;
        n := n + 1;
        done := done + CASE WHEN p.pct = 100 THEN 1 ELSE 0 END;
        total := total + coalesce(p.pct, 0);
        secs := secs + coalesce(p.time_spent, 0);
        list := list || jsonb_build_array(jsonb_build_object(
            'material_id', m.id, 'title', m.title, 'progress', coalesce(p.pct, 0),
            'time_spent', coalesce(p.time_spent, 0),
            'last_accessed', CASE WHEN p.last_accessed IS NULL THEN 'null' ELSE ref_ts(p.last_accessed) END,
            'views', (SELECT count(*) FROM lms.material_views WHERE material_id = m.id AND user_id = uid)));
    END LOOP;
    RETURN jsonb_build_object('user_id', uid, 'course_id', cid, 'material_count', n, 'completed', done,
                              'average_progress', round(total / nullif(n, 0), 2), 'time_spent', secs,
                              'materials', list);
END
$$;

CREATE FUNCTION ref_engagement(cid bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    ref timestamptz := (SELECT viewed_at FROM lms.material_views ORDER BY viewed_at DESC LIMIT 1);
    list jsonb;
BEGIN
    IF NOT EXISTS (SELECT FROM lms.courses WHERE id = cid) THEN
        RAISE EXCEPTION 'course % does not exist', cid USING ERRCODE = 'P0002';
    END IF;
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'material_id', m.id, 'title', m.title,
               'views', (SELECT count(*) FROM lms.material_views w WHERE w.material_id = m.id),
               'unique_viewers', (SELECT count(DISTINCT user_id) FROM lms.material_views w
                                   WHERE w.material_id = m.id)) ORDER BY m.id), '[]')
      INTO list FROM lms.materials m WHERE m.course_id = cid;
    RETURN jsonb_build_object(
        'course_id', cid,
        'reference_time', CASE WHEN ref IS NULL THEN 'null' ELSE ref_ts(ref) END,
        'enrolled_students', (SELECT count(*) FROM lms.enrollments WHERE course_id = cid),
        'active_students_7d', (SELECT count(*) FROM lms.enrollments e
                                WHERE e.course_id = cid
                                  AND e.student_id IN (SELECT w.user_id FROM lms.material_views w, lms.materials m
                                                        WHERE m.id = w.material_id AND m.course_id = cid
                                                          AND w.viewed_at > ref - interval '7 days')),
        'total_views', (SELECT count(*) FROM lms.material_views w, lms.materials m
                         WHERE m.id = w.material_id AND m.course_id = cid),
        'materials', list);
END
$$;

-- Compare live against reference: one row per field path that differs
-- somewhere (none expected), plus totals.
-- The paths of a value's leaves (arrays are leaves).
CREATE FUNCTION paths(v jsonb) RETURNS SETOF text[] LANGUAGE sql AS $$
    WITH RECURSIVE t(p, val) AS (
        SELECT ARRAY[e.key], e.value FROM jsonb_each(v) e
        UNION ALL
        SELECT t.p || e.key, e.value
          FROM t, jsonb_each(CASE WHEN jsonb_typeof(t.val) = 'object' THEN t.val ELSE '{}' END) e)
    SELECT p FROM t WHERE jsonb_typeof(val) <> 'object'
$$;
CREATE TABLE cmp (what text, id text, live jsonb, ref jsonb);

-- ---------------------------------------------------------------------------
-- assignment_stats: every assignment, every field.
-- ---------------------------------------------------------------------------
INSERT INTO cmp SELECT 'assignment_stats', id, mlcache.lms_assignment_stats_live(id), ref_assignment_stats(id)
  FROM lms.assignments;
SELECT count(*) AS assignments, count(*) FILTER (WHERE live = ref) AS equal,
       count(*) FILTER (WHERE live -> 'statistics' ->> 'mean' IS NULL) AS nothing_graded,
       count(*) FILTER (WHERE (live #>> '{submission_stats,late_count}')::int > 0) AS with_late
  FROM cmp WHERE what = 'assignment_stats';
-- The fields (checked one by one, so a difference names its field).
SELECT array_to_string(p, '.') AS field,
       count(*) FILTER (WHERE c.live #> p IS DISTINCT FROM c.ref #> p) AS mismatches
  FROM cmp c, LATERAL (SELECT paths(c.live) UNION SELECT paths(c.ref)) x(p)
 WHERE c.what = 'assignment_stats'
 GROUP BY p ORDER BY p;
-- Generated example.
SELECT mlcache.lms_assignment_stats_live(1);

-- ---------------------------------------------------------------------------
-- analytics_student: every user.
-- ---------------------------------------------------------------------------
INSERT INTO cmp SELECT 'analytics_student', id, mlcache.lms_analytics_student_live(id), ref_student(id)
  FROM lms.users;
SELECT count(*) AS users, count(*) FILTER (WHERE live = ref) AS equal FROM cmp WHERE what = 'analytics_student';
SELECT array_to_string(p, '.') AS field,
       count(*) FILTER (WHERE c.live #> p IS DISTINCT FROM c.ref #> p) AS mismatches
  FROM cmp c, LATERAL (SELECT paths(c.live) UNION SELECT paths(c.ref)) x(p)
 WHERE c.what = 'analytics_student'
 GROUP BY p ORDER BY p;
SELECT mlcache.lms_analytics_student_live(20);
SELECT mlcache.lms_analytics_student_live(1) AS teacher;
SELECT expect_error($$SELECT mlcache.lms_analytics_student_live(999999)$$);

-- ---------------------------------------------------------------------------
-- analytics_assignment: every assignment.
-- ---------------------------------------------------------------------------
INSERT INTO cmp SELECT 'analytics_assignment', id, mlcache.lms_analytics_assignment_live(id), ref_assignment(id)
  FROM lms.assignments;
SELECT count(*) AS assignments, count(*) FILTER (WHERE live = ref) AS equal
  FROM cmp WHERE what = 'analytics_assignment';
SELECT array_to_string(p, '.') AS field,
       count(*) FILTER (WHERE c.live #> p IS DISTINCT FROM c.ref #> p) AS mismatches
  FROM cmp c, LATERAL (SELECT paths(c.live) UNION SELECT paths(c.ref)) x(p)
 WHERE c.what = 'analytics_assignment'
 GROUP BY p ORDER BY p;
SELECT jsonb_pretty(mlcache.lms_analytics_assignment_live(:late));
SELECT mlcache.lms_analytics_assignment_live(:empty);
SELECT expect_error($$SELECT mlcache.lms_analytics_assignment_live(999999)$$);

-- ---------------------------------------------------------------------------
-- analytics_progress: every course for every 25th user, and the hand-made
-- courses.
-- ---------------------------------------------------------------------------
INSERT INTO cmp SELECT 'analytics_progress', u.id || ':' || c.id, mlcache.lms_analytics_progress_live(u.id, c.id),
                       ref_progress(u.id, c.id)
  FROM lms.users u, lms.courses c WHERE u.id % 25 = 0 OR u.id = 11;
SELECT count(*) AS pairs, count(*) FILTER (WHERE live = ref) AS equal,
       count(*) FILTER (WHERE (live ->> 'material_count')::int = 0) AS without_materials,
       count(*) FILTER (WHERE (live ->> 'completed')::int > 0) AS with_completed
  FROM cmp WHERE what = 'analytics_progress';
SELECT array_to_string(p, '.') AS field,
       count(*) FILTER (WHERE c.live #> p IS DISTINCT FROM c.ref #> p) AS mismatches
  FROM cmp c, LATERAL (SELECT paths(c.live) UNION SELECT paths(c.ref)) x(p)
 WHERE c.what = 'analytics_progress'
 GROUP BY p ORDER BY p;
SELECT mlcache.lms_analytics_progress_live(20, 1);
SELECT mlcache.lms_analytics_progress_live(20, :tc);
SELECT expect_error($$SELECT mlcache.lms_analytics_progress_live(999999, 1)$$);
SELECT expect_error($$SELECT mlcache.lms_analytics_progress_live(20, 999999)$$);

-- ---------------------------------------------------------------------------
-- analytics_engagement: every course.
-- ---------------------------------------------------------------------------
INSERT INTO cmp SELECT 'analytics_engagement', id, mlcache.lms_analytics_engagement_live(id), ref_engagement(id)
  FROM lms.courses;
SELECT count(*) AS courses, count(*) FILTER (WHERE live = ref) AS equal,
       min((live ->> 'active_students_7d')::int) AS min_active, max((live ->> 'active_students_7d')::int) AS max_active
  FROM cmp WHERE what = 'analytics_engagement';
SELECT array_to_string(p, '.') AS field,
       count(*) FILTER (WHERE c.live #> p IS DISTINCT FROM c.ref #> p) AS mismatches
  FROM cmp c, LATERAL (SELECT paths(c.live) UNION SELECT paths(c.ref)) x(p)
 WHERE c.what = 'analytics_engagement'
 GROUP BY p ORDER BY p;
SELECT mlcache.lms_analytics_engagement_live(1);
SELECT mlcache.lms_analytics_engagement_live(:nc);
SELECT expect_error($$SELECT mlcache.lms_analytics_engagement_live(999999)$$);
-- The reference time is the data's latest view, not the clock.
SELECT mlcache.lms_analytics_engagement_live(1) ->> 'reference_time' = ref_ts(max(viewed_at)) #>> '{}' AS data_time
  FROM lms.material_views;

-- Values do not depend on the session's time zone or date style.
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SELECT count(*) AS compared, count(*) FILTER (WHERE live = CASE what
           WHEN 'assignment_stats' THEN mlcache.lms_assignment_stats_live(id::bigint)
           WHEN 'analytics_student' THEN mlcache.lms_analytics_student_live(id::bigint)
           WHEN 'analytics_assignment' THEN mlcache.lms_analytics_assignment_live(id::bigint)
           WHEN 'analytics_progress' THEN mlcache.lms_analytics_progress_live(split_part(id, ':', 1)::bigint,
                                                                              split_part(id, ':', 2)::bigint)
           WHEN 'analytics_engagement' THEN mlcache.lms_analytics_engagement_live(id::bigint)
       END) AS unchanged
  FROM cmp WHERE what NOT IN ('analytics_student', 'analytics_progress') OR id ~ '^(2|4)0(:.*)?$';
RESET TimeZone;
RESET DateStyle;

-- ---------------------------------------------------------------------------
-- The query texts: positional parameters, schema-qualified quoted names.
-- ---------------------------------------------------------------------------
SELECT d.name, d.key, d.l1_ttl, d.l2_ttl, d.view_name,
       q ~ '\$1' AS uses_1, q ~ '\$2' AS uses_2, q !~ '\{' AS all_rendered,
       q ~ '"?lms"?\.submissions' OR q ~ '"?lms"?\.courses' AS qualified
  FROM mlcache.lms_definitions() d, LATERAL mlcache.lms_query(d.name) q
 ORDER BY d.name;
SELECT expect_error($$SELECT mlcache.lms_query('nope')$$);
-- Bad mappings.
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', 'lms', '{"submission": "x"}')$$);
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', 'lms', '{}', '{"submissions.grade": "x"}')$$);
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', 'lms', '[]')$$);
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', 'lms', '{"users": 5}')$$);
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', 'lms', '{"users": "people"}')$$);
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', 'lms', '{}', '{"users.username": "login"}')$$);
SELECT expect_error($$SELECT mlcache.lms_query('analytics_student', NULL)$$);

-- ---------------------------------------------------------------------------
-- Materialized views (L3): one row per entity whose value is exactly the
-- query's, a UNIQUE index for REFRESH ... CONCURRENTLY.
-- ---------------------------------------------------------------------------
SELECT mlcache.lms_create_views();
SELECT c.relname, c.relkind, i.indexrelid::regclass AS index, i.indisunique,
       (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0) AS columns
  FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid
 WHERE c.relnamespace = 'lms'::regnamespace AND c.relkind = 'm' ORDER BY 1;
SELECT (SELECT count(*) FROM lms.assignments) AS assignments,
       count(*) AS rows, count(*) FILTER (WHERE value = mlcache.lms_assignment_stats_live(assignment_id)) AS equal
  FROM lms.mlcache_assignment_stats;
SELECT (SELECT count(*) FROM lms.users) AS users,
       count(*) AS rows, count(*) FILTER (WHERE value = mlcache.lms_analytics_student_live(student_id)) AS equal
  FROM lms.mlcache_analytics_student;
SELECT (SELECT count(*) FROM lms.courses) AS courses,
       count(*) AS rows, count(*) FILTER (WHERE value = mlcache.lms_analytics_engagement_live(course_id)) AS equal
  FROM lms.mlcache_analytics_engagement;
SELECT (SELECT count(*) FROM lms.assignments) AS assignments,
       count(*) AS rows, count(*) FILTER (WHERE value = mlcache.lms_analytics_assignment_live(assignment_id)) AS equal
  FROM lms.mlcache_analytics_assignment;
-- Progress: one row per enrolment (student, course), both parameters.
SELECT (SELECT count(*) FROM lms.enrollments) AS enrollments,
       count(*) AS rows, count(*) FILTER (WHERE value = mlcache.lms_analytics_progress_live(user_id, course_id)) AS equal
  FROM lms.mlcache_analytics_progress;
-- Exactly, to the text (trailing zeros included).
SELECT count(*) FILTER (WHERE value::text <> mlcache.lms_assignment_stats_live(assignment_id)::text) AS text_differs
  FROM lms.mlcache_assignment_stats;
UPDATE lms.submissions SET score = 0 WHERE assignment_id = :late AND student_id = 11;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_assignment_stats;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_analytics_student;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_analytics_engagement;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_analytics_assignment;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_analytics_progress;
SELECT value #> '{statistics,min}' AS min_after_refresh,
       value = mlcache.lms_assignment_stats_live(:late) AS equal
  FROM lms.mlcache_assignment_stats WHERE assignment_id = :late;
UPDATE lms.submissions SET score = 10 WHERE assignment_id = :late AND student_id = 11;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_assignment_stats;
REFRESH MATERIALIZED VIEW CONCURRENTLY lms.mlcache_analytics_student;
-- Re-creating them is idempotent.
SELECT mlcache.lms_create_views();

-- ---------------------------------------------------------------------------
-- A Django-style schema: other table names, renamed columns, int ids,
-- double precision scores and progress, an interval for time spent.
-- ---------------------------------------------------------------------------
CREATE SCHEMA lms_django;
CREATE TABLE lms_django.accounts_user (
    id serial PRIMARY KEY, username varchar(150) NOT NULL UNIQUE, is_teacher boolean NOT NULL,
    is_staff boolean NOT NULL, date_joined timestamptz NOT NULL);
CREATE TABLE lms_django.courses_course (
    id serial PRIMARY KEY, name varchar(200) NOT NULL,
    teacher_id integer REFERENCES lms_django.accounts_user ON DELETE SET NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON lms_django.courses_course (teacher_id);
CREATE TABLE lms_django.courses_enrollment (
    id serial PRIMARY KEY, course_id integer NOT NULL REFERENCES lms_django.courses_course ON DELETE CASCADE,
    user_id integer NOT NULL REFERENCES lms_django.accounts_user ON DELETE CASCADE, UNIQUE (course_id, user_id));
CREATE INDEX ON lms_django.courses_enrollment (user_id);
CREATE TABLE lms_django.assignments_assignment (
    id serial PRIMARY KEY, course_id integer NOT NULL REFERENCES lms_django.courses_course ON DELETE CASCADE,
    created_by_id integer REFERENCES lms_django.accounts_user ON DELETE SET NULL,
    title varchar(200) NOT NULL, due_date timestamptz, max_points numeric(6, 2) NOT NULL,
    created_at timestamptz NOT NULL);
CREATE INDEX ON lms_django.assignments_assignment (course_id);
CREATE INDEX ON lms_django.assignments_assignment (created_by_id);
CREATE TABLE lms_django.assignments_assignmentsubmission (
    id serial PRIMARY KEY,
    assignment_id integer NOT NULL REFERENCES lms_django.assignments_assignment ON DELETE CASCADE,
    student_id integer NOT NULL REFERENCES lms_django.accounts_user ON DELETE CASCADE,
    status varchar(20) NOT NULL, points double precision, feedback text NOT NULL,
    submitted_at timestamptz, graded_at timestamptz, UNIQUE (assignment_id, student_id));
CREATE INDEX ON lms_django.assignments_assignmentsubmission (student_id);
CREATE TABLE lms_django.assignments_grade (
    id serial PRIMARY KEY,
    submission_id integer NOT NULL REFERENCES lms_django.assignments_assignmentsubmission ON DELETE CASCADE,
    assignment_id integer NOT NULL REFERENCES lms_django.assignments_assignment ON DELETE CASCADE,
    student_id integer NOT NULL REFERENCES lms_django.accounts_user ON DELETE CASCADE,
    score numeric(6, 2) NOT NULL,
    graded_by_id integer REFERENCES lms_django.accounts_user ON DELETE SET NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON lms_django.assignments_grade (submission_id);
CREATE INDEX ON lms_django.assignments_grade (assignment_id);
CREATE INDEX ON lms_django.assignments_grade (student_id);
CREATE INDEX ON lms_django.assignments_grade (graded_by_id);
CREATE TABLE lms_django.materials_material (
    id serial PRIMARY KEY, course_id integer NOT NULL REFERENCES lms_django.courses_course ON DELETE CASCADE,
    title varchar(200) NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON lms_django.materials_material (course_id);
CREATE TABLE lms_django.materials_materialprogress (
    id serial PRIMARY KEY,
    material_id integer NOT NULL REFERENCES lms_django.materials_material ON DELETE CASCADE,
    student_id integer NOT NULL REFERENCES lms_django.accounts_user ON DELETE CASCADE,
    progress_percentage double precision NOT NULL, time_spent interval NOT NULL, last_accessed timestamptz,
    UNIQUE (student_id, material_id));
CREATE INDEX ON lms_django.materials_materialprogress (material_id);
CREATE TABLE lms_django.materials_materialview (
    id serial PRIMARY KEY,
    material_id integer NOT NULL REFERENCES lms_django.materials_material ON DELETE CASCADE,
    user_id integer NOT NULL REFERENCES lms_django.accounts_user ON DELETE CASCADE, viewed_at timestamptz NOT NULL);
CREATE INDEX ON lms_django.materials_materialview (material_id);
CREATE INDEX ON lms_django.materials_materialview (user_id, material_id);
CREATE INDEX ON lms_django.materials_materialview (viewed_at);
CREATE TABLE lms_django.reports_report (
    id serial PRIMARY KEY, report_type varchar(30) NOT NULL, object_id integer NOT NULL,
    created_at timestamptz NOT NULL);

-- The same data.
INSERT INTO lms_django.accounts_user SELECT id, username, is_teacher, is_staff, date_joined FROM lms.users;
INSERT INTO lms_django.courses_course SELECT id, title, teacher_id, created_at FROM lms.courses;
INSERT INTO lms_django.courses_enrollment SELECT id, course_id, student_id FROM lms.enrollments;
INSERT INTO lms_django.assignments_assignment
SELECT id, course_id, author_id, title, due_date, max_score, created_at FROM lms.assignments;
INSERT INTO lms_django.assignments_assignmentsubmission
SELECT id, assignment_id, student_id, status, score, feedback, submitted_at, graded_at FROM lms.submissions;
INSERT INTO lms_django.assignments_grade
SELECT id, submission_id, assignment_id, student_id, score, graded_by, created_at FROM lms.grades;
INSERT INTO lms_django.materials_material SELECT id, course_id, title, created_at FROM lms.materials;
INSERT INTO lms_django.materials_materialprogress
SELECT id, material_id, user_id, progress_percentage, make_interval(secs => time_spent), last_accessed
  FROM lms.material_progress;
INSERT INTO lms_django.materials_materialview SELECT id, material_id, user_id, viewed_at FROM lms.material_views;
INSERT INTO lms_django.reports_report SELECT id, kind, subject_id, created_at FROM lms.reports;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.oid::regclass::text FROM pg_class c
              WHERE c.relnamespace = 'lms_django'::regnamespace AND c.relkind = 'r' LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), (SELECT max(id) FROM %s))', t, t);
        EXECUTE format('ANALYZE %s', t);
    END LOOP;
END
$$;

-- The mapping (kept in table dj_map for lms_cache.sql too).
\set dj_tables '{"users": "accounts_user", "courses": "courses_course", "enrollments": "courses_enrollment", "assignments": "assignments_assignment", "submissions": "assignments_assignmentsubmission", "grades": "assignments_grade", "materials": "materials_material", "material_progress": "materials_materialprogress", "material_views": "materials_materialview", "reports": "reports_report"}'
\set dj_columns '{"courses.title": "name", "enrollments.student_id": "user_id", "assignments.author_id": "created_by_id", "assignments.max_score": "max_points", "submissions.score": "points", "grades.graded_by": "graded_by_id", "material_progress.user_id": "student_id", "reports.kind": "report_type", "reports.subject_id": "object_id"}'
CREATE TABLE dj_map AS SELECT :'dj_tables'::jsonb AS tables, :'dj_columns'::jsonb AS columns;
CREATE FUNCTION dj_tables() RETURNS jsonb LANGUAGE sql AS $$ SELECT tables FROM dj_map $$;
CREATE FUNCTION dj_columns() RETURNS jsonb LANGUAGE sql AS $$ SELECT columns FROM dj_map $$;

-- How a mapped table reads.
SELECT mlcache.lms_relation(mlcache.lms_resolve('lms_django', dj_tables(), dj_columns()), 'material_progress');
SELECT mlcache.lms_relation(mlcache.lms_resolve('lms_django', dj_tables(), dj_columns()), 'submissions');

-- Every result equals the canonical one.
SELECT count(*) AS assignments,
       count(*) FILTER (WHERE mlcache.lms_assignment_stats_live(id, 'lms_django', dj_tables(), dj_columns())
                              = mlcache.lms_assignment_stats_live(id)) AS stats_equal,
       count(*) FILTER (WHERE mlcache.lms_analytics_assignment_live(id, 'lms_django', dj_tables(), dj_columns())
                              = mlcache.lms_analytics_assignment_live(id)) AS analytics_equal
  FROM lms.assignments;
SELECT count(*) AS users,
       count(*) FILTER (WHERE mlcache.lms_analytics_student_live(id, 'lms_django', dj_tables(), dj_columns())
                              = mlcache.lms_analytics_student_live(id)) AS equal
  FROM lms.users;
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE mlcache.lms_analytics_progress_live(u.id, c.id, 'lms_django', dj_tables(), dj_columns())
                              = mlcache.lms_analytics_progress_live(u.id, c.id)) AS equal
  FROM lms.users u, lms.courses c WHERE u.id % 50 = 0 OR u.id = 11;
SELECT count(*) AS courses,
       count(*) FILTER (WHERE mlcache.lms_analytics_engagement_live(id, 'lms_django', dj_tables(), dj_columns())
                              = mlcache.lms_analytics_engagement_live(id)) AS equal
  FROM lms.courses;
SELECT expect_error($$SELECT mlcache.lms_assignment_stats_live(999999, 'lms_django', dj_tables(), dj_columns())$$);
-- Unmapped, the Django schema has none of the canonical tables.
SELECT expect_error($$SELECT mlcache.lms_assignment_stats_live(1, 'lms_django')$$);
-- A column the mapping misses.
SELECT expect_error($$SELECT mlcache.lms_assignment_stats_live(1, 'lms_django', dj_tables(),
                                                               dj_columns() - 'submissions.score')$$);

-- Its materialized views hold the canonical values too.
SELECT mlcache.lms_create_views('lms_django', dj_tables(), dj_columns());
SELECT count(*) AS rows, count(*) FILTER (WHERE d.value = c.value) AS equal
  FROM lms_django.mlcache_assignment_stats d JOIN lms.mlcache_assignment_stats c USING (assignment_id);
SELECT count(*) AS rows, count(*) FILTER (WHERE d.value = c.value) AS equal
  FROM lms_django.mlcache_analytics_student d JOIN lms.mlcache_analytics_student c USING (student_id);
SELECT count(*) AS rows, count(*) FILTER (WHERE d.value = c.value) AS equal
  FROM lms_django.mlcache_analytics_engagement d JOIN lms.mlcache_analytics_engagement c USING (course_id);
SELECT count(*) AS rows, count(*) FILTER (WHERE d.value = c.value) AS equal
  FROM lms_django.mlcache_analytics_assignment d JOIN lms.mlcache_analytics_assignment c USING (assignment_id);
SELECT count(*) AS rows, count(*) FILTER (WHERE d.value = c.value) AS equal
  FROM lms_django.mlcache_analytics_progress d JOIN lms.mlcache_analytics_progress c USING (user_id, course_id);

-- lms_setup checks its mapping before defining anything.
SELECT expect_error($$SELECT mlcache.lms_setup('lms_django', '{"submission": "x"}')$$);
SELECT expect_error($$SELECT mlcache.lms_setup('lms_django', dj_tables(), '{"submissions.points": "points"}')$$);
SELECT expect_error($$SELECT mlcache.lms_setup('lms_django', dj_tables())$$);
SELECT expect_error($$SELECT mlcache.lms_setup('no_such_schema')$$);

-- The watch templates, rendered with the Django column names.
SELECT w.tbl, mlcache.lms_watch_keys(mlcache.lms_resolve('lms_django', dj_tables(), dj_columns()), w.tbl, w.keys)
           AS keys, w.views
  FROM mlcache.lms_watches() w ORDER BY w.tbl;

-- ---------------------------------------------------------------------------
-- lms_render substitutes each placeholder once: a mapped table name that
-- looks like a placeholder stays what it is.
-- ---------------------------------------------------------------------------
CREATE SCHEMA lms_render_check;
CREATE TABLE lms_render_check."u{courses}$1" (id bigint, username text);
SELECT mlcache.lms_render('SELECT * FROM {users} WHERE id = $1 OR {not_found:user:$1} IS NULL',
                          mlcache.lms_resolve('lms_render_check', '{"users": "u{courses}$1"}', '{}'));
SELECT mlcache.lms_render('SELECT * FROM {users} WHERE id = $1 OR {not_found:user:$1} IS NULL',
                          mlcache.lms_resolve('lms_render_check', '{"users": "u{courses}$1"}', '{}'), true);
DROP SCHEMA lms_render_check CASCADE;
