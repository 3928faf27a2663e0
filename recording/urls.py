from django.urls import path

from recording import archive_views, search_views, stems_views, views

app_name = "recording"
urlpatterns = [
    path("records/", views.records, name="records"),
    path("records/access/", views.records_access, name="access"),
    path("records/rooms/<str:live_id>/", archive_views.room_archive, name="room"),
    path("records/search/", search_views.records_search, name="search"),
    path("records/chat/<str:public_id>/", search_views.chat_message_moment, name="chat_message"),
    path("records/rooms/<str:live_id>/stems/", stems_views.room_stems, name="stems"),
    path("records/rooms/<str:live_id>/stems.zip", stems_views.room_stems_download, name="stems_zip"),
    path("records/<int:pk>/download/", views.download, name="download"),
    path("records/<int:pk>/sidecar/", views.sidecar, name="sidecar"),
    path("records/<int:pk>/subtitles.vtt", archive_views.subtitles, name="subtitles"),
]
