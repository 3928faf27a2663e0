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
