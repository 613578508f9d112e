"""The API's routes (mounted under /api/)."""
from django.urls import path

from . import views

urlpatterns = [
    path("assignments/<int:assignment_id>/analytics/", views.analytics),
    path("assignments/<int:assignment_id>/cache_hit_rate/", views.cache_hit_rate),
    path("cache/warm/", views.warm),
    path("cache/stats/", views.stats),
    path("cache/health/", views.health),
    path("cache/clear/", views.clear),
]
