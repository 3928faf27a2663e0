"""The stream records a media node is writing.

The node asks for a record when it accepts a publish with ``record`` set;
the recorder becomes one more sink on the stream's taps, so recording reads
the same encoded frames the players get. Ending the stream (unpublish,
leave, drop, room finalization, node shutdown) finishes the file and the
Recording row.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from recording import services
from recording.attach import recorder_attach
from recording.capture import RecordTarget, StreamRecorder
from rooms.database import db_call
from rooms.media.peer import PublishedStream

logger = logging.getLogger(__name__)


class NodeRecords:
    def __init__(self) -> None:
        self.recorders: dict[str, StreamRecorder] = {}
        self._started: dict[str, asyncio.Task[None]] = {}

    def start(self, *, node: str, message: dict[str, Any], published: PublishedStream) -> None:
        """Record a stream just accepted (before any of its media arrives)."""
        stream = message["stream"]
        recorder = recorder_attach(
            published,
            RecordTarget(
                directory=services.room_directory(message["room"]), stream_id=stream["id"], room=message["room"],
                room_id=message["room_id"], participant=stream["participant"], kind=stream["kind"],
            ),
            offer_sdp=message["sdp"],
        )
        self.recorders[stream["id"]] = recorder
        root = services.recordings_root()
        self._started[stream["id"]] = asyncio.ensure_future(
            db_call(services.recording_stream_start)(
                room_live_id=message["room_id"], stream_id=stream["id"], participant=stream["participant"],
                node=node, file_path=str(recorder.path.relative_to(root)),
                sidecar_path=str(recorder.sidecar_path.relative_to(root)),
            )
        )

    async def finish(self, stream_id: str) -> None:
        recorder = self.recorders.pop(stream_id, None)
        if recorder is None:
            return
        started = self._started.pop(stream_id, None)
        result = await asyncio.to_thread(recorder.close)
        if started is not None:
            try:
                await started
            except Exception:
                logger.exception("the Recording row of stream %s was not created", stream_id)
        await db_call(services.recording_stream_finish)(
            stream_id=stream_id,
            file_path=str(result.path.relative_to(services.recordings_root())),
            size_bytes=result.size_bytes,
            duration_ms=result.duration_ms,
            failure=result.failure,
        )

    async def finish_all(self) -> None:
        await asyncio.gather(*(self.finish(stream_id) for stream_id in list(self.recorders)))
