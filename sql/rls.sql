-- G13 and row-level security: a value computed under a policy depends on
-- who reads and on the settings the policy reads, so it is never cached,
-- unless the caller names those settings in vary_on: their current values
-- then join the key and each tenant gets its own cached value.  Changes of
-- policies, of RLS on a table, of its owner or of a role's BYPASSRLS
-- invalidate every cached value at commit.
CREATE ROLE rls_app IN ROLE mlcache_reader;
CREATE ROLE rls_owner IN ROLE mlcache_admin;
CREATE TABLE rls_t (tenant int, x int);
INSERT INTO rls_t VALUES (1, 10), (1, 20), (2, 300), (2, 400);
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY rls_t_tenant ON rls_t USING (tenant = current_setting('app.tenant')::int);
GRANT SELECT ON rls_t TO rls_app, rls_owner;
-- The same sum read inside functions: PL/pgSQL (whose plan is kept for the
-- session once made) and SQL (not inlined: it has a FROM clause).
CREATE FUNCTION rls_f() RETURNS bigint LANGUAGE plpgsql STABLE
AS $$ BEGIN RETURN (SELECT sum(x) FROM rls_t); END $$;
CREATE FUNCTION rls_fs() RETURNS bigint LANGUAGE sql STABLE
AS $$ SELECT sum(x) FROM rls_t $$;

-- 1. A policy applies (rls_app does not own the table): every read
-- computes, and tenant 2 never gets tenant 1's sum.
SET ROLE rls_app;
SET app.tenant = 1;
SELECT mlcache.get('rls:sum', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
SELECT mlcache.get('rls:sum', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
SET app.tenant = 2;
SELECT mlcache.get('rls:sum', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
SELECT mlcache.get('rls:sum', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
RESET ROLE;
-- Nothing of it in Redis: a new backend computes too.
\c
SET ROLE rls_app;
SET app.tenant = 1;
SELECT mlcache.get('rls:sum', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
RESET ROLE;

-- 2. The policy applies inside a function the query calls.  First with the
-- PL/pgSQL function's plan made (and kept) before the cache runs it ...
SET ROLE rls_app;
SET app.tenant = 1;
SELECT rls_f();
SELECT mlcache.get('rls:f', 'SELECT rls_f()'), mlcache.last_level();
SELECT mlcache.get('rls:f', 'SELECT rls_f()'), mlcache.last_level();
SET app.tenant = 2;
SELECT mlcache.get('rls:f', 'SELECT rls_f()'), mlcache.last_level();
RESET ROLE;
-- ... then in a new backend, where the cache's query is the first to call
-- it.
\c
SET ROLE rls_app;
SET app.tenant = 2;
SELECT mlcache.get('rls:f', 'SELECT rls_f()'), mlcache.last_level();
SELECT mlcache.get('rls:f', 'SELECT rls_f()'), mlcache.last_level();
SET app.tenant = 1;
SELECT mlcache.get('rls:f', 'SELECT rls_f()'), mlcache.last_level();
-- A SQL function, first called by the cache, then called before it.
SELECT mlcache.get('rls:fs', 'SELECT rls_fs()'), mlcache.last_level();
SELECT mlcache.get('rls:fs', 'SELECT rls_fs()'), mlcache.last_level();
SET app.tenant = 2;
SELECT rls_fs();
SELECT mlcache.get('rls:fs', 'SELECT rls_fs()'), mlcache.last_level();
-- In a subquery, a CTE and a view.
SELECT mlcache.get('rls:sub', 'SELECT (SELECT sum(x) FROM rls_t) + 0 AS s'), mlcache.last_level();
SELECT mlcache.get('rls:sub', 'SELECT (SELECT sum(x) FROM rls_t) + 0 AS s'), mlcache.last_level();
SELECT mlcache.get('rls:cte', 'WITH c AS (SELECT x FROM rls_t) SELECT count(*) FROM c'), mlcache.last_level();
SELECT mlcache.get('rls:cte', 'WITH c AS (SELECT x FROM rls_t) SELECT count(*) FROM c'), mlcache.last_level();
RESET ROLE;
CREATE VIEW rls_v WITH (security_invoker = true) AS SELECT tenant, x FROM rls_t;
GRANT SELECT ON rls_v TO rls_app;
SET ROLE rls_app;
SELECT mlcache.get('rls:view', 'SELECT sum(x) FROM rls_v'), mlcache.last_level();
SET app.tenant = 1;
SELECT mlcache.get('rls:view', 'SELECT sum(x) FROM rls_v'), mlcache.last_level();
RESET ROLE;

-- 3. vary_on: the named settings' values join the key; each tenant's value
-- is cached, and only served to that tenant.  (vary_on comes after all the
-- other arguments: a three-argument get(key, query, vary_on) would make
-- get(key, query, NULL) ambiguous.)
CALL settle();
SET ROLE rls_app;
SET app.tenant = 1;
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SET app.tenant = 2;
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SET app.tenant = 1;
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
-- Positional notation, and a function reading the table.
SELECT mlcache.get('rls:v7', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, ARRAY['app.tenant']),
       mlcache.last_level();
SELECT mlcache.get('rls:v7', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, ARRAY['app.tenant']),
       mlcache.last_level();
SELECT mlcache.get('rls:fv', 'SELECT rls_f()', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:fv', 'SELECT rls_f()', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SET app.tenant = 2;
SELECT mlcache.get('rls:v7', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, ARRAY['app.tenant']),
       mlcache.last_level();
SELECT mlcache.get('rls:fv', 'SELECT rls_f()', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
-- From Redis, in a new backend: each tenant gets its own value.
\c
SET ROLE rls_app;
SET app.tenant = 2;
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SET app.tenant = 1;
SELECT mlcache.get('rls:v', 'SELECT sum(x) FROM rls_t', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;

-- 4. A definition runs its query as its owner; the policy reads the
-- caller's setting.  Without vary_on nothing is cached ...
SET ROLE rls_owner;
SELECT mlcache.define('rls_def', 'SELECT sum(x) FROM rls_t', 'rls:def');
RESET ROLE;
SELECT mlcache.grant_fetch('rls_def', 'rls_app');
SELECT name, owner, readers FROM mlcache.definitions WHERE name = 'rls_def';
SET ROLE rls_app;
SET app.tenant = 1;
SELECT mlcache.fetch('rls_def'), mlcache.last_level();
SELECT mlcache.fetch('rls_def'), mlcache.last_level();
SET app.tenant = 2;
SELECT mlcache.fetch('rls_def'), mlcache.last_level();
SELECT mlcache.fetch('rls_def'), mlcache.last_level();
RESET ROLE;
-- ... with vary_on, each tenant's value is cached.
SET ROLE rls_owner;
SELECT mlcache.define('rls_def_v', 'SELECT sum(x) FROM rls_t', 'rls:def:v', vary_on => ARRAY['app.tenant']);
RESET ROLE;
SELECT mlcache.grant_fetch('rls_def_v', 'rls_app');
SET ROLE rls_app;
SET app.tenant = 1;
SELECT mlcache.fetch('rls_def_v'), mlcache.last_level();
SELECT mlcache.fetch('rls_def_v'), mlcache.last_level();
SET app.tenant = 2;
SELECT mlcache.fetch('rls_def_v'), mlcache.last_level();
SELECT mlcache.fetch('rls_def_v'), mlcache.last_level();
SET app.tenant = 1;
SELECT mlcache.fetch('rls_def_v'), mlcache.last_level();
RESET ROLE;

-- 5. Changes of policies and of RLS invalidate every cached value at
-- commit.  rls_u starts without RLS: its sum is cached.
CREATE TABLE rls_u (tenant int, x int);
INSERT INTO rls_u VALUES (1, 10), (1, 20), (2, 300), (2, 400);
GRANT SELECT ON rls_u TO rls_app;
SET ROLE rls_app;
SET app.tenant = 1;
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
RESET ROLE;
-- A policy on a table without RLS changes nothing, but is a policy change.
CREATE POLICY rls_u_tenant ON rls_u USING (tenant = current_setting('app.tenant')::int);
SET ROLE rls_app;
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
RESET ROLE;
-- ENABLE ROW LEVEL SECURITY: the cached total is not served again.
ALTER TABLE rls_u ENABLE ROW LEVEL SECURITY;
SET ROLE rls_app;
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
-- Cached per tenant with vary_on, until ALTER POLICY ...
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
ALTER POLICY rls_u_tenant ON rls_u USING (tenant = current_setting('app.tenant')::int OR x > 350);
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
-- ... DROP POLICY (no policy left: nothing is visible) ...
DROP POLICY rls_u_tenant ON rls_u;
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
-- ... and CREATE POLICY.
CREATE POLICY rls_u_tenant ON rls_u USING (tenant = current_setting('app.tenant')::int);
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
-- OWNER TO: the owner is not subject to the table's policies (without
-- FORCE), so it sees every row; its total is cached.
ALTER TABLE rls_u OWNER TO rls_app;
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
RESET ROLE;
-- FORCE ROW LEVEL SECURITY: now the owner is subject to them.
ALTER TABLE rls_u FORCE ROW LEVEL SECURITY;
SET ROLE rls_app;
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
-- NO FORCE, back to the owner's total (cached), then the table back to
-- its old owner: rls_app is subject to the policy again.
ALTER TABLE rls_u NO FORCE ROW LEVEL SECURITY;
SET ROLE rls_app;
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
RESET ROLE;
ALTER TABLE rls_u OWNER TO CURRENT_USER;
GRANT SELECT ON rls_u TO rls_app;
SET ROLE rls_app;
SELECT mlcache.get('rls:u', 'SELECT sum(x) FROM rls_u'), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
-- DISABLE ROW LEVEL SECURITY.
ALTER TABLE rls_u DISABLE ROW LEVEL SECURITY;
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;

-- 6. ALTER ROLE ... BYPASSRLS: a role that bypasses RLS sees every row and
-- its total is cached; NOBYPASSRLS makes the policy apply again.
ALTER ROLE rls_app BYPASSRLS;
SET ROLE rls_app;
SELECT mlcache.get('rls:by', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
SELECT mlcache.get('rls:by', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
RESET ROLE;
ALTER ROLE rls_app NOBYPASSRLS;
SET ROLE rls_app;
SELECT mlcache.get('rls:by', 'SELECT sum(x) FROM rls_t'), mlcache.last_level();
RESET ROLE;

-- 7. A rolled-back policy change leaves cached values served.
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;
BEGIN;
ALTER TABLE rls_u ENABLE ROW LEVEL SECURITY;
DROP POLICY rls_u_tenant ON rls_u;
ROLLBACK;
SET ROLE rls_app;
SELECT mlcache.get('rls:uv', 'SELECT sum(x) FROM rls_u', NULL, NULL, NULL, NULL, vary_on => ARRAY['app.tenant']), mlcache.last_level();
RESET ROLE;

SELECT mlcache.undefine('rls_def'), mlcache.undefine('rls_def_v');
DROP VIEW rls_v;
DROP TABLE rls_t, rls_u;
DROP FUNCTION rls_f(), rls_fs();
DROP ROLE rls_app, rls_owner;
