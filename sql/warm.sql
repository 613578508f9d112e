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
SELECT mlcache.warm(ARRAY['w_student']) - 'job' AS warm;
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
SELECT mlcache.warm(ARRAY['w_bad']) - 'job' AS warm;
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

-- Batches: a queued warm() is one job (numbered by its first task's id),
-- its tasks numbered in batches of batch_size; the worker runs each batch
-- in one transaction (so its tasks share the xmin of their "done" update
-- and their finished_at), a batch at a time.
SELECT mlcache.set_warm_query('w_student', 'SELECT DISTINCT student_id FROM wscores WHERE student_id BETWEEN 10 AND 16 ORDER BY 1');
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm(ARRAY['w_student'], 3) AS w \gset
SELECT :'w'::jsonb - 'job' AS warm, (:'w'::jsonb ->> 'job')::bigint = min(id) AS job_is_first_task
  FROM mlcache.warm_tasks WHERE job = (:'w'::jsonb ->> 'job')::bigint;
SELECT (:'w'::jsonb ->> 'job')::bigint AS job \gset
SELECT batch, array_agg(params[1]::int ORDER BY id) AS students FROM mlcache.warm_tasks
 WHERE job = :job GROUP BY batch ORDER BY batch;
CALL wait_until($$NOT EXISTS (SELECT FROM mlcache.warm_tasks WHERE state IN ('pending', 'running'))$$);
SELECT batch, count(*) AS tasks, count(*) FILTER (WHERE state = 'done') AS done,
       count(DISTINCT xmin::text) AS transactions, count(DISTINCT finished_at) AS finish_times
  FROM mlcache.warm_queue WHERE job = :job GROUP BY batch ORDER BY batch;
SELECT count(DISTINCT xmin::text) AS transactions_in_all FROM mlcache.warm_queue WHERE job = :job;
\c
SELECT mlcache.fetch('w_student', 16), mlcache.last_level();

-- Progress while a job runs: a task of batch 2 waits for a lock this
-- session holds, so batch 1 is done, batch 2 running (claimed as a whole),
-- batch 3 pending, until the lock goes.
SELECT mlcache.define('w_block', 'SELECT $1::int + (SELECT count(*) FROM (SELECT pg_advisory_xact_lock_shared(4242) WHERE $1::int = 3) s)', 'w:block:{1}');
SELECT mlcache.set_warm_query('w_block', 'SELECT g FROM generate_series(1, 5) g');
SELECT mlcache.fetch('w_block', 0);   -- timed: warm() need not run a set itself
SELECT pg_advisory_lock(4242);
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm(ARRAY['w_block'], 2) ->> 'job' AS job \gset
CALL wait_until(format($$(SELECT count(*) FROM mlcache.warm_tasks WHERE job = %s AND batch = 2 AND state = 'running') = 2$$, :job));
SELECT batch, state, count(*) FROM mlcache.warm_tasks WHERE job = :job GROUP BY 1, 2 ORDER BY 1, 2;
SELECT pg_advisory_unlock(4242);
CALL wait_until(format($$NOT EXISTS (SELECT FROM mlcache.warm_tasks WHERE job = %s AND state <> 'done')$$, :job));
SELECT batch, state, count(*) FROM mlcache.warm_tasks WHERE job = :job GROUP BY 1, 2 ORDER BY 1, 2;

-- warm_sets(): given parameter sets of one definition, for any role that
-- may fetch it (here a plain reader with grant_fetch), in the call or
-- queued; the queued tasks are visible to the role that queued them.
CREATE ROLE w_app IN ROLE mlcache_reader;
CREATE ROLE w_other IN ROLE mlcache_reader;
SELECT mlcache.grant_fetch('w_student', 'w_app');
RESET mlcache.warm_sync_limit;
SET ROLE w_app;
SELECT mlcache.warm_sets('w_student', '[1, [2], "3"]');
SELECT mlcache.fetch('w_student', 2), mlcache.last_level();
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm_sets('w_student', '[4, 5, 6]', 2) ->> 'job' AS job \gset
SELECT params, batch, queued_by FROM mlcache.warm_tasks WHERE job = :job ORDER BY id;
CALL wait_until(format($$NOT EXISTS (SELECT FROM mlcache.warm_tasks WHERE job = %s AND state <> 'done')$$, :job));
SELECT count(*) AS done FROM mlcache.warm_tasks WHERE job = :job AND state = 'done';
RESET mlcache.warm_sync_limit;
SELECT expect_error($$SELECT mlcache.warm_sets('w_total', '[[]]')$$);
SELECT expect_error($$SELECT mlcache.warm_sets('no_such', '[1]')$$);
SELECT expect_error($$SELECT mlcache.warm_sets('w_student', '{"a": 1}')$$);
SELECT expect_error($$SELECT mlcache.warm_sets('w_student', '[1]', 0)$$);
SELECT expect_error($$SELECT mlcache.warm(ARRAY['w_student'])$$);
SET ROLE w_other;
SELECT count(*) AS other_sees FROM mlcache.warm_tasks WHERE job = :job;
RESET ROLE;
DELETE FROM mlcache.warm_queue;

-- A task is bounded by mlcache.warm_task_timeout in the worker (here 200
-- ms, one attempt): a set that would run for 60 s fails with the timeout.
SELECT mlcache.define('w_slow', 'SELECT $1::int + (SELECT count(*) FROM (SELECT pg_sleep(60) WHERE $1::int = 2) s)', 'w:slow:{1}');
SELECT mlcache.fetch('w_slow', 1);   -- timed: warm_sets need not run a set itself
ALTER SYSTEM SET mlcache.warm_task_timeout = '200ms';
ALTER SYSTEM SET mlcache.warm_max_attempts = 1;
SELECT pg_reload_conf();
-- The worker's latch is set by the reload signal: it rereads the file well
-- within this pause.
SELECT pg_sleep(0.5);
SET mlcache.warm_sync_limit = 0;
SELECT mlcache.warm_sets('w_slow', '[2]') ->> 'job' AS job \gset
RESET mlcache.warm_sync_limit;
CALL wait_until(format($$EXISTS (SELECT FROM mlcache.warm_tasks WHERE job = %s AND state = 'failed')$$, :job));
SELECT state, attempts, last_error FROM mlcache.warm_tasks WHERE job = :job;
ALTER SYSTEM RESET mlcache.warm_task_timeout;
ALTER SYSTEM RESET mlcache.warm_max_attempts;
SELECT pg_reload_conf();
DELETE FROM mlcache.warm_queue;
SELECT mlcache.undefine('w_bad'), mlcache.undefine('w_student'), mlcache.undefine('w_total'),
       mlcache.undefine('w_block'), mlcache.undefine('w_slow');
DROP ROLE w_app;
DROP ROLE w_other;
DROP PROCEDURE wait_queue();
DROP TABLE wscores;
