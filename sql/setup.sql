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

-- Wait (bounded: 20 s) until the boolean expression cond is true.
CREATE PROCEDURE wait_until(cond text) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '20 s';
    ok boolean;
BEGIN
    LOOP
        EXECUTE 'SELECT ' || cond INTO ok;
        EXIT WHEN ok;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'not within 20 s: %', cond;
        END IF;
        PERFORM pg_sleep(0.05);
        COMMIT;
    END LOOP;
END
$$;

SELECT extname, extversion FROM pg_extension WHERE extname = 'mlcache';
