"""Media across NAT and firewalls, on networks the tests build (tests/netns.py).

- A client at home behind a masquerading router whose network drops UDP to
  the server: it reaches the media only through coturn over TCP, with the
  TURN credentials its session was given, and publishes and plays through
  relay candidates (coturn run from deploy/coturn/turnserver.conf).
- A server behind a 1:1 NAT (a cloud VM): with ``MEDIA_PUBLIC_IP`` a client
  outside reaches it at the public address directly; without it the
  client is given an address it cannot reach, and the publish fails.

Server, coturn and client each run in their own namespace; the client is
tests/netns_peer.py (aiortc), which reports the candidate pairs ICE
selected and the frames it played.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rooms.turn import turn_credentials_mint
from tests import netns
from tests.coturn import coturn
from tests.processes import ServerProcess

pytestmark = pytest.mark.integration

SECRET = "a-turn-secret-shared-with-coturn-of-40-chars"
MIN_FPS = 25.0


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``manage.py serve --host 0.0.0.0`` inside a host's namespace, with ``settings``."""
    started: list[ServerProcess] = []

    def start(host: netns.Host, **settings: str) -> ServerProcess:
        started.append(netns.serve(host, tmp_path, f"serve-{len(started)}", **settings))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def client_run(path: netns.NatPath, *, login: str = "alice", timeout: float = 60) -> dict[str, Any]:
    """tests/netns_peer.py in the client's namespace: publish, play it back, report."""
    url = f"ws://{path.server_public}:{netns.SERVE_PORT}/ws/rooms/"
    command = path.client.command(sys.executable, "-m", "tests.netns_peer", "--url", url, "--login", login)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_a_client_whose_network_drops_udp_publishes_and_plays_through_coturn_over_tcp(
    tmp_path: Path, serve: Callable[..., ServerProcess]
) -> None:
    with netns.behind_nat(udp_to_server=False) as path:
        relay = coturn(path.server, tmp_path, secret=SECRET, allowed_peer=path.server.address)
        turn_url = f"turn:{path.server.address}:3478?transport=tcp"
        serve(path.server, TURN_URLS=turn_url, TURN_SHARED_SECRET=SECRET, TURN_CREDENTIAL_TTL_S="600")
        report = client_run(path)
        print(f"connect → first frame through the relay: {report['connect_to_first_frame_s']:.2f} s, "
              f"{report['fps']} fps")

        # Each session was given credentials of its own, in the TURN REST scheme ...
        for servers, login in ((report["ice_servers"], "alice"), (report["viewer_ice_servers"], "alice-viewer")):
            (server,) = servers
            expiry = int(server["username"].split(":")[0])
            minted = turn_credentials_mint(secret=SECRET, identity=login, now=expiry - 600, ttl_s=600)
            assert server == {"urls": [turn_url], "username": minted.username, "credential": minted.credential}
            # ... and coturn accepted them: the allocations are in its log under that name.
            allocated = f"user <{minted.username}>: incoming packet ALLOCATE processed, success"
            assert relay.log().count(allocated) >= 1, relay.log()[-3000:]

        # Both peer connections run through relay candidates to the server's host candidate.
        for connection in ("publish", "play"):
            pair = report[connection]["pair"]
            assert pair["local"]["type"] == "relay" and pair["local"]["host"] == path.server.address, pair
            assert pair["remote"] == {**pair["remote"], "type": "host", "host": path.server.address}, pair
        # The client did try UDP to the server: its router dropped it.
        assert path.home.counter("udp_to_server_dropped") > 0
        # And media flows: frames advance at the camera's pace, audio arrives.
        assert report["fps"] >= MIN_FPS, report
        assert report["audio_frames"] > 50, report


def test_a_server_behind_one_to_one_nat_is_reached_at_its_public_address(
    serve: Callable[..., ServerProcess]
) -> None:
    with netns.behind_nat(server_nat_1_1=True) as path:
        serve(path.server, MEDIA_PUBLIC_IP=path.server_public, MEDIA_UDP_PORTS="40000-40099")
        report = client_run(path)
        for connection in ("publish", "play"):
            answered = report[connection]["answer_candidates"]
            assert answered and all(f" {path.server_public} " in line for line in answered), answered
            assert not [line for line in answered if path.server.address in line], answered
            pair = report[connection]["pair"]
            # Directly: the client's own address to the advertised public one, no relay.
            assert pair["local"] == {**pair["local"], "type": "host", "host": path.client.address}, pair
            assert pair["remote"]["type"] == "host" and pair["remote"]["host"] == path.server_public, pair
            assert 40000 <= pair["remote"]["port"] <= 40099, pair
        assert report["fps"] >= MIN_FPS, report


def test_without_media_public_ip_a_server_behind_nat_advertises_what_nobody_reaches(
    serve: Callable[..., ServerProcess]
) -> None:
    with netns.behind_nat(server_nat_1_1=True) as path:
        serve(path.server, MEDIA_UDP_PORTS="40000-40099", MEDIA_START_TIMEOUT_MS="3000")
        url = f"ws://{path.server_public}:{netns.SERVE_PORT}/ws/rooms/"
        result = subprocess.run(path.client.command(sys.executable, "-m", "tests.netns_peer", "--url", url),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "'status': 'FAILED', 'info': 'no_media'" in result.stderr, result.stderr[-3000:]
