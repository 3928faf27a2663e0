"""Chat traffic with numbered messages: who sent what when, who got it when.

Every message's text carries a run-wide sequence number. The sender notes
the send time (this process's monotonic clock, so no clock of the server or
of another host enters the latency) and, once the server accepted it, who
else was in the room; each receipt is matched by the number. Loss is
deliveries expected (each accepted message, to each other participant)
that never came.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from loadtest.report import distribution

TEXT_RE = re.compile(r"loadtest chat #(\d+)")


def chat_text(sequence: int, room: str, sender: str) -> str:
    return f"loadtest chat #{sequence} from {sender} in {room}"


def sequence_of(text: str) -> int | None:
    match = TEXT_RE.match(text)
    return int(match.group(1)) if match else None


@dataclass
class SentMessage:
    room: str
    sender: str
    sent_at: float
    accepted: bool = False
    # The participants who should get it: everyone else in the room when it was accepted.
    recipients: frozenset[str] = frozenset()
    received_by: dict[str, float] = field(default_factory=dict)


class ChatLedger:
    def __init__(self) -> None:
        self._sequence = itertools.count(1)
        self.messages: dict[int, SentMessage] = {}
        self.refused = 0
        self.duplicates = 0
        self.strays = 0

    def sent(self, room: str, sender: str, at: float) -> tuple[int, str]:
        """A new message: its number and its text."""
        sequence = next(self._sequence)
        self.messages[sequence] = SentMessage(room, sender, at)
        return sequence, chat_text(sequence, room, sender)

    def accepted(self, sequence: int, recipients: frozenset[str]) -> None:
        message = self.messages[sequence]
        message.accepted = True
        message.recipients = recipients - {message.sender}

    def refused_by_server(self, sequence: int) -> None:
        self.refused += 1
        self.messages.pop(sequence, None)

    def received(self, receiver: str, text: str, at: float) -> None:
        sequence = sequence_of(text)
        message = self.messages.get(sequence) if sequence is not None else None
        if message is None:
            self.strays += 1  # not ours (another run's, or history)
            return
        if receiver == message.sender:
            return  # the sender's own copy: delivery to others is what is measured
        if receiver in message.received_by:
            self.duplicates += 1
            return
        message.received_by[receiver] = at

    @property
    def expected(self) -> int:
        return sum(len(m.recipients) for m in self.messages.values() if m.accepted)

    @property
    def delivered(self) -> int:
        return sum(len(m.received_by.keys() & m.recipients) for m in self.messages.values() if m.accepted)

    def all_delivered(self) -> bool:
        return self.delivered >= self.expected

    def summary(self) -> dict[str, object]:
        accepted = [m for m in self.messages.values() if m.accepted]
        latencies = [
            (at - m.sent_at) * 1000 for m in accepted for who, at in m.received_by.items() if who in m.recipients
        ]
        expected, delivered = self.expected, self.delivered
        lost = expected - delivered
        return {
            "sent": len(self.messages) + self.refused,
            "accepted": len(accepted),
            "refused": self.refused,
            "unanswered": len(self.messages) - len(accepted),
            "expected_deliveries": expected,
            "delivered": delivered,
            "lost": lost,
            "loss_percent": round(100 * lost / expected, 3) if expected else 0.0,
            "duplicates": self.duplicates,
            "latency_ms": distribution(latencies),
        }
