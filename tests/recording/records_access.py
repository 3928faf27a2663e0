"""Test helpers for who sees records: users with the view permission, visitors holding a room's link."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib.auth.models import Permission, User
from django.test import Client

from recording.links import room_records_url


def user_with_view_permission(username: str = "operator", *, is_staff: bool = False) -> User:
    user = User.objects.create_user(username, password="a-long-operator-password", is_staff=is_staff)
    user.user_permissions.add(Permission.objects.get(codename="view_recording", content_type__app_label="recording"))
    return user


def operator_client(username: str = "operator") -> Client:
    client = Client()
    client.force_login(user_with_view_permission(username))
    return client


def link_token(url: str) -> str:
    fragment = urlsplit(url).fragment
    assert fragment.startswith("access="), url
    return fragment.removeprefix("access=")


def link_opened(url: str, client: Client | None = None) -> tuple[Client, int]:
    """What the records page's script does with a link: post its fragment's token for the cookie."""
    client = client or Client(enforce_csrf_checks=False)
    response = client.post("/records/access/", {"access": link_token(url)})
    return client, response.status_code


def visitor_with_link(room_live_id: str, identity: str = "alice", client: Client | None = None) -> Client:
    client, status = link_opened(room_records_url(room_live_id=room_live_id, identity=identity), client)
    assert status == 204
    return client
