"""Chat delivery bookkeeping: numbered messages, latency from send to each receipt, loss."""

from __future__ import annotations

from loadtest.chat import ChatLedger, chat_text, sequence_of


def test_the_number_travels_in_the_text() -> None:
    text = chat_text(42, "room-1", "alice")
    assert sequence_of(text) == 42
    assert sequence_of("hello") is None


def test_latency_and_loss_per_recipient() -> None:
    ledger = ChatLedger()
    first, text1 = ledger.sent("r", "alice", at=10.0)
    second, text2 = ledger.sent("r", "bob", at=11.0)
    ledger.accepted(first, frozenset({"alice", "bob", "carol"}))  # the sender is not its own recipient
    ledger.accepted(second, frozenset({"alice", "bob", "carol"}))
    ledger.received("alice", text1, at=10.5)  # own copy: not counted
    ledger.received("bob", text1, at=10.010)
    ledger.received("carol", text1, at=10.030)
    ledger.received("carol", text1, at=10.040)  # again: a duplicate, not a second delivery
    ledger.received("alice", text2, at=11.020)  # carol never gets the second
    ledger.received("dave", "loadtest chat #999 from x in y", at=12.0)  # not this run's
    assert (ledger.expected, ledger.delivered) == (4, 3)
    assert not ledger.all_delivered()
    summary = ledger.summary()
    assert summary["sent"] == 2 and summary["accepted"] == 2
    assert summary["lost"] == 1
    assert summary["loss_percent"] == 25.0
    assert summary["duplicates"] == 1
    assert ledger.strays == 1
    latency = summary["latency_ms"]
    assert isinstance(latency, dict)
    assert latency["count"] == 3
    assert latency["min"] == 10.0 and latency["max"] == 30.0 and latency["p50"] == 20.0


def test_refused_and_unanswered_messages() -> None:
    ledger = ChatLedger()
    refused, _ = ledger.sent("r", "alice", at=1.0)
    ledger.refused_by_server(refused)
    ledger.sent("r", "alice", at=2.0)  # no answer yet
    summary = ledger.summary()
    assert summary["sent"] == 2
    assert summary["refused"] == 1
    assert summary["unanswered"] == 1
    assert summary["expected_deliveries"] == 0
    assert summary["loss_percent"] == 0.0
    assert summary["latency_ms"] is None
