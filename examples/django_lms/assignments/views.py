"""JSON endpoints, each a thin call into mlcache's SQL through mlcache_client.

PermissionDenied and Http404 (raised by the client for SQLSTATEs 42501 and
P0002, or here) become 403 and 404 through the JSON handlers at the end.
"""
import json

from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import mlcache_client as cache


@require_GET
def analytics(request, assignment_id):
    """The assignment's cached statistics (404 if it does not exist)."""
    return JsonResponse(cache.assignment_stats(assignment_id))


@require_GET
def cache_hit_rate(request, assignment_id):
    """Hits and misses of the assignment's statistics: its author only (403), 404 if missing."""
    if not request.user.is_authenticated:
        raise PermissionDenied("log in first")
    return JsonResponse(cache.cache_hit_rate(assignment_id, request.user.pk))


@require_POST
def warm(request):
    """Warm the cache: {"definitions": [...], "batch_size": n}, or {"name": ..., "params": [...]}."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    if "name" in body:
        return JsonResponse(cache.warm_one(body["name"], *body.get("params", [])))
    return JsonResponse(cache.warm(body.get("definitions"), body.get("batch_size", 10)))


@require_GET
def stats(request):
    """mlcache.stats as one JSON object."""
    return JsonResponse(cache.stats())


@require_GET
def health(request):
    """mlcache.health()."""
    return JsonResponse(cache.health())


@require_http_methods(["DELETE"])
def clear(request):
    """Invalidate every cached value of this database: staff only."""
    if not request.user.is_staff:
        raise PermissionDenied("staff only")
    cache.clear()
    return JsonResponse({"cleared": True})


def forbidden(request, exception=None):
    return JsonResponse({"error": str(exception or "forbidden")}, status=403)


def not_found(request, exception=None):
    return JsonResponse({"error": str(exception or "not found")}, status=404)
