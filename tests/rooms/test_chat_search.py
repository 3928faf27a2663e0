"""Full-text search of the stored chat, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from rooms.chat_search import chat_messages_matching, chat_search_text
from rooms.history import ChatRecord, chat_messages_record
from rooms.models import ChatMessage, Room


def test_cjk_runs_are_cut_into_character_pairs() -> None:
    assert chat_search_text("Встреча 会議は明日 OK").split() == ["встреча", "会議", "議は", "は明", "明日", "ok"]
    assert chat_search_text("字").split() == ["字"]
    # Latin and Cyrillic words are left whole, only lowercased.
    assert chat_search_text("Привет, World!") == "привет, world!"


@pytest.fixture
def stored_chat(db: None) -> Room:
    room = Room.objects.create(name="search", live_id="live-search", status=Room.Status.FINALIZED)
    lines = [
        ("alice", None, "Обсудим бюджет на следующей неделе"),
        ("bob", None, "明日の会議は十時からです"),
        ("carol", None, "the deadline is friday"),
        ("alice", ["bob"], "секрет: бюджет урезан, 秘密の会議"),
    ]
    chat_messages_record([
        ChatRecord(live_id=room.live_id, public_id=f"m{i}", seq=i, sender=sender, recipients=to, text=text,
                   sent_at_ms=1_000 * i)
        for i, (sender, to, text) in enumerate(lines, start=1)
    ])
    return room


def found(query: str) -> list[str]:
    return sorted(message.public_id for message in chat_messages_matching(ChatMessage.objects.all(), query))


def test_a_cyrillic_word_is_found(stored_chat: Room) -> None:
    assert found("бюджет") == ["m1"]


def test_a_cjk_word_is_found_inside_a_sentence_without_spaces(stored_chat: Room) -> None:
    assert found("会議") == ["m2"]
    assert found("十時") == ["m2"]


def test_private_messages_are_never_found(stored_chat: Room) -> None:
    assert found("секрет") == []
    assert found("秘密") == []
    assert ChatMessage.objects.get(public_id="m4").search_document is None


def test_a_word_not_said_is_not_found(stored_chat: Room) -> None:
    assert found("monday") == []
    assert found("会社") == []


def test_on_postgresql_case_is_ignored_in_any_script(stored_chat: Room) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite's substring match folds ASCII letters only")
    assert found("ОБСУДИМ") == ["m1"]
    assert found("Deadline FRIDAY") == ["m3"]


def test_a_batch_is_stored_whole_once_and_as_sent(stored_chat: Room) -> None:
    # Stored again (a drain that died after applying it): nothing doubles.
    chat_messages_record([
        ChatRecord(live_id=stored_chat.live_id, public_id="m1", seq=1, sender="alice", recipients=None,
                   text="another text", sent_at_ms=1_000),
        ChatRecord(live_id=stored_chat.live_id, public_id="m5", seq=5, sender="dave", recipients=["alice", "bob"],
                   text="emoji 🎉 and \"quotes\"", sent_at_ms=5_000),
    ])
    rows = {message.public_id: message for message in ChatMessage.objects.filter(room=stored_chat)}
    assert sorted(rows) == ["m1", "m2", "m3", "m4", "m5"]
    assert rows["m1"].text == "Обсудим бюджет на следующей неделе"
    assert (rows["m5"].sender, rows["m5"].recipients, rows["m5"].text, rows["m5"].seq, rows["m5"].sent_at_ms) == (
        "dave", ["alice", "bob"], "emoji 🎉 and \"quotes\"", 5, 5_000
    )
    assert rows["m4"].recipients == ["bob"] and rows["m1"].recipients is None
