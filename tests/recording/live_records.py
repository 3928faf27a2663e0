"""Real aiortc publishers recorded through the tap, as the media node does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from recording.attach import recorder_attach
from recording.capture import RecordResult, RecordTarget, StreamRecorder
from rooms.media.peer import PublishedStream
from tests.media_clients import Publisher, publisher_offer


@dataclass
class LiveRecord:
    publisher: Publisher
    published: PublishedStream
    recorder: StreamRecorder
    forwarded: dict[str, list[bytes]] = field(default_factory=lambda: {"video": [], "audio": []})

    async def stop(self) -> RecordResult:
        result = await asyncio.to_thread(self.recorder.close)
        await self.published.close()
        await self.publisher.pc.close()
        return result


async def start_record(
    directory: Path, stream_id: str = "s1", participant: str = "alice", codec: str = "VP8", shade: int = 128,
    tracks: tuple[MediaStreamTrack, MediaStreamTrack] | None = None,
) -> LiveRecord:
    """A publisher whose stream is being recorded; returns once media flows."""
    publisher, offer = await publisher_offer(codec, shade=shade, tracks=tracks)
    started = asyncio.Event()
    published, answer = await PublishedStream.accept(
        stream_id=stream_id, offer_sdp=offer, video_codec=codec, ice_servers=[], on_first_media=started.set
    )
    recorder = recorder_attach(
        published,
        RecordTarget(directory=directory, stream_id=stream_id, room="r", room_id="room1", participant=participant,
                     kind="camera"),
    )
    live = LiveRecord(publisher, published, recorder)
    for kind, tap in published.taps.items():
        tap.add_sink(lambda codec, frame, kind=kind: live.forwarded[kind].append(frame.data))
    await publisher.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await asyncio.wait_for(started.wait(), 10)
    return live
