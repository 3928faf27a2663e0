"""URLs of the server API (docs/api.md), mounted at ``/api/``."""

from django.urls import path

from rooms import api_views

app_name = "api"
urlpatterns = [
    path("tokens", api_views.token_create, name="tokens"),
]
