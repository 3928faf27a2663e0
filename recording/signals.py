"""Signals other apps listen to."""

from django.dispatch import Signal

# Sent by ``recording.services`` after the transaction that settled a
# recording commits; a receiver's error is logged, never raised to the
# service. Arguments: recording (recording.models.Recording).

# The recording's file can be downloaded: READY, or PARTIAL (a record whose
# media node stopped: playable up to where it stopped).
recording_ready = Signal()

# The recording has no file to offer: FAILED, with its failure_reason.
recording_failed = Signal()
