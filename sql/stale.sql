-- Opt-in staleness (G8): off by default; XFetch and stale-while-revalidate
-- only when asked for.  (The concurrent case is test/isolation/specs/
-- stale_while_revalidate.spec.)
SELECT mlcache.get('st:x', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.get('st:x', 'SELECT 1'), mlcache.last_level();
-- XFetch with a huge beta always recomputes early; beta 0 never does.
SELECT counter('xfetch_early') AS x0 \gset
SELECT mlcache.get('st:x', 'SELECT 1', NULL, NULL, 0, 1e12), mlcache.last_level();
SELECT mlcache.get('st:x', 'SELECT 1', NULL, NULL, 0, 1e12), mlcache.last_level();
SELECT counter('xfetch_early') - :x0 AS early_recomputations;
SELECT mlcache.get('st:x', 'SELECT 1', NULL, NULL, 0, 0), mlcache.last_level();

-- Without max_stale an invalidated value is never served, even when no one
-- else is computing it; with it, a reader that finds no one computing
-- recomputes rather than serving the stale value.
SELECT mlcache.get('st:y', 'SELECT 1', NULL, NULL, 60);
SELECT mlcache.invalidate('st:y');
\c
SELECT mlcache.get('st:y', 'SELECT 1'), mlcache.last_level();
SELECT mlcache.invalidate('st:y');
\c
SELECT mlcache.get('st:y', 'SELECT 1', NULL, NULL, 60), mlcache.last_level();

-- Definitions opt in with set_staleness().
SELECT mlcache.define('st_def', 'SELECT $1::int * 2', 'st:def:{1}');
SELECT max_stale, beta FROM mlcache.definitions WHERE name = 'st_def';
SELECT mlcache.set_staleness('st_def', 30, 1.0);
SELECT max_stale, beta FROM mlcache.definitions WHERE name = 'st_def';
SELECT mlcache.fetch('st_def', 2);

-- Bad input.
SELECT expect_error($$SELECT mlcache.get('st:z', 'SELECT 1', NULL, NULL, -1)$$);
SELECT expect_error($$SELECT mlcache.get('st:z', 'SELECT 1', NULL, NULL, 0, -1)$$);
SELECT expect_error($$SELECT mlcache.get('st:z', 'SELECT 1', NULL, NULL, 0, 'NaN')$$);
SELECT expect_error($$SELECT mlcache.set_staleness('st_def', -1)$$);
SELECT expect_error($$SELECT mlcache.set_staleness('no_such', 1)$$);
SELECT mlcache.undefine('st_def');

-- Named notation works with the arguments before the named one given; with
-- a gap it finds no function (get() has no DEFAULTs, see the README).
SELECT mlcache.get(key => 'st:n', query => 'SELECT 1', l1_ttl => NULL, l2_ttl => NULL, max_stale => 0, beta => 0);
SELECT expect_error($$SELECT mlcache.get('st:n', 'SELECT 1', beta => 1)$$);
