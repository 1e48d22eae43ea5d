"""Prometheus metrics, one registry per app (so tests can build several apps in one process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process's own figures: resident memory, CPU, open files (process_*), and the garbage
        # collector's passes by generation (python_gc_*; start-up turns it off, then on again).
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._by_kind: dict[str, tuple[Counter, Histogram]] = {}
        self.requests = Counter(
            "cmdcenter_requests_total", "Slack requests received", ["kind"], registry=self.registry
        )
        self.ack_seconds = Histogram(
            "cmdcenter_ack_seconds",
            "Time from receiving a Slack request to answering it",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0),
            registry=self.registry,
        )
        self.errors = Counter(
            "cmdcenter_errors_total",
            "Errors by kind (user, unavailable, adapter, unexpected)",
            ["kind"],
            registry=self.registry,
        )
        self.commands = Counter(
            "cmdcenter_commands_total",
            "Slash commands by command and outcome",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "cmdcenter_outbox_pending", "Outbox items waiting for delivery", registry=self.registry
        )
        self.outbox_oldest = Gauge(
            "cmdcenter_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox item",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "cmdcenter_outbox_deliveries_total",
            "Outbox deliveries by target and result",
            ["target", "result"],
            registry=self.registry,
        )

    def request_metrics(self, kind: str) -> tuple[Counter, Histogram]:
        """The request counter and ack histogram of one kind of Slack request, looked up once (a
        ``labels()`` lookup on every request is a measurable part of an ack's CPU)."""
        found = self._by_kind.get(kind)
        if found is None:
            found = self._by_kind[kind] = (self.requests.labels(kind), self.ack_seconds.labels(kind))
        return found

    def render(self) -> bytes:
        return generate_latest(self.registry)
