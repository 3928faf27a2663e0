"""Room on disk for records: RECORDINGS_MAX_BYTES and RECORDINGS_MIN_FREE_MB.

The services are called directly; the live tests publish with a real aiortc
peer through the consumer and the in-process media node, and read what the
publisher is told, the Recording row and the files.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import av
import pytest
from asgiref.sync import sync_to_async

from recording.disk_space import free_bytes, free_space_refusal
from recording.models import Recording
from recording.services import recording_stream_start
from rooms.media.peer import use_host_address
from rooms.models import Room
from tests.media_clients import loopback_peer
from tests.media_tracks import CounterVideoTrack, ToneAudioTrack
from tests.wsclient import ProtocolClient

MB = 1_000_000


def floor_above_free_space(root: Path) -> int:
    """A RECORDINGS_MIN_FREE_MB the filesystem of ``root`` cannot meet."""
    return free_bytes(root) // MB + 1_000_000


def finished_record(room: Room, root: Path, size: int) -> Recording:
    (root / room.name).mkdir(exist_ok=True)
    (root / room.name / "old.webm").write_bytes(b"\0" * size)
    return Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id="old", status=Recording.Status.READY,
        file_path=f"{room.name}/old.webm", size_bytes=size,
    )


# --- services ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_floor_above_the_free_space_refuses_with_the_numbers(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_MIN_FREE_MB = floor = floor_above_free_space(recordings_root)
    refusal = free_space_refusal(recordings_root)
    assert refusal is not None and refusal.info == "disk_full"
    assert refusal.reason.startswith("free space ")
    assert refusal.reason.endswith(f" below RECORDINGS_MIN_FREE_MB {floor}")
    settings.RECORDINGS_MIN_FREE_MB = 0
    assert free_space_refusal(recordings_root) is None
    settings.RECORDINGS_MIN_FREE_MB = 1
    assert free_space_refusal(recordings_root) is None  # this filesystem has a megabyte


@pytest.mark.django_db
def test_the_quota_refuses_a_second_record_and_its_row_says_why(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    room = Room.objects.create(name="weekly", live_id="live-1")
    settings.RECORDINGS_MAX_BYTES = 2 * MB

    def start(stream_id: str) -> Any:
        return recording_stream_start(
            room_live_id="live-1", stream_id=stream_id, participant="alice", node="n",
            file_path=f"weekly/{stream_id}.webm", sidecar_path=f"weekly/{stream_id}.json",
        )

    assert start("first") is None  # nothing recorded yet
    Recording.objects.filter(stream_live_id="first").delete()
    finished_record(room, recordings_root, 2_400_000)
    refusal = start("second")
    assert refusal is not None and refusal.info == "disk_quota"
    row = Recording.objects.get(stream_live_id="second")
    assert row.status == Recording.Status.FAILED and row.ended_at is not None
    assert row.failure_reason == "disk quota RECORDINGS_MAX_BYTES reached: 2.4 MB of 2.0 MB"
    assert (row.file_path, row.sidecar_path) == ("", "")

    settings.RECORDINGS_MAX_BYTES = 0  # no limit
    assert start("third") is None
    assert Recording.objects.get(stream_live_id="third").status == Recording.Status.RECORDING


@pytest.mark.django_db
def test_a_running_record_counts_with_its_size_on_disk(settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    room = Room.objects.create(name="weekly", live_id="live-1")
    (recordings_root / "weekly").mkdir()
    (recordings_root / "weekly/live.webm").write_bytes(b"\0" * 1_500_000)
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id="live", file_path="weekly/live.webm"
    )
    settings.RECORDINGS_MAX_BYTES = 1_200_000
    refusal = recording_stream_start(
        room_live_id="live-1", stream_id="next", participant="bob", node="n", file_path="weekly/next.webm",
        sidecar_path="weekly/next.json",
    )
    assert refusal is not None
    assert refusal.reason == "disk quota RECORDINGS_MAX_BYTES reached: 1.5 MB of 1.2 MB"


@pytest.mark.django_db
def test_the_admin_lists_the_reason(admin_client, settings, recordings_root: Path) -> None:  # type: ignore[no-untyped-def]
    room = Room.objects.create(name="weekly", live_id="live-1")
    settings.RECORDINGS_MAX_BYTES = 1
    finished_record(room, recordings_root, 10)
    recording_stream_start(
        room_live_id="live-1", stream_id="refused", participant="alice", node="n", file_path="", sidecar_path=""
    )
    html = admin_client.get("/admin/recording/recording/").content.decode()
    assert "disk quota RECORDINGS_MAX_BYTES reached: 10 bytes of 1 bytes" in html
    refused = Recording.objects.get(stream_live_id="refused")
    detail = admin_client.get(f"/admin/recording/recording/{refused.pk}/change/").content.decode()
    assert "disk quota RECORDINGS_MAX_BYTES reached: 10 bytes of 1 bytes" in detail


# --- live: a real publisher with record: true -----------------------------------------


@pytest.fixture
def media(settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_HOST_IP = "127.0.0.1"
    use_host_address("127.0.0.1")


async def publish_frames(client: ProtocolClient, room: str) -> tuple[Any, list[dict[str, Any]]]:
    """Publish with record: true; the frames up to PUBLISHING, in arrival order."""
    pc = loopback_peer()
    pc.addTransceiver(CounterVideoTrack(), direction="sendonly")
    pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await client.send("stream.publish", room=room, kind="camera", sdp=pc.localDescription.sdp, record=True)
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while not any(frame.get("status") == "PUBLISHING" for frame in frames):
            frame = await client.next_frame(timeout=15)
            frames.append(frame)
            if frame["type"] == "stream.answer":
                from aiortc import RTCSessionDescription

                await pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
    return pc, frames


async def record_row(stream_id: str, done: Any, timeout: float = 10) -> Recording:
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        row = await Recording.objects.filter(stream_live_id=stream_id).afirst()
        if row is not None and done(row):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"the record row of {stream_id} never got there: {row}")


def stream_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.mark.django_db(transaction=True)
async def test_a_publisher_below_the_floor_is_told_and_publishes_unrecorded(
    settings, media, recordings_root: Path  # type: ignore[no-untyped-def]
) -> None:
    settings.RECORDINGS_MIN_FREE_MB = floor = floor_above_free_space(recordings_root)
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="weekly")
    pc, frames = await publish_frames(alice, "weekly")
    answer = next(frame for frame in frames if frame["type"] == "stream.answer")
    stream_id = answer["stream"]["id"]
    told = {"type": "stream.record", "stream": stream_id, "status": "FAILED", "info": "disk_full"}
    types = [frame["type"] for frame in frames]
    assert types.index("stream.answer") < frames.index(told) < len(frames) - 1  # after the answer, before PUBLISHING
    assert frames[-1] == {"type": "stream.status", "stream": stream_id, "status": "PUBLISHING"}

    row = await record_row(stream_id, lambda row: True)
    assert row.status == Recording.Status.FAILED and row.participant == "alice"
    assert row.failure_reason.endswith(f"below RECORDINGS_MIN_FREE_MB {floor}")
    assert stream_files(recordings_root) == []
    # The stream itself goes on, and ends as any other.
    assert (await alice.request("stream.unpublish", stream=stream_id))["status"] == "UNPUBLISHED"
    await asyncio.sleep(0.5)
    assert (await Recording.objects.aget(stream_live_id=stream_id)).status == Recording.Status.FAILED
    await pc.close()
    await alice.close()


@pytest.mark.django_db(transaction=True)
async def test_a_publisher_past_the_quota_is_told_and_the_started_file_goes(
    settings, media, recordings_root: Path  # type: ignore[no-untyped-def]
) -> None:
    settings.RECORDINGS_MIN_FREE_MB = 0
    settings.RECORDINGS_MAX_BYTES = MB
    older = await Room.objects.acreate(name="older", live_id="live-older", status=Room.Status.FINALIZED)
    await sync_to_async(finished_record)(older, recordings_root, 1_200_000)
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="weekly")
    pc, frames = await publish_frames(alice, "weekly")
    stream_id = frames[-1]["stream"]
    # The quota is read with the row, while the stream starts: the event
    # comes after the answer, before or after PUBLISHING.
    told = next((frame for frame in frames if frame["type"] == "stream.record"), None)
    told = told or await alice.event("stream.record", timeout=10)
    assert told == {"type": "stream.record", "stream": stream_id, "status": "FAILED", "info": "disk_quota"}
    row = await record_row(stream_id, lambda row: True)
    assert (row.status, row.failure_reason) == (
        Recording.Status.FAILED, "disk quota RECORDINGS_MAX_BYTES reached: 1.2 MB of 1.0 MB"
    )
    # The recorder had started: its file and sidecar are removed.
    deadline = time.monotonic() + 5
    while stream_files(recordings_root) != [recordings_root / "older/old.webm"]:
        assert time.monotonic() < deadline, stream_files(recordings_root)
        await asyncio.sleep(0.1)
    await pc.close()
    await alice.close()


@pytest.mark.django_db(transaction=True)
async def test_a_record_reaching_the_floor_stops_with_a_playable_file(
    settings, media, recordings_root: Path  # type: ignore[no-untyped-def]
) -> None:
    settings.RECORDINGS_MIN_FREE_MB = 1
    alice = await ProtocolClient.connected("alice")
    await alice.request("room.join", room="weekly")
    pc, frames = await publish_frames(alice, "weekly")
    stream_id = frames[-1]["stream"]
    assert not [frame for frame in frames if frame["type"] == "stream.record"]
    await asyncio.sleep(2.5)  # recorded before the disk "fills up"
    settings.RECORDINGS_MIN_FREE_MB = floor = floor_above_free_space(recordings_root)
    raised_at = time.monotonic()
    told = await alice.event("stream.record", timeout=10)
    stopped_after = time.monotonic() - raised_at
    assert told == {"type": "stream.record", "stream": stream_id, "status": "STOPPED", "info": "disk_full"}
    row = await record_row(stream_id, lambda row: row.status != Recording.Status.RECORDING)
    assert row.status == Recording.Status.PARTIAL
    assert row.failure_reason.startswith("free space ") and row.failure_reason.endswith(f"MIN_FREE_MB {floor}")
    path = recordings_root / row.file_path
    assert row.size_bytes == path.stat().st_size > 20_000
    with av.open(str(path)) as container:
        duration_s = container.duration / av.time_base
        assert {stream.type for stream in container.streams} == {"video", "audio"}
        video_frames = sum(1 for _ in container.demux(video=0))
    assert 2.0 <= duration_s <= 2.5 + stopped_after + 1 and abs(row.duration_ms / 1000 - duration_s) < 0.3
    assert video_frames > 30
    # Stopped on the floor, not on the stream: the stream goes on.
    size = path.stat().st_size
    await alice.assert_no_event("stream.status", within=1.0)
    assert path.stat().st_size == size  # nothing more is written
    assert (await alice.request("stream.unpublish", stream=stream_id))["status"] == "UNPUBLISHED"
    await asyncio.sleep(0.5)
    after = await Recording.objects.aget(stream_live_id=stream_id)
    assert (after.status, after.failure_reason, after.size_bytes) == (row.status, row.failure_reason, size)
    print(f"record stopped {stopped_after:.2f} s after the floor was raised; {duration_s:.2f} s kept, {size} bytes")
    await pc.close()
    await alice.close()

