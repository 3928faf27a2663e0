"""``/healthz``, ``/readyz`` and ``/metrics``: what probes and Prometheus read.

``/healthz`` answers from the process alone (is it serving at all);
``/readyz`` asks every dependency (``conference_site.health``);
``/metrics`` is the sum of every process's counters (``ops.multiprocess``)
plus what the database and the Celery broker say now, for a bearer ``METRICS_TOKEN`` or a
client address in ``METRICS_ALLOW``.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conference_site import health
from conference_site.broker_queue import BrokerQueueCollector
from ops.multiprocess import dead_processes_forget, exposition
from rooms.models import Participant, Room


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
async def readyz(request: HttpRequest) -> HttpResponse:
    checks = await health.readiness()
    failed = sorted(name for name, outcome in checks.items() if outcome != "ok")
    body = {"status": "fail" if failed else "ok", "failed": failed, "checks": checks}
    return JsonResponse(body, status=503 if failed else 200)


class DatabaseCollector(Collector):
    """Rooms by status and participants present, as the database has them when scraped."""

    def collect(self) -> Iterator[Metric]:
        rooms = GaugeMetricFamily("conference_rooms", "Rooms, by status", labels=["status"])
        counts = dict(Room.objects.values_list("status").annotate(count=Count("id")).values_list("status", "count"))
        for status in Room.Status.values:
            rooms.add_metric([status], counts.get(status, 0))
        yield rooms
        present = Participant.objects.filter(left_at__isnull=True).exclude(room__status=Room.Status.FINALIZED).count()
        yield GaugeMetricFamily("conference_participants", "Participants in rooms now", value=present)


def _bearer_token_matches(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())


def _address_allowed(request: HttpRequest) -> bool:
    # A request a proxy forwarded comes from the proxy's (often loopback)
    # address: only the token lets those through.
    if "X-Forwarded-For" in request.headers or "X-Real-Ip" in request.headers:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOW:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not (_bearer_token_matches(request) or _address_allowed(request)):
        response = HttpResponse("metrics need a bearer METRICS_TOKEN or an address in METRICS_ALLOW\n", status=403)
        response["WWW-Authenticate"] = "Bearer"
        return response
    # A process killed since the last scrape holds no connections any more.
    dead_processes_forget()
    return HttpResponse(exposition(DatabaseCollector(), BrokerQueueCollector()), content_type=CONTENT_TYPE_LATEST)
