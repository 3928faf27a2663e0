"""Chat search in real Chromium against a real daphne and PostgreSQL: a Cyrillic and a
CJK word are found from the records page, and each hit opens the room page with the
player at the moment the message was sent (the frame shown is that moment's)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.chromium import CHROMIUM
from tests.processes import manage

pytestmark = pytest.mark.integration

# The room's mix: red for 4 s, green for 4 s, blue for 4 s. Its time 0 is 2 s
# into the room's history, so a message sent at 7.25 s is at 5.25 s on the
# room's clock (green) and one sent at 12.5 s at 10.5 s (blue).
SEGMENTS = ("red", "green", "blue")
SEGMENT_S = 4
MESSAGES = [
    ("c1", "alice", None, "Квартальный отчёт готов", 7_250),
    ("c2", "bob", None, "明日の会議は十時から", 12_500),
    ("c3", "alice", ["bob"], "секретный 会議室", 9_000),
]

FRAME_SCRIPT = """async () => {
  const video = document.getElementById("archive-video");
  // The frame at the playhead, once presented (or at most 3 s on a busy machine).
  await new Promise((resolve) => { video.requestVideoFrameCallback(resolve); setTimeout(resolve, 3000); });
  const canvas = document.createElement("canvas");
  canvas.width = 16; canvas.height = 16;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0, 16, 16);
  return {time: video.currentTime, colour: Array.from(context.getImageData(8, 8, 1, 1).data.slice(0, 3))};
}"""


def room_with_chat(env: dict[str, str], live_id: str) -> str:
    """A finalized room with its mix and chat, stored as the server stores them; the link to its records."""
    rows = ", ".join(
        f"ChatRecord(live_id='{live_id}', public_id='{live_id[:8]}{pid}', seq={n}, sender='{sender}', "
        f"recipients={to!r}, text={text!r}, sent_at_ms=t0 + {at_ms})"
        for n, (pid, sender, to, text, at_ms) in enumerate(MESSAGES, start=1)
    )
    return manage(env, "shell", "-c", (
        "import time; from django.utils import timezone; from recording.links import room_records_url; "
        "from recording.models import Recording; from rooms.models import Participant, Room; "
        "from rooms.history import ChatRecord, chat_messages_record; "
        "t0 = int(time.time() * 1000) - 600_000; "
        f"room = Room.objects.create(name='search-{live_id[:6]}', live_id='{live_id}', status='FINALIZED', "
        "finalized_at=timezone.now()); "
        "Participant.objects.create(room=room, login='alice', session='s1'); "
        "Recording.objects.create(room=room, kind='room', status='READY', file_path='mix.webm', "
        f"duration_ms={SEGMENT_S * len(SEGMENTS) * 1000}, media_started_at_ms=t0 + 2000); "
        f"chat_messages_record([{rows}]); "
        f"print(room_records_url(room_live_id='{live_id}', identity='alice'))"
    )).strip().splitlines()[-1]


def search_and_open(page: Page, word: str) -> dict[str, Any]:
    page.fill("form.chat-search input[name=q]", word)
    page.click("form.chat-search button[type=submit]")
    page.wait_for_url("**/records/search/?q=*")
    hits = page.locator("#search-hits .hit")
    assert hits.count() == 1, page.content()
    hits.first.locator("a").click()
    page.wait_for_url("**/records/rooms/**?t=*")
    # archive.js seeks once the player has its metadata.
    page.wait_for_function(
        "() => { const v = document.getElementById('archive-video');"
        " return v.readyState >= 1 && v.currentTime > 0 && !v.seeking; }"
    )
    return page.evaluate(FRAME_SCRIPT)  # type: ignore[no-any-return]


def test_a_cyrillic_and_a_cjk_word_open_the_room_at_their_moment(
    start_server: Any, server_env: dict[str, str], tmp_path: Path, playwright: Any
) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    inputs = [arg for colour in SEGMENTS
              for arg in ("-f", "lavfi", "-i", f"color={colour}:s=160x120:d={SEGMENT_S}:r=25")]
    subprocess.run(
        ["ffmpeg", "-v", "error", *inputs, "-filter_complex", f"concat=n={len(SEGMENTS)}:v=1:a=0",
         "-c:v", "libvpx", "-b:v", "200k", "-g", "25", str(root / "mix.webm")],
        check=True, timeout=60,
    )
    env = {**server_env, "RECORDINGS_ROOT": str(root)}
    records_url = room_with_chat(env, uuid.uuid4().hex)
    web = start_server("daphne", "web", env={"RECORDINGS_ROOT": str(root)})

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    try:
        page = browser.new_page()
        page.set_default_timeout(15_000)
        # The link's token becomes the records cookie; the page reloads as the room's records.
        page.goto(web.http_url + records_url.lstrip("/"))
        page.wait_for_selector("#room-archive-link")
        cyrillic = search_and_open(page, "Квартальный")
        page.goto(web.http_url + "records/")
        cjk = search_and_open(page, "会議")
        page.goto(web.http_url + "records/search/?q=секретный")
        private_hits = page.locator("#search-hits .hit").count()
    finally:
        browser.close()
    assert cyrillic["time"] == pytest.approx(5.25, abs=0.5)
    green = cyrillic["colour"]
    assert green[1] > 100 and green[0] < 60 and green[2] < 60, green
    assert cjk["time"] == pytest.approx(10.5, abs=0.5)
    blue = cjk["colour"]
    assert blue[2] > 200 and blue[0] < 60 and blue[1] < 60, blue
    assert private_hits == 0
