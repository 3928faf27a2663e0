"""Downloads of recording files: byte ranges, HEAD, access, paths kept under RECORDINGS_ROOT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import AsyncRequestFactory, Client, RequestFactory
from django.utils.http import http_date

from recording.downloads import (
    CHUNK_BYTES,
    ByteRange,
    RangeNotSatisfiable,
    ranged_file_response,
    requested_range,
)
from recording.models import Recording
from rooms.models import Room
from tests.recording.records_access import operator_client, visitor_with_link

# Every byte value, in an order where no two windows look alike.
CONTENT = bytes((index * 7 + index // 256) % 256 for index in range(10_000))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=9990-", ByteRange(9990, 9999)),
        ("bytes=9990-20000", ByteRange(9990, 9999)),
        ("bytes=-10", ByteRange(9990, 9999)),
        ("bytes=-20000", ByteRange(0, 9999)),
        (" bytes=5-6 ", ByteRange(5, 6)),
        # Ignored, so the whole file: other units, several ranges, malformed.
        ("items=0-1", None),
        ("bytes=0-1,5-6", None),
        ("bytes=5-4", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("bytes=" + "9" * 40 + "-", None),
    ],
)
def test_requested_range(header: str | None, expected: ByteRange | None) -> None:
    assert requested_range(header, 10_000) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10000-", 10_000), ("bytes=-0", 10_000), ("bytes=0-", 0)])
def test_requested_range_past_the_end(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        requested_range(header, size)


def write(root: Path, relative: str, content: bytes = CONTENT) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return relative


def room_recording(
    room_name: str, file_path: str, *, status: str = Recording.Status.READY, **fields: object
) -> Recording:
    room = Room.objects.create(name=room_name, live_id=f"live-{room_name}", status=Room.Status.FINALIZED)
    return Recording.objects.create(room=room, kind=Recording.Kind.ROOM, status=status, file_path=file_path, **fields)


@pytest.fixture
def staff_client(db: None) -> Client:
    return operator_client()


def body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content) if response.streaming else bytes(response.content)


def download_url(recording: Recording) -> str:
    return f"/records/{recording.pk}/download/"


@pytest.mark.django_db
def test_whole_file_without_range(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "rooms/weekly/mix.webm"))
    response = staff_client.get(download_url(recording))
    assert response.status_code == 200
    assert body(response) == CONTENT
    assert response["Content-Type"] == "video/webm"
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"].startswith('attachment; filename="weekly-')
    assert response["Content-Disposition"].endswith(f'-room-{recording.pk}.webm"')
    assert "Content-Range" not in response


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=100-199", 100, 199), ("bytes=9000-", 9000, 9999), ("bytes=-300", 9700, 9999), ("bytes=0-99999", 0, 9999)],
)
def test_one_range(staff_client: Client, recordings_root: Path, header: str, start: int, end: int) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.webm"))
    response = staff_client.get(download_url(recording), headers={"range": header})
    assert response.status_code == 206
    assert body(response) == CONTENT[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response["Content-Length"] == str(end - start + 1)


@pytest.mark.django_db
def test_range_past_the_end_is_416(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.webm"))
    response = staff_client.get(download_url(recording), headers={"range": "bytes=10000-"})
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */10000"


@pytest.mark.django_db
def test_several_ranges_get_the_whole_file(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.webm"))
    response = staff_client.get(download_url(recording), headers={"range": "bytes=0-1,5-6"})
    assert response.status_code == 200
    assert body(response) == CONTENT


@pytest.mark.django_db
def test_head_gives_the_headers_of_get(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.mp4"))
    whole = staff_client.head(download_url(recording))
    assert whole.status_code == 200
    assert whole.content == b""
    assert whole["Content-Length"] == str(len(CONTENT))
    assert whole["Content-Type"] == "video/mp4"
    part = staff_client.head(download_url(recording), headers={"range": "bytes=-10"})
    assert part.status_code == 206
    assert part["Content-Range"] == "bytes 9990-9999/10000"
    assert part["Content-Length"] == "10"


@pytest.mark.django_db
def test_if_range_resumes_only_the_same_file(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.mkv"))
    first = staff_client.get(download_url(recording), headers={"range": "bytes=0-9"})
    etag, modified = first["ETag"], first["Last-Modified"]
    assert (first["Content-Type"], body(first)) == ("video/x-matroska", CONTENT[:10])

    same = staff_client.get(download_url(recording), headers={"range": "bytes=10-19", "if-range": etag})
    assert (same.status_code, body(same)) == (206, CONTENT[10:20])
    by_date = staff_client.get(download_url(recording), headers={"range": "bytes=10-19", "if-range": modified})
    assert (by_date.status_code, body(by_date)) == (206, CONTENT[10:20])

    # A remix writes a new file under the same name: resuming must start over.
    replaced = CONTENT[::-1]
    (recordings_root / "mix.mkv").write_bytes(replaced)
    later = os.stat(recordings_root / "mix.mkv").st_mtime + 5
    os.utime(recordings_root / "mix.mkv", (later, later))
    stale = staff_client.get(download_url(recording), headers={"range": "bytes=10-19", "if-range": etag})
    assert (stale.status_code, body(stale)) == (200, replaced)
    stale_date = staff_client.get(download_url(recording), headers={"range": "bytes=10-19", "if-range": modified})
    assert (stale_date.status_code, body(stale_date)) == (200, replaced)
    assert stale_date["Last-Modified"] == http_date(later)


@pytest.mark.django_db
def test_body_is_read_in_chunks(staff_client: Client, recordings_root: Path) -> None:
    content = os.urandom(3 * CHUNK_BYTES + 5)
    recording = room_recording("weekly", write(recordings_root, "big.webm", content))
    response = staff_client.get(download_url(recording), headers={"range": "bytes=1-"})
    chunks = list(response.streaming_content)
    assert [len(chunk) for chunk in chunks] == [CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES, 4]
    assert b"".join(chunks) == content[1:]


async def test_asgi_requests_get_an_async_body(tmp_path: Path) -> None:
    # Django would turn a synchronous body into one list (the whole file in
    # memory) before sending it over ASGI; the async body is read chunk by chunk.
    path = tmp_path / "mix.webm"
    path.write_bytes(CONTENT)
    request = AsyncRequestFactory().get("/", headers={"range": "bytes=5000-"})
    response = ranged_file_response(request, path, filename="mix.webm")
    assert response.status_code == 206
    assert response.is_async  # type: ignore[union-attr]
    assert b"".join([chunk async for chunk in response.streaming_content]) == CONTENT[5000:]  # type: ignore[union-attr]


def test_wsgi_requests_get_a_sync_body(tmp_path: Path) -> None:
    path = tmp_path / "mix.webm"
    path.write_bytes(CONTENT)
    response = ranged_file_response(RequestFactory().get("/"), path, filename="mix.webm")
    assert not response.is_async  # type: ignore[union-attr]
    assert b"".join(response.streaming_content) == CONTENT  # type: ignore[union-attr, arg-type]


@pytest.mark.django_db
def test_sidecar_is_json(staff_client: Client, recordings_root: Path) -> None:
    sidecar = write(recordings_root, "rooms/weekly/alice.json", b'{"streams": []}')
    recording = room_recording("weekly", write(recordings_root, "rooms/weekly/alice.webm"), sidecar_path=sidecar)
    response = staff_client.get(f"/records/{recording.pk}/sidecar/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert body(response) == b'{"streams": []}'
    assert response["Content-Disposition"].endswith('.sidecar.json"')


@pytest.mark.django_db
@pytest.mark.parametrize("escape", ["../outside.webm", "rooms/../../outside.webm", "{outside}", "link.webm"])
def test_paths_out_of_the_root_are_not_served(
    staff_client: Client, recordings_root: Path, escape: str
) -> None:
    outside = recordings_root.parent / "outside.webm"
    outside.write_bytes(b"secret")
    (recordings_root / "link.webm").symlink_to(outside)
    recording = room_recording("weekly", escape.format(outside=outside))
    assert staff_client.get(download_url(recording)).status_code == 404


@pytest.mark.django_db
def test_access_to_downloads(recordings_root: Path) -> None:
    mine = room_recording("mine", write(recordings_root, "mine.webm"))
    theirs = room_recording("theirs", write(recordings_root, "theirs.webm"))
    visitor = visitor_with_link(mine.room.live_id)

    allowed = visitor.get(download_url(mine), headers={"range": "bytes=0-3"})
    assert (allowed.status_code, body(allowed)) == (206, CONTENT[:4])
    # Everything else is "not found", so that nobody learns what exists.
    assert visitor.get(download_url(theirs)).status_code == 404
    assert Client().get(download_url(mine)).status_code == 404
    assert visitor.get("/records/999999/download/").status_code == 404
    forged = Client()
    forged.cookies["records_access"] = visitor.cookies["records_access"].value + "x"
    assert forged.get(download_url(mine)).status_code == 404
    # Staff without the view permission see nothing either.
    not_allowed = Client()
    not_allowed.force_login(User.objects.create_user("guest", password="x", is_staff=True))
    assert not_allowed.get(download_url(mine)).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status",
    [Recording.Status.RECORDING, Recording.Status.PENDING_MIX, Recording.Status.MIXING, Recording.Status.FAILED],
)
def test_unfinished_recordings_are_not_served(staff_client: Client, recordings_root: Path, status: str) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.webm"), status=status)
    assert staff_client.get(download_url(recording)).status_code == 404


@pytest.mark.django_db
def test_partial_recordings_are_served(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.webm"), status=Recording.Status.PARTIAL)
    assert body(staff_client.get(download_url(recording))) == CONTENT


@pytest.mark.django_db
def test_only_get_and_head(staff_client: Client, recordings_root: Path) -> None:
    recording = room_recording("weekly", write(recordings_root, "mix.webm"))
    assert staff_client.post(download_url(recording)).status_code == 405


def test_behind_nginx_the_proxy_sends_the_file(staff_client: Client, recordings_root: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDS_ACCEL_REDIRECT = "/protected-records/"
    recording = room_recording("weekly sync", write(recordings_root, "weekly sync/room-1.mp4"))
    response = staff_client.get(download_url(recording), headers={"range": "bytes=0-9"})
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/protected-records/weekly%20sync/room-1.mp4"
    assert response["Content-Type"] == "video/mp4"
    assert "attachment" in response["Content-Disposition"]
