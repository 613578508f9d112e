"""The API's routes (mounted under /api/); README "Using mlcache from Django" has the table."""
from django.urls import path

from . import views

urlpatterns = [
    path("assignments/<int:assignment_id>/analytics/", views.analytics),
    path("assignments/<int:assignment_id>/cache_hit_rate/", views.cache_hit_rate),
    path("cache/stats/", views.stats),
    path("cache/health/", views.health),
    path("cache/warm/", views.warm),
    path("cache/clear/", views.clear),
    path("cache/invalidate_key/", views.invalidate_key),
    path("cache/invalidate_analytics/", views.invalidate_analytics),
]
