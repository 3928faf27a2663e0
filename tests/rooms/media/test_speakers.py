"""Ranking a room's speakers, and reporting a ranking only when it changed."""

from __future__ import annotations

from rooms.media.audio_level import AudioLevel
from rooms.media.messages import Speaker
from rooms.media.speakers import (
    PublishedAudio,
    RoomSpeakers,
    SpeakersWatch,
    StreamLevel,
    level_of_dbov,
    release_db,
)


def test_levels_scale_from_the_floor_to_full_scale_in_steps() -> None:
    assert level_of_dbov(0) == 1.0
    assert level_of_dbov(30) == 0.5
    assert level_of_dbov(60) == 0.0
    assert level_of_dbov(127) == 0.0
    assert level_of_dbov(31) == 0.5  # 3 dB steps: a dB of wobble is no change
    assert level_of_dbov(50) == 0.15


def test_the_release_is_sixty_db_a_second() -> None:
    assert release_db(250) == 15
    assert release_db(1000) == 60
    assert release_db(5) == 1


def test_speakers_are_the_loud_streams_loudest_first() -> None:
    room = RoomSpeakers()
    ranking = room.update([
        StreamLevel("s1", "alice", 40), StreamLevel("s2", "bob", 15), StreamLevel("s3", "carol", 90),
    ])
    assert ranking == (Speaker(stream="s2", participant="bob", level=0.75),
                       Speaker(stream="s1", participant="alice", level=0.35))


def test_an_unchanged_ranking_is_not_reported_again() -> None:
    room = RoomSpeakers()
    assert room.update([StreamLevel("s1", "alice", 20)]) is not None
    assert room.update([StreamLevel("s1", "alice", 20)]) is None
    assert room.update([StreamLevel("s1", "alice", 21)]) is None  # the same step
    assert room.update([StreamLevel("s1", "alice", 30)]) == (Speaker(stream="s1", participant="alice", level=0.5),)
    assert room.update([StreamLevel("s1", "alice", 100)]) == ()  # nobody speaks: reported once
    assert room.update([StreamLevel("s1", "alice", 100)]) is None
    assert room.update([]) is None


def test_equally_loud_speakers_keep_their_order() -> None:
    room = RoomSpeakers()
    first = room.update([StreamLevel("s2", "bob", 20), StreamLevel("s1", "alice", 21)])
    assert [speaker.participant for speaker in first or ()] == ["bob", "alice"]
    # Alice a dB louder now, the same step: no swap, no report.
    assert room.update([StreamLevel("s2", "bob", 21), StreamLevel("s1", "alice", 20)]) is None
    swapped = room.update([StreamLevel("s2", "bob", 30), StreamLevel("s1", "alice", 20)])
    assert [speaker.participant for speaker in swapped or ()] == ["alice", "bob"]


def published(room: str, stream: str, level: AudioLevel | None, *, muted: bool = False) -> PublishedAudio:
    return PublishedAudio(room=room, reply_to=f"chan-{stream}", stream=stream, participant=f"p-{stream}",
                          level=level, muted=muted)


def test_the_watch_reports_changed_rooms_to_their_oldest_publisher() -> None:
    watch = SpeakersWatch(250)
    a1, a2, b1 = AudioLevel(), AudioLevel(), AudioLevel()
    streams = [published("a", "a1", a1), published("a", "a2", a2), published("b", "b1", b1),
               published("b", "b2", None)]
    a2.packet(10)
    reports = watch.read(streams)
    assert [(channel, report.room, [s.stream for s in report.speakers]) for channel, report in reports] == [
        ("chan-a1", "a", ["a2"])
    ]
    # Still speaking: nothing new. The level falls by the release only.
    a2.packet(10)
    assert watch.read(streams) == []
    b1.packet(5)
    a1.packet(5)
    reports = watch.read(streams)
    assert [(channel, [s.stream for s in report.speakers]) for channel, report in reports] == [
        ("chan-a1", ["a1", "a2"]), ("chan-b1", ["b1"]),
    ]


def test_muted_audio_speaks_for_nobody() -> None:
    watch = SpeakersWatch(250)
    level = AudioLevel()
    level.packet(10)
    assert watch.read([published("a", "a1", level, muted=True)]) == []
    level.packet(10)
    (_, report), = watch.read([published("a", "a1", level)])
    assert [s.stream for s in report.speakers] == ["a1"]


def test_a_room_without_publishers_is_forgotten() -> None:
    watch = SpeakersWatch(250)
    level = AudioLevel()
    level.packet(10)
    assert len(watch.read([published("a", "a1", level)])) == 1
    assert watch.read([]) == []
    level.packet(10)
    # A new life of the room: its first speaker is news again.
    assert len(watch.read([published("a", "a1", level)])) == 1
