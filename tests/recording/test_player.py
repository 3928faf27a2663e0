"""The records page's player in real Chromium, against a real daphne: it seeks
in a real WebM through Range requests (the ASGI path of recording.downloads)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.processes import manage

pytestmark = pytest.mark.integration


PLAYER_SCRIPT = """async (moments) => {
  const video = document.querySelector("details.player[open] video");
  const canvas = document.createElement("canvas");
  canvas.width = 16; canvas.height = 16;
  const context = canvas.getContext("2d");
  const once = (name) => new Promise((resolve, reject) => {
    video.addEventListener(name, resolve, {once: true});
    video.addEventListener("error", () => reject(new Error(video.error.message)), {once: true});
  });
  // Nothing loads until the row is opened: records.js then asks for the metadata.
  if (video.readyState < HTMLMediaElement.HAVE_METADATA) await once("loadedmetadata");
  const colours = [];
  for (const moment of moments) {
    const seeked = once("seeked");
    // "seeked" can come before the frame at the new position is presented
    // (a busy machine): wait for that frame too, or at most 3 s.
    const presented = new Promise((resolve) => {
      video.requestVideoFrameCallback(resolve);
      setTimeout(resolve, 3000);
    });
    video.currentTime = moment;
    await seeked;
    await presented;
    context.drawImage(video, 0, 0, 16, 16);
    colours.push(Array.from(context.getImageData(8, 8, 1, 1).data.slice(0, 3)));
  }
  return {duration: video.duration, colours};
}"""


def test_the_player_seeks_in_a_file_served_by_daphne(
    start_server: Any, server_env: dict[str, str], tmp_path: Path, playwright: Any
) -> None:
    """Chromium plays a real WebM from the records page, seeking with Range requests to daphne."""
    root = tmp_path / "recordings"
    root.mkdir()
    # Two seconds red, then two seconds blue: pixels tell where a seek landed.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=160x120:d=2:r=25",
         "-f", "lavfi", "-i", "color=blue:s=160x120:d=2:r=25", "-filter_complex", "concat=n=2:v=1:a=0",
         "-c:v", "libvpx", "-b:v", "200k", str(root / "mix.webm")],
        check=True, timeout=60,
    )
    env = {**server_env, "RECORDINGS_ROOT": str(root)}
    live_id = uuid.uuid4().hex
    records_url = manage(env, "shell", "-c", (
        "from recording.links import room_records_url; from recording.models import Recording; "
        "from rooms.models import Participant, Room; "
        f"room = Room.objects.create(name='player-{live_id[:6]}', live_id='{live_id}', status='FINALIZED'); "
        "Participant.objects.create(room=room, login='alice', session='s1'); "
        "Recording.objects.create(room=room, kind='room', status='READY', file_path='mix.webm'); "
        f"print(room_records_url(room_live_id='{live_id}', identity='alice'))"
    )).strip().splitlines()[-1]
    web = start_server("daphne", "web", env={"RECORDINGS_ROOT": str(root)})

    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
    try:
        page = browser.new_page()
        page.set_default_timeout(10_000)
        statuses: list[int] = []
        page.on("response", lambda response: statuses.append(response.status) if "/download/" in response.url else None)
        page.goto(web.http_url + records_url.lstrip("/"))
        page.click("details.player summary")
        result = page.evaluate(PLAYER_SCRIPT, [0.5, 3.5, 1.0])
    finally:
        browser.close()
    assert result["duration"] == pytest.approx(4.0, abs=0.1)
    red, blue, red_again = result["colours"]
    assert red[0] > 200 and red[2] < 60, red
    assert blue[2] > 200 and blue[0] < 60, blue
    assert red_again[0] > 200 and red_again[2] < 60, red_again
    assert 206 in statuses, statuses
    # Over ASGI a synchronous body would first be read whole into memory, with this warning.
    assert "must consume synchronous iterators" not in web.log()
