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

# Sent while a room.state reply is built; a receiver returns the relative URL
# of the room's records page. Arguments: room_live_id (str).
room_records_url = Signal()
