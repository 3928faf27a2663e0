"""URLs of the server API (docs/api.md), mounted at ``/api/``."""

from django.urls import path

from rooms import api_views

app_name = "api"
urlpatterns = [
    path("rooms", api_views.rooms_list, name="rooms"),
    path("rooms/<str:room>/participants", api_views.participants_list, name="participants"),
    path("rooms/<str:room>/participants/<str:identity>/kick", api_views.participant_kick, name="kick"),
    path("rooms/<str:room>/streams/<str:stream>/mute", api_views.stream_mute, name="mute"),
    path("rooms/<str:room>/end", api_views.room_end, name="end"),
    path("rooms/<str:room>/lock", api_views.room_lock, name="lock"),
    path("tokens", api_views.token_create, name="tokens"),
]
