-- Shared set-up for the regress suite: the extension, a test table and two
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

SELECT extname, extversion FROM pg_extension WHERE extname = 'mlcache';
