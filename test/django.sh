#!/usr/bin/env bash
# test/django.sh: the Django example's tests (examples/django_lms) against the running servers.
#
# Run it under test/harness.sh, which exports PGHOST, PGPORT, PGUSER (a superuser: the test
# database gets CREATE EXTENSION mlcache) and PGDATABASE.  Django's test runner creates
# test_$PGDATABASE, migrates it (installing mlcache's LMS pack over Django's tables), runs
# examples/django_lms/assignments/tests.py and drops it.  Needs python3-django and
# python3-psycopg2 (test/deps.sh); installs nothing.  Exit status: the tests' (124 if they
# took longer than MLCACHE_DJANGO_TIMEOUT seconds, default 600).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../examples/django_lms" || exit 1
: "${PGHOST:?is not set: run this under test/harness.sh}"

# Only Debian's interpreter sees python3-django; no bytecode in the source tree.
PYTHONDONTWRITEBYTECODE=1 exec timeout -k 10 "${MLCACHE_DJANGO_TIMEOUT:-600}" \
	/usr/bin/python3 manage.py test --noinput -v 2
