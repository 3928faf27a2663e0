"""Pages on a server that admits only access tokens (ROOM_AUTH=token): people
with an account log in and join as themselves, guests join with an invite
link a moderator made, and only a moderator's page has the moderator menu,
whose actions the others' pages tell in plain words. When the meeting ends
a page allowed the records opens them with its own token; the link itself
opens nothing for another identity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.room_page import RoomPage
from tests.processes import ServerProcess, manage

pytestmark = pytest.mark.integration

API_KEYS = "e2e:" + "pages-e2e-secret-" * 3
# Short-lived page tokens: the pages renew theirs every few seconds while the
# tests run (the server would end a session 10 s after an unrenewed expiry).
PAGE_TOKEN_TTL_S = 5
# alice is staff (a moderator of every room), carol has an account and no more.
ACCOUNTS = {"alice": True, "carol": False}
CREATE_ACCOUNTS = f"""
from django.contrib.auth.models import User
for name, staff in {ACCOUNTS!r}.items():
    user, _ = User.objects.get_or_create(username=name)
    user.is_staff = staff
    user.set_password(name + "-password-1")
    user.save()
"""


@pytest.fixture
def server(start_server: Callable[..., ServerProcess], server_env: dict[str, str]) -> ServerProcess:
    manage(server_env, "shell", "-c", CREATE_ACCOUNTS)
    env = {"ROOM_AUTH": "token", "API_KEYS": API_KEYS, "PAGE_TOKEN_TTL_S": PAGE_TOKEN_TTL_S}
    return start_server("daphne", "web", env=env)


def logged_in_page(page: Page, server: ServerProcess, name: str, room: str) -> RoomPage:
    """``name`` logs in on the login page, which sends them back to the room."""
    page.goto(f"{server.http_url}login/?next={quote(f'/conference/?roomName={room}', safe='/')}")
    page.fill("#id_username", name)
    page.fill("#id_password", f"{name}-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/conference/?roomName={room}")
    expect(page.locator("#account-name")).to_have_text(name)
    # The login is the account's, not typed.
    expect(page.locator("#login")).to_have_value(name)
    expect(page.locator("#login")).to_be_disabled()
    return RoomPage(page, name)


def join_as_account(room_page: RoomPage) -> None:
    room_page.page.click("#join")
    expect(room_page.page.locator("#status")).to_have_text("ESTABLISHED")
    expect(room_page.page.locator("#chat-input")).to_be_enabled()
    room_page.wait_publishing()


def session_grants(room_page: RoomPage) -> dict[str, object]:
    grants: dict[str, object] = room_page.page.evaluate("window.conference.connection.grants()")
    return grants


def expect_token_renewed(room_page: RoomPage) -> None:
    """The page fetched a fresh token and the server took it (session.refresh answered ok)."""
    first = room_page.page.evaluate("window.conference.connection.expires()")
    assert first is not None
    room_page.page.wait_for_function("(first) => window.conference.connection.expires() > first", arg=first)


def invite_link(moderator: RoomPage) -> str:
    moderator.page.click("#guest-invite-copy")
    link = moderator.page.locator("#guest-invite")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href and "invite=" in href, href
    return href


def invite_link_with_grants(moderator: RoomPage, server: ServerProcess, room: str, grants: list[str]) -> str:
    """An invite link with ``grants``, made through /api/invites as a moderator's page can."""
    status, answer = moderator.page.evaluate(
        """async ([room, grants]) => {
          const main = document.getElementById("room-page");
          const response = await fetch(main.dataset.invitesUrl, {
            method: "POST",
            headers: {"Content-Type": "application/json", "X-CSRFToken": main.dataset.csrfToken},
            body: JSON.stringify({room, grants}),
            credentials: "same-origin",
          });
          return [response.status, await response.json()];
        }""",
        [room, grants],
    )
    assert status == 201, answer
    return f"{server.http_url}conference/?{urlencode({'roomName': room, 'invite': answer['invite']})}"


def test_a_moderator_invites_a_guest_and_removes_them(
    server: ServerProcess, open_page: Callable[[str], Page], artifacts: Path
) -> None:
    alice = logged_in_page(open_page("alice"), server, "alice", "e2e-mod")
    join_as_account(alice)
    expect(alice.page.locator("#moderation")).to_be_visible()
    assert session_grants(alice)["roomAdmin"] is True
    link = invite_link(alice)

    bob = RoomPage(open_page("bob"), "bob")
    bob.page.goto(link)
    expect(bob.page.locator("#invited")).to_be_visible()
    bob.join()
    grants = session_grants(bob)
    assert (grants["room"], grants["roomJoin"], grants["roomAdmin"]) == ("e2e-mod", True, False)
    # The guest has no moderator menu, neither for the room nor in alice's tile.
    expect(bob.page.locator("#moderation")).to_be_hidden()
    expect(bob.page.locator('[data-participant="alice"] .moderator-menu button')).to_have_count(0)
    bob.expect_camera_of("alice")
    alice.expect_camera_of("bob")
    # Both renew their tokens: the account from its login, the guest with the invite link again.
    expect_token_renewed(alice)
    expect_token_renewed(bob)
    expect(alice.page.locator('[data-participant="bob"] .moderator-menu button')).to_have_text(
        ["Mute", "Remove from room"]
    )
    alice.screenshot(artifacts, "moderator-menu")

    alice.page.click('[data-participant="bob"] button.moderate-kick')
    expect(bob.page.locator("#error")).to_have_text("You were removed from the room by alice.")
    expect(bob.page.locator("#join")).to_have_text("Join")
    expect(bob.page.locator("[data-participant]")).to_have_count(0)
    bob.screenshot(artifacts, "removed")
    alice.wait_system_line("bob was removed by alice")
    expect(alice.page.locator('[data-participant="bob"]')).to_have_count(0)


def test_an_account_joins_with_its_token_and_a_moderator_mutes_locks_and_ends_the_meeting(
    server: ServerProcess, open_page: Callable[[str], Page], artifacts: Path
) -> None:
    # Without an account or an invite link, a token-only server admits nobody: the page says why.
    stranger = RoomPage(open_page("bob"), "bob").open(server.http_url, "/conference/", "e2e-lock")
    stranger.page.fill("#login", "bob")
    stranger.page.click("#join")
    expect(stranger.page.locator("#error")).to_have_text(
        "This room needs an invitation: open the invite link you were sent, or log in."
    )
    expect(stranger.page.locator("#join")).to_have_text("Join")

    carol = logged_in_page(open_page("carol"), server, "carol", "e2e-lock")
    join_as_account(carol)
    grants = session_grants(carol)
    assert (grants["room"], grants["canPublish"], grants["roomAdmin"]) == ("e2e-lock", True, False)
    expect(carol.page.locator("#moderation")).to_be_hidden()
    alice = logged_in_page(open_page("alice"), server, "alice", "e2e-lock")
    join_as_account(alice)
    alice.expect_camera_of("carol")

    # Mute: the server stops forwarding carol's microphone; her own page follows.
    alice.page.click('[data-participant="carol"] button.moderate-mute')
    expect(alice.page.locator('[data-participant="carol"] .flags')).to_have_text("mic off")
    expect(alice.page.locator('[data-participant="carol"] button.moderate-mute')).to_have_text("Unmute")
    carol.wait_system_line("alice muted you")
    expect(carol.page.locator("#mute-audio")).to_have_attribute("aria-pressed", "true")

    # Lock: a guest with a fresh invite link is told the room is locked.
    link = invite_link(alice)
    alice.page.click("#lock-room")
    expect(alice.page.locator("#lock-room")).to_have_text("Unlock room")
    carol.wait_system_line("alice locked the room")
    guest = RoomPage(open_page("bob"), "bob")
    guest.page.goto(link)
    guest.page.fill("#login", "bob")
    guest.page.click("#join")
    expect(guest.page.locator("#error")).to_have_text("This room is locked.")
    expect(alice.page.locator("[data-participant]")).to_have_count(1)

    # End: everyone's page says who ended it.
    alice.page.click("#end-room")
    expect(alice.page.locator("#end-room")).to_have_text("Click again to end for everyone")
    alice.page.click("#end-room")
    expect(carol.page.locator("#error")).to_have_text("The meeting was ended by alice.")
    expect(alice.page.locator("#error")).to_have_text("The meeting was ended by alice.")
    for page in (alice, carol):
        expect(page.page.locator("#join")).to_have_text("Join")
    carol.screenshot(artifacts, "meeting-ended")


def test_the_records_link_at_the_end_opens_the_rooms_records_for_its_identity_only(
    server: ServerProcess, open_page: Callable[[str], Page], artifacts: Path
) -> None:
    room = "e2e-records"
    alice = logged_in_page(open_page("alice"), server, "alice", room)
    alice.page.check("#record")  # the room is recorded: its records page lists the recording
    join_as_account(alice)
    # bob is a guest (no account: only his page's token can prove who he is) allowed the records.
    bob = RoomPage(open_page("bob"), "bob")
    bob.page.goto(invite_link_with_grants(alice, server, room, ["publish", "subscribe", "chat", "record"]))
    bob.join()
    assert session_grants(bob)["roomRecord"] is True
    bobs_link, alices_link = (page.page.evaluate("window.conference.room.recordsUrl()") for page in (bob, alice))
    assert bobs_link.startswith("/records/#access=") and alices_link.startswith("/records/#access="), bobs_link

    # The end: bob's page exchanges the link itself, with his (renewed) token, and shows /records/.
    alice.page.click("#end-room")
    with bob.page.expect_request(lambda request: request.url.endswith("/records/access/")) as exchange:
        alice.page.click("#end-room")
    headers = exchange.value.all_headers()
    assert exchange.value.method == "POST"
    assert headers["authorization"].startswith("Bearer ")
    response = exchange.value.response()
    assert response is not None and response.status == 204
    expect(bob.page.locator("#error")).to_have_text("The meeting was ended by alice.")
    records = bob.page.locator("#records-link a")
    expect(records).to_be_visible()
    expect(records).to_have_attribute("href", "/records/")
    expect(alice.page.locator("#records-link a")).to_have_attribute("href", "/records/")
    records.click()
    expect(bob.page.locator("h1")).to_contain_text("Records of room")
    expect(bob.page.locator("h1")).to_contain_text(room)
    expect(bob.page.locator(".identity")).to_have_text("bob")
    expect(bob.page.locator("tr[id^=recording-]")).not_to_have_count(0)
    bob.screenshot(artifacts, "records-after-the-end")

    # bob's link opened by another identity, logged in as carol: refused, and the page says whose it is.
    carol = logged_in_page(open_page("carol"), server, "carol", room)
    carol.page.goto(server.http_url + bobs_link.lstrip("/"))
    expect(carol.page.locator("#records-access-status")).to_have_text(
        "This link was issued to bob, not to carol: open it from bob's meeting page, or log in as bob."
    )
    expect(carol.page.locator("h1")).to_have_text("Records")
    # And by a browser with no identity at all.
    stranger = open_page("carol")
    stranger.goto(server.http_url + bobs_link.lstrip("/"))
    expect(stranger.locator("#records-access-status")).to_have_text(
        "This link was issued to bob: open it from bob's meeting page, or log in as bob."
    )
    assert stranger.request.get(f"{server.http_url}records/").status == 403
    # A link opened directly by a browser logged in under its identity: the records page opens it.
    alice_elsewhere = logged_in_page(open_page("alice"), server, "alice", room)
    alice_elsewhere.page.goto(server.http_url + alices_link.lstrip("/"))
    expect(alice_elsewhere.page.locator("h1")).to_contain_text(room)
    expect(alice_elsewhere.page.locator(".identity")).to_have_text("alice")
