"""Audio stems end to end: an operator asks for a finalized room's stems on
its page (real daphne), a real Celery worker makes them on Redis and
PostgreSQL, and the ZIP downloaded from the page holds each participant's
beeps at their moments on the room's clock (± 40 ms, from the samples)."""

from __future__ import annotations

import http.cookiejar
import io
import json
import re
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.integration.test_celery_faults import operator_cookie
from tests.processes import ServerProcess, manage
from tests.recording.probe import beep_onsets_s
from tests.recording.synthetic import DEFAULT_STARTED_AT_MS, SyntheticRecord, synthetic_record_write

pytestmark = pytest.mark.integration

TOLERANCE_S = 0.040
ROOM, LIVE_ID = "podcast", "live-podcast-stems"
# Rows for the records written by the test, made as the history and the capture would.
SEED = """
import json
from django.utils import timezone
from recording.models import Recording
from rooms.models import Participant, Room, Stream
spec = json.loads('''{spec}''')
room = Room.objects.create(name=spec["room"], live_id=spec["live_id"], record=True)
Room.objects.filter(pk=room.pk).update(status=Room.Status.FINALIZED, finalized_at=timezone.now())
for item in spec["records"]:
    participant = Participant.objects.create(room=room, login=item["participant"], session="s-" + item["stream"])
    stream = Stream.objects.create(participant=participant, live_id=item["stream"], kind="camera", record=True)
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream=stream, stream_live_id=item["stream"],
        participant=item["participant"], status=Recording.Status.READY, file_path=item["file"],
        sidecar_path=item["sidecar"],
    )
"""


def page_open(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    with opener.open(url, data=data, timeout=15) as response:
        return response.status, response.read()


def test_a_worker_makes_aligned_stems_that_the_page_serves(start_server, server_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "recordings"
    server_env["RECORDINGS_ROOT"] = str(root)
    records = [
        SyntheticRecord(stream="alice-cam", participant="alice", room=ROOM, room_id=LIVE_ID, duration_s=3.0,
                        beep_times_s=(0.5, 2.0), audio_offset_error_ms=45.0),
        SyntheticRecord(stream="bob-cam", participant="bob", room=ROOM, room_id=LIVE_ID, duration_s=2.0,
                        beep_times_s=(1.2,), started_at_ms=DEFAULT_STARTED_AT_MS + 2500),
    ]
    spec: dict[str, object] = {"room": ROOM, "live_id": LIVE_ID, "records": []}
    for record in records:
        sidecar = synthetic_record_write(root / ROOM, record)
        spec["records"].append({  # type: ignore[attr-defined]
            "participant": record.participant, "stream": record.stream,
            "file": f"{ROOM}/{record.stream}.webm", "sidecar": str(sidecar.relative_to(root)),
        })
    manage(server_env, "shell", "-c", SEED.replace("{spec}", json.dumps(spec)))
    cookie = operator_cookie(server_env)
    web: ServerProcess = start_server("daphne", "web")
    worker: ServerProcess = start_server("celery", "worker")

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("Cookie", f"sessionid={cookie}")]
    page_url = f"{web.http_url}records/rooms/{LIVE_ID}/stems/"
    status, body = page_open(opener, page_url)
    assert status == 200 and b'id="stems-make"' in body
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert token is not None
    csrf = next(item.value for item in jar if item.name == "csrftoken")
    opener.addheaders = [("Cookie", f"sessionid={cookie}; csrftoken={csrf}")]
    status, body = page_open(opener, page_url, urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1)}).encode())
    assert status == 200  # redirected back to the page

    # The worker says when it is done; the page then offers the ZIP.
    deadline = time.monotonic() + 60
    while "made 2 stems" not in worker.log():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)
    status, body = page_open(opener, page_url)
    assert b'id="stems-download"' in body and b"alice.flac" in body and b"bob.flac" in body
    status, archive_bytes = page_open(opener, f"{web.http_url}records/rooms/{LIVE_ID}/stems.zip")
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        assert sorted(archive.namelist()) == ["alice.flac", "bob.flac"]
        archive.extractall(tmp_path / "stems")
    expected = {"alice.flac": [0.5, 2.0], "bob.flac": [2.5 + 1.2]}
    for name, beeps in expected.items():
        onsets = beep_onsets_s(tmp_path / "stems" / name)
        assert len(onsets) == len(beeps), (name, onsets)
        assert all(abs(onset - beep) <= TOLERANCE_S for onset, beep in zip(onsets, beeps, strict=True)), onsets
