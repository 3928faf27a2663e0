"""Reading mixed outputs back for assertions: ffprobe's view, pictures at a time, flash and beep onsets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np

RGBPicture = np.ndarray[Any, np.dtype[np.uint8]]


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's streams and format of a file (the CLI, as a player would see it)."""
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return dict(json.loads(completed.stdout))


def pictures_at(path: Path, times_s: list[float]) -> list[RGBPicture]:
    """The RGB picture shown at each time (the last frame starting at or before it)."""
    wanted = sorted(times_s)
    found: dict[float, RGBPicture] = {}
    previous: Any = None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            while wanted and frame.time > wanted[0] + 1e-6:
                found[wanted.pop(0)] = previous.to_ndarray(format="rgb24")
            previous = frame
            if not wanted:
                break
    for time_s in wanted:
        found[time_s] = previous.to_ndarray(format="rgb24")
    return [found[time_s] for time_s in times_s]


def flash_onsets_s(path: Path, region: tuple[int, int, int, int] | None = None) -> list[float]:
    """Times of frames where the region (x, y, width, height) turns white after not being white."""
    onsets = []
    white = False
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            luma = frame.to_ndarray(format="gray")
            if region is not None:
                x, y, width, height = region
                luma = luma[y : y + height, x : x + width]
            now_white = float(luma.mean()) > 200
            if now_white and not white:
                onsets.append(float(frame.time))
            white = now_white
    return onsets


def beep_onsets_s(path: Path, threshold: float = 0.1, quiet_s: float = 0.2) -> list[float]:
    """Times where the audio rises above `threshold` after at least `quiet_s` below it."""
    chunks, starts = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            chunks.append(np.abs(samples).max(axis=0))
            starts.append(float(frame.time))
            rate = frame.sample_rate
    if not chunks:
        return []
    level = np.concatenate(chunks)
    # Decoded frames are contiguous: the first one's time places them all.
    loud = np.nonzero(level > threshold)[0]
    onsets = []
    last = -np.inf
    for index in loud:
        if index - last > quiet_s * rate:
            onsets.append(starts[0] + index / rate)
        last = index
    return onsets


def peak_level(path: Path) -> float:
    with av.open(str(path)) as container:
        return max(float(np.abs(frame.to_ndarray()).max()) for frame in container.decode(audio=0))


def text_samples(path: Path) -> list[tuple[float, float, str]]:
    """The subtitle track's non-empty samples as ffprobe reads them: start and end (s) and the raw text.

    A mov_text sample is the text's length in 16 bits, then the text; read
    from the packets' bytes, so nothing a decoder would interpret (ASS
    markup, line breaks) is in the way. The empty samples the muxer puts
    between cues are left out.
    """
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-select_streams", "s:0", "-show_packets", "-show_data",
         str(path)],
        check=True, capture_output=True, text=True, timeout=30,
    )
    samples = []
    for packet in json.loads(completed.stdout)["packets"]:
        # Hexdump lines: "00000000: 0018 616c 6963 ...  ..alice"; the hex is columns 10-49.
        data = bytes.fromhex("".join(line[10:49].replace(" ", "") for line in packet["data"].splitlines() if line))
        length = int.from_bytes(data[:2], "big")
        assert len(data) >= 2 + length, packet
        if length:
            start = float(packet["pts_time"])
            samples.append((start, start + float(packet["duration_time"]), data[2 : 2 + length].decode("utf-8")))
    return samples
