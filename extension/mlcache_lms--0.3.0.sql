-- mlcache_lms 0.3.0: the LMS pack for mlcache.
\echo Use "CREATE EXTENSION mlcache_lms CASCADE" to load this file. \quit

-- A canonical learning-management schema, a deterministic data generator,
-- the analytics queries (run live or through named cached definitions),
-- their materialized views (L3) and the watches that keep the cache fresh.
-- It uses only mlcache's SQL API (define, watch, fetch, warm, key_stats);
-- every object is in schema mlcache, next to the core's, so that callers'
-- SQL names them as before the pack was its own extension, and every
-- function pins its search_path.
--
-- Conventions of every analytics value (jsonb):
--   * numbers that are averages or rates are rounded (2 decimals; rates 4);
--   * timestamps are UTC, ISO 8601 without an offset ("2024-09-02T08:00:00"),
--     so a value never depends on the session's TimeZone or DateStyle;
--   * arrays are ordered (by id, date or score), so equal data give equal
--     values;
--   * a missing entity raises SQLSTATE P0002 (no_data_found), which is never
--     cached.
--
-- Keys of the cached definitions (each entity id is one key segment; every
-- key about one user shares the prefix analytics:user:<id>: so that one
-- prefix invalidation covers all of them):
--   assignment_stats            assignment_stats:{assignment}
--   analytics_assignment        analytics:assignment:{assignment}
--   analytics_student           analytics:user:{user}:student
--   analytics_progress          analytics:user:{user}:progress:{course}
--   analytics_engagement        analytics:engagement:{course}

-- ---------------------------------------------------------------------------
-- The logical model: the tables and columns the analytics read.
-- ---------------------------------------------------------------------------

-- Every logical column the pack reads, with its canonical type.  An existing
-- schema must provide these (under any name, see lms_setup's mappings);
-- other columns of the canonical schema (feedback, is_staff ...) are not
-- read.
CREATE FUNCTION lms_catalog(OUT tbl text, OUT col text, OUT typ text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('users', 'id', 'bigint'), ('users', 'username', 'text'),
           ('courses', 'id', 'bigint'), ('courses', 'title', 'text'),
           ('enrollments', 'course_id', 'bigint'), ('enrollments', 'student_id', 'bigint'),
           ('assignments', 'id', 'bigint'), ('assignments', 'course_id', 'bigint'),
           ('assignments', 'author_id', 'bigint'), ('assignments', 'title', 'text'),
           ('assignments', 'due_date', 'timestamptz'), ('assignments', 'max_score', 'numeric'),
           ('assignments', 'created_at', 'timestamptz'),
           ('submissions', 'id', 'bigint'), ('submissions', 'assignment_id', 'bigint'),
           ('submissions', 'student_id', 'bigint'), ('submissions', 'status', 'text'),
           ('submissions', 'score', 'numeric'), ('submissions', 'submitted_at', 'timestamptz'),
           ('submissions', 'graded_at', 'timestamptz'),
           ('grades', 'id', 'bigint'), ('grades', 'assignment_id', 'bigint'),
           ('grades', 'student_id', 'bigint'), ('grades', 'graded_by', 'bigint'),
           ('materials', 'id', 'bigint'), ('materials', 'course_id', 'bigint'),
           ('materials', 'title', 'text'),
           ('material_progress', 'material_id', 'bigint'), ('material_progress', 'user_id', 'bigint'),
           ('material_progress', 'progress_percentage', 'numeric'),
           ('material_progress', 'time_spent', 'integer'),
           ('material_progress', 'last_accessed', 'timestamptz'),
           ('material_views', 'material_id', 'bigint'), ('material_views', 'user_id', 'bigint'),
           ('material_views', 'viewed_at', 'timestamptz'),
           ('reports', 'kind', 'text'), ('reports', 'subject_id', 'bigint')
$$;

-- The full mapping for a schema: {"schema", "tables": {logical: actual},
-- "columns": {"table.column": actual}}, defaults filled in.  Unknown logical
-- names and non-string names are refused (22023).
CREATE FUNCTION lms_resolve(schema_name name, tables jsonb, columns jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'schema name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(coalesce(tables, '{}')) <> 'object' OR jsonb_typeof(coalesce(columns, '{}')) <> 'object' THEN
        RAISE EXCEPTION 'table and column mappings must be json objects' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(k) INTO bad FROM jsonb_object_keys(coalesce(tables, '{}')) k
     WHERE k NOT IN (SELECT tbl FROM mlcache.lms_catalog());
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown lms table "%"', bad USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Tables are users, courses, enrollments, assignments, submissions, grades, materials, material_progress, material_views, reports.';
    END IF;
    SELECT min(k) INTO bad FROM jsonb_object_keys(coalesce(columns, '{}')) k
     WHERE k NOT IN (SELECT tbl || '.' || col FROM mlcache.lms_catalog());
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown lms column "%"', bad USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Columns are written "table.column" and must be among those mlcache.lms_catalog() lists.';
    END IF;
    SELECT min(e.key) INTO bad FROM (SELECT * FROM jsonb_each(coalesce(tables, '{}'))
                                     UNION ALL SELECT * FROM jsonb_each(coalesce(columns, '{}'))) e
     WHERE jsonb_typeof(e.value) <> 'string' OR e.value #>> '{}' = '';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the name mapped to "%" must be a non-empty string', bad USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN jsonb_build_object(
        'schema', schema_name,
        'tables', (SELECT jsonb_object_agg(t, coalesce(tables ->> t, t))
                     FROM (SELECT DISTINCT tbl AS t FROM mlcache.lms_catalog()) d),
        'columns', (SELECT jsonb_object_agg(tbl || '.' || col, coalesce(columns ->> (tbl || '.' || col), col))
                      FROM mlcache.lms_catalog()));
END
$$;

-- The actual table of a logical one, as a regclass; 42P01 if it is missing.
CREATE FUNCTION lms_table(m jsonb, tbl text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := to_regclass(format('%I.%I', m ->> 'schema', m -> 'tables' ->> tbl));
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table %.% (lms table %) does not exist',
            quote_ident(m ->> 'schema'), quote_ident(m -> 'tables' ->> tbl), tbl
            USING ERRCODE = 'undefined_table';
    END IF;
    RETURN rel;
END
$$;

-- A logical table as a subquery that renames (and, where the types differ,
-- converts) the actual columns to the canonical ones, e.g.
--   (SELECT "id" AS id, "points"::numeric AS score, ... FROM "app"."t")
-- Simple renaming subqueries are pulled up by the planner, so indexes on the
-- actual columns are used.  A missing column is 42703.
CREATE FUNCTION lms_relation(m jsonb, tbl text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := mlcache.lms_table(m, tbl);
    c record;
    actual text;
    atype regtype;
    items text[] := '{}';
BEGIN
    FOR c IN SELECT col, typ FROM mlcache.lms_catalog() WHERE lms_catalog.tbl = lms_relation.tbl ORDER BY col LOOP
        actual := m -> 'columns' ->> (tbl || '.' || c.col);
        SELECT a.atttypid INTO atype FROM pg_attribute a
         WHERE a.attrelid = rel AND a.attname = actual AND a.attnum > 0 AND NOT a.attisdropped;
        IF atype IS NULL THEN
            RAISE EXCEPTION 'column "%" of table % (lms column %.%) does not exist', actual, rel, tbl, c.col
                USING ERRCODE = 'undefined_column';
        END IF;
        items := items || (format(CASE WHEN atype = c.typ::regtype THEN '%I'
                                       WHEN atype = 'interval'::regtype AND c.typ = 'integer'
                                         THEN 'extract(epoch FROM %I)::integer'
                                       WHEN c.typ IN ('numeric', 'integer') THEN '%I::' || c.typ
                                       ELSE '%I' END, actual)
                           || format(' AS %I', c.col));
    END LOOP;
    RETURN format('(SELECT %s FROM %I.%I)', array_to_string(items, ', '),
                  m ->> 'schema', m -> 'tables' ->> tbl);
END
$$;

-- ---------------------------------------------------------------------------
-- The analytics queries, as templates.  {table} is a logical table (see
-- lms_relation); {not_found:kind:$n} raises P0002 for parameter $n.  Columns
-- are written with their canonical names.  Each template returns one row
-- with one jsonb column.
-- ---------------------------------------------------------------------------

-- Raise "<kind> <id> does not exist" with SQLSTATE P0002.  Called by the
-- queries for a missing entity (it never returns).
CREATE FUNCTION lms_not_found(kind text, id bigint)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% % does not exist', kind, coalesce(id::text, 'null')
        USING ERRCODE = 'no_data_found';
END
$$;

-- assignment_stats($1 = assignment id).  Definitions:
--   submitted = status <> 'draft'; graded = submitted with a non-NULL score.
--   statistics (over graded scores): mean, median, std_dev (population) rounded
--     to 2 decimals, min, max; all NULL when nothing is graded.
--     distribution: 10 buckets of max_score/10, [{"from","to","count"}], a
--     score in bucket i when from <= score < to (max_score and above in the
--     last, below 0 in the first); NULL when max_score is NULL or <= 0.
--   submission_stats: count (submitted), late_count (submitted_at > due_date),
--     ungraded_count (submitted, score NULL), submission_rate (distinct
--     submitting students / students enrolled in the course, 4 decimals; 0
--     when nobody is enrolled).  All 0 for an assignment without submissions.
--   time_stats (seconds, 2 decimals; NULL when there is nothing to average):
--     avg_time_to_grade = graded_at - submitted_at, avg_response_time =
--     submitted_at - the assignment's created_at.
CREATE FUNCTION lms_template_assignment_stats()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN a.id IS NULL THEN {not_found:assignment:$1}
ELSE jsonb_build_object(
    'assignment_id', p.id,
    'statistics', jsonb_build_object(
        'mean', round(g.mean, 2), 'median', round(g.median, 2), 'std_dev', round(g.std_dev, 2),
        'min', g.min, 'max', g.max, 'distribution', d.buckets),
    'submission_stats', jsonb_build_object(
        'count', s.n, 'late_count', s.late, 'ungraded_count', s.ungraded,
        'submission_rate', round(CASE WHEN e.n = 0 THEN 0 ELSE s.students::numeric / e.n END, 4)),
    'time_stats', jsonb_build_object(
        'avg_time_to_grade', round(s.to_grade, 2), 'avg_response_time', round(s.response, 2)))
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {assignments} a ON a.id = p.id
LEFT JOIN LATERAL (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE x.submitted_at > a.due_date) AS late,
           count(*) FILTER (WHERE x.score IS NULL) AS ungraded,
           count(DISTINCT x.student_id) AS students,
           avg(extract(epoch FROM x.graded_at - x.submitted_at)) AS to_grade,
           avg(extract(epoch FROM x.submitted_at - a.created_at)) AS response
      FROM {submissions} x
     WHERE x.assignment_id = p.id AND x.status <> 'draft') s ON true
LEFT JOIN LATERAL (
    SELECT avg(x.score) AS mean, stddev_pop(x.score) AS std_dev, min(x.score) AS min, max(x.score) AS max,
           (percentile_disc(0.5) WITHIN GROUP (ORDER BY x.score)
            + percentile_disc(0.5) WITHIN GROUP (ORDER BY x.score DESC)) / 2 AS median
      FROM {submissions} x
     WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.score IS NOT NULL) g ON true
LEFT JOIN LATERAL (
    SELECT jsonb_agg(jsonb_build_object('from', round(a.max_score * (b - 1) / 10, 2),
                                        'to', round(a.max_score * b / 10, 2),
                                        'count', coalesce(c.n, 0)) ORDER BY b) AS buckets
      FROM generate_series(1, 10) b
      LEFT JOIN (SELECT least(greatest(width_bucket(x.score, 0, a.max_score, 10), 1), 10) AS bucket,
                        count(*) AS n
                   FROM {submissions} x
                  WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.score IS NOT NULL
                    AND a.max_score > 0
                  GROUP BY 1) c ON c.bucket = b
     WHERE a.max_score > 0) d ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {enrollments} y WHERE y.course_id = a.course_id) e ON true
$q$ $tmpl$;

-- analytics_student($1 = user id): submission_count (submitted),
-- graded_count, late_count, average_score, average_percentage (score * 100 /
-- max_score), grades_received (rows in grades), course_count and courses
-- (enrolled course ids), progress_average, materials_completed (progress
-- 100) and time_spent (seconds) over the user's material progress.
CREATE FUNCTION lms_template_analytics_student()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN u.id IS NULL THEN {not_found:user:$1}
ELSE jsonb_build_object(
    'student_id', p.id, 'username', u.username,
    'submission_count', s.n, 'graded_count', s.graded, 'late_count', s.late,
    'average_score', round(s.avg_score, 2), 'average_percentage', round(s.avg_pct, 2),
    'grades_received', gr.n,
    'course_count', e.n, 'courses', e.ids,
    'progress_average', round(mp.avg, 2), 'materials_completed', mp.completed,
    'time_spent', mp.time_spent)
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {users} u ON u.id = p.id
LEFT JOIN LATERAL (
    SELECT count(*) AS n, count(x.score) AS graded,
           count(*) FILTER (WHERE x.submitted_at > a.due_date) AS late,
           avg(x.score) AS avg_score,
           avg(x.score * 100 / a.max_score) FILTER (WHERE a.max_score > 0) AS avg_pct
      FROM {submissions} x JOIN {assignments} a ON a.id = x.assignment_id
     WHERE x.student_id = p.id AND x.status <> 'draft') s ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {grades} y WHERE y.student_id = p.id) gr ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n, coalesce(jsonb_agg(y.course_id ORDER BY y.course_id), '[]') AS ids
      FROM {enrollments} y WHERE y.student_id = p.id) e ON true
LEFT JOIN LATERAL (
    SELECT avg(y.progress_percentage) AS avg,
           count(*) FILTER (WHERE y.progress_percentage >= 100) AS completed,
           coalesce(sum(y.time_spent), 0) AS time_spent
      FROM {material_progress} y WHERE y.user_id = p.id) mp ON true
$q$ $tmpl$;

-- analytics_assignment($1 = assignment id): engagement over time, distinct
-- from assignment_stats: the assignment's course_id, author_id, title,
-- due_date; submissions_per_day ([{"date","count"}] by UTC day of
-- submitted_at), first_submission, last_submission; top_scores (the 5 best,
-- [{"student_id","score"}], ties by student id); grade_events (rows in
-- grades) and graders (distinct graded_by).
CREATE FUNCTION lms_template_analytics_assignment()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN a.id IS NULL THEN {not_found:assignment:$1}
ELSE jsonb_build_object(
    'assignment_id', p.id, 'course_id', a.course_id, 'author_id', a.author_id, 'title', a.title,
    'due_date', to_jsonb(a.due_date AT TIME ZONE 'UTC'),
    'submissions_per_day', d.days,
    'first_submission', to_jsonb(d.first AT TIME ZONE 'UTC'),
    'last_submission', to_jsonb(d.last AT TIME ZONE 'UTC'),
    'top_scores', t.top,
    'grade_events', gr.n, 'graders', gr.graders)
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {assignments} a ON a.id = p.id
LEFT JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object('date', z.day, 'count', z.n) ORDER BY z.day), '[]') AS days,
           min(z.first) AS first, max(z.last) AS last
      FROM (SELECT (x.submitted_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n,
                   min(x.submitted_at) AS first, max(x.submitted_at) AS last
              FROM {submissions} x
             WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.submitted_at IS NOT NULL
             GROUP BY 1) z) d ON true
LEFT JOIN LATERAL (
    SELECT coalesce(jsonb_agg(jsonb_build_object('student_id', z.student_id, 'score', z.score)
                              ORDER BY z.score DESC, z.student_id), '[]') AS top
      FROM (SELECT x.student_id, x.score FROM {submissions} x
             WHERE x.assignment_id = p.id AND x.status <> 'draft' AND x.score IS NOT NULL
             ORDER BY x.score DESC, x.student_id LIMIT 5) z) t ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS n, count(DISTINCT y.graded_by) AS graders
      FROM {grades} y WHERE y.assignment_id = p.id) gr ON true
$q$ $tmpl$;

-- analytics_progress($1 = user id, $2 = course id): every material of the
-- course ([{"material_id","title","progress","time_spent","last_accessed",
-- "views"}], progress and time 0 when not started), material_count,
-- completed (progress 100), average_progress (not started counts as 0; NULL
-- without materials) and time_spent (seconds).
CREATE FUNCTION lms_template_analytics_progress()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN u.id IS NULL THEN {not_found:user:$1}
            WHEN c.id IS NULL THEN {not_found:course:$2}
ELSE jsonb_build_object(
    'user_id', p.uid, 'course_id', p.cid,
    'material_count', agg.n, 'completed', agg.completed,
    'average_progress', round(agg.avg, 2), 'time_spent', agg.time_spent,
    'materials', agg.list)
END
FROM (SELECT $1::bigint AS uid, $2::bigint AS cid) p
LEFT JOIN {users} u ON u.id = p.uid
LEFT JOIN {courses} c ON c.id = p.cid
LEFT JOIN LATERAL (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE mp.progress_percentage >= 100) AS completed,
           avg(coalesce(mp.progress_percentage, 0)) AS avg,
           coalesce(sum(mp.time_spent), 0) AS time_spent,
           coalesce(jsonb_agg(jsonb_build_object(
               'material_id', m.id, 'title', m.title,
               'progress', coalesce(mp.progress_percentage, 0),
               'time_spent', coalesce(mp.time_spent, 0),
               'last_accessed', to_jsonb(mp.last_accessed AT TIME ZONE 'UTC'),
               'views', v.n) ORDER BY m.id), '[]') AS list
      FROM {materials} m
      LEFT JOIN {material_progress} mp ON mp.material_id = m.id AND mp.user_id = p.uid
      LEFT JOIN LATERAL (SELECT count(*) AS n FROM {material_views} w
                          WHERE w.material_id = m.id AND w.user_id = p.uid) v ON true
     WHERE m.course_id = p.cid) agg ON true
$q$ $tmpl$;

-- analytics_engagement($1 = course id): reference_time (the latest viewed_at
-- in material_views, over all courses: the data's "now", so results do not
-- depend on the clock), enrolled_students, active_students_7d (enrolled
-- students who viewed a material of the course in (reference - 7 days,
-- reference]), total_views, and per material [{"material_id","title",
-- "views","unique_viewers"}].
CREATE FUNCTION lms_template_analytics_engagement()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $tmpl$ SELECT $q$
SELECT CASE WHEN c.id IS NULL THEN {not_found:course:$1}
ELSE jsonb_build_object(
    'course_id', p.id,
    'reference_time', to_jsonb(r.ref AT TIME ZONE 'UTC'),
    'enrolled_students', e.n,
    'active_students_7d', act.n,
    'total_views', mv.total,
    'materials', mv.list)
END
FROM (SELECT $1::bigint AS id) p
LEFT JOIN {courses} c ON c.id = p.id
CROSS JOIN (SELECT max(w.viewed_at) AS ref FROM {material_views} w) r
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {enrollments} y WHERE y.course_id = p.id) e ON true
LEFT JOIN LATERAL (
    SELECT count(DISTINCT w.user_id) AS n
      FROM {material_views} w JOIN {materials} m ON m.id = w.material_id
     WHERE m.course_id = p.id AND w.viewed_at > r.ref - interval '7 days'
       AND EXISTS (SELECT FROM {enrollments} y WHERE y.course_id = p.id AND y.student_id = w.user_id)) act ON true
LEFT JOIN LATERAL (
    SELECT coalesce(sum(z.views), 0) AS total,
           coalesce(jsonb_agg(jsonb_build_object('material_id', z.id, 'title', z.title,
                                                 'views', z.views, 'unique_viewers', z.viewers)
                              ORDER BY z.id), '[]') AS list
      FROM (SELECT m.id, m.title, count(w.material_id) AS views, count(DISTINCT w.user_id) AS viewers
              FROM {materials} m LEFT JOIN {material_views} w ON w.material_id = m.id
             WHERE m.course_id = p.id
             GROUP BY m.id, m.title) z) mv ON true
$q$ $tmpl$;

-- The template of a definition by name; 22023 for an unknown name.
CREATE FUNCTION lms_template(name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE name
        WHEN 'assignment_stats' THEN RETURN mlcache.lms_template_assignment_stats();
        WHEN 'analytics_student' THEN RETURN mlcache.lms_template_analytics_student();
        WHEN 'analytics_assignment' THEN RETURN mlcache.lms_template_analytics_assignment();
        WHEN 'analytics_progress' THEN RETURN mlcache.lms_template_analytics_progress();
        WHEN 'analytics_engagement' THEN RETURN mlcache.lms_template_analytics_engagement();
        ELSE RAISE EXCEPTION 'unknown lms query "%"', name USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Queries are assignment_stats, analytics_student, analytics_assignment, analytics_progress, analytics_engagement.';
    END CASE;
END
$$;

-- Render a template for a resolved mapping m.  for_view: the text used
-- inside a materialized view, where $n becomes the column mv_src.p<n> of the
-- row's entity and a missing entity cannot happen (NULL instead of raising).
-- One pass over the template: every placeholder is replaced once, and what
-- replaced it (names from the mapping, which may contain "{" or "$") is
-- never scanned again.
CREATE FUNCTION lms_render(tmpl text, m jsonb, for_view boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    placeholder constant text := '\{not_found:([a-z_]+):\$([0-9])\}|\{([a-z_]+)\}|\$([0-9])';
    parts text[] := regexp_split_to_array(tmpl, placeholder);
    q text := parts[1];
    r text[];
    i integer := 1;
BEGIN
    FOR r IN SELECT regexp_matches(tmpl, placeholder, 'g') LOOP
        i := i + 1;
        q := q || CASE WHEN r[1] IS NOT NULL AND for_view THEN 'NULL::jsonb'
                       WHEN r[1] IS NOT NULL THEN format('mlcache.lms_not_found(%L, $%s::bigint)', r[1], r[2])
                       WHEN r[3] IS NOT NULL THEN mlcache.lms_relation(m, r[3])
                       WHEN for_view THEN 'mv_src.p' || r[4]
                       ELSE '$' || r[4] END
               || parts[i];
    END LOOP;
    RETURN btrim(q, E' \n');
END
$$;

-- The query text of one analytics definition, with positional parameters
-- $1..$n, for the tables of schema_name (mapped as in lms_setup).  Its
-- single row's single jsonb column is the value.
CREATE FUNCTION lms_query(name text, schema_name name DEFAULT 'lms',
                          tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT mlcache.lms_render(mlcache.lms_template(name), mlcache.lms_resolve(schema_name, tables, columns))
$$;

-- ---------------------------------------------------------------------------
-- Live (uncached) runs of the queries: the reference implementations.
-- ---------------------------------------------------------------------------

CREATE FUNCTION lms_assignment_stats_live(assignment_id bigint, schema_name name DEFAULT 'lms',
                                          tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('assignment_stats', schema_name, tables, columns) INTO v USING assignment_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_student_live(user_id bigint, schema_name name DEFAULT 'lms',
                                           tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_student', schema_name, tables, columns) INTO v USING user_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_assignment_live(assignment_id bigint, schema_name name DEFAULT 'lms',
                                              tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_assignment', schema_name, tables, columns) INTO v USING assignment_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_progress_live(user_id bigint, course_id bigint, schema_name name DEFAULT 'lms',
                                            tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_progress', schema_name, tables, columns) INTO v USING user_id, course_id;
    RETURN v;
END
$$;

CREATE FUNCTION lms_analytics_engagement_live(course_id bigint, schema_name name DEFAULT 'lms',
                                              tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE mlcache.lms_query('analytics_engagement', schema_name, tables, columns) INTO v USING course_id;
    RETURN v;
END
$$;

-- ---------------------------------------------------------------------------
-- Definitions, materialized views (L3) and watches.
-- ---------------------------------------------------------------------------

-- The cached definitions: key template, TTLs (seconds) and their L3
-- materialized view: its name (in the LMS schema), the logical table whose
-- rows are its entities, the entity's columns that give $1, $2 ... and the
-- view's parameter columns.  analytics_progress has a row per enrolment
-- (student, course) of an existing user and course.
CREATE FUNCTION lms_definitions(OUT name text, OUT key text, OUT l1_ttl integer, OUT l2_ttl integer,
                                OUT view_name text, OUT entity text, OUT entity_cols text[],
                                OUT params text[])
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('assignment_stats', 'assignment_stats:{1}', 300, 300,
            'mlcache_assignment_stats', 'assignments', ARRAY['id'], ARRAY['assignment_id']),
           ('analytics_student', 'analytics:user:{1}:student', 60, 3600,
            'mlcache_analytics_student', 'users', ARRAY['id'], ARRAY['student_id']),
           ('analytics_assignment', 'analytics:assignment:{1}', 60, 3600,
            'mlcache_analytics_assignment', 'assignments', ARRAY['id'], ARRAY['assignment_id']),
           ('analytics_progress', 'analytics:user:{1}:progress:{2}', 60, 3600,
            'mlcache_analytics_progress', 'enrollments', ARRAY['student_id', 'course_id'],
            ARRAY['user_id', 'course_id']),
           ('analytics_engagement', 'analytics:engagement:{1}', 60, 3600,
            'mlcache_analytics_engagement', 'courses', ARRAY['id'], ARRAY['course_id'])
$$;

-- The watches, with logical column names in the {column} placeholders and
-- the definitions whose materialized views depend on the table.  Every
-- table a query reads is watched, so no cached value outlives a commit that
-- changes its result:
--   users              a user's keys (username, existence);
--   courses            the course's engagement; every user's keys (progress
--                      checks that the course exists; course edits are rare);
--   enrollments        every assignment's stats (submission_rate: the key
--                      names the assignment, not the course), the student's
--                      analytics, the course's engagement;
--   assignments        its stats and analytics; every user's keys (a student's
--                      late count and percentages use due_date and max_score);
--   submissions        the assignment's stats and analytics, the student's
--                      analytics;
--   grades             the assignment's analytics (grade_events, graders),
--                      the student's analytics (grades_received), and, as
--                      the app does on a grade change, the assignment's
--                      stats (which read submissions.score, not grades);
--   materials          the course's engagement; every user's keys (progress
--                      lists the course's materials);
--   material_progress  all of that user's keys;
--   material_views     that user's progress keys; every course's engagement
--                      (the row names a material, not a course, and the
--                      reference time is global);
--   reports            no query reads reports: a report about <kind> <id>
--                      invalidates every key it covers, so a generated
--                      report starts from a fresh computation:
--                      analytics:<kind>:<id>, everything under
--                      analytics:<kind>:<id>: and <kind>_stats:<id>; that is,
--                      kind assignment: assignment_stats:<id> and
--                      analytics:assignment:<id>; user: all of the user's
--                      keys (student, progress in every course);
--                      engagement: the course's analytics:engagement:<id>.
--                      (user_stats:<id> and engagement_stats:<id> name no
--                      key: harmless.)  A TRUNCATE of reports invalidates
--                      every key (the static prefix of {kind}_stats is
--                      empty).  No view reads reports, so none is dirtied:
--                      a view answers only while it is fresh.
CREATE FUNCTION lms_watches(OUT tbl text, OUT keys text[], OUT views text[])
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    VALUES ('users', ARRAY['analytics:user:{id}:*'], ARRAY['analytics_student', 'analytics_progress']),
           ('courses', ARRAY['analytics:engagement:{id}', 'analytics:user:*'],
            ARRAY['analytics_engagement', 'analytics_progress']),
           ('enrollments', ARRAY['assignment_stats:*', 'analytics:user:{student_id}:student',
                                 'analytics:engagement:{course_id}'],
            ARRAY['assignment_stats', 'analytics_student', 'analytics_engagement', 'analytics_progress']),
           ('assignments', ARRAY['assignment_stats:{id}', 'analytics:assignment:{id}', 'analytics:user:*'],
            ARRAY['assignment_stats', 'analytics_student', 'analytics_assignment']),
           ('submissions', ARRAY['assignment_stats:{assignment_id}', 'analytics:assignment:{assignment_id}',
                                 'analytics:user:{student_id}:student'],
            ARRAY['assignment_stats', 'analytics_student', 'analytics_assignment']),
           ('grades', ARRAY['assignment_stats:{assignment_id}', 'analytics:assignment:{assignment_id}',
                            'analytics:user:{student_id}:student'],
            ARRAY['analytics_student', 'analytics_assignment']),
           ('materials', ARRAY['analytics:engagement:{course_id}', 'analytics:user:*'],
            ARRAY['analytics_engagement', 'analytics_progress']),
           ('material_progress', ARRAY['analytics:user:{user_id}:*'],
            ARRAY['analytics_student', 'analytics_progress']),
           ('material_views', ARRAY['analytics:user:{user_id}:progress:*', 'analytics:engagement:*'],
            ARRAY['analytics_engagement', 'analytics_progress']),
           ('reports', ARRAY['analytics:{kind}:{subject_id}', 'analytics:{kind}:{subject_id}:*',
                             '{kind}_stats:{subject_id}'],
            ARRAY[]::text[])
$$;

-- Key templates of one watch with the logical placeholders replaced by the
-- actual column names of the mapping m.
CREATE FUNCTION lms_watch_keys(m jsonb, tbl text, keys text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg((SELECT string_agg(CASE WHEN part ~ '^\{[a-z_]+\}$'
                                             THEN '{' || (m -> 'columns' ->> (tbl || '.' || btrim(part, '{}'))) || '}'
                                             ELSE part END, '' ORDER BY i)
                        FROM regexp_matches(k, '\{[a-z_]+\}|[^{]+', 'g') WITH ORDINALITY r(parts, i),
                             LATERAL (SELECT r.parts[1] AS part) x)
                     ORDER BY o)
      FROM unnest(keys) WITH ORDINALITY u(k, o)
$$;

-- (Re)create the materialized view of every definition in schema_name: the
-- parameter columns (one row per entity, a UNIQUE index on them, so
-- REFRESH ... CONCURRENTLY works) and "value", exactly what the query
-- returns for those parameters.  Returns {definition: view}.  An existing
-- view is dropped and created again, so after lms_setup call lms_setup
-- again rather than this alone (the definitions name the view's oid).
-- The rows of a view: the distinct values p1, p2 ... of the entity's
-- columns.  Enrolments count only with an existing user and course (a
-- mapped schema may lack the foreign keys), so that every row has a value.
CREATE FUNCTION lms_view_entities(m jsonb, entity text, cols text[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('SELECT DISTINCT %s FROM %s e', 
                  (SELECT string_agg(format('e.%I::bigint AS p%s', c, i), ', ' ORDER BY i)
                     FROM unnest(cols) WITH ORDINALITY x(c, i)),
                  mlcache.lms_relation(m, entity))
           || CASE WHEN entity = 'enrollments'
                   THEN format(' WHERE EXISTS (SELECT FROM %s u WHERE u.id = e.student_id)'
                               ' AND EXISTS (SELECT FROM %s c WHERE c.id = e.course_id)',
                               mlcache.lms_relation(m, 'users'), mlcache.lms_relation(m, 'courses'))
                   ELSE '' END
$$;

CREATE FUNCTION lms_create_views(schema_name name DEFAULT 'lms', tables jsonb DEFAULT '{}',
                                 columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    d record;
    made jsonb := '{}';
BEGIN
    FOR d IN SELECT * FROM mlcache.lms_definitions() LOOP
        IF to_regclass(format('%I.%I', schema_name, d.view_name)) IS NOT NULL THEN
            EXECUTE format('DROP MATERIALIZED VIEW %I.%I', schema_name, d.view_name);
        END IF;
        EXECUTE format('CREATE MATERIALIZED VIEW %I.%I AS SELECT %s, (%s) AS value '
                       'FROM (%s) mv_src',
                       schema_name, d.view_name,
                       (SELECT string_agg(format('mv_src.p%s AS %I', i, c), ', ' ORDER BY i)
                          FROM unnest(d.params) WITH ORDINALITY x(c, i)),
                       mlcache.lms_render(mlcache.lms_template(d.name), m, true),
                       mlcache.lms_view_entities(m, d.entity, d.entity_cols));
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (%s)',
                       d.view_name || '_key', schema_name, d.view_name,
                       (SELECT string_agg(format('%I', c), ', ' ORDER BY i)
                          FROM unnest(d.params) WITH ORDINALITY x(c, i)));
        made := made || jsonb_build_object(d.name, format('%I.%I', schema_name, d.view_name));
    END LOOP;
    RETURN made;
END
$$;

-- The warm queries (templates, as lms_template's): the parameter sets that
-- warm() fills before peak hours.  They are relative to the data's
-- reference time, its latest activity (the latest material view or
-- submission), not to the clock, so that the same data give the same sets:
--   active students     a material view or a submission in the 24 hours up
--                       to the reference time;
--   recent assignments  created in the 14 days up to the reference time,
--                       or due within 7 days of it (before or after);
--   assignment_stats, analytics_assignment   the recent assignments;
--   analytics_student                         the active students;
--   analytics_progress  (student, course) of each activity of an active
--                       student in those 24 hours (the material's or the
--                       assignment's course);
--   analytics_engagement  the courses of those activities.
-- Each set is bounded by a day's activity (or two weeks' assignments), not
-- by the size of the tables.
CREATE FUNCTION lms_warm_template(name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ref constant text := $q$WITH ref AS (SELECT greatest((SELECT max(w.viewed_at) FROM {material_views} w),
                                    (SELECT max(x.submitted_at) FROM {submissions} x)) AS t)
$q$;
    activity constant text := $q$SELECT w.user_id AS student, m.course_id AS course
  FROM {material_views} w JOIN {materials} m ON m.id = w.material_id, ref
 WHERE w.viewed_at > ref.t - interval '1 day'
UNION
SELECT x.student_id, a.course_id
  FROM {submissions} x JOIN {assignments} a ON a.id = x.assignment_id, ref
 WHERE x.submitted_at > ref.t - interval '1 day'$q$;
BEGIN
    CASE name
        WHEN 'assignment_stats', 'analytics_assignment' THEN
            RETURN ref || $q$SELECT a.id FROM {assignments} a, ref
 WHERE a.created_at > ref.t - interval '14 days'
    OR a.due_date BETWEEN ref.t - interval '7 days' AND ref.t + interval '7 days'
 ORDER BY a.id$q$;
        WHEN 'analytics_student' THEN
            RETURN ref || 'SELECT DISTINCT s.student FROM (' || activity || ') s ORDER BY 1';
        WHEN 'analytics_progress' THEN
            RETURN ref || 'SELECT s.student, s.course FROM (' || activity || ') s ORDER BY 1, 2';
        WHEN 'analytics_engagement' THEN
            RETURN ref || 'SELECT DISTINCT s.course FROM (' || activity || ') s ORDER BY 1';
        ELSE RAISE EXCEPTION 'unknown lms query "%"', name USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END
$$;

-- One call: materialized views, definitions (mlcache.define), their warm
-- queries (mlcache.set_warm_query, see lms_warm_template) and watches
-- (mlcache.watch) for the LMS tables of schema_name.  tables maps logical
-- table names to actual ones, columns maps "table.column" to actual column
-- names; what is not mapped keeps its canonical name.  Definitions are
-- global: the last lms_setup wins.  A table's existing watch is replaced.
-- Definitions run as their owner (the caller); let the application's role
-- read them with mlcache.grant_fetch(name, role).
CREATE FUNCTION lms_setup(schema_name name DEFAULT 'lms', tables jsonb DEFAULT '{}',
                          columns jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    views jsonb := mlcache.lms_create_views(schema_name, tables, columns);
    d record;
    w record;
    defs jsonb := '[]';
    watches jsonb := '[]';
    k text[];
    v regclass[];
BEGIN
    FOR d IN SELECT * FROM mlcache.lms_definitions() LOOP
        -- define(name, query, key, l1_ttl, l2_ttl, l3_view, l3_columns, l3_value)
        PERFORM mlcache.define(d.name, mlcache.lms_render(mlcache.lms_template(d.name), m), d.key,
                               d.l1_ttl, d.l2_ttl, (views ->> d.name)::regclass,
                               d.params, 'value');
        PERFORM mlcache.set_warm_query(d.name, mlcache.lms_render(mlcache.lms_warm_template(d.name), m));
        defs := defs || jsonb_build_object('name', d.name, 'key', d.key, 'l1_ttl', d.l1_ttl,
                                           'l2_ttl', d.l2_ttl, 'l3_view', views ->> d.name);
    END LOOP;
    FOR w IN SELECT * FROM mlcache.lms_watches() LOOP
        k := mlcache.lms_watch_keys(m, w.tbl, w.keys);
        v := ARRAY(SELECT (views ->> x)::regclass FROM unnest(w.views) x);
        PERFORM mlcache.watch(mlcache.lms_table(m, w.tbl), k, v);
        watches := watches || jsonb_build_object('table', mlcache.lms_table(m, w.tbl)::text,
                                                 'keys', to_jsonb(k), 'views', to_jsonb(v::text[]));
    END LOOP;
    RETURN jsonb_build_object('schema', schema_name, 'tables', m -> 'tables', 'columns', m -> 'columns',
                              'definitions', defs, 'watches', watches);
END
$$;

-- ---------------------------------------------------------------------------
-- The canonical schema and the data generator.
-- ---------------------------------------------------------------------------

-- Create the canonical LMS tables (as a Django app's models would) in
-- schema_name, created if missing.  Every foreign key is indexed; a table
-- that already exists is an error (42P07).
CREATE FUNCTION lms_create_schema(schema_name name DEFAULT 'lms')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF schema_name IS NULL THEN
        RAISE EXCEPTION 'schema name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regnamespace(quote_ident(schema_name)) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', schema_name);
    END IF;
    EXECUTE format($ddl$
        CREATE TABLE %1$I.users (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            username    text NOT NULL UNIQUE,
            is_teacher  boolean NOT NULL DEFAULT false,
            is_staff    boolean NOT NULL DEFAULT false,
            date_joined timestamptz NOT NULL DEFAULT now());
        CREATE TABLE %1$I.courses (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            title       text NOT NULL,
            teacher_id  bigint REFERENCES %1$I.users ON DELETE SET NULL,
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.courses (teacher_id);
        CREATE TABLE %1$I.enrollments (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            course_id   bigint NOT NULL REFERENCES %1$I.courses ON DELETE CASCADE,
            student_id  bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            enrolled_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (course_id, student_id));
        CREATE INDEX ON %1$I.enrollments (student_id);
        CREATE TABLE %1$I.assignments (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            course_id   bigint NOT NULL REFERENCES %1$I.courses ON DELETE CASCADE,
            author_id   bigint REFERENCES %1$I.users ON DELETE SET NULL,
            title       text NOT NULL,
            due_date    timestamptz,
            max_score   numeric NOT NULL DEFAULT 100 CHECK (max_score > 0),
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.assignments (course_id);
        CREATE INDEX ON %1$I.assignments (author_id);
        CREATE TABLE %1$I.submissions (
            id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            assignment_id bigint NOT NULL REFERENCES %1$I.assignments ON DELETE CASCADE,
            student_id    bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            status        text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'submitted', 'graded', 'returned')),
            score         numeric CHECK (score >= 0),
            feedback      text NOT NULL DEFAULT '',
            submitted_at  timestamptz,
            graded_at     timestamptz,
            UNIQUE (assignment_id, student_id));
        CREATE INDEX ON %1$I.submissions (student_id);
        CREATE INDEX ON %1$I.submissions (submitted_at);
        CREATE TABLE %1$I.grades (
            id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            submission_id bigint NOT NULL REFERENCES %1$I.submissions ON DELETE CASCADE,
            assignment_id bigint NOT NULL REFERENCES %1$I.assignments ON DELETE CASCADE,
            student_id    bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            score         numeric NOT NULL CHECK (score >= 0),
            graded_by     bigint REFERENCES %1$I.users ON DELETE SET NULL,
            created_at    timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.grades (submission_id);
        CREATE INDEX ON %1$I.grades (assignment_id);
        CREATE INDEX ON %1$I.grades (student_id);
        CREATE INDEX ON %1$I.grades (graded_by);
        CREATE TABLE %1$I.materials (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            course_id   bigint NOT NULL REFERENCES %1$I.courses ON DELETE CASCADE,
            title       text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.materials (course_id);
        CREATE TABLE %1$I.material_progress (
            id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            material_id         bigint NOT NULL REFERENCES %1$I.materials ON DELETE CASCADE,
            user_id             bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            progress_percentage numeric NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
            time_spent          integer NOT NULL DEFAULT 0 CHECK (time_spent >= 0),  -- seconds
            last_accessed       timestamptz,
            UNIQUE (user_id, material_id));
        CREATE INDEX ON %1$I.material_progress (material_id);
        CREATE TABLE %1$I.material_views (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            material_id bigint NOT NULL REFERENCES %1$I.materials ON DELETE CASCADE,
            user_id     bigint NOT NULL REFERENCES %1$I.users ON DELETE CASCADE,
            viewed_at   timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.material_views (material_id);
        CREATE INDEX ON %1$I.material_views (user_id, material_id);
        CREATE INDEX ON %1$I.material_views (viewed_at);
        CREATE TABLE %1$I.reports (
            id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            kind        text NOT NULL CHECK (kind IN ('assignment', 'user', 'engagement')),
            subject_id  bigint NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now());
        CREATE INDEX ON %1$I.reports (kind, subject_id);
    $ddl$, schema_name);
END
$$;

-- Generator, part 1: users, courses, assignments and materials, without
-- randomness.  The data are scale "campuses", each of 10 teachers (ids first),
-- students_per_campus students, 20 courses (2 per teacher), 5 assignments and
-- 10 materials per course.  Returns the number of teachers.
CREATE FUNCTION lms_gen_entities(s name, scale integer, students_per_campus integer, base timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    nt integer := 10 * scale;
    t text;
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.users (id, username, is_teacher, is_staff, date_joined)
        SELECT g, CASE WHEN g <= $1 THEN 'teacher' ELSE 'student' END || g, g <= $1, g <= $1 AND g %% 10 = 1,
               $3 - make_interval(days => 30 + g %% 90)
          FROM generate_series(1, $1 + $2) g;
        INSERT INTO %1$I.courses (id, title, teacher_id, created_at)
        SELECT c, 'Course ' || c, (c - 1) / 20 * 10 + (c - 1) %% 20 / 2 + 1, $3 - interval '14 days'
          FROM generate_series(1, $1 * 2) c;
        INSERT INTO %1$I.assignments (id, course_id, author_id, title, due_date, max_score, created_at)
        SELECT (c.id - 1) * 5 + j, c.id, c.teacher_id, format('Course %%s assignment %%s', c.id, j),
               t.created + interval '7 days', (ARRAY[100, 50, 100, 20, 10])[j], t.created
          FROM %1$I.courses c, generate_series(1, 5) j,
               LATERAL (SELECT $3 + (j - 1) * interval '14 days' + c.id %% 7 * interval '1 hour' AS created) t;
        INSERT INTO %1$I.materials (id, course_id, title, created_at)
        SELECT (c.id - 1) * 10 + k, c.id, format('Course %%s material %%s', c.id, k),
               $3 + (k - 1) * interval '7 days'
          FROM %1$I.courses c, generate_series(1, 10) k;
    $q$, s) USING nt, students_per_campus * scale, base;
    -- Explicit ids: move the identity sequences past them.
    FOREACH t IN ARRAY ARRAY['users', 'courses', 'assignments', 'materials'] LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), (SELECT max(id) FROM %I.%I))',
                       format('%I.%I', s, t), s, t);
    END LOOP;
    RETURN nt;
END
$$;

-- Generator, part 2: each student enrols in each course of their campus
-- with probability 0.6 (about 300 students per course with 500 students per
-- campus).  Random numbers are drawn in a fixed row order (the ORDER BY
-- under OFFSET 0), so a seed gives the same data whatever the plan.
CREATE FUNCTION lms_gen_enrollments(s name, nt integer, students_per_campus integer, base timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.enrollments (course_id, student_id, enrolled_at)
        SELECT course_id, student_id, $2 - interval '7 days'
          FROM (SELECT x.*, random() AS r
                  FROM (SELECT c AS course_id, u.id AS student_id
                          FROM %1$I.users u,
                               generate_series((u.id - $1 - 1) / $3 * 20 + 1, (u.id - $1 - 1) / $3 * 20 + 20) c
                         WHERE NOT u.is_teacher
                         ORDER BY u.id, c) x
                OFFSET 0) y
         WHERE r < 0.6
    $q$, s) USING nt, base, students_per_campus;
END
$$;

-- Generator, part 3: submissions.  Per (assignment, enrolled student): 15%
-- missing; otherwise 4% draft (nothing submitted), 12% submitted and not
-- graded, 74% graded, 10% returned (graded, to revise).  submitted_at is
-- uniform over the 8 days after the assignment opened, so 1 in 8 is late
-- (due after 7 days).  The 5th assignment of every 10th course is not
-- released yet: no submissions.
CREATE FUNCTION lms_gen_submissions(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.submissions (assignment_id, student_id, status, score, feedback, submitted_at, graded_at)
        SELECT assignment_id, student_id, status,
               CASE WHEN status IN ('graded', 'returned')
                    THEN round(max_score * (0.35 + 0.65 * sqrt(r4))::numeric, 1) END,
               CASE status WHEN 'graded' THEN 'well done' WHEN 'returned' THEN 'please revise' ELSE '' END,
               CASE WHEN status <> 'draft' THEN submitted END,
               CASE WHEN status IN ('graded', 'returned')
                    THEN date_trunc('second', submitted + r5 * interval '4 days') END
          FROM (SELECT y.*, date_trunc('second', created_at + r3 * interval '8 days') AS submitted,
                       CASE WHEN r2 < 0.04 THEN 'draft' WHEN r2 < 0.16 THEN 'submitted'
                            WHEN r2 < 0.90 THEN 'graded' ELSE 'returned' END AS status
                  FROM (SELECT x.*, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                               random() AS r5
                          FROM (SELECT a.id AS assignment_id, e.student_id, a.max_score, a.created_at
                                  FROM %1$I.assignments a JOIN %1$I.enrollments e ON e.course_id = a.course_id
                                 WHERE NOT (a.course_id %% 10 = 0 AND a.id %% 5 = 0)
                                 ORDER BY a.id, e.student_id) x
                        OFFSET 0) y
                 WHERE r1 >= 0.15) z
    $q$, s);
END
$$;

-- Generator, part 4: one grade per graded submission, by the assignment's
-- author at graded_at, and for 5% of them an earlier grade (a regrade's
-- history) a day before, 20% lower.
CREATE FUNCTION lms_gen_grades(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.grades (submission_id, assignment_id, student_id, score, graded_by, created_at)
        SELECT y.id, y.assignment_id, y.student_id, v.score, y.author_id, v.at
          FROM (SELECT x.*, random() AS r
                  FROM (SELECT s.id, s.assignment_id, s.student_id, s.score, s.graded_at, a.author_id
                          FROM %1$I.submissions s JOIN %1$I.assignments a ON a.id = s.assignment_id
                         WHERE s.score IS NOT NULL
                         ORDER BY s.id) x
                OFFSET 0) y,
               LATERAL (VALUES (1, round(y.score * 0.8, 1), y.graded_at - interval '1 day'),
                               (2, y.score, y.graded_at)) v(k, score, at)
         WHERE v.k = 2 OR y.r < 0.05
         ORDER BY y.id, v.k
    $q$, s);
END
$$;

-- Generator, part 5: material progress for 40% of (enrolled student,
-- course material) pairs: 30% completed (100), else uniform; up to 2 hours
-- spent; last accessed in the 60 days after the term began.
CREATE FUNCTION lms_gen_progress(s name, base timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.material_progress (material_id, user_id, progress_percentage, time_spent, last_accessed)
        SELECT material_id, user_id,
               CASE WHEN r2 < 0.3 THEN 100 ELSE round((r3 * 100)::numeric, 1) END,
               (60 + r4 * 7140)::integer, date_trunc('second', $1 + r5 * interval '60 days')
          FROM (SELECT x.*, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
                  FROM (SELECT m.id AS material_id, e.student_id AS user_id
                          FROM %1$I.enrollments e JOIN %1$I.materials m ON m.course_id = e.course_id
                         ORDER BY m.id, e.student_id) x
                OFFSET 0) y
         WHERE r1 < 0.4
    $q$, s) USING base;
END
$$;

-- Generator, part 6: 0 to 3 views per progress row, at random times in the
-- 60 days after the term began.
CREATE FUNCTION lms_gen_views(s name, base timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format($q$
        INSERT INTO %1$I.material_views (material_id, user_id, viewed_at)
        SELECT material_id, user_id, date_trunc('second', $1 + r * interval '60 days')
          FROM (SELECT z.*, random() AS r
                  FROM (SELECT y.material_id, y.user_id
                          FROM (SELECT p.*, random() AS n
                                  FROM (SELECT id, material_id, user_id FROM %1$I.material_progress ORDER BY id) p
                                OFFSET 0) y,
                               generate_series(1, floor(y.n * 4)::integer) g
                         ORDER BY y.id, g) z
                OFFSET 0) w
    $q$, s) USING base;
END
$$;

-- Fill the canonical tables of schema_name (emptied first, identities
-- restarted) with deterministic data: the same scale, seed and
-- students_per_campus always give the same rows.  Sizes per unit of scale,
-- with the default 500 students per campus: 10 teachers, 500 students, 20
-- courses, ~6k enrollments, 100 assignments, ~25k submissions (~255 per
-- released assignment), ~20k grades, 200 materials, ~24k progress rows,
-- ~36k views, 20 reports.  Everything but the teachers, courses, assignments,
-- materials and reports grows in proportion to students_per_campus: 5000
-- gives ~2,550 submissions per released assignment.  Returns the row counts.
CREATE FUNCTION lms_generate(scale integer DEFAULT 1, schema_name name DEFAULT 'lms', seed float8 DEFAULT 0.42,
                             students_per_campus integer DEFAULT 500)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    base timestamptz := '2024-09-02 08:00:00+00';
    tbls text[] := ARRAY['users', 'courses', 'enrollments', 'assignments', 'submissions', 'grades',
                         'materials', 'material_progress', 'material_views', 'reports'];
    nt integer;
    t text;
    n bigint;
    counts jsonb := '{}';
BEGIN
    IF scale IS NULL OR scale < 1 THEN
        RAISE EXCEPTION 'scale must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF seed IS NULL OR seed NOT BETWEEN -1 AND 1 THEN
        RAISE EXCEPTION 'seed must be between -1 and 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF students_per_campus IS NULL OR students_per_campus < 1 THEN
        RAISE EXCEPTION 'students_per_campus must be a positive integer' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scale::bigint * (10 + students_per_campus::bigint) > 2147483647 THEN
        RAISE EXCEPTION 'scale * (10 + students_per_campus) users do not fit in an integer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE 'TRUNCATE ' || (SELECT string_agg(format('%I.%I', schema_name, x), ', ') FROM unnest(tbls) x)
            || ' RESTART IDENTITY CASCADE';
    PERFORM setseed(seed);
    nt := mlcache.lms_gen_entities(schema_name, scale, students_per_campus, base);
    PERFORM mlcache.lms_gen_enrollments(schema_name, nt, students_per_campus, base);
    PERFORM mlcache.lms_gen_submissions(schema_name);
    PERFORM mlcache.lms_gen_grades(schema_name);
    PERFORM mlcache.lms_gen_progress(schema_name, base);
    PERFORM mlcache.lms_gen_views(schema_name, base);
    -- Reports cycle through the kinds, about an assignment, a student, a course.
    EXECUTE format($q$
        INSERT INTO %1$I.reports (kind, subject_id, created_at)
        SELECT (ARRAY['assignment', 'user', 'engagement'])[g %% 3 + 1],
               CASE g %% 3 WHEN 0 THEN g * 7 %% ($1 * 10) + 1 WHEN 1 THEN $1 + g * 13 %% $3 + 1
                           ELSE g * 3 %% ($1 * 2) + 1 END,
               $2 + g * interval '1 day'
          FROM generate_series(1, $1 * 2) g
    $q$, schema_name) USING nt, base, scale * students_per_campus;
    FOREACH t IN ARRAY tbls LOOP
        EXECUTE format('ANALYZE %I.%I', schema_name, t);
        EXECUTE format('SELECT count(*) FROM %I.%I', schema_name, t) INTO n;
        counts := counts || jsonb_build_object(t, n);
    END LOOP;
    RETURN jsonb_build_object('scale', scale, 'seed', seed) || counts;
END
$$;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC.  Readers may run the live queries (and
-- what they call); admins may create schemas, generate data and set up.
-- ---------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lms_catalog(), lms_resolve(name, jsonb, jsonb), lms_table(jsonb, text),
                          lms_relation(jsonb, text), lms_not_found(text, bigint),
                          lms_template_assignment_stats(), lms_template_analytics_student(),
                          lms_template_analytics_assignment(), lms_template_analytics_progress(),
                          lms_template_analytics_engagement(), lms_template(text),
                          lms_render(text, jsonb, boolean), lms_query(text, name, jsonb, jsonb),
                          lms_assignment_stats_live(bigint, name, jsonb, jsonb),
                          lms_analytics_student_live(bigint, name, jsonb, jsonb),
                          lms_analytics_assignment_live(bigint, name, jsonb, jsonb),
                          lms_analytics_progress_live(bigint, bigint, name, jsonb, jsonb),
                          lms_analytics_engagement_live(bigint, name, jsonb, jsonb),
                          lms_definitions(), lms_watches()
      TO mlcache_reader;
GRANT EXECUTE ON FUNCTION lms_watch_keys(jsonb, text, text[]),
                          lms_warm_template(text), lms_view_entities(jsonb, text, text[]),
                          lms_create_views(name, jsonb, jsonb),
                          lms_setup(name, jsonb, jsonb),
                          lms_create_schema(name),
                          lms_gen_entities(name, integer, integer, timestamptz),
                          lms_gen_enrollments(name, integer, integer, timestamptz),
                          lms_gen_submissions(name), lms_gen_grades(name),
                          lms_gen_progress(name, timestamptz), lms_gen_views(name, timestamptz),
                          lms_generate(integer, name, float8, integer)
      TO mlcache_admin;

-- The hit rate of an assignment's statistics over the last 24 hours, shown
-- only to the assignment's author: anyone else gets 42501, a missing
-- assignment P0002.  The mapping arguments are those given to lms_setup.
-- It runs with the caller's privileges, who must be able to read the
-- assignments table.
CREATE FUNCTION lms_assignment_cache_hit_rate(assignment_id bigint, requesting_user_id bigint,
                                              schema_name name DEFAULT 'lms',
                                              tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}',
    OUT hits bigint, OUT misses bigint, OUT total bigint, OUT hit_rate_percentage float8,
    OUT cache_key text, OUT ttl_seconds integer)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    author bigint;
    n bigint;
BEGIN
    IF assignment_id IS NULL OR requesting_user_id IS NULL THEN
        RAISE EXCEPTION 'assignment and user must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SELECT %I::bigint FROM %s WHERE %I = $1',
                   m -> 'columns' ->> 'assignments.author_id', mlcache.lms_table(m, 'assignments'),
                   m -> 'columns' ->> 'assignments.id')
       INTO author USING assignment_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'assignment % does not exist', assignment_id USING ERRCODE = 'no_data_found';
    END IF;
    IF author IS DISTINCT FROM requesting_user_id THEN
        RAISE EXCEPTION 'only the author of assignment % may see its cache hit rate', assignment_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT k.hits, k.misses, k.total, k.hit_rate_percentage, k.cache_key, k.ttl_seconds
      INTO hits, misses, total, hit_rate_percentage, cache_key, ttl_seconds
      FROM mlcache.key_stats('assignment_stats:' || assignment_id) k;
END
$$;

COMMENT ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) IS
'Hit rate of assignment_stats:{id} over 24 hours, for the assignment''s author only';

REVOKE ALL ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) FROM PUBLIC;
-- It shows key_stats(), which is for admins only.
GRANT EXECUTE ON FUNCTION lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb) TO mlcache_admin;

-- Warm a teacher's dashboard at login: assignment_stats of the ten most
-- recent assignments the teacher wrote, through mlcache.warm_sets(): in
-- the call when the estimate is under mlcache.warm_sync_limit (2 s),
-- otherwise queued for the background worker as one job in batches of
-- batch_size (mlcache.warm_tasks shows its progress to the caller).  The
-- mapping arguments are those given to lms_setup.  Returns warm_sets()'s
-- summary {"total", "warmed", "failed", "async_scheduled"[, "job"]}.
-- It runs with the caller's privileges: any role that may fetch
-- assignment_stats (mlcache.grant_fetch) and read the assignments table,
-- such as the application's, may call it (42501 otherwise).
CREATE FUNCTION lms_warm_teacher(teacher_id bigint, schema_name name DEFAULT 'lms',
                                 tables jsonb DEFAULT '{}', columns jsonb DEFAULT '{}',
                                 batch_size integer DEFAULT 10)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m jsonb := mlcache.lms_resolve(schema_name, tables, columns);
    ids jsonb;
BEGIN
    IF teacher_id IS NULL THEN
        RAISE EXCEPTION 'teacher must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SELECT coalesce(jsonb_agg(id ORDER BY created_at DESC, id DESC), ''[]'')'
                   '  FROM (SELECT %I::bigint AS id, %I AS created_at FROM %s WHERE %I = $1'
                   '         ORDER BY 2 DESC, 1 DESC LIMIT 10) a',
                   m -> 'columns' ->> 'assignments.id', m -> 'columns' ->> 'assignments.created_at',
                   mlcache.lms_table(m, 'assignments'), m -> 'columns' ->> 'assignments.author_id')
       INTO ids USING teacher_id;
    RETURN mlcache.warm_sets('assignment_stats', ids, batch_size);
END
$$;

COMMENT ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb, integer) IS
'Warm assignment_stats of a teacher''s ten most recent assignments, in the call or queued in batches';

REVOKE ALL ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb, integer) FROM PUBLIC;
-- For the application's role: it warms only what it may fetch.
GRANT EXECUTE ON FUNCTION lms_warm_teacher(bigint, name, jsonb, jsonb, integer) TO mlcache_reader;

-- ---------------------------------------------------------------------------
-- Invalidating one entity's analytics: every pack key about a user
-- (student), an assignment or a course, by the key layout of
-- lms_definitions(), for an application's "recompute this" action and for
-- changes that no watch sees.
-- ---------------------------------------------------------------------------

-- Invalidate at commit every pack key about one entity and return the keys
-- and globs, in this order:
--   user, student  analytics:user:{id}:*  (the student and progress keys)
--   assignment     assignment_stats:{id}, analytics:assignment:{id}
--   course         analytics:engagement:{id}, analytics:user:*:progress:{id}
-- Literal keys go to mlcache.invalidate, globs to invalidate_pattern (which
-- narrows the course's glob to its literal prefix analytics:user:, so a
-- course costs every user's keys their cached values).  Like any explicit
-- invalidation it marks the database's L3 views dirty, so the next read
-- recomputes.  An unknown entity type is 22023, a NULL argument 22004.  It
-- runs with the caller's rights: besides mlcache_admin, a role granted
-- EXECUTE on it and on mlcache.invalidate_pattern(text) may call it.
CREATE FUNCTION lms_invalidate_analytics(entity text, id bigint)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    k text;
BEGIN
    IF entity IS NULL OR id IS NULL THEN
        RAISE EXCEPTION 'entity and id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    keys := CASE entity
            WHEN 'user' THEN ARRAY['analytics:user:' || id || ':*']
            WHEN 'student' THEN ARRAY['analytics:user:' || id || ':*']
            WHEN 'assignment' THEN ARRAY['assignment_stats:' || id, 'analytics:assignment:' || id]
            WHEN 'course' THEN ARRAY['analytics:engagement:' || id, 'analytics:user:*:progress:' || id]
            END;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'unknown entity type "%"', entity USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use user, student, assignment or course.';
    END IF;
    FOREACH k IN ARRAY keys LOOP
        IF strpos(k, '*') > 0 THEN
            PERFORM mlcache.invalidate_pattern(k);
        ELSE
            PERFORM mlcache.invalidate(k);
        END IF;
    END LOOP;
    RETURN keys;
END
$$;

COMMENT ON FUNCTION lms_invalidate_analytics(text, bigint) IS
'Invalidate at commit every LMS pack key about a user (student), an assignment or a course; returns the keys and globs';

REVOKE ALL ON FUNCTION lms_invalidate_analytics(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lms_invalidate_analytics(text, bigint) TO mlcache_admin;

-- Nothing for PUBLIC, whatever the pack created above.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mlcache FROM PUBLIC;
