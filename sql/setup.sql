-- Shared set-up for the regress suite: the extension, a test table and three
-- helpers that the other files use.
CREATE EXTENSION mlcache;

CREATE TABLE scores (id int PRIMARY KEY, assignment_id int, score numeric);
INSERT INTO scores SELECT g, g % 4, g FROM generate_series(1, 100) g;

-- The value of one mlcache counter.
CREATE FUNCTION counter(name text) RETURNS bigint
LANGUAGE sql AS $$ SELECT value FROM mlcache.counters() WHERE counter = name $$;

-- Run a statement and report its SQLSTATE and message instead of failing.
CREATE FUNCTION expect_error(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Wait (bounded: seconds) until the boolean expression cond is true;
-- commits between tries, so that it sees other sessions' commits.
CREATE PROCEDURE wait_until(cond text, seconds int DEFAULT 20) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
    ok boolean;
BEGIN
    LOOP
        EXECUTE 'SELECT ' || cond INTO ok;
        EXIT WHEN ok;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'not within % s: %', seconds, cond;
        END IF;
        PERFORM pg_sleep(0.02);
        COMMIT;
    END LOOP;
END
$$;

-- Wait (bounded: 30 s) until the worker has delivered everything queued
-- for Redis, so that a late clean-up cannot remove a value a test expects
-- there.
CREATE PROCEDURE settle() LANGUAGE plpgsql AS $$
BEGIN
    CALL wait_until($c$(SELECT coalesce(sum(value) FILTER (WHERE counter = 'hygiene_queued')
                          - sum(value) FILTER (WHERE counter IN ('hygiene_done', 'hygiene_dropped')), 0)
                        FROM mlcache.counters()) <= 0$c$, 30);
END
$$;

SELECT extname, extversion FROM pg_extension WHERE extname = 'mlcache';
