"""The Celery app; settings come from Django's, prefixed ``CELERY_``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")

app = Celery("conference_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
