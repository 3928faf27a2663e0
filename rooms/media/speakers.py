"""Who speaks in each room a node serves: ranked, and reported only on change.

Every ``SPEAKERS_INTERVAL_MS`` the node reads the audio level of each
stream it publishes (``rooms.media.audio_level``); the streams of a room
louder than ``SPEAKING_DBOV`` are its speakers, loudest first. A room's
ranking is reported (``messages.SpeakersReport``) only when it differs from
the last one reported, so a room where nobody speaks costs no message at
all, and one with a speaker at most one per interval.

The report goes to the channel of the room's oldest publication: a
connection on some web process, which sends the room its ``room.speakers``
event (``rooms.streams``). The node itself tells no room anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rooms.media.audio_level import AudioLevel
from rooms.media.messages import Speaker, SpeakersReport

# Louder than this (-dBov) is speech: the noise of a quiet room picked up by
# a microphone stays around -60 dBov and below.
SPEAKING_DBOV = 50
# The level scale: 0 at this -dBov and quieter, 1 at full scale.
LEVEL_FLOOR_DBOV = 60
LEVEL_STEPS = 20
# How fast a level falls once its stream goes quiet: from speech at -20 dBov
# out of the speakers in half a second, yet not out between two words.
RELEASE_DB_PER_SECOND = 60


def level_of_dbov(dbov: int) -> float:
    """The protocol's ``level`` of a -dBov value: 0..1 in steps of 1/LEVEL_STEPS."""
    loudness = max(0, LEVEL_FLOOR_DBOV - dbov) / LEVEL_FLOOR_DBOV
    return round(loudness * LEVEL_STEPS) / LEVEL_STEPS


def release_db(interval_ms: int) -> int:
    """How far a level may fall in one reading, ``interval_ms`` after the last."""
    return max(1, round(RELEASE_DB_PER_SECOND * interval_ms / 1000))


@dataclass(frozen=True)
class StreamLevel:
    stream: str
    participant: str
    dbov: int


class RoomSpeakers:
    """One room's last reported ranking."""

    def __init__(self) -> None:
        self.speakers: tuple[Speaker, ...] = ()

    def update(self, levels: Iterable[StreamLevel]) -> tuple[Speaker, ...] | None:
        """The room's new ranking, or None when it is the one last reported.

        Equal levels keep their last order: two speakers as loud as each
        other do not swap places at every reading (new ones rank by their
        exact level).
        """
        before = {speaker.stream: place for place, speaker in enumerate(self.speakers)}
        speaking = sorted(
            (level for level in levels if level.dbov <= SPEAKING_DBOV),
            key=lambda level: (-level_of_dbov(level.dbov), before.get(level.stream, len(before)), level.dbov,
                               level.stream),
        )
        ranking = tuple(
            Speaker(stream=level.stream, participant=level.participant, level=level_of_dbov(level.dbov))
            for level in speaking
        )
        if ranking == self.speakers:
            return None
        self.speakers = ranking
        return ranking


@dataclass(frozen=True)
class PublishedAudio:
    """What the speakers report needs of one published stream."""

    room: str
    # Where the room's reports may go: the publisher's connection.
    reply_to: str
    stream: str
    participant: str
    level: AudioLevel | None
    muted: bool


class SpeakersWatch:
    """The rankings of the rooms a node serves, read once per interval."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self._release_db = release_db(interval_ms)
        self._rooms: dict[str, RoomSpeakers] = {}

    def read(self, published: Iterable[PublishedAudio]) -> list[tuple[str, SpeakersReport]]:
        """The reports due now, each with the channel to send it to.

        ``published`` in the order the streams started: a room's oldest
        publication gets its reports. Every level is read, even a muted
        stream's, so that one unmuted later starts from fresh packets.
        """
        levels: dict[str, list[StreamLevel]] = {}
        reply_to: dict[str, str] = {}
        for audio in published:
            levels.setdefault(audio.room, [])
            reply_to.setdefault(audio.room, audio.reply_to)
            if audio.level is None:
                continue
            dbov = audio.level.read(self._release_db)
            if not audio.muted:
                levels[audio.room].append(StreamLevel(audio.stream, audio.participant, dbov))
        for room in self._rooms.keys() - levels.keys():
            del self._rooms[room]  # nobody publishes there any more
        reports = []
        for room, room_levels in levels.items():
            ranking = self._rooms.setdefault(room, RoomSpeakers()).update(room_levels)
            if ranking is not None:
                reports.append((reply_to[room], SpeakersReport(room=room, speakers=list(ranking))))
        return reports
