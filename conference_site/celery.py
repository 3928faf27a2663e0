"""The Celery app; settings come from Django's, prefixed ``CELERY_``.

Its processes log as every other one does (``settings.LOGGING``, in
``LOG_FORMAT``): Celery leaves logging alone when the ``setup_logging``
signal has a receiver. With ``LOG_FORMAT=json`` the worker and beat skip
their start-up banners, which are printed text, not log lines.
"""

import logging.config
import os
from typing import Any

from celery import Celery, signals
from celery.apps.beat import Beat
from celery.apps.worker import Worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conference_site.settings")

app = Celery("conference_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _json_logs() -> bool:
    from django.conf import settings

    return bool(settings.LOG_FORMAT == "json")


@signals.setup_logging.connect
def logging_setup(loglevel: int | str | None = None, **kwargs: Any) -> None:
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    # Warnings too (the worker's one about running as root comes before Django sets up).
    logging.captureWarnings(True)
    if loglevel:
        # --loglevel on the command line (manage.py serve asks for WARNING).
        logging.getLogger().setLevel(loglevel)


@signals.task_prerun.connect
def log_context_reset(**kwargs: Any) -> None:
    # A worker runs task after task in one context: the last one's room is not this one's.
    from ops.logs import log_context_clear

    log_context_clear()


class QuietInJsonWorker(Worker):
    def on_before_init(self, quiet: bool = False, **kwargs: Any) -> None:
        # Celery sets up logging only later (setup_logging), after the
        # privilege check, whose warning would be a bare text line.
        logging_setup()
        super().on_before_init(quiet=quiet or _json_logs(), **kwargs)

    def install_platform_tweaks(self, worker: Any) -> None:
        super().install_platform_tweaks(worker)
        if _json_logs():
            # The SIGTERM and SIGQUIT handlers print "worker: Warm shutdown"
            # straight to standard output: the same handlers, without it.
            from celery.apps import worker as worker_program

            worker_program.install_worker_term_handler(worker, verbose=False)
            worker_program.install_worker_term_hard_handler(worker, verbose=False)


class QuietInJsonBeat(Beat):
    def __init__(self, *args: Any, quiet: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, quiet=quiet or _json_logs(), **kwargs)


app.Worker = app.subclass_with_self(QuietInJsonWorker)
app.Beat = app.subclass_with_self(QuietInJsonBeat)
