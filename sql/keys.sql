-- Keys: namespacing, long keys, literal glob characters, validation.

-- Keys longer than 200 bytes are stored in Redis under a SHA-256; the full key
-- travels in the envelope, so two long keys that share a prefix stay apart.
SELECT mlcache.get(repeat('k', 300) || '1', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get(repeat('k', 300) || '2', 'SELECT 2'), mlcache.last_level();
\c
SELECT mlcache.get(repeat('k', 300) || '1', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get(repeat('k', 300) || '2', 'SELECT 2'), mlcache.last_level();
-- A key of exactly the limit is stored as it is; one byte more is hashed.
SELECT mlcache.get(repeat('e', 200), 'SELECT 200'), mlcache.get(repeat('e', 201), 'SELECT 201');
\c
SELECT mlcache.get(repeat('e', 200), 'SELECT 200'), mlcache.last_level();
SELECT mlcache.get(repeat('e', 201), 'SELECT 201'), mlcache.last_level();
-- Long keys are invalidated like any other.
SELECT mlcache.invalidate(repeat('k', 300) || '1');
SELECT mlcache.get(repeat('k', 300) || '1', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get(repeat('k', 300) || '2', 'SELECT 2'), mlcache.last_level();
-- The largest accepted key is 64 kB.
SELECT mlcache.get(repeat('m', 65536), 'SELECT 1');
SELECT expect_error($$SELECT mlcache.get(repeat('m', 65537), 'SELECT 1')$$);

-- Glob characters in a key are ordinary characters, and invalidate() takes
-- its key literally: invalidating 'glob:*' does not touch 'glob:a'.
SELECT mlcache.get('glob:*', 'SELECT ''star''::text'), mlcache.get('glob:a', 'SELECT ''a''::text');
SELECT mlcache.invalidate('glob:*');
SELECT mlcache.get('glob:a', 'SELECT ''a''::text'), mlcache.last_level();
SELECT mlcache.get('glob:*', 'SELECT ''star''::text'), mlcache.last_level();

-- Unicode keys are fine.
SELECT mlcache.get('ключ:é:漢字', 'SELECT 1'), mlcache.get('ключ:é:漢字', 'SELECT 1'), mlcache.last_level();

-- Invalid keys.
SELECT expect_error($$SELECT mlcache.get(NULL, 'SELECT 1')$$);
SELECT expect_error($$SELECT mlcache.get('', 'SELECT 1')$$);
SELECT expect_error($$SELECT mlcache.get(E'a\tb', 'SELECT 1')$$);
SELECT expect_error($$SELECT mlcache.get(E'a\nb', 'SELECT 1')$$);
SELECT expect_error($$SELECT mlcache.get(E'a\x7fb', 'SELECT 1')$$);
SELECT expect_error($$SELECT mlcache.set(NULL, '1')$$);
SELECT expect_error($$SELECT mlcache.set('', '1')$$);
SELECT expect_error($$SELECT mlcache.invalidate(NULL)$$);
SELECT expect_error($$SELECT mlcache.invalidate('')$$);
SELECT expect_error($$SELECT mlcache.invalidate_pattern(NULL)$$);
SELECT expect_error($$SELECT mlcache.invalidate_pattern('')$$);

-- The namespace: mlcache.key_prefix, by default derived from the database.
SHOW mlcache.key_prefix;
SELECT mlcache.get('ns:x', 'SELECT 1'), mlcache.last_level();
SET mlcache.key_prefix = 'other:';
SELECT mlcache.get('ns:x', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.get('ns:x', 'SELECT 2'), mlcache.last_level();
RESET mlcache.key_prefix;
\c
SELECT mlcache.get('ns:x', 'SELECT 1'), mlcache.last_level();
SELECT expect_error($$SET mlcache.key_prefix = E'bad\tprefix'$$);
