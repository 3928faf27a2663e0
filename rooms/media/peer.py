"""Peer connections of the SFU: a publisher's, and each player's.

``PublishedStream`` answers a sendonly offer and taps the encoded frames of
its receivers into one ``TrackFanout`` per kind; ``PlayedStream`` answers a
recvonly offer with one ``ForwardLeg`` of each published kind's fan-out. Both restrict codecs to the room's
video codec (and Opus or G.711 audio), so every player receives exactly
what the publisher sends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket
from aiortc.sdp import SessionDescription

from rooms.media.audio_level import AudioLevel
from rooms.media.bitrate import BitrateCap
from rooms.media.congestion import CongestionPolicy
from rooms.media.congestion_control import BandwidthCallback, CongestionControl
from rooms.media.fanout import ForwardLeg, TrackFanout
from rooms.media.ice import (
    DEFAULT_CANDIDATE_POLICY,
    CandidatePolicy,
    confine_checks,
    gathers_loopback_only,
    offer_candidates_kept,
)
from rooms.media.keyframes import KeyframeRequester, is_keyframe
from rooms.media.messages import FailureReason
from rooms.media.nacks import NackCount
from rooms.media.tap import EncodedFrameTap, FrameSink, rtp_timestamp_origin, watch_sender_reports

logger = logging.getLogger(__name__)

AUDIO_CODECS = ("opus", "PCMU", "PCMA")
H264_PROFILE = "42e01f"


class MediaError(Exception):
    """A publish or play that cannot start; ``info`` is the reason reported."""

    def __init__(self, info: FailureReason, message: str) -> None:
        super().__init__(message)
        self.info = info


# aioice's own lookup: every interface address but loopback.
INTERFACE_ADDRESSES = aioice.ice.get_host_addresses


def use_host_address(address: str) -> None:
    """Gather ICE candidates on ``address`` only; with ``""`` on every interface address.

    aioice never offers loopback by itself and otherwise offers every
    interface; a configured address keeps media on that address.
    """
    if not address:
        aioice.ice.get_host_addresses = INTERFACE_ADDRESSES
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [address]

    aioice.ice.get_host_addresses = host_addresses  # type: ignore[assignment]


def use_port_range(loop: asyncio.AbstractEventLoop, address: str, first: int, last: int) -> None:
    """Bind media sockets on ``address`` (``""``: any address) to ports ``first``..``last``.

    aioice binds its host candidates to port 0 (any port); a firewall in
    front of a media node wants a known range. The loop's UDP endpoint
    factory is wrapped so that those binds, and only those, take a free
    port from the range.
    """
    if getattr(loop, "_media_port_range", None) == (address, first, last):
        return
    create = getattr(loop, "_media_create_datagram_endpoint", loop.create_datagram_endpoint)

    async def create_in_range(protocol_factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        if local_addr is None or (address and local_addr[0] != address) or local_addr[1] != 0:
            return await create(protocol_factory, local_addr=local_addr, **kwargs)
        host = local_addr[0]
        ports = list(range(first, last + 1))
        start = random.randrange(len(ports))
        for port in ports[start:] + ports[:start]:
            try:
                return await create(protocol_factory, local_addr=(host, port), **kwargs)
            except OSError:
                continue
        raise OSError(f"no free UDP port in {first}-{last} on {host}")

    loop._media_create_datagram_endpoint = create  # type: ignore[attr-defined]
    loop._media_port_range = (address, first, last)  # type: ignore[attr-defined]
    loop.create_datagram_endpoint = create_in_range  # type: ignore[method-assign,assignment]


def new_peer_connection(ice_servers: list[RTCIceServer]) -> RTCPeerConnection:
    # An explicit empty list: with None aiortc asks a public STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))


def video_capabilities(video_codec: str) -> list[RTCRtpCodecCapability]:
    """The room's video codec (and its RTX), in aiortc's capability terms."""
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    chosen = []
    for codec in capabilities.codecs:
        name = codec.mimeType.split("/")[1]
        if (video_codec == "VP8" and name == "VP8") or (
            video_codec == "H264"
            and name == "H264"
            and codec.parameters.get("profile-level-id") == H264_PROFILE
            and str(codec.parameters.get("packetization-mode")) == "1"
        ):
            chosen.append(codec)
    chosen += [c for c in capabilities.codecs if c.mimeType == "video/rtx"]
    return chosen


def audio_capabilities(names: tuple[str, ...] = AUDIO_CODECS) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities("audio")
    assert capabilities is not None
    by_name = {c.mimeType.split("/")[1]: c for c in capabilities.codecs}
    return [by_name[name] for name in names if name in by_name]


def offered_kinds(offer: SessionDescription) -> dict[str, list[str]]:
    """Codec names offered per kind (first m-section of each kind)."""
    kinds: dict[str, list[str]] = {}
    for media in offer.media:
        if media.kind in ("audio", "video") and media.kind not in kinds and media.port != 0:
            kinds[media.kind] = [codec.name for codec in media.rtp.codecs]
    return kinds


def first_ssrc(offer: SessionDescription, kind: str) -> int | None:
    for media in offer.media:
        if media.kind == kind and media.ssrc:
            return int(media.ssrc[0].ssrc)
    return None


@dataclass
class PublishedStream:
    """A publisher's peer connection and the fan-out of what it sends
    (``rooms.media.sink.PublishedMedia`` for the sinks that plug in)."""

    stream_id: str
    pc: RTCPeerConnection
    codecs: dict[str, str]  # kind -> codec name the publisher sends
    ssrcs: dict[str, int | None] = field(default_factory=dict)  # kind -> the offer's media SSRC
    taps: dict[str, EncodedFrameTap] = field(default_factory=dict)
    fanouts: dict[str, TrackFanout] = field(default_factory=dict)
    keyframes: KeyframeRequester | None = None
    bitrate_cap: BitrateCap | None = None
    # The subscribers' feedback for the video (ROOM_MIN_VIDEO_KBPS > 0).
    congestion: CongestionControl | None = None
    on_first_media: Callable[[], None] | None = None
    media_started: bool = False
    players: set[PlayedStream] = field(default_factory=set)
    # The level of the audio, from each packet's RFC 6464 header extension
    # (read by the node's speakers report); None without audio.
    audio_level: AudioLevel | None = None
    # NACKs sent to the publisher (read by the node's meter).
    nacks_sent: NackCount = field(default_factory=NackCount)

    @classmethod
    async def accept(
        cls,
        *,
        stream_id: str,
        offer_sdp: str,
        video_codec: str,
        ice_servers: list[RTCIceServer],
        on_first_media: Callable[[], None] | None = None,
        candidates: CandidatePolicy = DEFAULT_CANDIDATE_POLICY,
        max_video_kbps: int = 0,
        min_video_kbps: int = 0,
    ) -> tuple[PublishedStream, str]:
        offer = _parse(offer_sdp)
        kinds = offered_kinds(offer)
        if not kinds:
            raise MediaError("no_media", "the offer has no audio or video")
        if "video" in kinds and video_codec not in [name.upper() for name in kinds["video"]]:
            raise MediaError("codec_not_supported", f"the room's video codec is {video_codec}")
        if "audio" in kinds and not set(kinds["audio"]) & set(AUDIO_CODECS):
            raise MediaError("codec_not_supported", "audio must be Opus, PCMU or PCMA")

        pc = new_peer_connection(ice_servers)
        stream = cls(
            stream_id=stream_id, pc=pc, codecs={}, ssrcs={kind: first_ssrc(offer, kind) for kind in kinds},
            on_first_media=on_first_media,
        )
        try:
            # Transceivers made before the offer is applied take its
            # m-sections, and with them our codec preferences: aiortc settles
            # the codecs of an m-section when the offer is applied.
            for kind in kinds:
                stream._prepare_receiver(pc.addTransceiver(kind, direction="recvonly"), video_codec)
            # PUBLISHING means something playable: the first video keyframe,
            # or for a stream without video its first audio.
            stream.taps["video" if "video" in kinds else "audio"].add_sink(stream._watch_first_media)
            await _apply_offer(pc, offer_sdp, candidates)
            video_ssrc = stream.ssrcs.get("video")
            if video_ssrc is not None:
                receiver = next(t.receiver for t in pc.getTransceivers() if t.kind == "video")
                stream.keyframes = KeyframeRequester(lambda: receiver._send_rtcp_pli(video_ssrc))
                if max_video_kbps > 0 or min_video_kbps > 0:
                    stream.bitrate_cap = BitrateCap.install(receiver, video_ssrc, max_video_kbps * 1000,
                                                            floor_bps=min_video_kbps * 1000)
                if stream.bitrate_cap is not None and min_video_kbps > 0:
                    stream.congestion = CongestionControl.install(stream.bitrate_cap, stream.taps["video"],
                        CongestionPolicy(min_bps=min_video_kbps * 1000, max_bps=max_video_kbps * 1000))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:
            stream._controls_close()
            await _close_half_made(pc)
            raise _offer_refused(error) from None
        stream.codecs = {kind: names[0] for kind, names in offered_kinds(_parse(pc.localDescription.sdp)).items()}
        return stream, pc.localDescription.sdp

    def _prepare_receiver(self, transceiver: RTCRtpTransceiver, video_codec: str) -> None:
        if transceiver.kind == "video":
            transceiver.setCodecPreferences(video_capabilities(video_codec))
        else:
            transceiver.setCodecPreferences(audio_capabilities())
            self.audio_level = AudioLevel()
        tap = self.taps[transceiver.kind] = EncodedFrameTap.install(
            transceiver.receiver, packet_by_packet=transceiver.kind == "audio", audio_level=self.audio_level
        )
        fanout = self.fanouts[transceiver.kind] = TrackFanout(transceiver.kind, self.request_keyframe)
        tap.add_sink(fanout.push)
        self.nacks_sent.watch_receiver(transceiver.receiver)

    def _watch_first_media(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if not is_keyframe(codec.name, frame.data):
            self.request_keyframe()
            return
        self.media_started = True
        for tap in self.taps.values():
            tap.remove_sink(self._watch_first_media)
        if self.on_first_media is not None:
            self.on_first_media()

    def request_keyframe(self, prompt: bool = False) -> None:
        if self.keyframes is not None:
            self.keyframes.request(prompt)

    # --- what sinks read (rooms.media.sink.PublishedMedia) ----------------------------

    def frames_watch(self, kind: str, sink: FrameSink) -> None:
        self.taps[kind].add_sink(sink)

    def sender_reports_watch(self, kind: str, watcher: Callable[[RtcpSrPacket], None]) -> None:
        receiver = self._receiver(kind)
        if receiver is not None:
            watch_sender_reports(receiver, watcher)

    def ssrc(self, kind: str) -> int | None:
        return self.ssrcs.get(kind)

    def rtp_timestamp_origin(self, kind: str) -> int | None:
        receiver = self._receiver(kind)
        return None if receiver is None else rtp_timestamp_origin(receiver)

    def _receiver(self, kind: str) -> RTCRtpReceiver | None:
        return next((t.receiver for t in self.pc.getTransceivers() if t.kind == kind), None)

    async def close(self) -> None:
        for player in tuple(self.players):
            await player.close()
        if self.keyframes is not None:
            self.keyframes.close()
        self._controls_close()
        await self.pc.close()

    def _controls_close(self) -> None:
        if self.congestion is not None:
            self.congestion.close()
        if self.bitrate_cap is not None:
            self.bitrate_cap.close()


@dataclass(eq=False)
class PlayedStream:
    """One player's peer connection to one published stream."""

    published: PublishedStream
    pc: RTCPeerConnection
    tracks: dict[str, ForwardLeg] = field(default_factory=dict)
    # NACKs the subscriber sent (read by the node's meter).
    nacks_received: NackCount = field(default_factory=NackCount)

    @classmethod
    async def accept(
        cls,
        *,
        published: PublishedStream,
        offer_sdp: str,
        video_codec: str,
        ice_servers: list[RTCIceServer],
        on_first_frame: Callable[[], None] | None = None,
        candidates: CandidatePolicy = DEFAULT_CANDIDATE_POLICY,
        on_bandwidth: BandwidthCallback | None = None,
    ) -> tuple[PlayedStream, str]:
        """``on_bandwidth(paused)``: the player's video was paused because its
        link cannot carry it, or resumed (rooms.media.congestion_control)."""
        offer = _parse(offer_sdp)
        kinds = offered_kinds(offer)
        for kind, codec_name in published.codecs.items():
            if kind in kinds and codec_name.upper() not in [name.upper() for name in kinds[kind]]:
                raise MediaError("codec_not_supported", f"the stream's {kind} is {codec_name}")
        pc = new_peer_connection(ice_servers)
        played = cls(published=published, pc=pc)
        first_frame = _once(on_first_frame)
        try:
            for kind in kinds:
                if kind not in published.taps:
                    continue
                transceiver = pc.addTransceiver(kind, direction="sendonly")
                played.nacks_received.watch_sender(transceiver.sender)
                if kind == "video":
                    transceiver.setCodecPreferences(video_capabilities(video_codec))
                    # The player's PLI/FIR asks the publisher, not an encoder
                    # (there is none on this path).
                    transceiver.sender._send_keyframe = published.request_keyframe  # type: ignore[method-assign]
                else:
                    transceiver.setCodecPreferences(audio_capabilities((published.codecs[kind],)))
                played.tracks[kind] = published.fanouts[kind].leg_add(transceiver.sender, first_frame)
            await _apply_offer(pc, offer_sdp, candidates)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:
            for leg in played.tracks.values():
                leg.stop()
            await _close_half_made(pc)
            raise _offer_refused(error) from None
        video = played.tracks.get("video")
        if published.congestion is not None and video is not None:
            sender = next(t.sender for t in pc.getTransceivers() if t.kind == "video")
            published.congestion.leg_add(video, sender, on_bandwidth)
        published.players.add(played)
        return played, pc.localDescription.sdp

    async def close(self) -> None:
        self.published.players.discard(self)
        video = self.tracks.get("video")
        if self.published.congestion is not None and video is not None:
            self.published.congestion.leg_remove(video)
        for leg in self.tracks.values():
            leg.stop()
        await self.pc.close()


async def _apply_offer(pc: RTCPeerConnection, offer_sdp: str, candidates: CandidatePolicy) -> None:
    loopback_only = gathers_loopback_only()
    offer_sdp = offer_candidates_kept(offer_sdp, loopback_only=loopback_only, policy=candidates)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
    except OperationError as error:
        # aiortc's way of saying an m-section shares no codec with us.
        raise MediaError("codec_not_supported", str(error)) from None
    if any(transceiver.receiver.transport is None for transceiver in pc.getTransceivers()):
        raise MediaError("no_media", "an m-section of the offer could not be used")
    confine_checks(pc, loopback_only=loopback_only, policy=candidates)


async def _close_half_made(pc: RTCPeerConnection) -> None:
    """Close a peer connection that an offer left half made.

    aiortc's close() stops the transport of every transceiver and fails on
    one the offer never associated (it has none): the other transports then
    stay open and every later close() waits for ever. Such a transceiver has
    nothing to stop, so it is left out.
    """
    transceivers = getattr(pc, "_RTCPeerConnection__transceivers", None)
    if isinstance(transceivers, list):
        transceivers[:] = [t for t in transceivers if t.receiver.transport is not None]
    await pc.close()


def _offer_refused(error: Exception) -> MediaError:
    """What the client hears when an offer could not be applied.

    aiortc refuses many malformed offers only while applying them (no
    ice-ufrag, a direction it cannot combine, numbers out of range), with
    ValueError and the like: such an offer is unreadable (``no_media``),
    never a failure of the node that would leave the request unanswered.
    """
    if isinstance(error, MediaError):
        return error
    logger.info("an SDP offer could not be applied: %r", error)
    return MediaError("no_media", f"the SDP offer could not be applied: {error}")


def _parse(sdp: str) -> SessionDescription:
    try:
        return SessionDescription.parse(sdp)
    except Exception as error:
        raise MediaError("no_media", f"the SDP offer could not be read: {error}") from None


def _once(callback: Callable[[], None] | None) -> Callable[[], None] | None:
    if callback is None:
        return None
    fired = False

    def call() -> None:
        nonlocal fired
        if not fired:
            fired = True
            callback()

    return call
