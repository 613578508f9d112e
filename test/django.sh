#!/usr/bin/env bash
# test/django.sh: the Django example's tests (examples/django_lms) against the running servers.
#
# Run it under test/harness.sh, which exports PGHOST, PGPORT, PGUSER (a superuser: the test
# database gets CREATE EXTENSION mlcache_lms CASCADE) and PGDATABASE.  As a DBA would, it
# creates the application's role MLCACHE_APP_ROLE (default mlcache_django_app: LOGIN and
# nothing else) unless it exists, and drops it afterwards if it created it.  Django's test
# runner (lms_project/test_runner.py) creates test_$PGDATABASE and migrates it as PGUSER
# (installing mlcache's LMS pack over Django's tables and granting the application's role
# what the endpoints use), runs examples/django_lms/assignments/tests.py connected as the
# application's role, and drops the database.  Needs python3-django and python3-psycopg2
# (test/deps.sh); installs nothing.  Exit status: the tests' (124 if they took longer than
# MLCACHE_DJANGO_TIMEOUT seconds, default 600), or 1 if the role could not be made or dropped.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../examples/django_lms" || exit 1
: "${PGHOST:?is not set: run this under test/harness.sh}"
export MLCACHE_APP_ROLE=${MLCACHE_APP_ROLE:-mlcache_django_app}

# role_sql: run the SQL on stdin in database postgres, with :'role' the application's role.
role_sql() { psql -X -q -tA -v ON_ERROR_STOP=1 -v role="$MLCACHE_APP_ROLE" -d postgres; }

exists=$(role_sql <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'role'") || exit 1
if ((exists == 0)); then
	role_sql <<<"SELECT format('CREATE ROLE %I LOGIN', :'role') \gexec" || exit 1
fi

# Only Debian's interpreter sees python3-django; no bytecode in the source tree.
PYTHONDONTWRITEBYTECODE=1 timeout -k 10 "${MLCACHE_DJANGO_TIMEOUT:-600}" \
	/usr/bin/python3 manage.py test --noinput -v 2
rc=$?

# The test database, and every grant on its objects, is gone: the role can go too.
if ((exists == 0)); then
	role_sql <<<"SELECT format('DROP ROLE %I', :'role') \gexec" || rc=1
fi
exit $rc
