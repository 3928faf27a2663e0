"""The operator's live view in the admin: rooms now, media nodes, the task queue, the last 30 days."""
