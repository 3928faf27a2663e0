from django.contrib.auth import views as auth_views
from django.urls import path

from rooms import token_views, views

app_name = "rooms"
urlpatterns = [
    path("", views.landing, name="landing"),
    path("conference/", views.conference, name="conference"),
    path("chat/", views.chat, name="chat"),
    path("screen/", views.screen, name="screen"),
    path("login/", auth_views.LoginView.as_view(template_name="rooms/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The pages' own endpoints (CSRF-protected, cookie sessions); the server
    # API for applications is elsewhere under /api/.
    path("api/token", token_views.token_exchange, name="token"),
    path("api/invites", token_views.invite_make, name="invites"),
]
