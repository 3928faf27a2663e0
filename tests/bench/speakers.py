"""Active speaker: what the level tracking costs the forwarding path, and
how soon the room hears of a new speaker.

What it measures
----------------
1. **Per audio packet**, in process: the node's audio jitter buffer
   (``PacketByPacket.add``, called for every audio packet a publisher sends)
   with the RFC 6464 level handed to an ``AudioLevel``, against the same
   buffer without one (the forwarding path before active speaker).
   Nanoseconds per packet, best of 5 runs of ``--packets`` packets.
2. **Per reading**, in process: one ``SpeakersWatch.read`` (every
   ``SPEAKERS_INTERVAL_MS``) over ``--rooms`` rooms of 4 publishers, two of
   them speaking. Microseconds, best of 5.
3. **Switch latency**, end to end: a real daphne (the embedded configuration
   ``make run`` starts: SQLite, in-memory state, media node in daphne) per
   ``SPEAKERS_INTERVAL_MS`` in ``--intervals``. Alice and Bob publish
   aiortc audio that speaks in turns (a -12 dBov tone for ``--turn``
   seconds, then silence as long, alternating); Carol's WebSocket times
   each change of turn to the first ``room.speakers`` that ranks the new
   speaker first. Seconds, p50 / p90 / max (nearest rank) over ``--turns``
   changes.

Run from the project root::

    .venv/bin/python tests/bench/speakers.py --intervals 250,100 --turns 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make tests importable
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters  # noqa: E402
from aiortc.rtp import HeaderExtensionsMap, RtpPacket  # noqa: E402

from rooms.media.audio_level import AudioLevel  # noqa: E402
from rooms.media.peer import use_host_address  # noqa: E402
from rooms.media.speakers import PublishedAudio, SpeakersWatch  # noqa: E402
from rooms.media.tap import PacketByPacket  # noqa: E402
from tests.bench.report import fmt, log, percentile  # noqa: E402
from tests.integration.test_speakers import closed_after_reading, speakers_heard, switch_latencies  # noqa: E402
from tests.media_clients import publish_audio  # noqa: E402
from tests.media_tracks import TurnsAudioTrack  # noqa: E402
from tests.processes import daphne, manage  # noqa: E402
from tests.wsclient import SocketClient  # noqa: E402

LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def received_packets(count: int) -> list[RtpPacket]:
    """Opus packets as the receiver hands them on: parsed, the level extension read."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=2, uri=LEVEL_URI)]))
    packets = []
    for number in range(count):
        sent = RtpPacket(payload_type=111, sequence_number=number % 65536, timestamp=960 * number, payload=b"\x78" * 80)
        sent.extensions.audio_level = (False, 20 + number % 40)
        packet = RtpPacket.parse(sent.serialize(extensions), extensions)
        packet._data = packet.payload  # type: ignore[attr-defined]
        packets.append(packet)
    return packets


def per_packet_ns(packets: list[RtpPacket], level: AudioLevel | None) -> float:
    best = float("inf")
    for _ in range(5):
        buffer = PacketByPacket(level)
        started = time.perf_counter()
        for packet in packets:
            buffer.add(packet)
        best = min(best, time.perf_counter() - started)
    return best / len(packets) * 1e9


def per_reading_us(rooms: int) -> float:
    watch = SpeakersWatch(250)
    published = []
    for room in range(rooms):
        for index in range(4):
            published.append(PublishedAudio(room=f"r{room}", reply_to=f"c{room}", stream=f"s{room}-{index}",
                                            participant=f"p{index}", level=AudioLevel(), muted=False))
    best = float("inf")
    for run in range(5):
        for number, audio in enumerate(published):
            if number % 4 < 2:  # two of each room's four speak, their levels moving
                assert audio.level is not None
                for _ in range(12):
                    audio.level.packet(20 + (run * 7 + number) % 20)
        started = time.perf_counter()
        watch.read(published)
        best = min(best, time.perf_counter() - started)
    return best * 1e6


async def switches(ws_url: str, turn: float, turns: int) -> list[float]:
    alice = await SocketClient.connected(ws_url, "alice")
    bob = await SocketClient.connected(ws_url, "bob")
    carol = await SocketClient.connected(ws_url, "carol")
    for client in (alice, bob, carol):
        await client.request("room.join", room="bench-speakers")
    epoch = time.monotonic() + 2.0
    alice_pc, _, _ = await publish_audio(alice, "bench-speakers", TurnsAudioTrack(epoch, 0, turn))
    bob_pc, _, _ = await publish_audio(bob, "bench-speakers", TurnsAudioTrack(epoch, 1, turn))
    try:
        heard = await speakers_heard(carol, until=epoch + (turns + 1) * turn + 0.5)
    finally:
        await alice_pc.close()
        await bob_pc.close()
    for client in (alice, bob, carol):
        await closed_after_reading(client)
    return [latency for latency, _ in switch_latencies(heard, epoch, turns + 1, turn)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--intervals", default="250,100", help="SPEAKERS_INTERVAL_MS values, one server each")
    parser.add_argument("--turns", type=int, default=20, help="changes of speaker timed per interval")
    parser.add_argument("--turn", type=float, default=1.0, help="seconds per turn")
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python", "tests/bench/speakers.py", *(argv or sys.argv[1:])])

    log("per packet ...")
    packets = received_packets(args.packets)
    without, with_level = per_packet_ns(packets, None), per_packet_ns(packets, AudioLevel())
    log("per reading ...")
    reading = per_reading_us(args.rooms)

    use_host_address("127.0.0.1")
    latencies: dict[int, list[float]] = {}
    for interval in [int(value) for value in args.intervals.split(",")]:
        log(f"switch latency, SPEAKERS_INTERVAL_MS={interval} ...")
        with tempfile.TemporaryDirectory(prefix="speakers-bench-") as folder:
            var_dir = Path(folder)
            env = {**os.environ, "VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING",
                   "ALLOWED_HOSTS": "127.0.0.1,localhost", "MEDIA_HOST_IP": "127.0.0.1", "ROOM_AUTH": "open",
                   "REDIS_URL": "", "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
                   "SPEAKERS_INTERVAL_MS": str(interval)}  # fmt: skip
            manage(env, "migrate", "--noinput")
            server = daphne("web", env, var_dir).start()
            try:
                latencies[interval] = asyncio.run(switches(server.ws_url, args.turn, args.turns))
            except Exception as error:
                print(f"the run failed: {error!r}\n{server.log()[-4000:]}", file=sys.stderr)
                return 2
            finally:
                server.stop()

    print(f"`{command}`\n")
    print("| measure | value |\n| --- | --- |")
    print(f"| audio packet through the jitter buffer, without level tracking | {fmt(without, 0)} ns |")
    print(f"| the same with the RFC 6464 level handed to `AudioLevel` | {fmt(with_level, 0)} ns |")
    print(f"| one `SpeakersWatch.read` of {args.rooms} rooms x 4 streams | {fmt(reading, 0)} us |")
    for interval, values in latencies.items():
        print(f"| switch latency at SPEAKERS_INTERVAL_MS={interval}, p50 / p90 / max of {len(values)} | "
              f"{fmt(percentile(values, 50))} / {fmt(percentile(values, 90))} / {fmt(max(values))} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
