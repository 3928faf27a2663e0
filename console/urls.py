from django.urls import path

from console import views

app_name = "console"
urlpatterns = [
    path("", views.live_page, name="live"),
    path("state.json", views.live_state, name="state"),
]
