-- mlcache.get: how results become jsonb, and that each shape is cached.

-- One row, one column: that value.
SELECT mlcache.get('get:sum', 'SELECT sum(score) FROM scores'), mlcache.last_level();
SELECT mlcache.get('get:sum', 'SELECT sum(score) FROM scores'), mlcache.last_level();

-- Several rows or columns: an array of row objects, in the query's order.
SELECT mlcache.get('get:rows', 'SELECT id, score FROM scores WHERE id <= 3 ORDER BY id'),
       mlcache.last_level();
SELECT mlcache.get('get:rows', 'SELECT id, score FROM scores WHERE id <= 3 ORDER BY id'),
       mlcache.last_level();
SELECT mlcache.get('get:onerow', 'SELECT 1 AS a, ''x'' AS b'), mlcache.last_level();

-- No rows: JSON null, and that null is cached too.
SELECT mlcache.get('get:none', 'SELECT id FROM scores WHERE false'), mlcache.last_level();
SELECT mlcache.get('get:none', 'SELECT id FROM scores WHERE false'), mlcache.last_level();

-- One row holding SQL NULL: JSON null.
SELECT mlcache.get('get:null', 'SELECT NULL::int'), mlcache.last_level();

-- Types keep their JSON shape: text, boolean, arrays, json, composites.
SELECT mlcache.get('get:types',
       'SELECT ''a"b''::text AS t, true AS b, ARRAY[1,2] AS arr, ''{"k": [1]}''::jsonb AS j, ROW(1, ''x'') AS r');
SELECT mlcache.get('get:scalar-json', 'SELECT ''{"k": 1}''::jsonb');
SELECT mlcache.get('get:big', 'SELECT 12345678901234567890::numeric');

-- VALUES is a query too.
SELECT mlcache.get('get:values', 'VALUES (1), (2)');

-- A cached value belongs to its query text: a different query under the same
-- key is a different value and is recomputed, never served the other's result.
SELECT mlcache.get('get:q', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('get:q', 'SELECT 2'), mlcache.last_level();
SELECT mlcache.get('get:q', 'SELECT 2'), mlcache.last_level();

-- set() stores a value at commit; get() of the same role then finds it.
SELECT mlcache.set('get:set', '{"answer": 42}');
SELECT mlcache.get('get:set', 'SELECT 0'), mlcache.last_level();
-- An aborted set stores nothing.
BEGIN;
SELECT mlcache.set('get:set-aborted', '"never"');
ROLLBACK;
SELECT mlcache.get('get:set-aborted', 'SELECT ''computed''::text'), mlcache.last_level();
-- A set inside a rolled-back savepoint stores nothing either.
BEGIN;
SAVEPOINT a;
SELECT mlcache.set('get:set-sp', '"never"');
ROLLBACK TO SAVEPOINT a;
SELECT mlcache.set('get:set-sp2', '"kept"');
COMMIT;
SELECT mlcache.get('get:set-sp', 'SELECT ''computed''::text'), mlcache.last_level();
SELECT mlcache.get('get:set-sp2', 'SELECT ''computed''::text'), mlcache.last_level();

-- mlcache.enabled = off reads around the cache and stores nothing.
SET mlcache.enabled = off;
SELECT mlcache.get('get:off', 'SELECT 5'), mlcache.last_level();
SELECT mlcache.get('get:off', 'SELECT 5'), mlcache.last_level();
RESET mlcache.enabled;
SELECT mlcache.get('get:off', 'SELECT 5'), mlcache.last_level();
