"""Stream records: the sink recording plugs into a media node.

A node offers each publish it accepts (``rooms.media.signals.stream_started``);
one with ``record`` set gets a ``StreamRecordSink``: the recorder becomes one
more sink on the stream's frames, so recording reads the same encoded frames
the players get. The node closes the sink when the stream ends (unpublish,
leave, drop, room finalization, node shutdown), which finishes the file and
the Recording row.
"""

from __future__ import annotations

import asyncio
import logging

from recording import services
from recording.attach import recorder_attach
from recording.capture import RecordTarget, StreamRecorder
from rooms.database import db_call
from rooms.media.messages import PublishCommand
from rooms.media.sink import PublishedMedia

logger = logging.getLogger(__name__)


class StreamRecordSink:
    def __init__(self, recorder: StreamRecorder, row_created: asyncio.Future[None]) -> None:
        self.recorder = recorder
        self._row_created = row_created

    @classmethod
    def start(cls, *, node: str, command: PublishCommand, media: PublishedMedia) -> StreamRecordSink:
        """Record a stream just accepted (before any of its media arrives)."""
        recorder = recorder_attach(
            media,
            RecordTarget(
                directory=services.room_directory(command.room), stream_id=command.stream, room=command.room,
                room_id=command.room_id, participant=command.participant, kind=command.kind,
            ),
        )
        root = services.recordings_root()
        row_created = asyncio.ensure_future(
            db_call(services.recording_stream_start)(
                room_live_id=command.room_id, stream_id=command.stream, participant=command.participant,
                node=node, file_path=str(recorder.path.relative_to(root)),
                sidecar_path=str(recorder.sidecar_path.relative_to(root)),
            )
        )
        return cls(recorder, row_created)

    async def close(self) -> None:
        stream_id = self.recorder.target.stream_id
        result = await asyncio.to_thread(self.recorder.close)
        try:
            await self._row_created
        except Exception:
            logger.exception("the Recording row of stream %s was not created", stream_id)
        await db_call(services.recording_stream_finish)(
            stream_id=stream_id,
            file_path=str(result.path.relative_to(services.recordings_root())),
            size_bytes=result.size_bytes,
            duration_ms=result.duration_ms,
            failure=result.failure,
        )
