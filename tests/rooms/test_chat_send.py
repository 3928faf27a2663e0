"""A public chat message's live-state steps in one (rooms.live.chat_send):
in real Redis (one Lua script) and in memory, the same outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from rooms.history import ChatRecord
from rooms.history_outbox import chat_entry, entry_text
from rooms.live.chat_send import ChatSend, Outcome, entry_with_seq
from rooms.live.context import process_context

backends = pytest.mark.parametrize("backend", ["memory", "redis"])


@pytest.fixture
def live(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "redis":
        request.getfixturevalue("redis_live_state")


def chat_request(epoch: str, text: str, *, rate: float = 0.0, burst: int = 0) -> ChatSend:
    arguments = chat_entry(ChatRecord(
        live_id="live-1", public_id=f"id-{text}", seq=0, sender="alice", recipients=None, text=text,
        sent_at_ms=1767261605123,
    ))
    del arguments["seq"]
    return ChatSend(
        room="r", epoch=epoch, bucket="chat:identity:alice", rate=rate, burst=burst,
        message_json=json.dumps({"id": f"id-{text}", "text": text}), history_length=2,
        entry=entry_text("chat_message", **arguments),
    )


async def joined_room() -> str:
    context = process_context()
    epoch = await context.live_state.epoch_ensure("epoch-1")
    await context.live_state.room_join(
        name="r", login="alice", sid="s1", new_room_id="live-1", record=False, max_participants=16, now_ms=0,
    )
    return epoch


@backends
@pytest.mark.usefixtures("live")
async def test_a_sent_message_is_counted_kept_and_queued_for_the_archive_with_its_count() -> None:
    context = process_context()
    epoch = await joined_room()
    before = await context.live_state.room_event_seq("r")
    sent = [await context.chat_send.send(chat_request(epoch, text)) for text in ("one", "two", "three 👋")]
    assert [s.outcome for s in sent] == [Outcome.SENT] * 3
    assert [s.seq for s in sent] == [before + 1, before + 2, before + 3]
    entries = [json.loads(entry) for entry in await context.history_outbox.store.head(100)][-3:]
    assert [(e["write"], e["arguments"]["seq"], e["arguments"]["text"]) for e in entries] == [
        ("chat_message", before + 1, "one"),
        ("chat_message", before + 2, "two"),
        ("chat_message", before + 3, "three 👋"),
    ]
    # The archive's own record, count included, from what was queued.
    assert ChatRecord(**entries[0]["arguments"]).sent_at_ms == 1767261605123
    # The recent history keeps the last two (history_length), as a joiner sees it.
    bob = await context.live_state.room_join(
        name="r", login="bob", sid="s2", new_room_id="unused", record=False, max_participants=16, now_ms=0,
    )
    assert [json.loads(m)["text"] for m in bob.history] == ["two", "three 👋"]


@backends
@pytest.mark.usefixtures("live")
async def test_another_epoch_changes_nothing() -> None:
    context = process_context()
    epoch = await joined_room()
    first = await context.chat_send.send(chat_request(epoch, "first"))
    queued = await context.history_outbox.store.length()
    sent = await context.chat_send.send(chat_request("an-epoch-that-was-lost", "lost"))
    assert sent.outcome is Outcome.EPOCH_CHANGED
    assert await context.history_outbox.store.length() == queued
    # Nothing was counted in between.
    assert (await context.chat_send.send(chat_request(epoch, "next"))).seq == first.seq + 1


@backends
@pytest.mark.usefixtures("live")
async def test_an_empty_identity_bucket_refuses_and_changes_nothing() -> None:
    context = process_context()
    epoch = await joined_room()
    first = await context.chat_send.send(chat_request(epoch, "a", rate=0.01, burst=1))
    queued = await context.history_outbox.store.length()
    second = await context.chat_send.send(chat_request(epoch, "b", rate=0.01, burst=1))
    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.RATE_LIMITED)
    assert await context.history_outbox.store.length() == queued
    # Nothing was counted; without a limit the next one goes out.
    assert (await context.chat_send.send(chat_request(epoch, "c"))).seq == first.seq + 1


def test_the_count_goes_into_the_entrys_arguments() -> None:
    entry = entry_text("chat_message", text='a "quoted" }} text')
    assert json.loads(entry_with_seq(entry, 42))["arguments"] == {"text": 'a "quoted" }} text', "seq": 42}
    with pytest.raises(ValueError):
        entry_with_seq('{"arguments": []}', 1)


@pytest.mark.usefixtures("redis_live_state")
async def test_the_script_publishes_the_event_to_the_room_in_count_order_as_the_layer_would() -> None:
    from channels.layers import get_channel_layer

    from rooms import events
    from rooms.server_messages import ChatMessage, RoomMessageEvent

    context = process_context()
    epoch = await joined_room()
    layer = get_channel_layer()
    assert layer is not None
    member = await layer.new_channel()
    await events.room_group_add("r", member)
    sent_seqs = []
    for text in ("первое", "二番目 👋"):
        message = ChatMessage(id=f"id-{text}", sender="alice", to=None, text=text, ts=1)
        event = RoomMessageEvent(room="r", message=message)
        publication = events.room_event_publication("r", event)
        assert publication is not None
        channel, head = publication.channel, publication.head
        request = dataclasses.replace(chat_request(epoch, text), publish_channel=channel, publish_head=head)
        sent = await context.chat_send.send(request)
        assert sent.published
        sent_seqs.append(sent.seq)
        # What the member receives is exactly what the layer's own send of the event would carry.
        assert await asyncio.wait_for(layer.receive(member), 5) == events.room_event_message(event, seq=sent.seq)
    assert sent_seqs[1] == sent_seqs[0] + 1
    # Refused, nothing is published.
    refused = dataclasses.replace(chat_request("another-epoch", "lost"), publish_channel=channel, publish_head=head)
    assert not (await context.chat_send.send(refused)).published
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(member), 0.3)


async def test_without_the_redis_layer_the_caller_sends_the_event() -> None:
    from rooms import events
    from rooms.server_messages import ChatMessage, RoomMessageEvent

    event = RoomMessageEvent(room="r", message=ChatMessage(id="x", sender="alice", to=None, text="hi", ts=1))
    assert events.room_event_publication("r", event) is None  # the in-memory layer
    sent = await process_context().chat_send.send(
        dataclasses.replace(chat_request(await joined_room(), "hi"), publish_channel="ignored", publish_head=b"x")
    )
    assert (sent.outcome, sent.published) == (Outcome.SENT, False)
