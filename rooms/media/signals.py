"""Hooks into a media node's life, for other apps to connect to."""

from django.dispatch import Signal

# Sent by a node on its event loop when it accepts a publish, before any of
# the stream's media arrives. Arguments: node (str, the node's channel),
# command (rooms.media.messages.PublishCommand), media
# (rooms.media.sink.PublishedMedia), record_status
# (rooms.media.sink.RecordStatusReporter: tells the publisher, on the event
# loop, that the stream's record did not start or stopped). A receiver must
# be synchronous and may return a rooms.media.sink.StreamSink, which the
# node closes when the stream ends or the node shuts down.
stream_started = Signal()
