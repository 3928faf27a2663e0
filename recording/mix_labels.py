"""Participant name labels for mix tiles, drawn straight onto YUV 4:2:0 planes.

PyAV's FFmpeg build has no `drawtext`, so a label is rendered once per name
and size with Pillow (white text on a translucent dark box) and kept as
per-pixel blend factors; putting it on a frame is then two small integer
numpy operations per plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Logins may be in any script: each name gets the first of these system fonts
# that has all its characters (Pillow's built-in font covers Latin only).
FONT_NAMES = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "NotoSansCJK-Regular.ttc", "LiberationSans-Regular.ttf")
# A private-use character no font draws: what a missing glyph looks like in a font.
MISSING_CHARACTER = "\ue000"
BOX_OPACITY = 0.55
LUMA_BLACK, LUMA_WHITE, CHROMA_GREY = 16, 235, 128

UInt8Plane = np.ndarray[Any, np.dtype[np.uint8]]
UInt16Plane = np.ndarray[Any, np.dtype[np.uint16]]


@dataclass(frozen=True)
class Label:
    """Blend factors in 1/256: luma = (luma * luma_gain + luma_add) >> 8, chroma likewise toward grey."""

    width: int
    height: int
    luma_gain: UInt16Plane
    luma_add: UInt16Plane
    chroma_gain: UInt16Plane
    chroma_add: UInt16Plane

    def blend(self, planes: tuple[UInt8Plane, UInt8Plane, UInt8Plane], x: int, y: int, max_width: int) -> None:
        """Blend onto the canvas planes with the label's top-left at (x, y), both even; cut at max_width."""
        width = min(self.width, max_width // 2 * 2)
        if width <= 0:
            return
        luma = planes[0][y : y + self.height, x : x + width]
        luma[...] = (luma * self.luma_gain[:, :width] + self.luma_add[:, :width]) >> 8
        chroma_width = width // 2
        for plane in planes[1:]:
            chroma = plane[y // 2 : (y + self.height) // 2, x // 2 : x // 2 + chroma_width]
            chroma[...] = (chroma * self.chroma_gain[:, :chroma_width] + self.chroma_add[:, :chroma_width]) >> 8


def label_font_size(tile_height: int) -> int:
    return max(10, min(48, tile_height // 14))


@lru_cache(maxsize=256)
def label_render(name: str, font_size: int) -> Label:
    font = _font_for(name, font_size)
    padding = max(2, font_size // 3)
    left, top, right, bottom = font.getbbox(name)
    width = _even(right - left + 2 * padding + 1)
    height = _even(font_size + 2 * padding + 1)
    text = Image.new("L", (width, height), 0)
    ImageDraw.Draw(text).text((padding - left, (height - (bottom - top)) // 2 - top), name, fill=255, font=font)
    text_alpha = np.asarray(text, dtype=np.float64) / 255
    keep = (1 - BOX_OPACITY) * (1 - text_alpha)  # share of the picture left under box and text
    luma_add = (LUMA_BLACK * BOX_OPACITY * (1 - text_alpha) + LUMA_WHITE * text_alpha) * 256
    chroma_keep = keep.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    return Label(
        width=width,
        height=height,
        luma_gain=np.round(keep * 256).astype(np.uint16),
        luma_add=np.round(luma_add).astype(np.uint16),
        chroma_gain=np.round(chroma_keep * 256).astype(np.uint16),
        chroma_add=np.round((1 - chroma_keep) * CHROMA_GREY * 256).astype(np.uint16),
    )


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font_for(text: str, size: int) -> Font:
    """The first font drawing every character of `text`, else the one drawing the most."""
    fonts = _fonts(size)
    characters = {character for character in text if not character.isspace()}
    coverage = [sum(_draws(font, character) for character in characters) for font in fonts]
    return fonts[coverage.index(max(coverage))]


@lru_cache(maxsize=64)
def _fonts(size: int) -> list[Font]:
    fonts: list[Font] = []
    for name in FONT_NAMES:
        try:
            fonts.append(ImageFont.truetype(name, size))
        except OSError:
            continue
    return fonts or [ImageFont.load_default(size)]


@lru_cache(maxsize=4096)
def _draws(font: Font, character: str) -> bool:
    return _glyph(font, character) != _glyph(font, MISSING_CHARACTER)


@lru_cache(maxsize=4096)
def _glyph(font: Font, character: str) -> bytes:
    image = Image.new("L", (2 * int(getattr(font, "size", 16)), 2 * int(getattr(font, "size", 16))), 0)
    ImageDraw.Draw(image).text((0, 0), character, fill=255, font=font)
    return image.tobytes()


def _even(value: float) -> int:
    return (int(value) + 1) // 2 * 2
