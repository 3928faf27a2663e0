"""A room's timeline from its history rows: every kind of entry, in order; never a private message."""

from __future__ import annotations

import pytest

from recording.timeline import EntryKind, room_public_chat, room_timeline
from rooms.models import Participant, Stream
from tests.recording.archived_room import T0, archived_room, joined, muted, published, said

pytestmark = pytest.mark.django_db


def test_every_kind_of_entry_in_time_order() -> None:
    room = archived_room()
    alice = joined(room, "alice", 0, 30_000)
    bob = joined(room, "bob", 1_000, 20_000, reason=Participant.LeaveReason.DISCONNECT)
    carol = joined(room, "carol", 2_000, 25_000, reason=Participant.LeaveReason.KICKED)
    joined(room, "dave", 3_000, 60_000, reason=Participant.LeaveReason.TIMEOUT)
    camera = published(alice, 500, 29_000)
    published(bob, 5_000, 9_000, kind=Stream.Kind.SCREEN)
    muted(camera, 6_000, audio=True, video=False)
    muted(camera, 7_000, audio=True, video=True, by="carol")
    muted(camera, 8_000, audio=False, video=True)
    said(room, "bob", "Привет 👋", 4_000)
    said(room, "alice", "for carol only", 4_500, to=["carol"])
    said(room, "carol", "你好", 10_000)
    del carol

    entries = [(entry.at_ms - T0, entry.kind, entry.who, entry.text) for entry in room_timeline(room)]
    assert entries == [
        (0, EntryKind.JOIN, "alice", "joined"),
        (500, EntryKind.PUBLISH, "alice", "turned the camera on"),
        (1_000, EntryKind.JOIN, "bob", "joined"),
        (2_000, EntryKind.JOIN, "carol", "joined"),
        (3_000, EntryKind.JOIN, "dave", "joined"),
        (4_000, EntryKind.CHAT, "bob", "Привет 👋"),
        (5_000, EntryKind.SCREEN_START, "bob", "started sharing the screen"),
        (6_000, EntryKind.MUTE, "alice", "muted the microphone"),
        (7_000, EntryKind.MUTE, "alice", "had the camera muted by carol"),
        (8_000, EntryKind.MUTE, "alice", "unmuted the microphone"),
        (9_000, EntryKind.SCREEN_STOP, "bob", "stopped sharing the screen"),
        (10_000, EntryKind.CHAT, "carol", "你好"),
        (20_000, EntryKind.LEAVE, "bob", "lost the connection"),
        (25_000, EntryKind.LEAVE, "carol", "was removed by a moderator"),
        (29_000, EntryKind.UNPUBLISH, "alice", "turned the camera off"),
        (30_000, EntryKind.LEAVE, "alice", "left"),
        (60_000, EntryKind.LEAVE, "dave", "was still in when the room ended"),
    ]


def test_a_stream_still_open_and_a_mute_told_again() -> None:
    room = archived_room()
    alice = joined(room, "alice", 0)
    camera = published(alice, 100)
    muted(camera, 200, audio=False, video=False)  # nothing changed: the state is said whole
    entries = [(entry.kind, entry.text) for entry in room_timeline(room)]
    assert entries == [
        (EntryKind.JOIN, "joined"),
        (EntryKind.PUBLISH, "turned the camera on"),
        (EntryKind.MUTE, "unmuted the microphone and unmuted the camera"),
    ]


def test_only_public_messages_are_read_in_the_order_sent() -> None:
    room = archived_room()
    said(room, "alice", "first", 1_000)
    said(room, "alice", "secret", 1_500, to=["bob"])
    said(room, "bob", "second", 2_000)
    other = archived_room("other")
    said(other, "carol", "another room", 1_200)
    assert [(line.sender, line.text, line.sent_at_ms - T0) for line in room_public_chat(room)] == [
        ("alice", "first", 1_000),
        ("bob", "second", 2_000),
    ]
