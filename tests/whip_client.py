"""A WHIP (RFC 9725) and WHEP client as the RFC describes one: aiortc for
the media, plain HTTP (aiohttp) for the signaling.

The client gathers every ICE candidate before it offers (no trickle), posts
the offer as ``application/sdp`` with its bearer token, takes the ``201
Created`` answer, and keeps the session's URL from ``Location`` (resolved
against the endpoint's URL, as a relative one must be) to ``DELETE`` it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.media_clients import Player, loopback_peer
from tests.media_tracks import CounterVideoTrack, ToneAudioTrack

SDP = "application/sdp"


class WhipError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class WhipSession:
    """A started WHIP publish or WHEP play."""

    pc: RTCPeerConnection
    url: str
    etag: str
    answer: str
    token: str | None
    links: list[str] = field(default_factory=list)
    player: Player | None = None
    video: CounterVideoTrack | None = None

    async def delete(self) -> int:
        """End the session (RFC 9725 section 4.2); the answer's status."""
        async with aiohttp.ClientSession() as http, http.delete(self.url, headers=_auth(self.token)) as response:
            await response.read()
            return response.status

    async def close(self) -> None:
        await self.pc.close()
        if self.player is not None:
            for task in self.player.tasks:
                task.cancel()
            await asyncio.gather(*self.player.tasks, return_exceptions=True)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


async def _exchange(pc: RTCPeerConnection, endpoint: str, token: str | None) -> tuple[str, str, str, list[str]]:
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate here
    headers = {"Content-Type": SDP, **_auth(token)}
    async with aiohttp.ClientSession() as http, http.post(
        endpoint, data=pc.localDescription.sdp.encode(), headers=headers
    ) as response:
        body = await response.text()
        if response.status != 201:
            raise WhipError(response.status, body)
        assert response.headers["Content-Type"].split(";")[0] == SDP, response.headers
        url = urljoin(endpoint, response.headers["Location"])
        etag = response.headers["ETag"]
        links = response.headers.getall("Link", [])
    await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
    return url, etag, body, links


async def whip_publish(endpoint: str, token: str | None, *, shade: int = 128) -> WhipSession:
    """Publish a counter video and a tone to ``endpoint`` (``…/whip/<room>``)."""
    pc = loopback_peer()
    video = CounterVideoTrack(shade=shade)
    pc.addTransceiver(video, direction="sendonly")
    pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
    try:
        url, etag, answer, links = await _exchange(pc, endpoint, token)
    except BaseException:
        await pc.close()
        raise
    return WhipSession(pc, url, etag, answer, token, links, video=video)


async def whep_play(endpoint: str, token: str | None) -> WhipSession:
    """Play the stream of ``endpoint`` (``…/whep/<room>/<stream>``)."""
    pc = loopback_peer()
    player = Player(pc)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    pc.on("track", lambda track: player.tasks.append(asyncio.ensure_future(player.consume(track))))
    try:
        url, etag, answer, links = await _exchange(pc, endpoint, token)
    except BaseException:
        await pc.close()
        raise
    return WhipSession(pc, url, etag, answer, token, links, player=player)
