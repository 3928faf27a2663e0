"""Stream records: the sink recording plugs into a media node.

A node offers each publish it accepts (``rooms.media.signals.stream_started``);
one with ``record`` set gets a ``StreamRecordSink``: the recorder becomes one
more sink on the stream's frames, so recording reads the same encoded frames
the players get. The node closes the sink when the stream ends (unpublish,
leave, drop, room finalization, node shutdown), which finishes the file and
the Recording row.

A record may end before its stream: one that cannot start (free space below
RECORDINGS_MIN_FREE_MB, found here at once; RECORDINGS_MAX_BYTES reached,
found with its row) and one whose disk fills up while it runs are closed,
their rows say why, and the publisher is told (``record_status``); the
stream goes on unrecorded.
"""

from __future__ import annotations

import asyncio
import logging

from recording import services
from recording.attach import recorder_attach
from recording.capture import RecordResult, RecordTarget, StreamRecorder
from recording.disk_space import DiskRefusal, free_space_refusal
from rooms.database import db_call
from rooms.media.messages import PublishCommand
from rooms.media.sink import PublishedMedia, RecordStatusReporter

logger = logging.getLogger(__name__)


class StreamRecordSink:
    def __init__(self, stream_id: str, record_status: RecordStatusReporter) -> None:
        self.stream_id = stream_id
        self.recorder: StreamRecorder | None = None
        self._record_status = record_status
        self._row_created: asyncio.Future[DiskRefusal | None] | None = None
        self._finished: asyncio.Future[None] | None = None

    def queued_frames(self) -> int:
        """Frames waiting to be written (rooms.media.sink.QueueingSink, read by the node's meter)."""
        return self.recorder.queued_frames() if self.recorder is not None else 0

    @classmethod
    def start(
        cls, *, node: str, command: PublishCommand, media: PublishedMedia, record_status: RecordStatusReporter
    ) -> StreamRecordSink:
        """Record a stream just accepted (before any of its media arrives)."""
        sink = cls(command.stream, record_status)
        root = services.recordings_root()
        row = db_call(services.recording_stream_start)
        refusal = free_space_refusal(root)
        if refusal is not None:
            sink._row_created = asyncio.ensure_future(row(
                room_live_id=command.room_id, stream_id=command.stream, participant=command.participant,
                node=node, file_path="", sidecar_path="", refusal=refusal,
            ))
            record_status("FAILED", refusal.info, refusal.reason)
            return sink
        loop = asyncio.get_running_loop()

        def stopped(refusal: DiskRefusal) -> None:  # on the writer thread
            loop.call_soon_threadsafe(sink._stopped, refusal)

        recorder = sink.recorder = recorder_attach(
            media,
            RecordTarget(
                directory=services.room_directory(command.room), stream_id=command.stream, room=command.room,
                room_id=command.room_id, participant=command.participant, kind=command.kind,
            ),
            on_stopped=stopped,
        )
        sink._row_created = asyncio.ensure_future(row(
            room_live_id=command.room_id, stream_id=command.stream, participant=command.participant,
            node=node, file_path=str(recorder.path.relative_to(root)),
            sidecar_path=str(recorder.sidecar_path.relative_to(root)),
        ))
        sink._row_created.add_done_callback(sink._row_done)
        return sink

    def _row_done(self, row_created: asyncio.Future[DiskRefusal | None]) -> None:
        if row_created.cancelled() or row_created.exception() is not None:
            return
        refusal = row_created.result()
        if refusal is not None and self._finished is None:
            # The quota refused the record after its recorder started: its
            # file goes, as if it never began.
            self._finished = asyncio.ensure_future(self._discard())
            self._record_status("FAILED", refusal.info, refusal.reason)

    def _stopped(self, refusal: DiskRefusal) -> None:
        """The writer stopped on the free-space floor (on the loop)."""
        if self._finished is None:
            self._finished = asyncio.ensure_future(self._finish())
            self._record_status("STOPPED", refusal.info, refusal.reason)

    async def _discard(self) -> None:
        assert self.recorder is not None
        result = await asyncio.to_thread(self.recorder.close)
        for path in (result.path, result.sidecar_path):
            path.unlink(missing_ok=True)

    async def _finish(self) -> None:
        assert self.recorder is not None
        result: RecordResult = await asyncio.to_thread(self.recorder.close)
        try:
            await self._row_created_wait()
        except Exception:
            logger.exception("the Recording row of stream %s was not created", self.stream_id)
        await db_call(services.recording_stream_finish)(
            stream_id=self.stream_id,
            file_path=str(result.path.relative_to(services.recordings_root())),
            size_bytes=result.size_bytes,
            duration_ms=result.duration_ms,
            failure=result.failure,
            stopped=result.stopped.reason if result.stopped is not None else "",
        )

    async def _row_created_wait(self) -> DiskRefusal | None:
        return None if self._row_created is None else await self._row_created

    async def close(self) -> None:
        if self.recorder is None:
            try:
                await self._row_created_wait()  # the refused record's row
            except Exception:
                logger.exception("the Recording row of stream %s was not written", self.stream_id)
            return
        if self._finished is None:
            try:
                refusal = await self._row_created_wait()
            except Exception:
                refusal = None  # logged by _finish
            if self._finished is None:
                self._finished = asyncio.ensure_future(self._discard() if refusal else self._finish())
        await self._finished
