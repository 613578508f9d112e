"""A thin wrapper around mlcache's SQL API, through Django's own connection.

Every function is one SQL statement on django.db.connection, so it runs in
the caller's transaction (or autocommit) on the same backend, whose L1 and
mlcache.last_level() it shares.  jsonb results are read as text and decoded
here (Django's backend leaves jsonb undecoded).  SQLSTATE 42501 becomes
PermissionDenied (403), P0002 (a missing assignment, user or course)
Http404 (404) and 22023 (an invalid parameter) BadRequest (400); any other
database error propagates.

It runs as the application's role; APP_GRANTS (granted by the mlcache
migration through grant_app_role) is everything that role needs.

LMS_TABLES and LMS_COLUMNS map the names mlcache's LMS pack reads
(mlcache.lms_catalog()) onto Django's: the mlcache migration passes them to
mlcache.lms_setup(), cache_hit_rate() to lms_assignment_cache_hit_rate().
"""
import json

from django.core.exceptions import BadRequest, PermissionDenied
from django.db import DatabaseError, connection
from django.http import Http404

LMS_TABLES = {
    "users": "auth_user",
    "courses": "assignments_course",
    "enrollments": "assignments_enrollment",
    "assignments": "assignments_assignment",
    "submissions": "assignments_assignmentsubmission",
    "grades": "assignments_grade",
    "materials": "assignments_material",
    "material_progress": "assignments_materialprogress",
    "material_views": "assignments_materialview",
    "reports": "assignments_report",
}
# Only the columns whose Django name differs from the pack's.
LMS_COLUMNS = {
    "grades.graded_by": "graded_by_id",
    "material_progress.user_id": "student_id",
}


def _row(sql, params=()):
    """Run one statement and return its first row, mapping SQLSTATEs to HTTP errors."""
    try:
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone(), [c.name for c in cur.description]
    except DatabaseError as exc:
        code = getattr(exc.__cause__, "pgcode", None)
        diag = getattr(exc.__cause__, "diag", None)
        message = getattr(diag, "message_primary", None) or str(exc)
        if code == "42501":
            raise PermissionDenied(message) from exc
        if code == "P0002":
            raise Http404(message) from exc
        if code == "22023":
            raise BadRequest(message) from exc
        raise


def _json(sql, params=()):
    """Run a statement returning one jsonb value (cast to text) and decode it."""
    (text,), _ = _row(sql, params)
    return None if text is None else json.loads(text)


def fetch(name, *params):
    """mlcache.fetch(name, params...): a named definition through L1, Redis, L3, its query."""
    args = "".join(", %s" for _ in params)
    return _json(f"SELECT mlcache.fetch(%s{args})::text", (name, *params))


def last_level():
    """What answered this connection's last read: 'l1', 'l2', 'l3', 'compute' (or 'stale')."""
    return _row("SELECT mlcache.last_level()")[0][0]


def assignment_stats(assignment_id):
    """The pack's assignment_stats (Http404 for a missing assignment)."""
    return fetch("assignment_stats", int(assignment_id))


def lms_user_id(user):
    """The LMS users row of a Django user: auth_user is the pack's users table (LMS_TABLES)."""
    return user.pk


def cache_hit_rate(assignment_id, user_id):
    """key_stats of assignment_stats:{id} over 24 h, for the assignment's author only.

    lms_assignment_cache_hit_rate believes the user id it is given: pass the
    authenticated user's (lms_user_id(request.user)), never one a client sent.
    """
    return _json(
        "SELECT row_to_json(h)::text FROM mlcache.lms_assignment_cache_hit_rate("
        "%s, %s, current_schema(), %s::jsonb, %s::jsonb) h",
        (int(assignment_id), user_id, json.dumps(LMS_TABLES), json.dumps(LMS_COLUMNS)),
    )


def warm_one(name, *params):
    """mlcache.warm(name, params...): one parameter set of one definition."""
    args = "".join(", %s" for _ in params)
    return _json(f"SELECT mlcache.warm(%s{args})::text", (name, *(str(p) for p in params)))


def warm_sets(name, param_sets):
    """warm_one over each parameter set; the summed {"total", "warmed", "failed", "async_scheduled"}."""
    total = {"total": 0, "warmed": 0, "failed": 0, "async_scheduled": 0}
    for params in param_sets:
        for k, v in warm_one(name, *params).items():
            total[k] += v
    return total


def stats():
    """The one row of mlcache.stats, as a dict (counters are server-wide; hit_rate is overall)."""
    row, names = _row("SELECT * FROM mlcache.stats")
    return dict(zip(names, row))


def health():
    """mlcache.health(): the status of every level, the worker and the breaker."""
    return _json("SELECT mlcache.health()::text")


def clear():
    """mlcache.clear(): invalidate every key of this database at commit."""
    _row("SELECT mlcache.clear()")


def invalidate(key):
    """mlcache.invalidate(key): one key, taken literally, at commit."""
    _row("SELECT mlcache.invalidate(%s)", (key,))


def invalidate_pattern(pattern):
    """mlcache.invalidate_pattern(glob): every key the glob can match, at commit."""
    _row("SELECT mlcache.invalidate_pattern(%s)", (pattern,))


def invalidate_analytics(entity, entity_id):
    """mlcache.lms_invalidate_analytics: every pack key about one entity; the keys and globs it invalidated."""
    (keys,), _ = _row("SELECT mlcache.lms_invalidate_analytics(%s, %s)", (entity, int(entity_id)))
    return keys


# What the application's role needs beyond mlcache_reader (fetch of the
# definitions granted to it, mlcache.stats, last_level, invalidate of one
# key): EXECUTE on these functions, each for one endpoint, as a DBA may
# grant single functions.  Not mlcache_admin, which would also let it
# define, watch, warm other roles' warm queries, read every key's
# statistics through its own SQL and reset the statistics.  Some of these
# SQL functions call internal ones with the caller's rights, which are
# granted with them (marked "needed by").
APP_GRANTS = [
    "mlcache.health()", "mlcache._health()",   # GET health/ (health() needed by)
    "mlcache.clear()",                         # DELETE clear/
    "mlcache.invalidate_pattern(text)",        # DELETE invalidate_key/ with a glob;
                                               # needed by lms_invalidate_analytics
    "mlcache.lms_invalidate_analytics(text, bigint)",  # POST invalidate_analytics/
    # POST warm/: one parameter set is one fetch, which the role may do anyway.
    "mlcache.warm(text, text[])", "mlcache._require_loaded()", "mlcache._warm_one(text, text[])",
    # GET cache_hit_rate/: the pack's function reads key_stats of the
    # assignment's key, for the user the application vouches for.
    "mlcache.lms_assignment_cache_hit_rate(bigint, bigint, name, jsonb, jsonb)",
    "mlcache.key_stats(text)",
]


def grant_app_role(role):
    """Give role (the application's, if not the migrating one) exactly what the endpoints use."""
    quoted = connection.ops.quote_name(role)
    with connection.cursor() as cur:
        cur.execute("SELECT %s::regrole = current_user::regrole", [role])
        if cur.fetchone()[0]:
            return
        cur.execute("GRANT mlcache_reader TO " + quoted)
        cur.execute("SELECT mlcache.grant_fetch(name, %s::regrole) FROM mlcache.lms_definitions()", [role])
        cur.execute("GRANT EXECUTE ON FUNCTION " + ", ".join(APP_GRANTS) + " TO " + quoted)
