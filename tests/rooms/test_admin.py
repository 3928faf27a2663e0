"""The operator admin: lists render, the finalize action ends a live room."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient

from rooms.models import Room
from tests.wsclient import ProtocolClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator() -> User:
    return User.objects.create_superuser("operator", "op@example.com", "a-long-operator-password")


async def test_admin_lists_and_room_page_render(operator: User) -> None:
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="watched")
    await alice.request("room.message", room="watched", text="Grüße 👋")
    client = AsyncClient()
    await client.aforce_login(operator)
    for path in (
        "/admin/rooms/room/?q=watched",
        "/admin/rooms/room/?status__exact=ACTIVE",
        "/admin/rooms/participant/?q=alice",
        "/admin/rooms/chatmessage/?q=Gr",
        "/admin/rooms/stream/",
        "/admin/recording/recording/",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
    room = await Room.objects.aget(name="watched")
    page = (await client.get(f"/admin/rooms/room/{room.pk}/change/")).content.decode()
    assert "alice" in page and "Grüße 👋" in page
    await alice.close()


async def test_admin_finalize_action_ends_a_live_room(operator: User) -> None:
    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="ended")
    await bob.request("room.join", room="ended")
    room = await Room.objects.aget(name="ended")
    client = AsyncClient()
    await client.aforce_login(operator)
    response = await client.post(
        "/admin/rooms/room/", {"action": "finalize_rooms", "_selected_action": [str(room.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert "Finalized 1 room(s)." in response.content.decode()
    from audit.models import AuditEntry

    entry = await AuditEntry.objects.aget(action="admin.finalize")
    assert (entry.actor, entry.room, entry.target) == ("user:operator", "ended", room.live_id)
    for client_ in (alice, bob):
        event = await client_.event("room.finalized")
        assert event == {"type": "room.finalized", "room": "ended", "reason": "operator"}
    await room.arefresh_from_db()
    assert room.status == Room.Status.FINALIZED
    # The name opens a new room at once.
    assert (await alice.request("room.join", room="ended"))["participants"] == []
    await alice.close()
    await bob.close()


async def test_admin_requires_staff() -> None:
    response = await AsyncClient().get("/admin/rooms/room/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


async def test_operators_moderate_from_the_admin_and_are_audited(operator: User) -> None:
    from audit.models import AuditEntry
    from rooms.models import Participant

    alice = await ProtocolClient.connected("alice")
    bob = await ProtocolClient.connected("bob")
    await alice.request("room.join", room="moderated")
    await bob.request("room.join", room="moderated")
    room = await Room.objects.aget(name="moderated")
    client = AsyncClient()
    await client.aforce_login(operator)
    locked = await client.post(
        "/admin/rooms/room/", {"action": "lock_rooms", "_selected_action": [str(room.pk)]}, follow=True
    )
    assert "Locked 1 room(s)." in locked.content.decode()
    assert (await bob.event("room.locked")) == {
        "type": "room.locked", "room": "moderated", "locked": True, "by": "user:operator"
    }
    participant = await Participant.objects.aget(room=room, login="bob")
    kicked = await client.post(
        "/admin/rooms/participant/", {"action": "kick_participants", "_selected_action": [str(participant.pk)]},
        follow=True,
    )
    assert "Removed 1 participant(s)." in kicked.content.decode()
    assert (await bob.event("room.left"))["reason"] == "kicked"
    assert (await alice.event("room.left"))["by"] == "user:operator"
    assert (await bob.request("room.join", room="moderated"))["code"] == "room_locked"
    entries = [(entry.actor, entry.action, entry.target) async for entry in AuditEntry.objects.order_by("pk")]
    assert entries == [("user:operator", "room.lock", ""), ("user:operator", "room.kick", "bob")]
    audit_page = await client.get("/admin/audit/auditentry/")
    assert audit_page.status_code == 200 and "room.kick" in audit_page.content.decode()
    first = await AuditEntry.objects.afirst()
    assert first is not None
    assert (await client.get(f"/admin/audit/auditentry/{first.pk}/delete/")).status_code == 403
    await alice.close()
    await bob.close()


async def test_moderation_actions_need_the_change_permission() -> None:
    viewer = await User.objects.acreate_user("viewer", password="a-long-viewer-password", is_staff=True)
    from django.contrib.auth.models import Permission

    await viewer.user_permissions.aadd(await Permission.objects.aget(codename="view_room"))
    room = await Room.objects.acreate(name="quiet", live_id="quiet-1")
    client = AsyncClient()
    await client.aforce_login(viewer)
    page = (await client.get("/admin/rooms/room/")).content.decode()
    assert "quiet" in page and "lock_rooms" not in page and "finalize_rooms" not in page
    refused = await client.post("/admin/rooms/room/", {"action": "lock_rooms", "_selected_action": [str(room.pk)]})
    assert "Locked" not in refused.content.decode()
