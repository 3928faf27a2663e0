"""A recorded room's archive end to end: real daphne, a real Celery worker
mixing on Redis and PostgreSQL, real aiortc publishers, real Chromium.

Alice publishes a camera whose frames carry their number; Bob and Carol
join, everyone chats in several scripts (and Bob privately). Where each
message belongs in the mix is known without the server's word for it: the
frame Alice was sending when the message went out, found in the mix by its
number. The mix's subtitle track, the WebVTT file and the archive page's
player must all put the message there, to within 0.5 s.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from rooms.media.peer import use_host_address
from tests.e2e.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.integration.test_recording import wait_for_recordings
from tests.media_clients import publish
from tests.media_tracks import read_counter
from tests.processes import ROOT
from tests.recording.probe import ffprobe, text_samples
from tests.recording.vtt import vtt_parse
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

ROOM = "archive"
SECRET = "private: the door code is 4711"
TOLERANCE_S = 0.5
ARTIFACTS = ROOT / "var" / "artifacts" / "integration"


@pytest.fixture(autouse=True)
def loopback_media() -> None:
    use_host_address("127.0.0.1")


@pytest.fixture
def recordings_root(server_env, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path / "recordings"
    server_env["RECORDINGS_ROOT"] = str(root)
    return root


@dataclass(frozen=True)
class Sent:
    message_id: str
    sender: str
    text: str
    frame: int  # the number of the last frame Alice's camera made before it was sent

    @property
    def cue(self) -> str:
        return f"{self.sender}: {self.text}"


async def say(client: SocketClient, sender: str, text: str, camera: Any, **fields: Any) -> Sent:
    frame = camera.video.count - 1
    reply = await client.request("room.message", room=ROOM, text=text, **fields)
    assert reply["type"] == "ok", reply
    return Sent(reply["message"], sender, text, frame)


async def recorded_meeting(web: Any) -> tuple[list[Sent], str]:
    """The meeting; the public messages sent, and the records link Alice got."""
    alice, bob, carol = [await SocketClient.connected(web.ws_url, name) for name in ("alice", "bob", "carol")]
    state = await alice.request("room.join", room=ROOM, record=True)
    await bob.request("room.join", room=ROOM)
    camera = await publish(alice, ROOM)
    sent = []
    await asyncio.sleep(1.0)  # recorded time between the messages
    sent.append(await say(bob, "bob", "Привет всем 👋", camera))
    await asyncio.sleep(0.8)
    await carol.request("room.join", room=ROOM)
    sent.append(await say(carol, "carol", "你好，大家好！🎉 日本語もOK", camera))  # noqa: RUF001 (CJK punctuation)
    await asyncio.sleep(0.8)
    await say(bob, "bob", SECRET, camera, to=["alice"])
    sent.append(await say(alice, "alice", "a --> b <b>not bold</b> & <i>\nsecond line", camera))
    await asyncio.sleep(0.8)
    await alice.request("stream.mute", stream=camera.stream["id"], audio=True)
    sent.append(await say(carol, "carol", "مرحبا 🌍 😀😃😄", camera))
    await asyncio.sleep(1.5)
    for client in (carol, bob, alice):  # the last leave finalizes the room
        await client.request("room.leave", room=ROOM, timeout=10)
        await client.close()
    await camera.close()
    return sent, state["records_url"]


def frame_times(path: Path) -> list[tuple[float, int]]:
    """Each mixed frame's time and the number Alice's camera drew on it."""
    with av.open(str(path)) as container:
        return [(float(frame.time), read_counter(frame)) for frame in container.decode(video=0)]


def moment_of(frames: list[tuple[float, int]], number: int) -> float:
    """When the mix first shows Alice's frame ``number`` (or a later one)."""
    return next(time for time, counter in frames if number <= counter < number + 300)


async def test_the_archive_of_a_recorded_room(start_server, server_env, recordings_root) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web")
    worker = start_server("celery", "worker")
    worker.wait_for_log("ready.")
    sent, records_url = await recorded_meeting(web)
    rows = await wait_for_recordings(
        server_env["DATABASE_URL"], ROOM,
        lambda rows: any(row["kind"] == "room" and row["status"] in ("READY", "FAILED") for row in rows), timeout=60,
    )
    mix = next(row for row in rows if row["kind"] == "room")
    assert mix["status"] == "READY", mix
    path = recordings_root / mix["file_path"]
    frames = frame_times(path)
    truth = {message.message_id: moment_of(frames, message.frame) for message in sent}

    # The mix: one mov_text cue per public message, at the moment it was sent.
    assert [stream["codec_name"] for stream in ffprobe(path)["streams"]] == ["h264", "aac", "mov_text"]
    samples = text_samples(path)
    assert [text for _, _, text in samples] == [message.cue for message in sent]
    for (start, end, _), message in zip(samples, sent, strict=True):
        assert abs(start - truth[message.message_id]) <= TOLERANCE_S, (message, start, truth)
        assert 0 < end - start <= 4.0
    errors_ms = [round((sample[0] - truth[m.message_id]) * 1000) for sample, m in zip(samples, sent, strict=True)]
    print(f"cue start - the frame on screen when it was sent, ms: {errors_ms}")

    seen = await asyncio.to_thread(archive_in_chromium, web.http_url, records_url, sent)

    # The WebVTT file: the same cues, strictly valid, texts exactly as sent.
    cues = vtt_parse(seen["vtt"])
    assert [(cue.identifier, cue.text) for cue in cues] == [(message.message_id, message.cue) for message in sent]
    for cue, (start, end, _) in zip(cues, samples, strict=True):
        assert (cue.start_ms, cue.end_ms) == (round(start * 1000), round(end * 1000))
    # Chromium read it as the page's subtitle track, markup as text.
    assert [(cue["id"], cue["text"]) for cue in seen["track"]] == [(m.message_id, m.cue) for m in sent]

    # Clicking a message seeks the player to it; the entry under the playhead is highlighted.
    for message in sent:
        clicked = seen["clicks"][message.message_id]
        assert abs(clicked["currentTime"] - truth[message.message_id]) <= TOLERANCE_S, (message, clicked, truth)
        assert clicked["current"] == [message.message_id]
    followed = seen["followed"]
    assert followed["current"] == [sent[-1].message_id] and followed["currentTime"] >= followed["at"] - 0.05
    assert followed["before"] == [sent[-2].message_id]

    assert SECRET not in seen["page"] and SECRET not in seen["vtt"]
    assert all(SECRET not in text for _, _, text in samples)
    assert seen["stranger"] == {"page": 403, "vtt": 404, "shown": False}


FOLLOW_SCRIPT = """async ([fromId, toId]) => {
  const video = document.getElementById("archive-video");
  const current = () => Array.from(document.querySelectorAll("#timeline li.current"), (li) => li.dataset.message);
  document.querySelector(`li[data-message="${fromId}"] button`).click();
  const before = current();
  const target = document.querySelector(`li[data-message="${toId}"]`);
  video.muted = true;
  await video.play();
  await new Promise((resolve, reject) => {
    const check = () => target.classList.contains("current") ? resolve() : null;
    video.addEventListener("timeupdate", check);
    setTimeout(() => reject(new Error(`never highlighted; at ${video.currentTime}, current ${current()}`)), 10000);
  });
  video.pause();
  return {before, current: current(), currentTime: video.currentTime + Number(video.dataset.offset),
          at: Number(target.dataset.at)};
}"""

CLICK_SCRIPT = """async (messageId) => {
  const video = document.getElementById("archive-video");
  const seeked = new Promise((resolve) => video.addEventListener("seeked", resolve, {once: true}));
  document.querySelector(`li[data-message="${messageId}"] button`).click();
  await seeked;
  return {currentTime: video.currentTime + Number(video.dataset.offset),
          current: Array.from(document.querySelectorAll("#timeline li.current"), (li) => li.dataset.message)};
}"""

TRACK_SCRIPT = """async (count) => {
  const track = document.getElementById("archive-video").textTracks[0];
  while (!track.cues || track.cues.length < count) await new Promise((resolve) => setTimeout(resolve, 50));
  return Array.from(track.cues, (cue) => ({id: cue.id, start: cue.startTime, text: cue.getCueAsHTML().textContent}));
}"""


def archive_in_chromium(http_url: str, records_url: str, sent: list[Sent]) -> dict[str, Any]:
    """Open Alice's records link, then the room's archive page; what it shows and does."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(http_url + records_url.lstrip("/"))  # the records page trades the link for its cookie
            page.click("#room-archive-link")
            page.wait_for_function(
                "() => { const v = document.getElementById('archive-video');"
                " if (v.error) throw new Error(v.error.message); return v.readyState >= 1; }"
            )
            archive_url = page.url
            vtt_url = page.get_attribute("#archive-video track", "src")
            result: dict[str, Any] = {
                "page": page.content(),
                "vtt": page.evaluate("async (url) => (await fetch(url)).text()", vtt_url),
                "track": page.evaluate(TRACK_SCRIPT, len(sent)),
                "clicks": {message.message_id: page.evaluate(CLICK_SCRIPT, message.message_id) for message in sent},
                "followed": page.evaluate(FOLLOW_SCRIPT, [sent[-2].message_id, sent[-1].message_id]),
            }
            # For people: the page as it stands, the last message shown as a subtitle.
            page.check("#archive-subtitles")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "archive.png"), full_page=True)
            stranger = browser.new_page()
            refused = stranger.goto(archive_url)
            assert refused is not None
            result["stranger"] = {
                "page": refused.status,
                "vtt": stranger.evaluate("async (url) => (await fetch(url)).status", vtt_url),
                "shown": sent[0].text in stranger.content(),
            }
            return result
        finally:
            browser.close()
