"""Status update reminders, scheduled in the database (they survive restarts and fire once).

While an incident is open, if no status update was posted within its severity's cadence, the
commander is reminded in the channel once per missed interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot import chat_ops, jobs
from bot.db.models import Incident, ScheduledJob
from bot.deps import Deps

REMIND = "incident.remind"


def _prefix(incident: Incident) -> str:
    return f"inc{incident.id}:remind:"


def cadence(deps: Deps, incident: Incident) -> timedelta | None:
    minutes = deps.config.policy(incident.severity).update_minutes
    return timedelta(minutes=minutes) if minutes else None


async def schedule_next(session: AsyncSession, deps: Deps, incident: Incident, *, after: datetime) -> None:
    every = cadence(deps, incident)
    if every is None or not incident.is_open:
        return
    due = after + every
    await jobs.schedule(
        session,
        key=f"{_prefix(incident)}{int(due.timestamp())}",
        kind=REMIND,
        due_at=due,
        payload={"incident_id": incident.id, "due": due.isoformat()},
    )


async def reschedule(session: AsyncSession, deps: Deps, incident: Incident, *, after: datetime) -> None:
    await jobs.cancel(session, key_prefix=_prefix(incident))
    await schedule_next(session, deps, incident, after=after)


async def cancel_all(session: AsyncSession, incident: Incident) -> None:
    await jobs.cancel(session, key_prefix=_prefix(incident))


async def remind(deps: Deps, job: ScheduledJob) -> None:
    """Remind the commander, unless an update was posted since the reminder was scheduled."""
    due = datetime.fromisoformat(job.payload["due"])
    async with deps.db.session() as session:
        incident = await session.get(Incident, job.payload["incident_id"])
        every = cadence(deps, incident) if incident else None
        if incident is None or not incident.is_open or every is None or incident.channel_id is None:
            return
        if incident.last_update_at and incident.last_update_at + every > due:
            return  # an update was posted since this reminder was scheduled
        overdue = deps.clock.now() - (incident.last_update_at or incident.declared_at)
        msg = deps.renderer.message("incident/reminder", incident=incident, overdue=overdue, every=every)
        await chat_ops.post(
            session,
            key=f"{job.key}:post",
            channel=incident.channel_id,
            message=msg,
            incident_id=incident.id,
        )
        await schedule_next(session, deps, incident, after=due)


def register(deps: Deps) -> None:
    deps.jobs.register(REMIND, partial(remind, deps))
