from django.urls import path

from rooms import views

app_name = "rooms"
urlpatterns = [
    path("", views.landing, name="landing"),
    path("conference/", views.conference, name="conference"),
    path("chat/", views.chat, name="chat"),
    path("screen/", views.screen, name="screen"),
]
