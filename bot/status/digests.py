"""Scheduled reports: the daily /prodstatus digest and the weekly ops report.

Each occurrence is a scheduled job keyed by its due time, so however many replicas run, the report is
recorded once (the job's lease) and posted once (the outbox item's key).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select

from bot import chat_ops
from bot.config import PrometheusQuery, ServiceConfig
from bot.db.models import ActionItem, Incident, ScheduledJob
from bot.deps import Deps
from bot.errors import AdapterError
from bot.status.prodstatus import build_report, local_state

DIGEST = "report.digest"
WEEKLY = "report.weekly"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SECTIONS = {  # figure kind -> words that mark a Prometheus query of that kind (by its name)
    "availability": ("availability", "uptime"),
    "performance": ("p50", "p95", "p99", "latency"),
    "errors": ("error",),
    "cost": ("cost",),
}


def next_daily(now: datetime, at: time) -> datetime:
    due = datetime.combine(now.astimezone(UTC).date(), at, tzinfo=UTC)
    return due if due > now else due + timedelta(days=1)


def next_weekly(now: datetime, weekday: str, at: time) -> datetime:
    due = next_daily(now, at)
    while WEEKDAYS[due.weekday()] != weekday:
        due += timedelta(days=1)
    return due


class Figure(BaseModel):
    service: str
    name: str
    value: str
    kind: str


class WeeklyReport(BaseModel):
    start: datetime
    end: datetime
    figures: dict[str, list[Figure]]
    incidents: list[Incident]
    by_severity: dict[str, int]
    deploys: list[Any]
    action_items: list[ActionItem]
    health: dict[str, str]


def _kind(query: PrometheusQuery) -> str | None:
    name = query.name.lower()
    return next((kind for kind, words in SECTIONS.items() if any(w in name for w in words)), None)


async def _figures(deps: Deps, services: list[ServiceConfig]) -> dict[str, list[Figure]]:
    figures: dict[str, list[Figure]] = {kind: [] for kind in SECTIONS}
    if deps.metrics is None:
        return figures
    metrics = deps.metrics
    wanted = [(s, q, kind) for s in services for q in s.prometheus if (kind := _kind(q))]

    async def one(service: ServiceConfig, query: PrometheusQuery, kind: str) -> Figure:
        try:
            sample = await metrics.instant(query=query.query, timeout=5.0)
            value = (
                "no data"
                if sample.value is None
                else f"{sample.value:.4g}{(' ' + query.unit) if query.unit else ''}"
            )
        except AdapterError as exc:
            value = f"unknown ({str(exc)[:80]})"
        return Figure(service=service.name, name=query.name, value=value, kind=kind)

    for figure in await asyncio.gather(*(one(s, q, k) for s, q, k in wanted)):
        figures[figure.kind].append(figure)
    return figures


async def weekly_report(deps: Deps) -> WeeklyReport:
    end = deps.clock.now()
    start = end - timedelta(days=7)
    async with deps.db.session() as session:
        incidents = list(
            (
                await session.execute(
                    select(Incident).where(col(Incident.declared_at) >= start).order_by(col(Incident.id))
                )
            ).scalars()
        )
        items = list(
            (
                await session.execute(
                    select(ActionItem).where(ActionItem.status == "open").order_by(col(ActionItem.due))
                )
            ).scalars()
        )
    state = await local_state(deps)
    report = await build_report(deps)
    return WeeklyReport(
        start=start,
        end=end,
        figures=await _figures(deps, list(deps.config.services)),
        incidents=incidents,
        by_severity=dict(sorted(Counter(i.severity for i in incidents).items())),
        deploys=[d for d in state.deploys if d.deployed_at >= start],
        action_items=items,
        health={s.name: s.level for s in report.services},
    )


async def digest(deps: Deps, job: ScheduledJob) -> None:
    """The daily /prodstatus digest, posted once per occurrence (its outbox key is the job's)."""
    channel = deps.config.reports.digest_channel
    if not channel:
        return
    report = await build_report(deps)
    msg = deps.renderer.message("prodstatus/report", report=report, detailed=len(report.services) <= 12)
    async with deps.db.session() as session:
        await chat_ops.post(session, key=f"{job.key}:post", channel=channel, message=msg)


async def weekly(deps: Deps, job: ScheduledJob) -> None:
    """The weekly ops report, posted once per occurrence."""
    channel = deps.config.reports.weekly_channel
    if not channel:
        return
    msg = deps.renderer.message("prodstatus/weekly", r=await weekly_report(deps))
    async with deps.db.session() as session:
        await chat_ops.post(session, key=f"{job.key}:post", channel=channel, message=msg)


def wire(deps: Deps) -> None:
    """The two reports as jobs; each configured one keeps its next occurrence scheduled."""
    reports = deps.config.reports
    deps.jobs.register(DIGEST, partial(digest, deps))
    deps.jobs.register(WEEKLY, partial(weekly, deps))
    if reports.digest_channel and reports.digest_time:
        at = reports.digest_time
        deps.jobs.recurring(DIGEST, lambda now: next_daily(now, at))
    if reports.weekly_channel:
        deps.jobs.recurring(WEEKLY, lambda now: next_weekly(now, reports.weekly_weekday, reports.weekly_time))
