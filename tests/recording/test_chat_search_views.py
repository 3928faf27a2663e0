"""The records pages' chat search and the admin's: what is found, for whom, and where each hit opens."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rooms.history import ChatRecord, chat_messages_record
from rooms.models import Room
from tests.recording.archived_room import T0, archived_room, joined, published, room_mix, stream_record
from tests.recording.records_access import operator_client, visitor_with_link

pytestmark = pytest.mark.django_db


def stored(room: Room, sender: str, text: str, at_ms: int, to: list[str] | None = None) -> None:
    """A message stored as the server stores it (its search document made on the way)."""
    public_id = f"{room.live_id}-{at_ms}"
    chat_messages_record([ChatRecord(
        live_id=room.live_id, public_id=public_id, seq=at_ms, sender=sender, recipients=to, text=text,
        sent_at_ms=T0 + at_ms,
    )])


@pytest.fixture
def rooms(settings, tmp_path: Path) -> tuple[Room, Room]:  # type: ignore[no-untyped-def]
    """``weekly``, whose mix starts 2 s into the room's history, and ``board``, not recorded."""
    settings.RECORDINGS_ROOT = tmp_path
    weekly = archived_room("weekly")
    alice = joined(weekly, "alice", 0, 40_000)
    stream_record(weekly, tmp_path, published(alice, 2_000, 39_000), started_ms=2_000, duration_ms=37_000)
    room_mix(weekly, tmp_path, started_ms=2_000, duration_ms=37_000)
    stored(weekly, "alice", "Квартальный отчёт готов", 7_250)
    stored(weekly, "bob", "明日の会議は十時から", 12_500)
    stored(weekly, "alice", "секретный отчёт и 秘密の会議", 15_000, to=["bob"])
    board = archived_room("board", record=False)
    joined(board, "carol", 0, 10_000)
    stored(board, "carol", "отчёт совета", 3_000)
    return weekly, board


def hits(client: Client, query: str) -> list[tuple[str, str]]:
    """Each hit's link and its message's text, as the page lists them."""
    response = client.get("/records/search/", {"q": query})
    assert response.status_code == 200
    content = response.content.decode()
    found = re.findall(r'<li class="hit">\s*<a href="([^"]+)">.*?<span class="text">(.*?)</span>', content, re.S)
    return [(html.unescape(url), html.unescape(text)) for url, text in found]


def test_a_cyrillic_word_is_found_and_its_hit_opens_the_room_at_that_moment(rooms: tuple[Room, Room]) -> None:
    found = dict((text, url) for url, text in hits(operator_client(), "Квартальный"))
    assert list(found) == ["Квартальный отчёт готов"]
    url = urlsplit(found["Квартальный отчёт готов"])
    assert url.path == "/records/rooms/live-weekly/"
    # Sent 7.25 s into the room's history; the room's clock starts with its mix, at 2 s.
    assert float(parse_qs(url.query)["t"][0]) == pytest.approx(5.25, abs=0.001)


def test_a_cjk_word_is_found_inside_a_sentence(rooms: tuple[Room, Room]) -> None:
    found = hits(operator_client(), "会議")
    assert [text for _, text in found] == ["明日の会議は十時から"]
    assert float(parse_qs(urlsplit(found[0][0]).query)["t"][0]) == pytest.approx(10.5, abs=0.001)


def test_private_messages_are_never_found(rooms: tuple[Room, Room]) -> None:
    client = operator_client()
    assert [text for _, text in hits(client, "отчёт")] == ["Квартальный отчёт готов", "отчёт совета"]
    assert hits(client, "секретный") == []
    assert hits(client, "秘密") == []


def test_a_visitor_finds_only_the_rooms_of_their_links(rooms: tuple[Room, Room]) -> None:
    weekly, board = rooms
    visitor = visitor_with_link(weekly.live_id, "alice")
    assert [text for _, text in hits(visitor, "отчёт")] == ["Квартальный отчёт готов"]
    assert hits(visitor, "совета") == []
    # The link from a message to its moment refuses the rooms they may not see, as the room page does.
    assert visitor.get(f"/records/chat/{board.live_id}-3000/").status_code == 404
    moment = visitor.get(f"/records/chat/{weekly.live_id}-7250/")
    assert moment.status_code == 302 and moment["Location"] == "/records/rooms/live-weekly/?t=5.250"
    assert visitor.get(f"/records/chat/{weekly.live_id}-15000/").status_code == 404  # private


def test_nobody_without_access_searches(rooms: tuple[Room, Room]) -> None:
    assert Client().get("/records/search/", {"q": "отчёт"}).status_code == 403


def test_the_admin_searches_public_messages_only(rooms: tuple[Room, Room], admin_client: Client) -> None:
    content = admin_client.get("/admin/rooms/chatmessage/", {"q": "отчёт"}).content.decode()
    assert "Квартальный отчёт готов" in content and "отчёт совета" in content
    assert "секретный" not in content
    assert 'href="/records/chat/live-weekly-7250/"' in content
    content = admin_client.get("/admin/rooms/chatmessage/", {"q": "会議"}).content.decode()
    assert "明日の会議は十時から" in content and "秘密" not in content
    assert User.objects.filter(is_superuser=True).exists()
