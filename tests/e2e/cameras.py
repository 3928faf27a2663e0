"""Fake cameras that tell participants apart: one y4m file per participant.

Chromium plays a y4m file in a loop as its fake camera. Each participant's
file is a solid colour of its own with its name and a frame counter drawn in
the middle, so a remote tile can be attributed to its sender by sampling the
pixels of a corner, away from the text.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT, FPS, SECONDS = 640, 480, 15, 2
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

# Far apart in RGB and each dominated by one channel, so VP8's colour
# shifts never bring one near another.
COLOURS: dict[str, tuple[int, int, int]] = {
    "alice": (200, 50, 50),
    "bob": (50, 170, 60),
    "carol": (50, 80, 210),
}


@dataclass(frozen=True)
class FakeCamera:
    name: str
    colour: tuple[int, int, int]
    path: Path


def make_camera(name: str, folder: Path) -> FakeCamera:
    colour = COLOURS[name]
    path = folder / f"{name}.y4m"
    if not path.exists():
        hex_colour = "0x{:02X}{:02X}{:02X}".format(*colour)
        label = f"drawtext=fontfile={FONT}:text='{name} %{{n}}':fontsize=64:fontcolor=white:x=(w-tw)/2:y=(h-th)/2"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"color=c={hex_colour}:s={WIDTH}x{HEIGHT}:r={FPS}:d={SECONDS}",
             "-vf", label, "-pix_fmt", "yuv420p", str(path)],
            check=True, timeout=60,
        )  # fmt: skip
    return FakeCamera(name, colour, path)


def nearest_camera(rgb: tuple[float, float, float]) -> tuple[str, float]:
    """The participant whose camera colour is nearest ``rgb``, and the distance."""

    def distance(colour: tuple[int, int, int]) -> float:
        return float(sum((a - b) ** 2 for a, b in zip(colour, rgb, strict=True)) ** 0.5)

    name = min(COLOURS, key=lambda n: distance(COLOURS[n]))
    return name, distance(COLOURS[name])
