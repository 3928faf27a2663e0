"""Signals other apps listen to."""

from django.dispatch import Signal

# Sent once per room, after the transaction that finalized it commits.
# Arguments: room (rooms.models.Room).
room_finalized = Signal()
