from django.urls import path

from recording import views

app_name = "recording"
urlpatterns = [
    path("records/", views.records, name="records"),
    path("records/access/", views.records_access, name="access"),
    path("records/<int:pk>/download/", views.download, name="download"),
    path("records/<int:pk>/sidecar/", views.sidecar, name="sidecar"),
]
