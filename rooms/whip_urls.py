"""URLs of WHIP and WHEP (rooms/whip_views.py), mounted at the site's root."""

from django.urls import path

from rooms import whip_views

app_name = "whip"
urlpatterns = [
    path("whip/<str:room>", whip_views.whip_endpoint, name="endpoint"),
    path("whip/<str:room>/<str:resource>", whip_views.whip_resource, name="resource"),
    path("whep/<str:room>/<str:stream>", whip_views.whep_endpoint, name="whep_endpoint"),
    path("whep/<str:room>/<str:stream>/<str:resource>", whip_views.whep_resource, name="whep_resource"),
]
