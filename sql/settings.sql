-- G13: settings that shape a result's text join the value's fingerprint.
-- A value rendered under one TimeZone, extra_float_digits, IntervalStyle or
-- bytea_output is not served to a session whose setting renders it
-- differently; each setting's value computes once and is then cached.

-- TimeZone: a timestamptz becomes text in the session's time zone.
SET TimeZone = 'UTC';
SELECT mlcache.get('st:tz', $$SELECT timestamptz '2024-01-01 12:00+00'$$), mlcache.last_level();
SELECT mlcache.get('st:tz', $$SELECT timestamptz '2024-01-01 12:00+00'$$), mlcache.last_level();
SET TimeZone = 'Asia/Tokyo';
SELECT mlcache.get('st:tz', $$SELECT timestamptz '2024-01-01 12:00+00'$$), mlcache.last_level();
SELECT mlcache.get('st:tz', $$SELECT timestamptz '2024-01-01 12:00+00'$$), mlcache.last_level();
-- Inside a row of several columns too.
SET TimeZone = 'UTC';
SELECT mlcache.get('st:tz:row', $$SELECT 1 AS n, timestamptz '2024-01-01 12:00+00' AS at$$);
SET TimeZone = 'America/New_York';
SELECT mlcache.get('st:tz:row', $$SELECT 1 AS n, timestamptz '2024-01-01 12:00+00' AS at$$),
       mlcache.last_level();
-- From Redis, in a new backend: its value was rendered in New York.
\c
SET TimeZone = 'Asia/Tokyo';
SELECT mlcache.get('st:tz:row', $$SELECT 1 AS n, timestamptz '2024-01-01 12:00+00' AS at$$);
RESET TimeZone;

-- extra_float_digits: 1 (the default) gives the shortest exact float8
-- text, 0 rounds to 15 significant digits.
SET extra_float_digits = 1;
SELECT mlcache.get('st:efd', 'SELECT 0.1::float8 + 0.2::float8'), mlcache.last_level();
SELECT mlcache.get('st:efd', 'SELECT 0.1::float8 + 0.2::float8'), mlcache.last_level();
SET extra_float_digits = 0;
SELECT mlcache.get('st:efd', 'SELECT 0.1::float8 + 0.2::float8'), mlcache.last_level();
SELECT mlcache.get('st:efd', 'SELECT 0.1::float8 + 0.2::float8'), mlcache.last_level();
RESET extra_float_digits;

-- IntervalStyle.
SET IntervalStyle = 'postgres';
SELECT mlcache.get('st:iv', $$SELECT interval '1 day 2 hours 3 minutes 4 seconds'$$), mlcache.last_level();
SELECT mlcache.get('st:iv', $$SELECT interval '1 day 2 hours 3 minutes 4 seconds'$$), mlcache.last_level();
SET IntervalStyle = 'iso_8601';
SELECT mlcache.get('st:iv', $$SELECT interval '1 day 2 hours 3 minutes 4 seconds'$$), mlcache.last_level();
SELECT mlcache.get('st:iv', $$SELECT interval '1 day 2 hours 3 minutes 4 seconds'$$), mlcache.last_level();
RESET IntervalStyle;

-- bytea_output.
SET bytea_output = 'hex';
SELECT mlcache.get('st:bytea', $$SELECT '\x0141'::bytea$$), mlcache.last_level();
SELECT mlcache.get('st:bytea', $$SELECT '\x0141'::bytea$$), mlcache.last_level();
SET bytea_output = 'escape';
SELECT mlcache.get('st:bytea', $$SELECT '\x0141'::bytea$$), mlcache.last_level();
SELECT mlcache.get('st:bytea', $$SELECT '\x0141'::bytea$$), mlcache.last_level();
RESET bytea_output;
