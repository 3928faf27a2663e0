"""deploy/grafana/conference.json draws only metrics the server exposes, and all of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, Metric

from conference_site.broker_queue import BrokerQueueCollector
from conference_site.monitoring import DatabaseCollector
from ops import metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "conference.json"


def _families() -> list[Metric]:
    assert metrics.WEBSOCKET_CONNECTIONS is not None  # the definitions are registered on import
    return [family for family in REGISTRY.collect() if family.name.startswith("conference_")]


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _series_names(family: Metric) -> set[str]:
    """The series names a family has in the exposition (labelled ones have no samples until used)."""
    return {family.name + suffix for suffix in SUFFIXES[family.type]}


def test_the_dashboard_queries_only_exposed_series(db) -> None:  # type: ignore[no-untyped-def]
    families = _families() + list(DatabaseCollector().collect()) + list(BrokerQueueCollector().describe())
    exposed = set().union(*(_series_names(family) for family in families))
    assert exposed >= {sample.name for family in families for sample in family.samples
                      if not sample.name.endswith("_created")}
    used = {name for expression in _expressions() for name in re.findall(r"\bconference_[a-z_]+", expression)}
    assert used, "no query names a metric"
    assert used <= exposed, used - exposed


def test_every_metric_has_a_panel(db) -> None:  # type: ignore[no-untyped-def]
    families = _families() + list(DatabaseCollector().collect()) + list(BrokerQueueCollector().describe())
    used = " ".join(_expressions())
    named = set(re.findall(r"\bconference_[a-z_]+", used))
    missing = {family.name for family in families if not _series_names(family) & named}
    assert not missing
