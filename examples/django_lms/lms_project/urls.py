"""URL configuration: the API lives under /api/; errors are JSON too."""
from django.urls import include, path

urlpatterns = [path("api/", include("assignments.urls"))]

handler400 = "assignments.views.bad_request"
handler403 = "assignments.views.forbidden"
handler404 = "assignments.views.not_found"
