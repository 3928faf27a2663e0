"""Contexts for tasks that outlive whatever started them."""

from __future__ import annotations

import contextvars

from ops.logs import log_context_bind, log_context_fields


def context_detached() -> contextvars.Context:
    """A fresh context carrying only the log context.

    A task created in a request (or under ``async_to_sync``) copies the
    request's context, and with it asgiref's choice of thread for
    thread-sensitive database calls: that thread is gone once the request
    is over, and a long-lived task (the media node, a WHIP session) would
    fail its next database call or get a thread of its own. A detached task
    uses the process's one shared thread, as a connection's task does.
    """
    fields = dict(log_context_fields())
    context = contextvars.Context()
    context.run(log_context_bind, **fields)
    return context
