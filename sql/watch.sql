-- mlcache.watch(): triggers that invalidate rendered keys at commit.
CREATE TABLE submissions (
    id int PRIMARY KEY,
    assignment_id int,
    student_id int,
    score int,
    note text
);
INSERT INTO submissions SELECT g, g % 3, g % 5, g, 'n' || g FROM generate_series(1, 30) g;

SELECT mlcache.watch('submissions',
       ARRAY['assignment_stats:{assignment_id}', 'analytics:student:{student_id}:*']);
SELECT tbl, keys, views FROM mlcache.watches;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'submissions'::regclass ORDER BY tgname;

-- A helper: read assignment and student aggregates through the cache.
CREATE FUNCTION a_stats(a int) RETURNS text LANGUAGE sql AS $$
    SELECT mlcache.get('assignment_stats:' || a,
                       format('SELECT sum(score) FROM submissions WHERE assignment_id = %s', a))::text
           || ' ' || mlcache.last_level()
$$;
CREATE FUNCTION s_stats(s int) RETURNS text LANGUAGE sql AS $$
    SELECT mlcache.get('analytics:student:' || s || ':total',
                       format('SELECT sum(score) FROM submissions WHERE student_id = %s', s))::text
           || ' ' || mlcache.last_level()
$$;
SELECT a_stats(0), a_stats(1), a_stats(2), s_stats(1), s_stats(2);
SELECT a_stats(0), a_stats(1), a_stats(2), s_stats(1), s_stats(2);

-- UPDATE invalidates the row's assignment and student, and nothing else.
UPDATE submissions SET score = score + 100 WHERE id = 1;   -- assignment 1, student 1
SELECT a_stats(0), a_stats(1), a_stats(2), s_stats(1), s_stats(2);

-- A row that moves from one assignment to another invalidates both.
SELECT a_stats(0), a_stats(1), a_stats(2);
UPDATE submissions SET assignment_id = 2 WHERE id = 3;     -- from assignment 0
SELECT a_stats(0), a_stats(1), a_stats(2);

-- INSERT and DELETE.
SELECT a_stats(1);
INSERT INTO submissions VALUES (100, 1, 4, 1000, 'new');
SELECT a_stats(1), a_stats(0);
DELETE FROM submissions WHERE id = 100;
SELECT a_stats(1), a_stats(0);

-- Nothing before COMMIT, nothing on rollback.
SELECT a_stats(0);
BEGIN;
UPDATE submissions SET score = score + 1 WHERE id = 6;     -- assignment 0
SELECT a_stats(0);   -- read-your-writes: computed, not stored
ROLLBACK;
SELECT a_stats(0);
BEGIN;
SAVEPOINT sp;
UPDATE submissions SET score = score + 1 WHERE id = 6;
ROLLBACK TO SAVEPOINT sp;
COMMIT;
SELECT a_stats(0);

-- Keys are deduplicated per transaction: a bulk UPDATE of every row is one
-- invalidation per distinct key (3 assignments + 5 student prefixes).
SELECT counter('invalidations') AS i0 \gset
UPDATE submissions SET score = score + 1;
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT a_stats(0), a_stats(1), a_stats(2), s_stats(1), s_stats(2);

-- A NULL placeholder column names no entity: no key for that template.
SELECT a_stats(1), s_stats(3);
SELECT counter('invalidations') AS i0 \gset
UPDATE submissions SET assignment_id = NULL WHERE id = 13; -- assignment 1 -> NULL, student 3
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT a_stats(1), s_stats(3);

-- session_replication_role = replica: the triggers are ENABLE ALWAYS.  (The
-- row-level mlcache_watch_replica fires there too, but renders keys only in
-- a logical-replication apply worker: test/subscriber.sh.)
SELECT a_stats(2);
SET session_replication_role = replica;
UPDATE submissions SET score = score + 1 WHERE id = 2;     -- assignment 2
DELETE FROM submissions WHERE id = 31;                     -- no such row: nothing
RESET session_replication_role;
SELECT a_stats(2);

-- TRUNCATE invalidates each template's static prefix.
SELECT a_stats(0), s_stats(1), mlcache.get('assignment_other:1', 'SELECT 1');
TRUNCATE submissions;
SELECT a_stats(0), s_stats(1);
SELECT mlcache.get('assignment_other:1', 'SELECT 1'), mlcache.last_level();
INSERT INTO submissions SELECT g, g % 3, g % 5, g, 'n' || g FROM generate_series(1, 30) g;

-- Bad templates are refused when watch() is called.
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x:{no_such_column}'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x:{assignment_id'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x:{}'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x:*:{id}'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x}'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['*'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x:{id}', 'x:{id}'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY[NULL])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY[]::text[])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', NULL)$$);
SELECT expect_error($$SELECT mlcache.watch('no_such_table', ARRAY['x'])$$);
CREATE VIEW submissions_v AS SELECT * FROM submissions;
SELECT expect_error($$SELECT mlcache.watch('submissions_v', ARRAY['x:{id}'])$$);
SELECT expect_error($$SELECT mlcache.watch('submissions', ARRAY['x:{id}'], ARRAY['submissions_v'::regclass])$$);
DROP VIEW submissions_v;
-- A failed watch() left the existing one as it was.
SELECT tbl, keys FROM mlcache.watches;

-- DDL on a watched table: changes that would break the watch are refused ...
SELECT expect_error($$ALTER TABLE submissions RENAME COLUMN student_id TO sid$$);
SELECT expect_error($$ALTER TABLE submissions DROP COLUMN assignment_id$$);
SELECT expect_error($$ALTER TABLE submissions DISABLE TRIGGER mlcache_watch_upd$$);
SELECT expect_error($$ALTER TABLE submissions DISABLE TRIGGER ALL$$);
SELECT expect_error($$ALTER TABLE submissions ENABLE TRIGGER mlcache_watch_upd$$);
SELECT expect_error($$DROP TRIGGER mlcache_watch_del ON submissions$$);
SELECT expect_error($$ALTER TRIGGER mlcache_watch_ins ON submissions RENAME TO other$$);
-- The row-level trigger for logical-replication subscribers must stay ENABLE REPLICA.
SELECT expect_error($$ALTER TABLE submissions DISABLE TRIGGER mlcache_watch_replica$$);
SELECT expect_error($$ALTER TABLE submissions ENABLE TRIGGER mlcache_watch_replica$$);
SELECT expect_error($$ALTER TABLE submissions ENABLE ALWAYS TRIGGER mlcache_watch_replica$$);
SELECT expect_error($$DROP TRIGGER mlcache_watch_replica ON submissions$$);
SELECT expect_error($$ALTER TRIGGER mlcache_watch_replica ON submissions RENAME TO other$$);
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'submissions'::regclass ORDER BY tgname;
-- ... and others invalidate everything the watch covers, since they may
-- rewrite the data.
SELECT a_stats(0), s_stats(1);
SELECT a_stats(0), s_stats(1);
ALTER TABLE submissions ALTER COLUMN score TYPE bigint USING score * 2;
SELECT a_stats(0), s_stats(1);
ALTER TABLE submissions DROP COLUMN note;
SELECT a_stats(0), s_stats(1);

-- watch() again replaces the templates.
SELECT mlcache.watch('submissions', ARRAY['assignment_stats:{assignment_id}']);
SELECT tbl, keys FROM mlcache.watches;
SELECT a_stats(0), s_stats(1);
UPDATE submissions SET score = score + 1 WHERE id = 6;     -- assignment 0, student 1
SELECT a_stats(0), s_stats(1);

-- Data that cannot make a valid key falls back to the template's prefix.
CREATE TABLE tagged (id int, tag text);
SELECT mlcache.watch('tagged', ARRAY['tag:{tag}:count']);
SELECT mlcache.get('tag:a:count', 'SELECT 1'), mlcache.get('tag:b:count', 'SELECT 2');
INSERT INTO tagged VALUES (1, E'bad\ttag');
SELECT mlcache.get('tag:a:count', 'SELECT 1'), mlcache.last_level();

-- unwatch: the triggers and the catalog row go; changes no longer invalidate.
SELECT mlcache.unwatch('tagged');
SELECT mlcache.get('tag:a:count', 'SELECT 1'), mlcache.last_level();
INSERT INTO tagged VALUES (2, 'a');
SELECT mlcache.get('tag:a:count', 'SELECT 1'), mlcache.last_level();
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tagged'::regclass;
SELECT expect_error($$SELECT mlcache.unwatch('tagged')$$);

-- A bulk UPDATE that moves rows: the old and the new keys, each once.
CREATE TABLE moves (id int, grp int, val int);
INSERT INTO moves SELECT g, g % 4, 0 FROM generate_series(1, 40) g;
SELECT mlcache.watch('moves', ARRAY['grp:{grp}', 'val:{val}']);
SELECT counter('invalidations') AS i0 \gset
UPDATE moves SET grp = grp + 10 WHERE grp < 2;   -- grp:0, grp:1, grp:10, grp:11; val:0
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT counter('invalidations') AS i0 \gset
UPDATE moves SET val = id;                       -- val:0, val:1 .. val:40, and the 4 grp keys: 45
SELECT counter('invalidations') - :i0 AS invalidations;
-- Parsed templates are kept per trigger and parsed again after DDL: a
-- placeholder column whose type changes renders with its new type.
ALTER TABLE moves ALTER COLUMN grp TYPE text USING 'g' || grp;
SELECT mlcache.get('grp:g10', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('grp:g10', 'SELECT 1'), mlcache.last_level();
UPDATE moves SET val = val + 1 WHERE grp = 'g10';
SELECT mlcache.get('grp:g10', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.unwatch('moves');
DROP TABLE moves;

-- Templates with two placeholders compare the values' bytes; a template whose
-- only placeholder is a by-value column compares the values themselves.
-- Unchanged keys count once, moved ones twice, NULLs render nothing.
CREATE TABLE pairs (id int, a int, b text);
INSERT INTO pairs SELECT g, g % 3, 'b' || (g % 2) FROM generate_series(1, 12) g;
SELECT mlcache.watch('pairs', ARRAY['pair:{a}:{b}', 'pa:{a}']);
SELECT counter('invalidations') AS i0 \gset
UPDATE pairs SET id = id + 100;                    -- 6 pairs, 3 pa: 9
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT counter('invalidations') AS i0 \gset
UPDATE pairs SET b = 'c' || (id % 2) WHERE a = 0;  -- pair:0:b0/b1 and pair:0:c0/c1, pa:0: 5
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT counter('invalidations') AS i0 \gset
UPDATE pairs SET a = NULL WHERE a = 1;             -- pair:1:b0/b1 and pa:1 (old rows only): 3
SELECT counter('invalidations') - :i0 AS invalidations;
-- An UPDATE that sets no key column reads only the new rows, unless a BEFORE
-- ROW trigger could have changed a key column on the way: this one moves a
-- row to another pair.
CREATE FUNCTION pairs_shift() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id = 103 THEN NEW.b := 'moved'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER pairs_shift BEFORE UPDATE ON pairs FOR EACH ROW EXECUTE FUNCTION pairs_shift();
SELECT counter('invalidations') AS i0 \gset
UPDATE pairs SET id = id WHERE id = 103;           -- pair:0:c1 (old), pair:0:moved (new), pa:0: 3
SELECT counter('invalidations') - :i0 AS invalidations;
DROP TRIGGER pairs_shift ON pairs;
DROP FUNCTION pairs_shift();
SELECT counter('invalidations') AS i0 \gset
UPDATE pairs SET id = id WHERE id = 103;           -- pair:0:moved, pa:0: 2
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT mlcache.unwatch('pairs');
DROP TABLE pairs;

-- Placeholder values render as their types' output functions write them
-- (integers and text are written directly): each row's key, built here by
-- format(), is invalidated by an UPDATE of another column.
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE typed (id int, s int2, i int4, b int8, t text, v varchar(20), n numeric,
                    d date, u uuid, m posint, x int);
INSERT INTO typed VALUES
 (1, -32768, -2147483648, -9223372036854775808, 'é ü', 'v1', 1.50, '2026-01-02',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 7, 0),
 (2, 32767, 2147483647, 9223372036854775807, '', 'x y', -0.001, '1999-12-31',
  '00000000-0000-0000-0000-000000000000', 1, 0),
 (3, 0, 0, 0, repeat('t', 3000), 'v', 0, 'infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 2147483647, 0);
SELECT mlcache.watch('typed', ARRAY['ty:{s}:{i}:{b}:{t}:{v}:{n}:{d}:{u}:{m}']);
CREATE FUNCTION typed_key(typed) RETURNS text LANGUAGE sql AS
$$ SELECT format('ty:%s:%s:%s:%s:%s:%s:%s:%s:%s', $1.s, $1.i, $1.b, $1.t, $1.v, $1.n, $1.d, $1.u, $1.m) $$;
SELECT id, mlcache.get(typed_key(typed), 'SELECT 1'), mlcache.last_level() FROM typed ORDER BY id;
SELECT id, mlcache.get(typed_key(typed), 'SELECT 1'), mlcache.last_level() FROM typed ORDER BY id;
UPDATE typed SET x = x + 1;
SELECT id, mlcache.get(typed_key(typed), 'SELECT 1'), mlcache.last_level() FROM typed ORDER BY id;
SELECT mlcache.unwatch('typed');
DROP FUNCTION typed_key;
DROP TABLE typed;
DROP DOMAIN posint;

-- Values are escaped in keys as fetch() escapes its parameters ('%' as %25,
-- ':' as %3A), through the text fast path and through output functions
-- alike (a timestamp has ':'), so that a watch invalidates exactly the keys
-- fetch() reads.
CREATE TABLE labels (id int, tag text, at timestamp, n int);
INSERT INTO labels VALUES (1, 'a:b', '2026-01-02 10:20:30', 1), (2, '50%', '2026-01-02 10:20:30', 2),
                          (3, 'a', '2026-01-03 00:00:00', 3);
SELECT mlcache.define('by_tag', 'SELECT sum(n) FROM labels WHERE tag = $1', 'by_tag:{1}', 300, 300);
SELECT mlcache.define('by_at', 'SELECT sum(n) FROM labels WHERE at = $1', 'by_at:{1}', 300, 300);
SELECT mlcache.watch('labels', ARRAY['by_tag:{tag}', 'by_at:{at}']);
SELECT mlcache.fetch('by_tag', 'a:b'), mlcache.fetch('by_tag', '50%'), mlcache.fetch('by_tag', 'a'),
       mlcache.fetch('by_at', '2026-01-02 10:20:30');
SELECT mlcache.fetch('by_tag', 'a:b'), mlcache.last_level();
UPDATE labels SET n = n + 10 WHERE id = 1;
SELECT mlcache.fetch('by_tag', 'a:b'), mlcache.last_level();
SELECT mlcache.fetch('by_tag', 'a'), mlcache.last_level();
SELECT mlcache.fetch('by_tag', '50%'), mlcache.last_level();
UPDATE labels SET n = n + 10 WHERE id = 2;
SELECT mlcache.fetch('by_tag', '50%'), mlcache.last_level();
SELECT mlcache.fetch('by_at', '2026-01-02 10:20:30'), mlcache.last_level();
SELECT mlcache.unwatch('labels');
SELECT mlcache.undefine('by_tag'), mlcache.undefine('by_at');
DROP TABLE labels;

-- A partitioned table: a row moved to another partition invalidates its old
-- and its new key.
CREATE TABLE parted (id int, grp int, val int) PARTITION BY LIST (grp);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN (1);
CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN (2);
INSERT INTO parted VALUES (1, 1, 0), (2, 1, 0), (3, 2, 0);
SELECT mlcache.watch('parted', ARRAY['parted:{grp}']);
SELECT mlcache.get('parted:1', 'SELECT 1'), mlcache.get('parted:2', 'SELECT 2'), mlcache.get('parted:3', 'SELECT 3');
SELECT counter('invalidations') AS i0 \gset
UPDATE parted SET grp = 2 WHERE id = 1;
SELECT counter('invalidations') - :i0 AS invalidations;
SELECT mlcache.get('parted:1', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('parted:2', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.get('parted:3', 'SELECT 3'), mlcache.last_level();
SELECT mlcache.unwatch('parted');
DROP TABLE parted;

-- Dropping a watched table forgets its watch and invalidates its keys.
SELECT a_stats(0);
DROP TABLE submissions;
SELECT tbl FROM mlcache.watches;
SELECT mlcache.get('assignment_stats:0', 'SELECT ''gone''::text'), mlcache.last_level();
DROP TABLE tagged;
DROP FUNCTION a_stats(int), s_stats(int);
