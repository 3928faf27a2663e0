"""Audio/video alignment end to end: a real aiortc publisher whose flash and
beep happen at the same instants is recorded through the tap, mixed, and
the flash and beep onsets in the mix are compared."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import pytest

from recording.mixer_config import MixerConfig
from recording.mixing import room_mix
from rooms.media.peer import use_host_address
from tests.media_tracks import BeepAudioTrack, FlashVideoTrack
from tests.recording.live_records import start_record
from tests.recording.probe import beep_onsets_s, flash_onsets_s


@pytest.fixture(autouse=True)
def loopback_only() -> None:
    use_host_address("127.0.0.1")


async def test_flash_and_beep_stay_together_through_record_and_mix(tmp_path: Path) -> None:
    live = await start_record(tmp_path, tracks=(FlashVideoTrack(), BeepAudioTrack()))
    await asyncio.sleep(4.5)  # four or five sync marks
    result = await live.stop()
    assert result.failure == ""

    output = tmp_path / "mix.mp4"
    await asyncio.to_thread(
        room_mix, [result.sidecar_path], output, MixerConfig(display_stream_name=False)
    )
    flashes, beeps = flash_onsets_s(output), beep_onsets_s(output)
    assert len(flashes) >= 3 and len(beeps) >= 3, (flashes, beeps)
    # The publisher's tracks start on their own: on a busy machine its audio
    # can reach the recorder after the first flash, whose beep is then not
    # in the record at all. Alignment is judged where both tracks are.
    flashes = [flash for flash in flashes if flash > beeps[0] - 0.5]
    assert len(flashes) >= 3, (flashes, beeps)
    offsets = [min(beeps, key=lambda beep: abs(beep - flash)) - flash for flash in flashes]
    assert all(abs(offset) < 0.5 for offset in offsets), offsets  # each flash has its beep
    assert abs(statistics.median(offsets)) <= 0.040, offsets
