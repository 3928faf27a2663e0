"""Signals other apps listen to."""

from django.dispatch import Signal

# Sent once per room, after the transaction that finalized it commits.
# Arguments: room (rooms.models.Room).
room_finalized = Signal()

# Sent (awaited with ``asend``) after the streams of media nodes found dead
# were ended, and when a process whose live state starts empty begins (every
# node of its earlier run is dead). Arguments: alive (set[str]): the channels
# of the nodes still alive; every other node is dead.
media_nodes_dead = Signal()

# Sent while a room.state reply is built for a session allowed the room's
# records; a receiver returns the relative URL of the records page with a
# grant for this room and identity. Arguments: room_live_id (str), identity
# (str, the login).
room_records_url = Signal()

# The facts below are sent by ``rooms.history`` after the transaction that
# recorded them commits, so a receiver sees the rows. A receiver's error is
# logged and never undoes or fails the action.

# A room's first row was written. Arguments: room (rooms.models.Room).
room_started = Signal()

# A participant's row was written on join. Arguments: participant (rooms.models.Participant).
participant_joined = Signal()

# A participant's row was closed: leave, drop, or the room's finalization.
# Arguments: participant (rooms.models.Participant, with left_at and leave_reason).
participant_left = Signal()

# A stream's first media arrived and its row was written. Arguments: stream (rooms.models.Stream).
stream_published = Signal()

# A stream's row was closed. Arguments: stream (rooms.models.Stream, with ended_at).
stream_unpublished = Signal()

# Sent (synchronously) by ``rooms.retention`` before it deletes the history
# of rooms past ROOM_HISTORY_RETENTION_DAYS; a receiver returns the ids,
# among ``room_ids``, of rooms whose rows it still needs (their records are
# kept longer): those rooms stay. Arguments: room_ids (list[int]).
room_history_expiring = Signal()
