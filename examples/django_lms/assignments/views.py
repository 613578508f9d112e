"""JSON endpoints, each a thin call into mlcache's SQL through mlcache_client.

Every endpoint goes through @endpoint, which does what a DRF viewset's
permission classes would: one allowed method (405 with Allow otherwise), an
authenticated user (401 otherwise) and, for the staff-only endpoints, a
staff user (403 otherwise).  PermissionDenied and Http404 (raised by the
client for SQLSTATEs 42501 and P0002, or here) become 403 and 404, and
BadRequest (22023, or a malformed request) 400, through the JSON handlers
at the end.

The database role these views run as is the application's, with only the
privileges the migration grants it (README, "Using mlcache from Django"):
the views decide which *user* may call what, the role bounds what the
application as a whole can do.
"""
import functools
import json

from django.contrib.auth import get_user_model
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, JsonResponse

from . import mlcache_client as cache
from .models import Assignment, Course


def endpoint(method, staff=False):
    """Allow only method, only for an authenticated user (and only staff if staff)."""
    def wrap(view):
        @functools.wraps(view)
        def checked(request, *args, **kwargs):
            if request.method != method:
                response = JsonResponse({"error": f"method {request.method} not allowed"}, status=405)
                response["Allow"] = method
                return response
            if not request.user.is_authenticated:
                response = JsonResponse({"error": "authentication required"}, status=401)
                response["WWW-Authenticate"] = 'Session realm="api"'
                return response
            if staff and not request.user.is_staff:
                raise PermissionDenied("staff only")
            return view(request, *args, **kwargs)
        return checked
    return wrap


def body(request):
    """The request's parameters: its JSON object body, else its query string."""
    if request.body:
        try:
            data = json.loads(request.body)
        except ValueError:
            raise BadRequest("the body must be JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        return data
    return request.GET.dict()


def integer(value, what):
    """value as an int (a JSON number or a decimal string), else 400."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"{what} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"{what} must be an integer") from None


@endpoint("GET")
def analytics(request, assignment_id):
    """The assignment's cached statistics (404 if it does not exist)."""
    return JsonResponse(cache.assignment_stats(assignment_id))


@endpoint("GET")
def cache_hit_rate(request, assignment_id):
    """Hits and misses of the assignment's statistics: its author only (403), 404 if missing.

    The SQL function trusts the user id it is given, so it gets the
    authenticated user's LMS users row, never one from the request.
    """
    return JsonResponse(cache.cache_hit_rate(assignment_id, cache.lms_user_id(request.user)))


@endpoint("POST")
def warm(request):
    """Warm one parameter set, {"name": ..., "params": [...]}, or several, {"name": ..., "param_sets": [[...]]}."""
    data = body(request)
    name = data.get("name")
    if not isinstance(name, str):
        raise BadRequest('"name" (a definition) is required')
    if "param_sets" in data:
        sets = data["param_sets"]
    else:
        sets = [data.get("params", [])]
    if not isinstance(sets, list) or not all(isinstance(s, list) for s in sets) or not sets:
        raise BadRequest('"params" must be a list, "param_sets" a non-empty list of lists')
    return JsonResponse(cache.warm_sets(name, sets))


@endpoint("GET")
def stats(request):
    """mlcache.stats as one JSON object, with the overall hit_rate."""
    return JsonResponse(cache.stats())


@endpoint("GET")
def health(request):
    """mlcache.health()."""
    return JsonResponse(cache.health())


@endpoint("DELETE", staff=True)
def clear(request):
    """Invalidate every cached value of this database: staff only."""
    cache.clear()
    return JsonResponse({"cleared": True})


@endpoint("DELETE", staff=True)
def invalidate_key(request):
    """Invalidate {"key": k} (taken literally) or {"pattern": glob}: staff only."""
    data = body(request)
    given = [k for k in ("key", "pattern") if k in data]
    if len(given) != 1 or not isinstance(data[given[0]], str) or not data[given[0]]:
        raise BadRequest('give exactly one of "key" and "pattern", a non-empty string')
    if given == ["key"]:
        cache.invalidate(data["key"])
    else:
        cache.invalidate_pattern(data["pattern"])
    return JsonResponse({"invalidated": data[given[0]], "kind": given[0]})


# Who may invalidate an entity's analytics besides staff: the user it is
# about, the author of the assignment (or teacher of its course), the
# course's teacher.  The lookup also makes a missing entity a 404.
def _owners(entity, entity_id):
    if entity in ("user", "student"):
        get_user_model().objects.get(pk=entity_id)
        return {entity_id}
    if entity == "assignment":
        a = Assignment.objects.select_related("course").get(pk=entity_id)
        return {a.author_id, a.course.teacher_id}
    if entity == "course":
        return {Course.objects.get(pk=entity_id).teacher_id}
    raise BadRequest(f'unknown entity "{entity}": use user, student, assignment or course')


@endpoint("POST")
def invalidate_analytics(request):
    """Invalidate every pack key about {"entity": user|student|assignment|course, "id": n}."""
    data = body(request)
    entity, entity_id = data.get("entity"), integer(data.get("id"), '"id"')
    if not isinstance(entity, str):
        raise BadRequest('"entity" is required')
    try:
        owners = _owners(entity, entity_id)
    except (Assignment.DoesNotExist, Course.DoesNotExist, get_user_model().DoesNotExist):
        raise Http404(f"{entity} {entity_id} does not exist") from None
    if not request.user.is_staff and cache.lms_user_id(request.user) not in owners:
        raise PermissionDenied(f"only staff or the {entity}'s owner may invalidate its analytics")
    keys = cache.invalidate_analytics(entity, entity_id)
    return JsonResponse({"entity": entity, "id": entity_id, "invalidated": keys})


def bad_request(request, exception=None):
    return JsonResponse({"error": str(exception or "bad request")}, status=400)


def forbidden(request, exception=None):
    return JsonResponse({"error": str(exception or "forbidden")}, status=403)


def not_found(request, exception=None):
    return JsonResponse({"error": str(exception or "not found")}, status=404)
