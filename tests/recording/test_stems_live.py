"""Stems of real records: two aiortc publishers whose beeps sound at the same
wall-clock instants (every whole second), the second starting later, are
recorded through the tap; in the stems their beeps line up with each other
and with the room mix, within 40 ms."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import pytest

from recording.mixer_config import MixerConfig
from recording.mixing import room_mix
from recording.stems import room_stems_render
from rooms.media.peer import use_host_address
from tests.media_tracks import BeepAudioTrack, FlashVideoTrack
from tests.recording.live_records import start_record
from tests.recording.probe import beep_onsets_s

TOLERANCE_S = 0.040


@pytest.fixture(autouse=True)
def loopback_only() -> None:
    use_host_address("127.0.0.1")


async def test_beeps_of_two_live_records_line_up_in_their_stems_and_with_the_mix(tmp_path: Path) -> None:
    alice = await start_record(tmp_path, "s-alice", "alice", tracks=(FlashVideoTrack(), BeepAudioTrack()))
    await asyncio.sleep(1.3)
    bob = await start_record(tmp_path, "s-bob", "bob", shade=60, tracks=(FlashVideoTrack(), BeepAudioTrack()))
    await asyncio.sleep(3.2)
    results = [await bob.stop(), await alice.stop()]
    assert all(result.failure == "" for result in results), results
    sidecars = [result.sidecar_path for result in results]

    stems = await asyncio.to_thread(room_stems_render, sidecars, tmp_path / "stems.zip")
    mix = await asyncio.to_thread(room_mix, sidecars, tmp_path / "mix.mp4", MixerConfig(display_stream_name=False))
    assert stems.media_started_at_ms == pytest.approx(mix.media_started_at_ms)
    with zipfile.ZipFile(tmp_path / "stems.zip") as archive:
        archive.extractall(tmp_path / "stems")
    alice_beeps = beep_onsets_s(tmp_path / "stems/alice.flac")
    bob_beeps = beep_onsets_s(tmp_path / "stems/bob.flac")
    mix_beeps = beep_onsets_s(tmp_path / "mix.mp4")
    assert len(alice_beeps) >= 4 and len(bob_beeps) >= 2, (alice_beeps, bob_beeps)
    # bob's stem is silent until his record starts, 1.3 s or more into the room.
    assert bob_beeps[0] > 1.2, bob_beeps
    # The same wall-clock instant is at the same place in both stems, and in the mix.
    for beep in bob_beeps:
        nearest = min(alice_beeps, key=lambda other: abs(other - beep))
        assert abs(nearest - beep) <= TOLERANCE_S, (bob_beeps, alice_beeps)
    for beep in alice_beeps:
        nearest = min(mix_beeps, key=lambda other: abs(other - beep))
        assert abs(nearest - beep) <= TOLERANCE_S, (alice_beeps, mix_beeps)
