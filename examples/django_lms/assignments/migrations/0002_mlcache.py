"""Install mlcache's LMS pack over the tables 0001_initial created, under Django's own names.

mlcache.lms_setup() creates the L3 materialized views over these tables, the
five definitions and the watches (statement-level triggers that invalidate at
commit, so ORM saves, queryset.update() and raw SQL all invalidate).  It
needs the tables, hence this migration comes after the models' (and after
auth's, since auth_user is the pack's users table).  CREATE
EXTENSION mlcache_lms CASCADE (the pack, and the core it requires) needs a
superuser, or both installed beforehand.  When settings.MLCACHE_APP_ROLE
names the role the application connects as, it gets exactly what the
endpoints use (mlcache_client.grant_app_role), never mlcache_admin.
"""
import json

from django.conf import settings
from django.db import migrations

from assignments.mlcache_client import LMS_COLUMNS, LMS_TABLES, grant_app_role

SETUP = "SELECT mlcache.lms_setup(current_schema(), %s::jsonb, %s::jsonb)"
MAPPING = [json.dumps(LMS_TABLES), json.dumps(LMS_COLUMNS)]
# warm() fills assignment_stats for every assignment.  Definitions keep the
# search_path of lms_setup (pg_catalog only), so the table is qualified.
WARM = ("SELECT mlcache.set_warm_query('assignment_stats', 'SELECT id FROM ' "
        "|| quote_ident(current_schema()) || '.assignments_assignment ORDER BY id')")
TEARDOWN = [
    "SELECT mlcache.undefine(name) FROM mlcache.lms_definitions()",
    ("SELECT mlcache.unwatch(to_regclass(quote_ident(current_schema()) || '.' || t)) "
     "FROM jsonb_each_text(%s::jsonb) AS m(k, t)", [json.dumps(LMS_TABLES)]),
    "DROP MATERIALIZED VIEW mlcache_assignment_stats, mlcache_analytics_student, mlcache_analytics_engagement",
]


def grant(apps, schema_editor):
    if settings.MLCACHE_APP_ROLE:
        grant_app_role(settings.MLCACHE_APP_ROLE)


class Migration(migrations.Migration):
    # After every migration of the tables it reads: its materialized views
    # would make PostgreSQL refuse a later ALTER COLUMN ... TYPE on them
    # (auth 0008 changes auth_user.username, which the views read).
    dependencies = [("assignments", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL("CREATE EXTENSION IF NOT EXISTS mlcache_lms CASCADE", migrations.RunSQL.noop),
        migrations.RunSQL([(SETUP, MAPPING), WARM], TEARDOWN),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
