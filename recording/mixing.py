"""The offline room mixer: every stream record of a room into one MP4 (H.264 + AAC).

Timeline: from the earliest media start to the latest record end; each
record placed at its sidecar's `started_at_ms` (all records share the server
clock), a padded record from where its real media starts, and each record's
audio moved against its video by the sender-report correction of
`recording.sidecar`. Video is 30 fps, each output frame showing every tile's
nearest decoded frame; the geometry is planned in `recording.mix_layout`.
A record without video (or whose video has not started yet) is a black tile,
named like the others. Audio is mixed like `amix`: each live input scaled by
1/number of live inputs, so it never clips. The room's public chat becomes
a mov_text subtitle track (`recording.subtitles`, `recording.mix_subtitles`),
its cues placed on the mix's clock, whose 0 is the first media start.

No filter graph: frames are composed by copying YUV planes into the canvas
with numpy, and the work runs as a pipeline (one decoder thread per video
record, the compositor and the light audio work on the calling thread, one
thread encoding and muxing). PyAV releases the GIL while decoding, scaling
and encoding, and libx264 runs its own threads; a PyAV filter graph on one
thread was measured slower than the ffmpeg CLI doing the same merge, which
parallelizes its stages (tests/bench/recording_mix.py compares the two).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from recording.mix_labels import label_font_size, label_render
from recording.mix_layout import (
    LayoutSegment,
    RecordSpan,
    Rect,
    SegmentCursor,
    canvas_size,
    fit_rect,
    layout_plan,
    spans_max_live,
)
from recording.mix_sources import (
    MIX_SAMPLE_RATE,
    AudioSource,
    FloatSamples,
    VideoSource,
    frame_planes,
    media_end_s,
    video_picture_size,
)
from recording.mix_subtitles import chat_packets, chat_stream_add
from recording.mixer_config import MixerConfig
from recording.sidecar import Sidecar, SidecarError, audio_correction_ms, sidecar_read
from recording.subtitles import ChatCue, ChatLine, chat_cues

logger = logging.getLogger(__name__)

MIX_FRAME_RATE = 30
# A frame is shown from half an output period before its time, so the
# nearest output frame gets it.
FRAME_LEAD_MS = 500 / MIX_FRAME_RATE
X264_OPTIONS = {"crf": "23", "preset": "veryfast"}  # the reference merge's settings
AAC_BIT_RATE = 128_000
AAC_FRAME_SAMPLES = 1024
PROGRESS_INTERVAL_S = 1.0
PROGRESS_HEARTBEAT_S = 30.0
ENCODE_QUEUE_FRAMES = 8
LUMA_BLACK, CHROMA_GREY = 16, 128


class MixError(Exception):
    """The records cannot be mixed (none readable, or nothing to put in the output)."""


@dataclass(frozen=True)
class MixResult:
    duration_ms: int
    width: int
    height: int
    has_audio: bool
    has_video: bool
    frames: int
    media_started_at_ms: float  # the mix's time 0 on the server clock (epoch ms)
    chat_cues: int = 0


@dataclass(frozen=True)
class MixRecord:
    """One stream record as the mixer sees it."""

    index: int
    sidecar: Sidecar
    media_path: Path
    origin_ms: float  # room time of the media file's t=0
    span: RecordSpan
    audio_correction_ms: float
    picture_size: tuple[int, int] | None  # None: no video track
    has_audio: bool


def mix_records_read(sidecar_paths: Sequence[Path]) -> list[MixRecord]:
    """Read the records and place them on the room timeline (0 = the earliest media start).

    An unreadable record is left out with a warning: one broken file must
    not cost the room its whole mix.
    """
    readable = [probed for path in sidecar_paths if (probed := _record_probe(path)) is not None]
    if not readable:
        raise MixError("no readable records" if sidecar_paths else "no records to mix")
    # Padding prepends black and silence: the mix starts where real media starts.
    room_start_ms = min(probe.sidecar.started_at_ms + probe.sidecar.padded_ms for probe in readable)
    records = []
    for index, probe in enumerate(readable):
        sidecar = probe.sidecar
        origin_ms = sidecar.started_at_ms - room_start_ms
        start_ms = origin_ms + sidecar.padded_ms
        records.append(
            MixRecord(
                index=index,
                sidecar=sidecar,
                media_path=probe.media_path,
                origin_ms=origin_ms,
                span=RecordSpan(index, start_ms, max(start_ms, probe.end_ms - room_start_ms)),
                audio_correction_ms=audio_correction_ms(sidecar),
                picture_size=probe.picture_size,
                has_audio=sidecar.track("audio") is not None,
            )
        )
    return records


@dataclass(frozen=True)
class _RecordProbe:
    sidecar: Sidecar
    media_path: Path
    end_ms: float  # server clock
    picture_size: tuple[int, int] | None


def _record_probe(path: Path) -> _RecordProbe | None:
    try:
        sidecar = sidecar_read(path)
        media_path = sidecar.media_path(path)
        if sidecar.ended_at_ms is not None:
            end_ms = sidecar.ended_at_ms
        else:  # the writer died: the file says how far it got
            end_ms = sidecar.started_at_ms + media_end_s(media_path) * 1000
        picture_size = video_picture_size(media_path) if sidecar.track("video") else None
    except (OSError, SidecarError, av.error.FFmpegError) as error:
        logger.warning("left out of the mix: %s: %s", path, error)
        return None
    return _RecordProbe(sidecar, media_path, end_ms, picture_size)


def room_mix(
    sidecars: Sequence[Path],
    output: Path,
    config: MixerConfig,
    progress: Callable[[int], None] | None = None,
    chat: Sequence[ChatLine] = (),
) -> MixResult:
    """Mix a room's stream records into `output` (MP4, H.264 yuv420p + AAC 48 kHz stereo), with ``chat``
    (the room's public messages) as a mov_text track."""
    records = mix_records_read(sidecars)
    video_records = [record for record in records if record.picture_size is not None] if config.has_video else []
    audio_records = [record for record in records if record.has_audio] if config.has_audio else []
    if not video_records and not audio_records:
        raise MixError("nothing to mix: no record has a track the mixer settings keep")
    duration_ms = max(record.span.end_ms for record in records)
    media_started_at_ms = records[0].sidecar.started_at_ms - records[0].origin_ms
    # The duration the row keeps (whole ms): the WebVTT served beside the mix ends its last cue there too.
    cues = chat_cues(chat, origin_ms=media_started_at_ms, duration_ms=round(duration_ms))
    spans = [record.span for record in records]
    canvas = (0, 0)
    segments: list[LayoutSegment] = []
    if video_records:
        cell = (
            max(size[0] for record in video_records if (size := record.picture_size)),
            max(size[1] for record in video_records if (size := record.picture_size)),
        )
        canvas = canvas_size(spans_max_live(spans), cell)
        segments = layout_plan(spans, canvas)
    logger.info(
        "mixing %d records, %.1f s, canvas %dx%d, audio from %d", len(records), duration_ms / 1000, *canvas,
        len(audio_records),
    )
    mixer = _RoomMixer(records, video_records, audio_records, segments, canvas, duration_ms, config, progress, cues)
    try:
        frames = mixer.run(output)
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return MixResult(
        duration_ms=round(duration_ms),
        width=canvas[0],
        height=canvas[1],
        has_audio=bool(audio_records),
        has_video=bool(video_records),
        frames=frames,
        media_started_at_ms=media_started_at_ms,
        chat_cues=len(cues),
    )


class _RoomMixer:
    def __init__(
        self,
        records: Sequence[MixRecord],
        video_records: Sequence[MixRecord],
        audio_records: Sequence[MixRecord],
        segments: Sequence[LayoutSegment],
        canvas: tuple[int, int],
        duration_ms: float,
        config: MixerConfig,
        progress: Callable[[int], None] | None,
        cues: Sequence[ChatCue] = (),
    ) -> None:
        self.records = records
        self.video_records = video_records
        self.audio_records = audio_records
        self.segments = segments
        self.canvas = canvas
        self.duration_ms = duration_ms
        self.config = config
        self.progress = _ProgressReporter(progress)
        self.video_sources: dict[int, VideoSource] = {}
        self.audio_sources: dict[int, AudioSource] = {}
        self.audio_position = 0  # next room sample to mix
        self.audio_gain = 1.0
        self.cues = cues
        self.chat_packets: collections.deque[Any] = collections.deque()  # muxed as the mix reaches their time

    def run(self, output: Path) -> int:
        container: Any = av.open(str(output), "w", format="mp4", options={"movflags": "+faststart"})
        writer = _EncodeThread(container, self._video_stream(container), self._audio_stream(container))
        if self.cues:
            self.chat_packets.extend(chat_packets(self.cues, chat_stream_add(container)))
        try:
            self._open_sources()
            writer.start()
            frames = self._mix(writer)
            writer.finish()
        except BaseException:
            writer.abort()
            self._close_sources()
            with contextlib.suppress(Exception):  # the first error is the one to report
                container.close()
            raise
        self._close_sources()
        container.close()
        self.progress.report(100, force=True)
        return frames

    def _video_stream(self, container: Any) -> Any:
        if not self.video_records:
            return None
        options = {**X264_OPTIONS, "x264-params": f"lookahead-threads={x264_lookahead_threads()}"}
        stream = container.add_stream("libx264", rate=MIX_FRAME_RATE, options=options)
        stream.bit_rate = 0  # PyAV presets 1 Mbit/s; crf alone decides, as in the CLI
        stream.width, stream.height = self.canvas
        stream.pix_fmt = "yuv420p"
        # Frame threads, as the ffmpeg CLI gets: PyAV's default (slice threads) is
        # markedly slower on few cores. Count 0: x264 picks one for the machine.
        stream.codec_context.thread_type = "FRAME"
        stream.codec_context.thread_count = 0
        stream.codec_context.time_base = Fraction(1, MIX_FRAME_RATE)
        return stream

    def _audio_stream(self, container: Any) -> Any:
        if not self.audio_records:
            return None
        stream = container.add_stream("aac", rate=MIX_SAMPLE_RATE, layout="stereo")
        stream.bit_rate = AAC_BIT_RATE
        return stream

    def _open_sources(self) -> None:
        for record in self.video_records:
            self.video_sources[record.index] = VideoSource(
                record.media_path, record.origin_ms, _cell_lookup(self.segments, record.index)
            )
        for record in self.audio_records:
            origin = round((record.origin_ms + record.audio_correction_ms) * MIX_SAMPLE_RATE / 1000)
            self.audio_sources[record.index] = AudioSource(record.media_path, origin)
        for source in self.video_sources.values():
            source.start()

    def _close_sources(self) -> None:
        for video in self.video_sources.values():
            video.close()
        for audio in self.audio_sources.values():
            audio.close()

    def _mix(self, writer: _EncodeThread) -> int:
        total_samples = round(self.duration_ms * MIX_SAMPLE_RATE / 1000)
        if not self.video_records:
            while self.audio_position < total_samples:
                self._mix_audio_until(min(total_samples, self.audio_position + MIX_SAMPLE_RATE), writer)
                self._chat_until(self.audio_position * 1000 / MIX_SAMPLE_RATE, writer)
                self.progress.report(100 * self.audio_position // total_samples)
            self._chat_until(math.inf, writer)
            return 0
        frame_count = max(1, math.ceil(self.duration_ms * MIX_FRAME_RATE / 1000))
        cursor = SegmentCursor(self.segments)
        for index in range(frame_count):
            time_ms = index * 1000 / MIX_FRAME_RATE
            frame = self._compose(cursor.at(time_ms), time_ms)
            frame.pts = index
            self._chat_until(time_ms, writer)
            writer.put(frame, video=True)
            if self.audio_records:
                next_ms = (index + 1) * 1000 / MIX_FRAME_RATE
                self._mix_audio_until(min(total_samples, round(next_ms * MIX_SAMPLE_RATE / 1000)), writer)
            self.progress.report(100 * (index + 1) // frame_count)
        if self.audio_records:
            self._mix_audio_until(total_samples, writer)
        self._chat_until(math.inf, writer)
        return frame_count

    def _chat_until(self, time_ms: float, writer: _EncodeThread) -> None:
        """Hand the muxer the chat cues due by ``time_ms``, so the file stays interleaved."""
        while self.chat_packets and self.chat_packets[0].pts <= time_ms:
            writer.put(self.chat_packets.popleft(), video=None)

    def _compose(self, segment: LayoutSegment | None, time_ms: float) -> Any:
        frame = av.VideoFrame(self.canvas[0], self.canvas[1], "yuv420p")
        planes = frame_planes(frame)
        planes[0][...] = LUMA_BLACK
        planes[1][...] = CHROMA_GREY
        planes[2][...] = CHROMA_GREY
        if segment is None:
            return frame
        due_ms = time_ms + FRAME_LEAD_MS
        for record_index, cell in zip(segment.records, segment.cells, strict=True):
            record = self.records[record_index]
            source = self.video_sources.get(record_index)
            tile = source.frame_at(due_ms) if source is not None else None
            if tile is not None:
                tile = tile.fitted(cell)
                rect = fit_rect((tile.source.width, tile.source.height), cell)
                for canvas_plane, tile_plane, shift in zip(planes, tile.planes, (0, 1, 1), strict=True):
                    top, left = rect.y >> shift, rect.x >> shift
                    height, width = tile_plane.shape
                    canvas_plane[top : top + height, left : left + width] = tile_plane
            else:
                rect = fit_rect(record.picture_size, cell) if record.picture_size else cell
            if self.config.display_stream_name:
                self._draw_label(planes, record.sidecar.participant, rect)
        return frame

    def _draw_label(self, planes: Any, name: str, rect: Rect) -> None:
        label = label_render(name, label_font_size(rect.height))
        margin = max(4, rect.height // 40) // 2 * 2
        top = rect.y + rect.height - label.height - margin
        if top < rect.y:
            return  # a tile too small for a readable name
        label.blend(planes, rect.x + margin, top, rect.width - 2 * margin)

    def _mix_audio_until(self, end: int, writer: _EncodeThread) -> None:
        while self.audio_position < end:
            count = min(AAC_FRAME_SAMPLES, end - self.audio_position)
            start = self.audio_position
            block_ms = (start + count / 2) * 1000 / MIX_SAMPLE_RATE
            live = [
                self.audio_sources[record.index]
                for record in self.audio_records
                if record.span.start_ms <= block_ms < record.span.end_ms
            ]
            mixed: FloatSamples = np.zeros((2, count), dtype=np.float32)
            for source in live:
                mixed += source.read(start, count)
            # amix's normalization: 1/number of live inputs, ramped over the block so a join does not click.
            gain = 1.0 / max(1, len(live))
            mixed *= np.linspace(self.audio_gain, gain, count, endpoint=False, dtype=np.float32)
            self.audio_gain = gain
            np.clip(mixed, -1.0, 1.0, out=mixed)
            frame = av.AudioFrame.from_ndarray(mixed, format="fltp", layout="stereo")
            frame.sample_rate = MIX_SAMPLE_RATE
            frame.pts = start
            frame.time_base = Fraction(1, MIX_SAMPLE_RATE)
            writer.put(frame, video=False)
            self.audio_position += count


def x264_lookahead_threads() -> int:
    """Threads for x264's lookahead: at least 2 where there are 2 cores.

    With frame threads x264 gives the lookahead (frame type decisions and
    macroblock-tree analysis, about 40% of its work at veryfast) one thread
    per 6 encoding threads, so below 8 cores a single thread does it and
    bounds the speed of the whole encode. Splitting it changes no setting of
    the output (same preset, same crf).
    """
    cores = os.cpu_count() or 1
    return max(1, min(cores, max(2, cores * 3 // 2 // 6)))


def _cell_lookup(segments: Sequence[LayoutSegment], record_index: int) -> Callable[[float], Rect | None]:
    """The cell a record's frame of a given time is shown in first, for its decoder thread.

    Each thread walks its own cursor. The frame lead keeps a first frame a
    fraction of a millisecond before the record's start (timestamps are
    rounded to the file's time base) from being dropped.
    """
    cursor = SegmentCursor(segments)

    def cell_at(time_ms: float) -> Rect | None:
        segment = cursor.at(time_ms + FRAME_LEAD_MS)
        return segment.cell_of(record_index) if segment is not None else None

    return cell_at


class _EncodeThread:
    """Encodes and muxes on its own thread, in the order frames are put."""

    def __init__(self, container: Any, video_stream: Any, audio_stream: Any) -> None:
        self.container = container
        self.video_stream = video_stream
        self.audio_stream = audio_stream
        # (frame, True) video, (frame, False) audio to encode; (packet, None) to mux as it is.
        self._frames: queue.Queue[tuple[Any, bool | None] | None] = queue.Queue(ENCODE_QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name="mix-encode", daemon=True)
        self._error: BaseException | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def put(self, frame: Any, *, video: bool | None) -> None:
        """Encode ``frame`` on the video (True) or audio (False) stream, or mux it as a packet (None)."""
        self._put((frame, video))

    def finish(self) -> None:
        """Flush the encoders and wait until everything is muxed."""
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _put(self, item: tuple[Any, bool | None] | None) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._frames.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def abort(self) -> None:
        if not self._thread.is_alive():
            return
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                try:
                    item = self._frames.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is None:
                    for stream in (self.video_stream, self.audio_stream):
                        if stream is not None:
                            self.container.mux(stream.encode(None))
                    return
                frame, video = item
                if video is None:
                    self.container.mux(frame)
                    continue
                stream = self.video_stream if video else self.audio_stream
                self.container.mux(stream.encode(frame))
        except BaseException as error:  # raised again on the mixing thread
            self._error = error


class _ProgressReporter:
    """Calls back with whole percents, at most once per PROGRESS_INTERVAL_S."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self.callback = callback
        self.last_percent = -1
        self.last_time = -math.inf

    def report(self, percent: int, *, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        # The same percent again only as a sign of life: a long room's mix may
        # spend minutes on one percent, and a silent worker is taken for dead.
        if percent == self.last_percent and now - self.last_time < PROGRESS_HEARTBEAT_S:
            return
        if not force and now - self.last_time < PROGRESS_INTERVAL_S:
            return
        self.last_percent, self.last_time = percent, now
        try:
            self.callback(percent)
        except Exception:
            # Progress is advice for people watching; a failing report must not cost the mix.
            logger.warning("progress report failed", exc_info=True)
