"""Drive the conference, chat and screen pages the way a person does, and
read back what the page shows: statuses, chat lines, and the pixels and
frame counts of its videos.

Readiness is always a condition polled in the page (``wait_for_function``),
never a fixed sleep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import ElementHandle, Locator, Page, expect

from tests.e2e.cameras import nearest_camera

# Mean colour of a patch in the top-left corner of a video, away from the
# name drawn in the middle; in proportions so early low-resolution frames
# sample the same place.
SAMPLE_COLOUR_JS = """(video) => {
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const context = canvas.getContext('2d', {willReadFrequently: true});
  context.drawImage(video, 0, 0);
  const x = Math.floor(canvas.width * 0.02), y = Math.floor(canvas.height * 0.02);
  const w = Math.max(1, Math.floor(canvas.width * 0.15)), h = Math.max(1, Math.floor(canvas.height * 0.15));
  const data = context.getImageData(x, y, w, h).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) { sum[0] += data[i]; sum[1] += data[i + 1]; sum[2] += data[i + 2]; }
  const n = data.length / 4;
  return sum.map((s) => s / n);
}"""

FRAMES_SHOWN_JS = "(video) => video.getVideoPlaybackQuality().totalVideoFrames"

# A chat line is <li> with <span class="from"> (absent on the page's own
# system lines) and <span class="text">; the text must match exactly.
CHAT_LINE_SHOWN_JS = """([sender, text]) => [...document.querySelectorAll('#chat-log > li')].some((line) =>
  (line.querySelector('.from')?.textContent ?? null) === sender && line.querySelector('.text')?.textContent === text)"""

# For each peer connection of the page (its publishes and the streams it
# plays): the addresses of every nominated candidate pair, and of the pair
# its transport selected.
ICE_PAIRS_JS = """async () => {
  const state = window.conference;
  const named = [['camera', state.camera?.peerConnection], ['screen', state.screen?.peerConnection],
    ...state.remoteStreams().map((s) => [`${s.participant().name()}/${s.kind()}`, s.peerConnection])];
  const result = [];
  for (const [name, pc] of named) {
    if (!pc) continue;
    const stats = new Map();
    (await pc.getStats()).forEach((report) => stats.set(report.id, report));
    const ends = (pair) => [stats.get(pair.localCandidateId).address, stats.get(pair.remoteCandidateId).address];
    const nominated = [...stats.values()].filter((r) => r.type === 'candidate-pair' && r.nominated).map(ends);
    const transport = [...stats.values()].find((r) => r.type === 'transport');
    const selected = transport?.selectedCandidatePairId ? ends(stats.get(transport.selectedCandidatePairId)) : null;
    result.push({name, nominated, selected});
  }
  return result;
}"""


# Distance in RGB from the camera's colour after VP8 and scaling.
CAMERA_COLOUR_TOLERANCE = 60


@dataclass
class RoomPage:
    """One participant's page."""

    page: Page
    name: str

    def open(self, base_url: str, path: str, room: str) -> RoomPage:
        self.page.goto(f"{base_url.rstrip('/')}{path}?{urlencode({'roomName': room})}")
        return self

    def join(self) -> None:
        """Log in and join; returns once the camera is publishing."""
        self.enter()
        self.wait_publishing()

    def enter(self) -> None:
        """Log in and join; returns once the room is joined, before the camera is up."""
        self.page.fill("#login", self.name)
        self.page.click("#join")
        expect(self.page.locator("#status")).to_have_text("ESTABLISHED")
        # The chat opens on the room's state.
        expect(self.page.locator("#chat-input")).to_be_enabled()

    def wait_publishing(self) -> None:
        expect(self.page.locator("#local-status")).to_have_text("PUBLISHING")

    def leave(self) -> None:
        self.page.click("#join")
        expect(self.page.locator("#join")).to_have_text("Join")

    # videos

    def remote_video(self, who: str, kind: str = "camera") -> Locator:
        return self.page.locator(f'[data-participant="{who}"] video[data-stream-kind="{kind}"]')

    def wait_frames(self, video: Locator, count: int) -> ElementHandle:
        """Wait until ``count`` more frames of ``video`` have been shown."""
        handle = video.element_handle()
        assert handle is not None
        before = int(handle.evaluate(FRAMES_SHOWN_JS))
        self.page.wait_for_function(
            "([video, target]) => video.videoWidth > 0 && video.getVideoPlaybackQuality().totalVideoFrames >= target",
            arg=[handle, before + count],
        )
        return handle

    def colour_of(self, video: Locator) -> tuple[float, float, float]:
        r, g, b = self.wait_frames(video, 1).evaluate(SAMPLE_COLOUR_JS)
        return (r, g, b)

    def expect_camera_of(self, sender: str) -> None:
        """``sender``'s tile plays, frames advancing, and shows ``sender``'s camera colour."""
        video = self.remote_video(sender)
        self.wait_frames(video, 5)
        colour = self.colour_of(video)
        seen, distance = nearest_camera(colour)
        assert seen == sender and distance < CAMERA_COLOUR_TOLERANCE, (
            f"{self.name} sees {colour} ({seen}'s colour, off by {distance:.0f}) in {sender}'s tile"
        )

    def wait_size(self, video: Locator, width: int, height: int) -> None:
        handle = self.wait_frames(video, 1)
        self.page.wait_for_function(
            "([video, width, height]) => video.videoWidth === width && video.videoHeight === height",
            arg=[handle, width, height],
        )

    # chat

    def send_chat(self, text: str) -> None:
        self.page.fill("#chat-input", text)
        self.page.click("#chat-send")

    def wait_chat(self, sender: str, text: str) -> None:
        """Wait for a line from ``sender`` whose text is exactly ``text``."""
        self.page.wait_for_function(CHAT_LINE_SHOWN_JS, arg=[sender, text])

    def wait_system_line(self, text: str) -> None:
        self.page.wait_for_function(CHAT_LINE_SHOWN_JS, arg=[None, text])

    # connection

    def ice_pairs(self) -> list[dict[str, object]]:
        """Per peer connection of the page: its nominated candidate pairs and the selected one."""
        pairs: list[dict[str, object]] = self.page.evaluate(ICE_PAIRS_JS)
        return pairs

    def screenshot(self, folder: Path, label: str) -> Path:
        path = folder / f"{label}-{self.name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

