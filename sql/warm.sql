-- Warming: synchronous when the estimate is small, queued otherwise.
CREATE TABLE wscores (student_id int, score int);
INSERT INTO wscores SELECT g % 20, g FROM generate_series(1, 200) g;
SELECT mlcache.define('w_student', 'SELECT sum(score) FROM wscores WHERE student_id = $1', 'w:student:{1}');
SELECT mlcache.set_warm_query('w_student', 'SELECT DISTINCT student_id FROM wscores WHERE student_id < 5 ORDER BY 1');
SELECT mlcache.define('w_total', 'SELECT sum(score) FROM wscores', 'w:total');
SELECT expect_error($$SELECT mlcache.set_warm_query('no_such', 'SELECT 1')$$);
SELECT expect_error($$SELECT mlcache.warm(ARRAY['no_such'])$$);
SELECT expect_error($$SELECT mlcache.warm(NULL, 0)$$);

-- Quick: warmed in the call.
SELECT counter('computes') AS c0 \gset
SELECT mlcache.warm(ARRAY['w_student', 'w_total']);
SELECT counter('computes') - :c0 AS computes;
\c
SELECT mlcache.fetch('w_student', 3), mlcache.last_level();
SELECT mlcache.fetch('w_total'), mlcache.last_level();

-- Warming what is already fresh costs no computation.
SELECT counter('computes') AS c0 \gset
SELECT mlcache.warm(ARRAY['w_student', 'w_total']);
SELECT counter('computes') - :c0 AS computes;

-- One parameter set.
SELECT mlcache.warm('w_student', '7');
\c
SELECT mlcache.fetch('w_student', 7), mlcache.last_level();

-- Slow (here: a zero limit): queued, and drained by the background worker.
SELECT mlcache.invalidate_pattern('w:*');
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm(ARRAY['w_student']);
CREATE PROCEDURE wait_queue() LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '20 s';
BEGIN
    WHILE EXISTS (SELECT FROM mlcache.warm_tasks WHERE state IN ('pending', 'running')) LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'the warming queue was not drained within 20 s';
        END IF;
        PERFORM pg_sleep(0.05);
        COMMIT;
    END LOOP;
END
$$;
CALL wait_queue();
SELECT definition, params, state, attempts, last_error FROM mlcache.warm_tasks ORDER BY id;
\c
SELECT mlcache.fetch('w_student', 2), mlcache.last_level();

-- A failing task is retried with backoff and keeps its error.  (The first
-- set of a definition never computed before is run at once, to time it.)
SELECT mlcache.define('w_bad', 'SELECT 1 / ($1::int - $1::int)', 'w:bad:{1}');
SELECT mlcache.set_warm_query('w_bad', 'SELECT g FROM generate_series(1, 2) g');
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm(ARRAY['w_bad']);
DO $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '20 s';
BEGIN
    WHILE NOT EXISTS (SELECT FROM mlcache.warm_tasks WHERE definition = 'w_bad' AND attempts >= 2) LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'the failing task was not retried within 20 s';
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT state IN ('pending', 'running') AS will_retry, last_error, next_attempt > created_at AS backed_off
  FROM mlcache.warm_tasks WHERE definition = 'w_bad';
-- Synchronous warming reports the failure and goes on.
RESET mlcache.warm_sync_limit;
SELECT mlcache.warm('w_bad', '1');
DELETE FROM mlcache.warm_queue;
SELECT mlcache.undefine('w_bad'), mlcache.undefine('w_student'), mlcache.undefine('w_total');
DROP PROCEDURE wait_queue();
DROP TABLE wscores;
