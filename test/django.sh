#!/usr/bin/env bash
# test/django.sh: the Django example's tests (examples/django_lms) against the running servers.
#
# Run it under test/harness.sh, which exports PGHOST, PGPORT, PGUSER (a superuser: the test
# database gets CREATE EXTENSION mlcache_lms) and PGDATABASE.  It creates the application's
# role (MLCACHE_APP_ROLE, default mlcache_django_app: LOGIN, nothing else) as a DBA would.
# Django's test runner (lms_project.test_runner) creates test_$PGDATABASE and migrates it as
# PGUSER (installing mlcache's LMS pack over Django's tables and granting the application's
# role what the endpoints use), then runs examples/django_lms/assignments/tests.py connected
# as the application's role, and drops the database.  Needs python3-django and
# python3-psycopg2 (test/deps.sh); installs nothing.  Exit status: the tests' (124 if they
# took longer than MLCACHE_DJANGO_TIMEOUT seconds, default 600).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../examples/django_lms" || exit 1
: "${PGHOST:?is not set: run this under test/harness.sh}"
export MLCACHE_APP_ROLE=${MLCACHE_APP_ROLE:-mlcache_django_app}

psql -X -q -v ON_ERROR_STOP=1 -v role="$MLCACHE_APP_ROLE" -d postgres <<'SQL' || exit 1
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
SQL

# Only Debian's interpreter sees python3-django; no bytecode in the source tree.
PYTHONDONTWRITEBYTECODE=1 exec timeout -k 10 "${MLCACHE_DJANGO_TIMEOUT:-600}" \
	/usr/bin/python3 manage.py test --noinput -v 2
