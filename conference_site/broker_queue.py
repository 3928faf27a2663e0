"""``conference_celery_queue_length``: tasks waiting in the Celery broker, read when scraped.

Asked of the broker itself through kombu, with the app's own connection
settings (its key prefix on Redis, its folder for the filesystem broker):
a list's length on Redis, the message files in the folder for the
filesystem broker. Tasks a worker has taken and not yet acknowledged are
not waiting, so they are not counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Every task goes to Celery's default queue (no task_routes).
QUEUES = ("celery",)


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue of ``QUEUES``."""
    from conference_site.celery import app

    lengths = {}
    with app.connection_for_read(connect_timeout=settings.READYZ_CHECK_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1)
        with connection.channel() as channel:
            for queue in QUEUES:
                # Not passive: an empty Redis queue has no key, and a passive
                # declare would call it missing. Declaring the default queue
                # is what every worker does anyway.
                lengths[queue] = int(channel.queue_declare(queue=queue).message_count)
    return lengths


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "conference_celery_queue_length", "Tasks waiting in the Celery broker, by queue", labels=["queue"]
    )


class BrokerQueueCollector(Collector):
    def describe(self) -> Iterator[Metric]:
        """What ``collect`` yields, without asking the broker."""
        yield _family()

    def collect(self) -> Iterator[Metric]:
        try:
            lengths = queue_lengths()
        except Exception as error:
            # The scrape goes on without it; /readyz names the broker.
            logger.warning("reading the Celery queue lengths failed: %r", error)
            return
        family = _family()
        for queue, length in lengths.items():
            family.add_metric([queue], length)
        yield family
