"""Facts of rooms and recording become logged deliveries with the payloads docs/webhooks.md shows.

The history and recording services are called as their callers call
them; the drains they ask for are collected instead of sent to a broker
(test_delivery.py runs them on a real worker).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from recording import services as recording_services
from recording.models import Recording
from rooms import history
from rooms.models import Participant, Room, Stream
from webhooks import tasks
from webhooks.events import EVENT_TYPES, timestamp_format
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

URLS = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]


@pytest.fixture
def drains(settings, monkeypatch) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_URLS = URLS
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(tasks.webhook_queue_drain, "delay", lambda url, room_key: asked.append((url, room_key)))
    return asked


def payloads(url: str = URLS[0]) -> list[dict[str, Any]]:
    return [json.loads(row.payload) for row in WebhookDelivery.objects.filter(url=url).order_by("pk")]


def join(login: str, *, live_id: str = "live-1", created: bool = False) -> None:
    history.participant_record_join(
        live_id=live_id, room_name="weekly", record=False, created=created, reactivated=False, login=login,
        session=f"s-{login}",
    )


def test_a_room_s_life_is_told_in_order(drains: list[tuple[str, str]]) -> None:
    join("alice", created=True)
    join("bob")
    history.stream_record_start(
        live_id="live-1", session="s-alice", login="alice", stream_id="9d04e6b1a2c37f85", kind="camera",
        record=True, codec="VP8+opus",
    )
    history.stream_record_end(stream_id="9d04e6b1a2c37f85")
    history.stream_record_end(stream_id="9d04e6b1a2c37f85")  # repeated: no second event
    history.participant_record_leave(live_id="live-1", login="bob", session="s-bob", reason="leave", room_idle=False)
    history.participant_record_leave(live_id="live-1", login="bob", session="s-bob", reason="leave", room_idle=False)
    # Alice is still in when the room is finalized (say its state was lost): she leaves with it.
    assert history.room_finalize(live_id="live-1", name="weekly", record=False)

    room = Room.objects.get(live_id="live-1")
    alice, bob = Participant.objects.get(login="alice"), Participant.objects.get(login="bob")
    stream = Stream.objects.get()
    room_fields = {"room": "weekly", "room_id": "live-1"}
    alice_fields = {"identity": "alice", "session": "s-alice"}
    stream_fields = {"id": "9d04e6b1a2c37f85", "kind": "camera", "record": True, "codec": "VP8+opus"}
    assert payloads() == [
        {"type": "room_started", "timestamp": timestamp_format(room.created_at),
         "data": {**room_fields, "record": False}},
        {"type": "participant_joined", "timestamp": timestamp_format(alice.joined_at),
         "data": {**room_fields, "participant": alice_fields}},
        {"type": "participant_joined", "timestamp": timestamp_format(bob.joined_at),
         "data": {**room_fields, "participant": {"identity": "bob", "session": "s-bob"}}},
        {"type": "stream_published", "timestamp": timestamp_format(stream.started_at),
         "data": {**room_fields, "participant": alice_fields, "stream": stream_fields}},
        {"type": "stream_unpublished", "timestamp": timestamp_format(stream.ended_at),  # type: ignore[arg-type]
         "data": {**room_fields, "participant": alice_fields, "stream": stream_fields}},
        {"type": "participant_left", "timestamp": timestamp_format(bob.left_at),  # type: ignore[arg-type]
         "data": {**room_fields, "participant": {"identity": "bob", "session": "s-bob"}, "reason": "leave"}},
        {"type": "participant_left", "timestamp": timestamp_format(alice.left_at),  # type: ignore[arg-type]
         "data": {**room_fields, "participant": alice_fields, "reason": "timeout"}},
        {"type": "room_finished", "timestamp": timestamp_format(room.finalized_at),  # type: ignore[arg-type]
         "data": {**room_fields, "started_at": timestamp_format(room.created_at)}},
    ]
    assert payloads(URLS[1]) == payloads(URLS[0])
    rows = list(WebhookDelivery.objects.order_by("pk"))
    assert {row.room_key for row in rows} == {"live-1"} and {row.room for row in rows} == {"weekly"}
    assert {row.status for row in rows} == {"pending"} and {row.attempts for row in rows} == {0}
    # One id per event, the same for both URLs.
    by_id: dict[str, set[str]] = {}
    for row in rows:
        by_id.setdefault(row.webhook_id, set()).add(row.url)
    assert len(by_id) == 8 and all(urls == set(URLS) for urls in by_id.values())
    assert all(webhook_id.startswith("msg_") for webhook_id in by_id)
    # Each event asked for a drain of the room's queue at each URL, after it was committed.
    assert drains == [(url, "live-1") for _ in range(8) for url in URLS]


def test_a_leave_racing_finalization_is_told_once(drains: list[tuple[str, str]]) -> None:
    join("alice", created=True)
    history.room_finalize(live_id="live-1", name="weekly", record=False)
    history.participant_record_leave(
        live_id="live-1", login="alice", session="s-alice", reason="disconnect", room_idle=True
    )
    assert [payload["type"] for payload in payloads()] == [
        "room_started", "participant_joined", "participant_left", "room_finished",
    ]


def test_recordings_tell_ready_and_failed(drains: list[tuple[str, str]], settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    room = Room.objects.create(name="weekly", live_id="live-1", record=True)
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id="s1", participant="alice", node="n1",
        file_path="weekly/s1.webm",
    )
    recording_services.recording_stream_finish(
        stream_id="s1", file_path="weekly/s1.webm", size_bytes=1234, duration_ms=2500, failure=""
    )
    Recording.objects.create(room=room, kind=Recording.Kind.STREAM, stream_live_id="s2", participant="bob", node="n1")
    recording_services.recording_stream_finish(
        stream_id="s2", file_path="", size_bytes=0, duration_ms=0, failure="no media arrived"
    )
    # The room's mix: finalized with nothing it could mix.
    room.status = Room.Status.FINALIZED
    room.save()
    finished = recording_services.room_recordings_finish(room.pk)
    assert finished.mix_due is not None
    recording_services.room_mix_run(finished.mix_due)

    ready, failed = Recording.objects.get(stream_live_id="s1"), Recording.objects.get(stream_live_id="s2")
    mix = Recording.objects.get(kind=Recording.Kind.ROOM)
    room_fields = {"room": "weekly", "room_id": "live-1"}
    assert [(payload["type"], payload["data"]) for payload in payloads()] == [
        ("recording_ready", {**room_fields, "recording": {
            "id": ready.pk, "kind": "stream", "status": "READY", "participant": "alice", "stream_id": "s1",
            "file_url": f"/records/{ready.pk}/download/", "size_bytes": 1234, "duration_ms": 2500}}),
        ("recording_failed", {**room_fields, "recording": {
            "id": failed.pk, "kind": "stream", "status": "FAILED", "participant": "bob", "stream_id": "s2",
            "reason": "no media arrived"}}),
        ("recording_failed", {**room_fields, "recording": {
            "id": mix.pk, "kind": "room", "status": "FAILED", "participant": None, "stream_id": None,
            "reason": "no stream of the room was recorded"}}),
    ]
    assert payloads()[0]["timestamp"] == timestamp_format(ready.ended_at)  # type: ignore[arg-type]


def test_a_record_whose_node_died_is_ready_as_partial(drains: list[tuple[str, str]], settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.RECORDINGS_ROOT = tmp_path
    (tmp_path / "weekly").mkdir()
    (tmp_path / "weekly" / "s1.webm").write_bytes(b"not really a webm")
    room = Room.objects.create(name="weekly", live_id="live-1")
    Recording.objects.create(
        room=room, kind=Recording.Kind.STREAM, stream_live_id="s1", participant="alice", node="dead",
        file_path="weekly/s1.webm",
    )
    Recording.objects.create(room=room, kind=Recording.Kind.STREAM, stream_live_id="s2", participant="bob", node="dead")
    assert recording_services.recordings_of_dead_nodes_close({"alive"}) == 2
    told = {payload["data"]["recording"]["stream_id"]: payload for payload in payloads()}
    assert told["s1"]["type"] == "recording_ready" and told["s1"]["data"]["recording"]["status"] == "PARTIAL"
    assert told["s1"]["data"]["recording"]["size_bytes"] == len(b"not really a webm")
    assert told["s2"]["type"] == "recording_failed"


def test_nothing_is_logged_while_webhooks_are_off(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_URLS = []
    monkeypatch.setattr(tasks.webhook_queue_drain, "delay", lambda *args: pytest.fail("a drain was asked for"))
    join("alice", created=True)
    history.room_finalize(live_id="live-1", name="weekly", record=False)
    assert Participant.objects.get().left_at is not None
    assert not WebhookDelivery.objects.exists()


def _shape(value: Any) -> Any:
    """Keys all the way down; leaves by kind (a null may stand for any leaf)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return "null" if value is None else type(value).__name__


def _same_shape(documented: Any, real: Any) -> bool:
    if isinstance(documented, dict) and isinstance(real, dict):
        return documented.keys() == real.keys() and all(_same_shape(documented[k], real[k]) for k in documented)
    return documented == real or "null" in (documented, real)


def test_the_documented_payloads_have_the_shape_of_real_ones(  # type: ignore[no-untyped-def]
    drains: list[tuple[str, str]], settings, tmp_path
) -> None:
    settings.RECORDINGS_ROOT = tmp_path
    join("alice", created=True)
    history.stream_record_start(
        live_id="live-1", session="s-alice", login="alice", stream_id="s1", kind="camera", record=True, codec="VP8"
    )
    room = Room.objects.get()
    Recording.objects.create(room=room, kind=Recording.Kind.STREAM, stream_live_id="s1", participant="alice")
    Recording.objects.create(room=room, kind=Recording.Kind.STREAM, stream_live_id="s2", participant="alice")
    history.stream_record_end(stream_id="s1")
    recording_services.recording_stream_finish(
        stream_id="s1", file_path="weekly/s1.webm", size_bytes=10, duration_ms=10, failure=""
    )
    recording_services.recording_stream_finish(stream_id="s2", file_path="", size_bytes=0, duration_ms=0, failure="x")
    history.participant_record_leave(
        live_id="live-1", login="alice", session="s-alice", reason="leave", room_idle=False
    )
    history.room_finalize(live_id="live-1", name="weekly", record=False)
    real = {payload["type"]: payload for payload in payloads()}
    assert sorted(real) == sorted(EVENT_TYPES)

    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    documented = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)]
    assert sorted(example["type"] for example in documented) == sorted(EVENT_TYPES)
    for example in documented:
        assert _same_shape(_shape(example), _shape(real[example["type"]])), example["type"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", example["timestamp"])


def test_a_broken_receiver_never_fails_the_action(drains, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from webhooks import services

    def broken(event: object) -> list[str]:
        raise RuntimeError("the log is unwritable")

    monkeypatch.setattr(services, "webhook_event_queue", broken)
    join("alice", created=True)  # no exception reaches the caller
    assert Participant.objects.filter(login="alice", left_at__isnull=True).exists()
    # The join is recorded; only its webhooks are missing, and the log says why.
    assert "the log is unwritable" in caplog.text
