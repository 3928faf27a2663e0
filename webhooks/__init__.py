"""Signed webhooks: room, participant, stream and recording events posted to the application around us."""
