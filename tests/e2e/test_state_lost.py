"""Redis loses its data in the middle of a conference: the server ends every
session (``state_lost``), and the pages reconnect, join again and publish
again by themselves, seeing each other as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.room_page import RoomPage
from tests.processes import RedisServer, ServerProcess

pytestmark = pytest.mark.integration


def test_pages_rejoin_by_themselves_after_redis_lost_its_data(
    own_redis: RedisServer,
    start_server: Callable[..., ServerProcess],
    room_pages: Callable[..., list[RoomPage]],
    artifacts: Path,
) -> None:
    server = start_server("daphne", "web", env={"REDIS_URL": own_redis.url})
    alice, bob = room_pages(server, "/conference/", "e2e-state-lost", "alice", "bob")
    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")

    own_redis.client().flushdb()
    server.wait_for_log("ended 2 sessions: state_lost", timeout=10)
    for page in (alice, bob):
        page.wait_system_line("reconnected")
        expect(page.page.locator("#status")).to_have_text("ESTABLISHED")
        expect(page.page.locator("#local-status")).to_have_text("PUBLISHING")
    # Rebuilt from the two who came back: each is a member again, publishing.
    members = own_redis.client().hgetall(f"{server.env['LIVE_STATE_PREFIX']}:room:e2e-state-lost:members")
    assert sorted(name.decode() for name in members) == ["alice", "bob"]
    alice.expect_camera_of("bob")
    bob.expect_camera_of("alice")
    bob.send_chat("still here ✓")
    alice.wait_chat("bob", "still here ✓")
    for page in (alice, bob):
        page.screenshot(artifacts, "state-lost")
