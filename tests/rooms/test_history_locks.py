"""Lock order of the history writes on PostgreSQL (found by the protocol fuzz).

A drop recorded in one process (participant row, then room row) while the
room's last leave finalizes it in another (room row, then participant rows)
deadlocked: PostgreSQL aborted one of the two and its write was lost. The
test replays that interleaving with a second real connection.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from rooms import history
from rooms.models import Participant, Room

pytestmark = pytest.mark.django_db(transaction=True)


def _postgres_url() -> str:
    params = connection.get_connection_params()
    keys = {"host", "port", "user", "password", "dbname"}
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if k in keys})


def test_a_leave_recorded_during_a_finalization_takes_the_room_row_first() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    room = Room.objects.create(live_id="lock-order", name="lock-order")
    Participant.objects.create(room=room, login="alice", session="s1")
    errors: list[BaseException] = []

    def record_leave() -> None:
        try:
            history.participant_record_leave(
                live_id="lock-order", login="alice", session="s1", reason="disconnect", room_idle=True
            )
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    with psycopg.connect(_postgres_url()) as finalizer:
        # What room_finalize does first: update the room row, holding its lock.
        finalizer.execute("SET lock_timeout = '5s'")
        finalizer.execute("UPDATE rooms_room SET status = 'FINALIZED' WHERE id = %s", (room.pk,))
        leave = threading.Thread(target=record_leave)
        leave.start()
        deadline = time.monotonic() + 10
        with psycopg.connect(_postgres_url(), autocommit=True) as watcher:
            while not watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the leave never waited for the room row"
                time.sleep(0.02)
        # Then it closes the participant rows: this must not wait for the leave.
        finalizer.execute(
            "UPDATE rooms_participant SET left_at = now(), leave_reason = 'timeout' WHERE room_id = %s", (room.pk,)
        )
        finalizer.commit()
    leave.join(10)
    assert not leave.is_alive() and errors == []
    participant = Participant.objects.get(room=room)
    assert participant.left_at is not None and participant.leave_reason == "timeout"
