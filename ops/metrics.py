"""The Prometheus metrics of the server, in one place.

Every process counts into files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode; settings set the variable before
anything imports this module), and ``/metrics`` on any web process sums
them: daphne processes, media nodes and Celery workers alike. Gauges of
what a process holds are ``livesum``: a dead process's share disappears.

What lives in the database (rooms by status, participants present) is read
when scraped (``conference_site.monitoring``), not counted here.

Nothing on the per-packet forwarding path touches these: media traffic is
read from aiortc's own counters and added here once per node heartbeat
(``rooms.media.metering``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --- web processes -----------------------------------------------------------------

WEBSOCKET_CONNECTIONS = Gauge(
    "conference_websocket_connections", "WebSocket connections open", multiprocess_mode="livesum"
)
SESSIONS = Gauge("conference_sessions", "Sessions connected (session.connect done)", multiprocess_mode="livesum")
RATE_LIMIT_REFUSALS = Counter(
    "conference_rate_limit_refusals", "Requests refused by a rate or count limit, by the limit", ["limit"]
)
CHAT_DELIVERIES = Counter("conference_chat_deliveries", "Chat messages handed to a member's WebSocket")
CHAT_DELIVERY_SECONDS = Histogram(
    "conference_chat_delivery_seconds", "From a chat message's acceptance to its hand-over to a member's WebSocket",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# --- media nodes ----------------------------------------------------------------------

STREAMS = Gauge(
    "conference_streams", "Tracks published on media nodes, by kind and codec", ["kind", "codec"],
    multiprocess_mode="livesum",
)
SUBSCRIBER_LEGS = Gauge(
    "conference_subscriber_legs", "Tracks forwarded to subscribers, by kind", ["kind"], multiprocess_mode="livesum"
)
RTP_PACKETS = Counter(
    "conference_rtp_packets", "RTP packets through media nodes, in (from publishers) and out", ["direction"]
)
RTP_BYTES = Counter(
    "conference_rtp_bytes", "Media payload bytes through media nodes, in (from publishers) and out", ["direction"]
)
KEYFRAME_REQUESTS = Counter("conference_keyframe_requests", "Picture loss indications sent to publishers")
FORWARD_DROPS = Counter(
    "conference_forward_dropped_frames", "Frames dropped for subscribers that fell behind, by kind", ["kind"]
)
FIRST_FRAME_SECONDS = Histogram(
    "conference_first_frame_seconds", "From a subscriber's answer to the first frame forwarded to it",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
RECORDER_BYTES = Counter("conference_recorder_bytes_written", "Bytes of stream records written by media nodes")
NACKS = Counter(
    "conference_nacks", "NACK messages received from subscribers and sent to publishers", ["direction"]
)
NACKED_PACKETS = Counter(
    "conference_nacked_packets", "RTP packets named lost by those NACKs", ["direction"]
)
FORWARD_WAITING_LEGS = Gauge(
    "conference_forward_waiting_legs",
    "Subscriber legs not forwarding yet (connection not up, video awaiting a keyframe), by kind (each heartbeat)",
    ["kind"], multiprocess_mode="livesum",
)
RECORDER_QUEUE_FRAMES = Gauge(
    "conference_recorder_queue_frames", "Frames waiting for the recorders' writer threads (each heartbeat)",
    multiprocess_mode="livesum",
)

# --- Celery workers -------------------------------------------------------------------

MIX_SECONDS = Histogram(
    "conference_mix_duration_seconds", "Time to mix a room's records into one file",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
)
MIX_REALTIME_FACTOR = Histogram(
    "conference_mix_realtime_factor", "Seconds of media mixed per second of a worker's time, one per mix",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
WEBHOOK_DELIVERIES = Counter(
    "conference_webhook_deliveries", "Webhook delivery attempts, by outcome", ["outcome"]
)
