"""/healthz, /readyz and /metrics on real daphne processes.

Readiness follows a real fault: the Redis under the process is cut with a
TCP proxy (the shared Redis itself keeps running) and restored. Metrics are
scraped as Prometheus would and compared with what the test's clients did,
across two processes counting into one multiprocess directory.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.faultproxy import FaultProxy
from tests.processes import ServerProcess
from tests.wsclient import SocketClient

pytestmark = pytest.mark.integration

TOKEN = "scrape-secret"
CHECK_TIMEOUT_S = 1.0


def http_get(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(server.http_url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def get(server: ServerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, server, path, headers)


async def readyz_until(server: ServerProcess, status: int, timeout: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        code, body = await get(server, "readyz")
        if code == status:
            answer: dict[str, object] = json.loads(body)
            return answer
        assert time.monotonic() < deadline, f"/readyz never answered {status}; last {code} {body}"
        await asyncio.sleep(0.2)


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    code, body = await get(server, "metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200, body
    return samples(body)


async def metric_until(
    server: ServerProcess, name: str, expected: float, labels: tuple[tuple[str, str], ...] = (), timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = (await scrape(server)).get((name, labels), 0.0)
        if value == expected:
            return
        assert time.monotonic() < deadline, f"{name}{dict(labels)} is {value}, not {expected}"
        await asyncio.sleep(0.2)


async def metric_until_above(
    server: ServerProcess, name: str, floor: float, labels: tuple[tuple[str, str], ...] = (), timeout: float = 10
) -> float:
    """Scrape until the series is above ``floor``; its value then."""
    deadline = time.monotonic() + timeout
    while True:
        value = (await scrape(server)).get((name, labels), 0.0)
        if value > floor:
            return value
        assert time.monotonic() < deadline, f"{name}{dict(labels)} stayed at {value}, not above {floor}"
        await asyncio.sleep(0.2)


async def test_healthz_answers_without_dependencies(start_server) -> None:  # type: ignore[no-untyped-def]
    # Nothing behind this process answers: no Redis, no broker.
    dead = "redis://127.0.0.1:9/0"
    web = start_server("daphne", "web", env={"REDIS_URL": dead, "CELERY_BROKER_URL": dead})
    started = time.monotonic()
    code, body = await get(web, "healthz")
    assert (code, json.loads(body)) == (200, {"status": "ok"})
    assert time.monotonic() - started < 2


async def test_readyz_names_redis_while_it_is_cut_and_recovers(start_server) -> None:  # type: ignore[no-untyped-def]
    with FaultProxy(6379) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        web = start_server("daphne", "web", env={
            "REDIS_URL": url, "CELERY_BROKER_URL": url, "READYZ_CHECK_TIMEOUT_S": CHECK_TIMEOUT_S,
        })
        ready = await readyz_until(web, 200)
        assert ready["checks"] == {
            "database": "ok", "redis": "ok", "live_state": "ok", "media_node": "ok", "broker": "ok",
        }
        assert ready["failed"] == []

        for fault in (proxy.cut, proxy.blackhole):
            fault()
            started = time.monotonic()
            failed = await readyz_until(web, 503)
            # Each check gives up after its timeout, and they run at once.
            assert time.monotonic() - started < 3 * CHECK_TIMEOUT_S + 10
            print(f"{fault.__name__}: {json.dumps(failed)} after {time.monotonic() - started:.2f} s")
            assert "redis" in failed["failed"], failed  # type: ignore[operator]
            assert failed["checks"]["database"] == "ok"  # type: ignore[index]
            assert failed["status"] == "fail"
            proxy.restore()
            ready = await readyz_until(web, 200)
            assert ready["failed"] == []


async def test_readyz_names_a_missing_media_node(start_server) -> None:  # type: ignore[no-untyped-def]
    web = start_server("daphne", "web", env={"MEDIA_NODES": "external"})
    answer = await readyz_until(web, 503)
    assert answer["failed"] == ["media_node"]
    node = start_server("medianode", "node")
    await readyz_until(web, 200)
    node.kill()
    answer = await readyz_until(web, 503)
    assert answer["failed"] == ["media_node"]


async def test_metrics_need_the_token_or_an_allowed_address(start_server) -> None:  # type: ignore[no-untyped-def]
    closed = start_server("daphne", "closed", env={"METRICS_TOKEN": TOKEN, "METRICS_ALLOW": "10.1.2.0/24"})
    assert (await get(closed, "metrics"))[0] == 403
    assert (await get(closed, "metrics", {"Authorization": "Bearer wrong"}))[0] == 403
    assert (await get(closed, "metrics", {"Authorization": TOKEN}))[0] == 403
    code, body = await get(closed, "metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and "conference_websocket_connections" in body

    # Default: loopback only, and not what a proxy on loopback forwards.
    loopback = start_server("daphne", "loopback")
    code, body = await get(loopback, "metrics")
    assert code == 200 and "conference_rooms" in body
    assert (await get(loopback, "metrics", {"X-Forwarded-For": "203.0.113.9"}))[0] == 403


async def test_metrics_sum_what_clients_did_on_two_processes(start_server) -> None:  # type: ignore[no-untyped-def]
    env = {"METRICS_TOKEN": TOKEN, "CHAT_RATE_BURST": 5, "CHAT_RATE_PER_SECOND": 0.01}
    a = start_server("daphne", "web-a", env=env)
    b = start_server("daphne", "web-b", env=env)
    # Rooms and participants are read from the run's database, which other
    # tests' servers share (and may have left rows in): compare with before.
    before = await scrape(b)
    clients = [
        await SocketClient.connected(a.ws_url, "ann"),
        await SocketClient.connected(a.ws_url, "bea"),
        await SocketClient.connected(b.ws_url, "cid"),
    ]
    for client in clients:
        assert (await client.request("room.join", room="metered"))["type"] == "room.state"
    await metric_until(a, "conference_websocket_connections", 3)
    measured = await scrape(b)  # either process answers for all
    assert measured[("conference_websocket_connections", ())] == 3
    assert measured[("conference_sessions", ())] == 3
    active, present = ("conference_rooms", (("status", "ACTIVE"),)), ("conference_participants", ())
    assert measured[active] - before.get(active, 0) == 1
    assert measured[present] - before.get(present, 0) == 3

    # Five messages pass the connection's burst, two more are refused.
    replies = [await clients[0].request("room.message", room="metered", text=f"m{n}") for n in range(7)]
    assert [reply["type"] for reply in replies] == ["ok"] * 5 + ["error"] * 2
    for client in clients:
        for _ in range(5):
            await client.event("room.message")
    await metric_until(a, "conference_chat_deliveries_total", 5 * 3)
    measured = await scrape(a)
    # The latency is observed once per message in each process holding
    # members of the room (two here), not once per member.
    assert measured[("conference_chat_delivery_seconds_count", ())] == 5 * 2
    assert measured[("conference_chat_delivery_seconds_bucket", (("le", "+Inf"),))] == 5 * 2
    assert measured[("conference_rate_limit_refusals_total", (("limit", "chat_per_connection"),))] == 2

    # A process killed outright takes its share of the live gauges with it.
    b.kill()
    await metric_until(a, "conference_websocket_connections", 2)
    await clients[1].close()
    await metric_until(a, "conference_websocket_connections", 1)
    await metric_until(a, "conference_sessions", 1)
    await clients[0].close()
    # Counters keep the dead process's counts: sums never go down.
    assert (await scrape(a))[("conference_chat_deliveries_total", ())] == 15


async def test_metrics_count_media_a_node_forwards(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rooms.media.peer import use_host_address
    from tests.media_clients import new_player, play, publish, rtp_received_lossy, rtp_sent_lossy

    use_host_address("127.0.0.1")
    web = start_server("daphne", "web", env={"METRICS_TOKEN": TOKEN, "RECORDINGS_ROOT": str(tmp_path / "records")})
    alice = await SocketClient.connected(web.ws_url, "alice")
    viewers = [await SocketClient.connected(web.ws_url, name) for name in ("bob", "cid")]
    for client in (alice, *viewers):
        await client.request("room.join", room="watched")
    camera = await publish(alice, "watched", record=True)
    players = [await play(viewer, camera.stream["id"]) for viewer in viewers]
    for player in players:
        await player.wait_for(lambda player=player: len(player.counters) >= 30, timeout=20)

    await metric_until(web, "conference_streams", 1, (("codec", "VP8"), ("kind", "video")))
    await metric_until(web, "conference_subscriber_legs", 2, (("kind", "video"),))
    measured = await scrape(web)
    assert measured[("conference_streams", (("codec", "opus"), ("kind", "audio")))] == 1
    assert measured[("conference_subscriber_legs", (("kind", "audio"),))] == 2
    assert measured[("conference_first_frame_seconds_count", ())] == 2
    # Players that join within half a second of the publisher's keyframe
    # start from the frames since it: no request needed yet (see the latecomer below).
    keyframe_requests = measured.get(("conference_keyframe_requests_total", ()), 0.0)
    packets_in = measured[("conference_rtp_packets_total", (("direction", "in"),))]
    packets_out = measured[("conference_rtp_packets_total", (("direction", "out"),))]
    bytes_in = measured[("conference_rtp_bytes_total", (("direction", "in"),))]
    bytes_out = measured[("conference_rtp_bytes_total", (("direction", "out"),))]
    # 30 frames each reached both players: at least that much went out,
    # about twice what came in (two subscribers), counted once per heartbeat.
    assert packets_in >= 30 and bytes_in > 0
    assert packets_out >= 60 and bytes_out > bytes_in
    print(f"in {packets_in:.0f} packets {bytes_in:.0f} B, out {packets_out:.0f} packets {bytes_out:.0f} B")

    # The record's writer keeps up: far from the 2000 frames at which a record fails
    # (it opens its file at the first keyframe, so up to a second may wait before).
    assert 0 <= measured[("conference_recorder_queue_frames", ())] < 200

    # A lossy uplink: the node asks the publisher for what it missed. A lossy
    # downlink: the subscriber asks the node.
    nacks_before = {direction: measured.get(("conference_nacks_total", (("direction", direction),)), 0.0)
                    for direction in ("sent", "received")}
    rtp_sent_lossy(camera.pc, every=7)
    rtp_received_lossy(players[0].pc, "video", every=7)
    for direction in ("sent", "received"):
        labels = (("direction", direction),)
        nacks = await metric_until_above(web, "conference_nacks_total", nacks_before[direction] + 3, labels)
        lost = (await scrape(web))[("conference_nacked_packets_total", labels)]
        assert lost >= nacks, (direction, nacks, lost)
        print(f"NACKs {direction}: {nacks:.0f} naming {lost:.0f} packets (before: {nacks_before[direction]:.0f})")

    # A subscriber whose connection never comes up (it never takes the
    # answer): its legs wait, and nothing queues for them.
    latecomer = await SocketClient.connected(web.ws_url, "dan")
    await latecomer.request("room.join", room="watched")
    stalled = await new_player()
    answer = await latecomer.request("stream.play", stream=camera.stream["id"], sdp=stalled.pc.localDescription.sdp)
    assert answer["type"] == "stream.answer", answer
    waiting = await metric_until_above(web, "conference_forward_waiting_legs", 0, (("kind", "audio"),))
    assert waiting == 1
    # Its video has nothing recent to start from: the node asked the publisher for a keyframe.
    await metric_until_above(web, "conference_keyframe_requests_total", keyframe_requests)

    assert (await alice.request("stream.unpublish", stream=camera.stream["id"]))["type"] == "stream.status"
    await metric_until(web, "conference_streams", 0, (("codec", "VP8"), ("kind", "video")))
    await metric_until(web, "conference_subscriber_legs", 0, (("kind", "video"),))
    await metric_until(web, "conference_forward_waiting_legs", 0, (("kind", "audio"),))
    for player in (*players, stalled):
        await player.pc.close()
    await camera.close()
    for client in (alice, *viewers, latecomer):
        await client.close()


async def test_metrics_read_the_celery_queue_and_time_the_mix(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Tasks queue up while no worker runs, the queue drains when one starts,
    and the mix it runs reports how much faster than real time it went."""
    from rooms.media.peer import use_host_address
    from tests.media_clients import publish
    from tests.processes import manage

    use_host_address("127.0.0.1")
    env = {"METRICS_TOKEN": TOKEN, "RECORDINGS_ROOT": str(tmp_path / "records")}
    web = start_server("daphne", "web", env=env)
    queue = ("conference_celery_queue_length", (("queue", "celery"),))
    # The test's own key prefix on Redis: nobody else queues there.
    await metric_until(web, queue[0], 0, queue[1])
    await asyncio.to_thread(manage, web.env, "shell", "-c", "from recording.tasks import recordings_retention\n"
                            "for _ in range(3): recordings_retention.delay()")
    await metric_until(web, queue[0], 3, queue[1])

    # A recorded room that ends queues its records' finishing: one more.
    alice = await SocketClient.connected(web.ws_url, "alice")
    assert (await alice.request("room.join", room="mixed-metrics", record=True))["record"] is True
    camera = await publish(alice, "mixed-metrics")
    await asyncio.sleep(2)  # the length of the record
    assert (await alice.request("room.leave", room="mixed-metrics", timeout=10))["type"] == "ok"
    await metric_until(web, queue[0], 4, queue[1])

    worker = start_server("celery", "worker", env=env)
    await metric_until(web, queue[0], 0, queue[1], timeout=30)
    count = await metric_until_above(web, "conference_mix_realtime_factor_count", 0, timeout=60)
    measured = await scrape(web)
    assert count == 1 == measured[("conference_mix_duration_seconds_count", ())], worker.log()[-3000:]
    factor = measured[("conference_mix_realtime_factor_sum", ())]
    mixing_s = measured[("conference_mix_duration_seconds_sum", ())]
    # About 2 s of media: the factor is media seconds over the mix's seconds.
    assert factor > 0 and 1.0 <= factor * mixing_s <= 4.0, (factor, mixing_s)
    print(f"mix realtime factor {factor:.2f} ({mixing_s:.2f} s of mixing)")
    await camera.close()
    await alice.close()
