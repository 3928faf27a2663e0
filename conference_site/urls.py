from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("rooms.api_urls")),
    path("", include("rooms.urls")),
    path("", include("recording.urls")),
]
