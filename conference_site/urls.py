from django.contrib import admin
from django.urls import include, path

from conference_site import monitoring

urlpatterns = [
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
    # Before the admin's own URLs, which would take admin/live/ for an app's page.
    path("admin/live/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("rooms.api_urls")),
    path("", include("rooms.whip_urls")),
    path("", include("rooms.urls")),
    path("", include("recording.urls")),
]
