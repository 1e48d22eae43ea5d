"""The ``/prodstatus`` judgement: pure functions of data, from figures to the report's level.

Everything here is a function of its arguments: no port, no database, no clock (``now`` is passed
in), so each rule can be tested on its own, with properties where it matters.

Findings. A query's value is judged against its warn/critical thresholds (inclusive) and against its
baseline (``baseline_warn_pct``/``baseline_critical_pct`` worse); the worse of the two wins, and no
value is no finding (``evaluate_query``).

Levels. A ``Finding`` is ``warn`` or ``critical``. A service is UNHEALTHY (critical finding or open
SEV1), DEGRADED (warn finding, open SEV2 or PagerDuty incident, non-operational Statuspage
component), UNKNOWN (one of its sources failed and nothing worse is known) or HEALTHY. A source
that fails or times out never lets the overall level be HEALTHY (``overall``).

Deploys. A finding is put down to a deploy only of its own service (and environment, when the
finding has one) within the correlation window before ``now``; a Statuspage finding never is
(``suspect_deploy``, ``correlate``, ``with_correlation``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from bot.config import PrometheusQuery
from bot.status.models import (
    DeployEvent,
    Finding,
    FindingLevel,
    Level,
    OpenIncident,
    ServiceStatus,
    SourceStatus,
)

_RANK: dict[Level, int] = {"HEALTHY": 0, "UNKNOWN": 1, "DEGRADED": 2, "UNHEALTHY": 3}


# --- Figures ----------------------------------------------------------------------------------------


def format_value(value: float, unit: str = "") -> str:
    """``412 ms``, ``5.2 %``, ``0.052``: three significant figures at most, unit after a space."""
    if math.isinf(value):
        number = "∞" if value > 0 else "-∞"
    elif abs(value) >= 100:
        number = f"{value:.0f}"
    elif abs(value) >= 1:
        number = f"{value:.1f}".removesuffix(".0")
    else:
        number = f"{value:.3g}"
    return f"{number} {unit}" if unit else number


def _pct(change: float) -> str:
    return f"{change:+.0f} %" if math.isfinite(change) else ("+∞ %" if change > 0 else "-∞ %")


# --- evaluate_query ---------------------------------------------------------------------------------


def _threshold(q: PrometheusQuery, value: float) -> tuple[FindingLevel, float] | None:
    def crossed(limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if q.direction == "above" else value <= limit

    if crossed(q.critical):
        assert q.critical is not None
        return "critical", q.critical
    if crossed(q.warn):
        assert q.warn is not None
        return "warn", q.warn
    return None


def _baseline(q: PrometheusQuery, value: float, baseline: float | None) -> tuple[FindingLevel, float] | None:
    if baseline is None or not math.isfinite(baseline) or baseline <= 0:
        return None
    change = (value - baseline) / baseline * 100
    worse_by = change if q.direction == "above" else -change
    if worse_by >= q.baseline_critical_pct:
        return "critical", change
    if worse_by >= q.baseline_warn_pct:
        return "warn", change
    return None


def evaluate_query(
    q: PrometheusQuery,
    value: float | None,
    baseline: float | None,
    *,
    service: str = "",
    runbook_url: str | None = None,
) -> Finding | None:
    """Judge one query's value against its warn/critical thresholds and its baseline.

    Thresholds are inclusive (``value >= warn`` for ``direction: above``, ``<=`` for ``below``). The
    baseline comparison raises a warn at ``baseline_warn_pct`` worse than the baseline and a critical
    at ``baseline_critical_pct``; it is skipped when the baseline is missing or not positive. The worse
    of the two wins. No value (no series, NaN) is no finding.
    """
    if value is None or math.isnan(value):
        return None
    by_threshold = _threshold(q, value)
    by_baseline = _baseline(q, value, baseline)
    levels = [hit[0] for hit in (by_threshold, by_baseline) if hit is not None]
    if not levels:
        return None
    level: FindingLevel = "critical" if "critical" in levels else "warn"
    side = "above" if q.direction == "above" else "below"
    notes: list[str] = []
    reasons: list[str] = []
    if by_threshold is not None:
        name, limit = by_threshold
        notes.append(f"{name} {format_value(limit, q.unit)}")
        reasons.append(f"at or {side} the {name} threshold of {format_value(limit, q.unit)}")
    change_pct: float | None = None
    if by_baseline is not None:
        assert baseline is not None
        change_pct = by_baseline[1]
        notes.append(f"{_pct(change_pct)} vs baseline {format_value(baseline, q.unit)}")
        reasons.append(f"{_pct(change_pct)} against the baseline of {format_value(baseline, q.unit)}")
    action = "check recent deploys and the dashboards"
    if runbook_url:
        action += ", then follow the runbook"
    return Finding(
        service=service,
        source=f"prometheus:{service}:{q.name}" if service else f"prometheus:{q.name}",
        level=level,
        metric=q.name,
        figure=f"{q.name} {format_value(value, q.unit)} ({'; '.join(notes)})",
        reason="; ".join(reasons),
        action=action,
        runbook_url=runbook_url,
        value=value,
        unit=q.unit,
        change_pct=change_pct,
    )


# --- correlate --------------------------------------------------------------------------------------


def as_utc(moment: datetime) -> datetime:
    """``moment`` with a time zone: a naive datetime is taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min ago" if rest else f"{hours} h ago"


def suspect_deploy(
    finding: Finding, deploys: Iterable[DeployEvent], now: datetime, window_minutes: int
) -> DeployEvent | None:
    """The most recent deploy of the finding's service (and environment, when the finding has one)
    within ``window_minutes`` before ``now``."""
    now = as_utc(now)
    earliest = now - timedelta(minutes=window_minutes)
    candidates = [
        d
        for d in deploys
        if d.service == finding.service
        and (finding.environment is None or d.environment == finding.environment)
        and earliest <= as_utc(d.deployed_at) <= now
    ]
    return max(candidates, key=lambda d: as_utc(d.deployed_at), default=None)


def correlate(finding: Finding, deploys: list[DeployEvent], now: datetime, window_minutes: int) -> str | None:
    """Name the deploy that may have caused ``finding``, e.g.
    ``"p95 up 40 % since v1.4.2 was deployed 25 min ago"`` (baseline findings) or
    ``"error rate 5.2 % since v1.4.2 was deployed 25 min ago"``; ``None`` when no deploy is in the window.
    """
    deploy = suspect_deploy(finding, deploys, now, window_minutes)
    if deploy is None:
        return None
    if finding.change_pct is not None and math.isfinite(finding.change_pct):
        direction = "up" if finding.change_pct >= 0 else "down"
        subject = f"{finding.metric} {direction} {abs(finding.change_pct):.0f} %"
    elif finding.value is not None:
        subject = f"{finding.metric} {format_value(finding.value, finding.unit)}"
    else:
        subject = f"{finding.metric} failing"
    return f"{subject} since {deploy.version} was deployed {_ago(as_utc(now) - as_utc(deploy.deployed_at))}"


def with_correlation(finding: Finding, deploys: list[DeployEvent], now: datetime, window: int) -> Finding:
    """``finding`` with the deploy that may have caused it named (``correlate``) and rolling that
    deploy back put first in its action; a Statuspage finding is left as it is."""
    if finding.source == "statuspage":
        return finding
    deploy = suspect_deploy(finding, deploys, now, window)
    if deploy is None:
        return finding
    rollback = f"consider rolling {finding.service} back from {deploy.version} ({deploy.environment})"
    return finding.model_copy(
        update={
            "correlation": correlate(finding, [deploy], now, window),
            "action": f"{rollback}; {finding.action}" if finding.action else rollback,
        }
    )


# --- overall ----------------------------------------------------------------------------------------


def _incident_level(incident: OpenIncident) -> Level:
    if incident.source == "pagerduty":
        return "DEGRADED"
    severity = incident.severity.lower()
    if severity == "sev1":
        return "UNHEALTHY"
    return "DEGRADED" if severity == "sev2" else "HEALTHY"


def _worst(levels: Iterable[Level]) -> Level:
    return max(levels, key=_RANK.__getitem__, default="HEALTHY")


def service_level(
    findings: Sequence[Finding], failed_sources: int = 0, incidents: Sequence[OpenIncident] = ()
) -> Level:
    """UNHEALTHY > DEGRADED > UNKNOWN > HEALTHY: what is known to be bad beats what could not be told."""
    levels: list[Level] = ["UNHEALTHY" if f.level == "critical" else "DEGRADED" for f in findings]
    levels += [_incident_level(i) for i in incidents]
    if failed_sources:
        levels.append("UNKNOWN")
    return _worst(levels)


def overall(
    services: Sequence[ServiceStatus],
    sources: Sequence[SourceStatus],
    incidents: Sequence[OpenIncident] = (),
) -> Level:
    """The report's level.

    UNHEALTHY: any critical finding, any UNHEALTHY service or any open SEV1.
    UNKNOWN: every source failed (nothing could be checked).
    DEGRADED: any warn finding (Statuspage components that are not operational are warn findings),
    any failed source, any DEGRADED/UNKNOWN service, an open SEV2 or PagerDuty incident.
    HEALTHY otherwise. A failed source therefore never allows HEALTHY.
    """
    findings = [f for s in services for f in s.findings]
    service_levels = [s.level for s in services]
    incident_levels = [_incident_level(i) for i in incidents]
    if (
        any(f.level == "critical" for f in findings)
        or "UNHEALTHY" in service_levels
        or "UNHEALTHY" in incident_levels
    ):
        return "UNHEALTHY"
    if sources and not any(s.ok for s in sources):
        return "UNKNOWN"
    if (
        findings
        or not all(s.ok for s in sources)
        or any(level in ("DEGRADED", "UNKNOWN") for level in service_levels)
        or "DEGRADED" in incident_levels
    ):
        return "DEGRADED"
    return "HEALTHY"
