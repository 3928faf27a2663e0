"""``manage.py loadtest``: simulated participants against a running server.

Publishers send generated video and audio with aiortc, subscribers play
every stream of their room and count what arrives, and everyone chats with
numbered messages; the report gives join time, first-frame latency, fps and
loss per subscriber, chat latency and loss, and every error the server
answered. A client of the server over its public protocol, and nothing of
the server imports it.
"""
