"""CHAT_RETENTION_DAYS driven by Celery beat: a real worker with beat on
Redis and PostgreSQL deletes exactly the expired messages and writes them to
the audit trail, with nobody calling the task."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.processes import ServerProcess, manage

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
SEED = """
import time
from rooms.models import ChatMessage, Room
room = Room.objects.create(name="beat-retention", live_id="live-beat-retention", status=Room.Status.FINALIZED)
now = int(time.time() * 1000)
for public_id, age_days in (("old-1", 3), ("old-2", 40), ("fresh", 0.5)):
    ChatMessage.objects.create(room=room, public_id=public_id, sender="alice", text=public_id,
                               sent_at_ms=now - round(age_days * 86_400_000))
"""
READ = """
import json
from audit.models import AuditEntry
from rooms.models import ChatMessage
print(json.dumps({
    "kept": sorted(ChatMessage.objects.filter(room__name="beat-retention").values_list("public_id", flat=True)),
    "audited": [
        entry.detail["messages"] for entry in AuditEntry.objects.filter(action="chat.delete", room="beat-retention")
    ],
}))
"""


def test_beat_deletes_the_expired_chat_and_audits_it(start_server, server_env) -> None:  # type: ignore[no-untyped-def]
    manage(server_env, "shell", "-c", SEED)
    worker: ServerProcess = start_server(
        "celery", "worker", beat=True, env={"CHAT_RETENTION_DAYS": 1, "RETENTION_INTERVAL_S": 1},
    )
    deadline = time.monotonic() + 60
    # The worker logs each run of the task beat sent it.
    while re.search(r"Task rooms\.tasks\.chat_retention\[[^\]]+\] succeeded in", worker.log()) is None:
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)
    state = json.loads(manage(server_env, "shell", "-c", READ).strip().splitlines()[-1])
    assert state["kept"] == ["fresh"]
    assert sorted(public_id for messages in state["audited"] for public_id in messages) == ["old-1", "old-2"]
