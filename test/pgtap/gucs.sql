-- test/pgtap/gucs.sql: every mlcache.* configuration parameter (src/guc.c).
--
-- Defaults, units, contexts and types as pg_settings shows them; the
-- superuser-only, hidden mlcache.redis_password; range checks; and the
-- reserved "mlcache" prefix.  Run as a superuser.
BEGIN;
SELECT plan(48);

-- The parameters are defined when the library is loaded; it normally is
-- already (shared_preload_libraries), and then this is a no-op.
LOAD 'mlcache';

-- ---- what pg_settings shows (29) ----
-- setting NULL: not checked, because the test server's postgresql.conf sets it.
CREATE TEMP TABLE tap_guc (
    name     text PRIMARY KEY,
    setting  text,
    unit     text,
    context  text NOT NULL,
    boot_val text NOT NULL,
    vartype  text NOT NULL
) ON COMMIT DROP;
INSERT INTO tap_guc VALUES
 ('mlcache.enabled',               'on',        NULL, 'user',       'on',        'bool'),
 ('mlcache.l1_ttl',                '60',        's',  'user',       '60',        'integer'),
 ('mlcache.l2_ttl',                '3600',      's',  'user',       '3600',      'integer'),
 ('mlcache.l3_ttl',                '604800',    's',  'user',       '604800',    'integer'),
 ('mlcache.l1_max_memory',         '51200',     'kB', 'user',       '51200',     'integer'),
 ('mlcache.max_value_size',        '8192',      'kB', 'user',       '8192',      'integer'),
 ('mlcache.redis_host',            '127.0.0.1', NULL, 'sighup',     '127.0.0.1', 'string'),
 ('mlcache.redis_port',            '6379',      NULL, 'sighup',     '6379',      'integer'),
 ('mlcache.redis_socket',          NULL,        NULL, 'sighup',     '',          'string'),
 ('mlcache.redis_username',        '',          NULL, 'sighup',     '',          'string'),
 ('mlcache.redis_database',        '0',         NULL, 'sighup',     '0',         'integer'),
 ('mlcache.redis_sentinels',       '',          NULL, 'sighup',     '',          'string'),
 ('mlcache.redis_master_name',     'mymaster',  NULL, 'sighup',     'mymaster',  'string'),
 ('mlcache.redis_connect_timeout', '50',        'ms', 'sighup',     '50',        'integer'),
 ('mlcache.redis_command_timeout', '50',        'ms', 'sighup',     '50',        'integer'),
 ('mlcache.redis_retry_interval',  '1000',      'ms', 'sighup',     '1000',      'integer'),
 ('mlcache.key_prefix',            '',          NULL, 'superuser',  '',          'string'),
 ('mlcache.generation_slots',      '65536',     NULL, 'postmaster', '65536',     'integer'),
 ('mlcache.refresh_delay',         '1000',      'ms', 'sighup',     '1000',      'integer'),
 ('mlcache.scan_interval',         '1000',      'ms', 'sighup',     '1000',      'integer'),
 ('mlcache.hygiene_delay',         '50',        'ms', 'sighup',     '50',        'integer'),
 ('mlcache.fill_wait_timeout',     '2000',      'ms', 'user',       '2000',      'integer'),
 ('mlcache.track_max',             '5000',      NULL, 'postmaster', '5000',      'integer'),
 ('mlcache.track_flush_interval',  '1000',      'ms', 'user',       '1000',      'integer'),
 ('mlcache.redis_spin_us',         '0',         NULL, 'user',       '0',         'integer'),
 ('mlcache.warm_sync_limit',       '2000',      'ms', 'user',       '2000',      'integer'),
 ('mlcache.warm_task_timeout',     '30000',     'ms', 'sighup',     '30000',     'integer'),
 ('mlcache.warm_max_attempts',     '5',         NULL, 'sighup',     '5',         'integer'),
 ('mlcache.standby_invalidation',  'on',        NULL, 'sighup',     'on',        'bool');

-- One test per parameter; a missing parameter shows as NULL (29).
SELECT is(
    (SELECT format('setting=%s unit=%s context=%s boot_val=%s vartype=%s',
                   CASE WHEN g.setting IS NULL THEN '(not checked)' ELSE quote_literal(s.setting) END,
                   coalesce(s.unit, '(none)'), s.context, quote_literal(s.boot_val), s.vartype)
       FROM pg_settings s WHERE s.name = g.name),
    format('setting=%s unit=%s context=%s boot_val=%s vartype=%s',
           CASE WHEN g.setting IS NULL THEN '(not checked)' ELSE quote_literal(g.setting) END,
           coalesce(g.unit, '(none)'), g.context, quote_literal(g.boot_val), g.vartype),
    format('%s: default %s%s, context %s', g.name,
           CASE WHEN g.setting IS NULL THEN quote_literal(g.boot_val) || ' (boot_val)'
                ELSE quote_literal(g.setting) END,
           coalesce(' ' || g.unit, ''), g.context)
) FROM tap_guc g ORDER BY g.name;

-- No other mlcache.* parameter is visible; redis_password is hidden (1).
SELECT set_eq(
    $$SELECT name FROM pg_settings WHERE name LIKE 'mlcache.%'$$,
    $$SELECT name FROM tap_guc$$,
    'pg_settings shows exactly these mlcache.* parameters'
);

-- ---- mlcache.redis_password (9) ----
SELECT is_empty(
    $$SELECT 1 FROM pg_settings WHERE name = 'mlcache.redis_password'$$,
    'mlcache.redis_password is not listed in pg_settings, even for a superuser'
);
SELECT is(
    pg_settings_get_flags('mlcache.redis_password'),
    ARRAY['NO_SHOW_ALL'],
    'mlcache.redis_password exists and is flagged NO_SHOW_ALL'
);
SELECT is(
    current_setting('mlcache.redis_password'),
    '',
    'a superuser can read mlcache.redis_password: empty by default'
);
-- A superuser could SET a PGC_SUSET or PGC_USERSET parameter; "cannot be
-- changed now" (not "without restarting the server") is what PGC_SIGHUP says.
SELECT throws_ok(
    $$SET mlcache.redis_password = 'tap-secret'$$,
    '55P02',
    'parameter "mlcache.redis_password" cannot be changed now',
    'mlcache.redis_password has context sighup: SET is refused even to a superuser'
);

CREATE ROLE tap_guc_user NOLOGIN NOSUPERUSER;
CREATE ROLE tap_guc_settings_reader NOLOGIN NOSUPERUSER IN ROLE pg_read_all_settings;

SET ROLE tap_guc_user;
SELECT throws_ok(
    $$SELECT current_setting('mlcache.redis_password')$$,
    '42501',
    'must be superuser or have privileges of pg_read_all_settings to examine "mlcache.redis_password"',
    'a non-superuser cannot read mlcache.redis_password with current_setting()'
);
SELECT throws_ok(
    $$SHOW mlcache.redis_password$$,
    '42501',
    NULL,
    'a non-superuser cannot SHOW mlcache.redis_password'
);
SELECT throws_ok(
    $$SET mlcache.key_prefix = 'tap:'$$,
    '42501',
    'permission denied to set parameter "mlcache.key_prefix"',
    'a non-superuser cannot set mlcache.key_prefix (context superuser)'
);
SELECT lives_ok(
    $$SET LOCAL mlcache.l1_ttl = 30$$,
    'a non-superuser can set mlcache.l1_ttl (context user)'
);
RESET ROLE;

SET ROLE tap_guc_settings_reader;
SELECT is(
    current_setting('mlcache.redis_password'),
    '',
    'a member of pg_read_all_settings can read mlcache.redis_password'
);
RESET ROLE;

-- ---- mlcache.redis_sentinel_password, hidden like redis_password (3) ----
SELECT is_empty(
    $$SELECT 1 FROM pg_settings WHERE name = 'mlcache.redis_sentinel_password'$$,
    'mlcache.redis_sentinel_password is not listed in pg_settings'
);
SELECT is(
    pg_settings_get_flags('mlcache.redis_sentinel_password'),
    ARRAY['NO_SHOW_ALL'],
    'mlcache.redis_sentinel_password exists and is flagged NO_SHOW_ALL'
);
SET ROLE tap_guc_user;
SELECT throws_ok(
    $$SELECT current_setting('mlcache.redis_sentinel_password')$$,
    '42501',
    NULL,
    'a non-superuser cannot read mlcache.redis_sentinel_password'
);
RESET ROLE;

-- ---- validation (6) ----
SELECT throws_ok(
    $$SET mlcache.l1_ttl = -1$$,
    '22023',
    NULL,
    'mlcache.l1_ttl = -1 is rejected as out of range'
);
SELECT lives_ok(
    $$SET LOCAL mlcache.l1_ttl = 0$$,
    'mlcache.l1_ttl = 0 (do not keep in L1) is accepted'
);
SELECT throws_ok(
    $$SET mlcache.redis_spin_us = 1001$$,
    '22023',
    NULL,
    'mlcache.redis_spin_us above 1000 (1 ms of polling) is rejected'
);
SELECT throws_ok(
    $$SET mlcache.track_flush_interval = -1$$,
    '22023',
    NULL,
    'mlcache.track_flush_interval = -1 is rejected as out of range'
);
-- MarkGUCPrefixReserved("mlcache"): PostgreSQL 15 reports an unknown name
-- under a reserved prefix as invalid_name (42602), not undefined_object.
SELECT throws_ok(
    $$SET mlcache.nonsense = 1$$,
    '42602',
    'invalid configuration parameter name "mlcache.nonsense"',
    'unknown parameter mlcache.nonsense is rejected: the mlcache prefix is reserved'
);
SELECT lives_ok(
    $$SET LOCAL tap_unreserved.nonsense = 1$$,
    'control: an unknown parameter under an unreserved prefix is accepted'
);

SELECT * FROM finish();
ROLLBACK;
