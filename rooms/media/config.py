"""What a media node is told at start-up, read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from rooms.media.ice import DEFAULT_CANDIDATE_POLICY, CandidatePolicy


@dataclass(frozen=True)
class NodeConfig:
    # The address ICE candidates are gathered on (MEDIA_HOST_IP).
    host_ip: str
    # First and last UDP port for media, or None for any free port.
    udp_ports: tuple[int, int] | None
    # The one video codec of every room: "VP8" or "H264".
    video_codec: str
    # RTCIceServer dicts (urls, username, credential).
    ice_servers: tuple[dict[str, Any], ...]
    # A publish whose first media takes longer fails with no_media.
    media_start_timeout_ms: int
    # Where the node may send connectivity checks (MEDIA_MAX_REMOTE_CANDIDATES,
    # MEDIA_DENIED_PEER_NETWORKS).
    candidates: CandidatePolicy = DEFAULT_CANDIDATE_POLICY
    # Each published video stream is told by REMB to stay at or under this
    # (ROOM_MAX_VIDEO_KBPS); 0: no cap.
    max_video_kbps: int = 0
    # The floor of what a publisher is asked for by its subscribers' REMB,
    # and what a subscriber's link must carry to get video
    # (ROOM_MIN_VIDEO_KBPS); 0: no congestion control.
    min_video_kbps: int = 0
    # How often the rooms' speakers are ranked and, when changed, reported
    # (SPEAKERS_INTERVAL_MS); 0: never.
    speakers_interval_ms: int = 0
    # Behind a 1:1 NAT: the public address answers name instead of the
    # gathered one (MEDIA_PUBLIC_IP); "" names what was gathered.
    public_ip: str = ""

    @classmethod
    def from_settings(cls) -> NodeConfig:
        return cls(
            host_ip=settings.MEDIA_HOST_IP,
            udp_ports=settings.MEDIA_UDP_PORTS,
            video_codec=settings.ROOM_VIDEO_CODEC,
            ice_servers=tuple(settings.ICE_SERVERS),
            media_start_timeout_ms=settings.MEDIA_START_TIMEOUT_MS,
            candidates=CandidatePolicy.from_strings(
                max_remote_candidates=settings.MEDIA_MAX_REMOTE_CANDIDATES,
                denied_networks=settings.MEDIA_DENIED_PEER_NETWORKS,
            ),
            max_video_kbps=settings.ROOM_MAX_VIDEO_KBPS,
            min_video_kbps=settings.ROOM_MIN_VIDEO_KBPS,
            speakers_interval_ms=settings.SPEAKERS_INTERVAL_MS,
            public_ip=settings.MEDIA_PUBLIC_IP,
        )
