"""A test runner that migrates as the owner and runs every test as the application's role.

The test database is created and migrated by the role in DATABASES (the
owner: CREATE EXTENSION mlcache_lms needs a superuser), whose migration
grants settings.MLCACHE_APP_ROLE what the application needs.  Then the
runner gives that role the ordinary privileges any application role has on
the project's tables (plus TRUNCATE, which only the test framework uses: a
TransactionTestCase empties the tables with it after each test), and
switches the default connection to it, so the views, the client and every
query of the tests run without superuser rights and outside mlcache_admin.
owner_params() connects as the owner for what only it may do.
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test.runner import DiscoverRunner

_owner = {}


def owner_params():
    """psycopg2.connect() keyword arguments for the test database, as its owner."""
    conn = connections["default"]
    return {**conn.get_connection_params(), "user": _owner["user"]}


class AppRoleRunner(DiscoverRunner):
    def setup_databases(self, **kwargs):
        role = settings.MLCACHE_APP_ROLE
        if not role:
            raise ImproperlyConfigured("set MLCACHE_APP_ROLE to the (existing, non-superuser) application role")
        config = super().setup_databases(**kwargs)
        conn = connections["default"]
        quoted = conn.ops.quote_name(role)
        with conn.cursor() as cur:
            cur.execute("SELECT quote_ident(current_schema())")
            schema = cur.fetchone()[0]
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {schema} TO {quoted}")
            cur.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}")
        conn.close()
        _owner["user"] = conn.settings_dict["USER"]
        conn.settings_dict["USER"] = role
        return config

    def teardown_databases(self, old_config, **kwargs):
        conn = connections["default"]
        conn.close()
        conn.settings_dict["USER"] = _owner["user"]
        super().teardown_databases(old_config, **kwargs)
