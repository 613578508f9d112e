"""Settings of the mlcache Django example.

The database comes from libpq's environment (PGHOST, PGPORT, PGUSER,
PGDATABASE, PGPASSWORD), as test/harness.sh exports it.  Connections are kept
for 60 s (CONN_MAX_AGE) to show that mlcache's per-backend L1 stays coherent
across requests served by one persistent connection.
"""
import os

SECRET_KEY = "mlcache-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "assignments",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "lms_project.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("PGDATABASE", "postgres"),
        "USER": os.environ.get("PGUSER", ""),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", ""),  # a directory means a unix socket
        "PORT": os.environ.get("PGPORT", ""),
        "CONN_MAX_AGE": 60,
        "OPTIONS": {"connect_timeout": 10},
    }
}

# The role the application connects as, if it is not the one that runs the
# migrations (the owner of the tables and of the pack's definitions): the
# mlcache migration grants it what the endpoints use, and no more
# (assignments.mlcache_client.APP_GRANTS).
MLCACHE_APP_ROLE = os.environ.get("MLCACHE_APP_ROLE", "")

# Tests migrate as the owner (USER above) and then run as MLCACHE_APP_ROLE.
TEST_RUNNER = "lms_project.test_runner.AppRoleRunner"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
