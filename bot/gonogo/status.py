"""``/gonogo status [service]``: the live decisions, a service's last closed ones, the exceptions in
force. Read-only: one session, nothing written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.deps import Deps
from bot.gonogo import store
from bot.gonogo.assess import ExceptionView
from bot.gonogo.card import DecisionView, view_of

RECENT = 5


class StatusView(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str | None
    live: list[DecisionView]
    recent: list[DecisionView]
    exceptions: list[ExceptionView]


async def status(deps: Deps, *, service: str | None) -> StatusView:
    """Live decisions (one service or all), the last closed ones of a service, exceptions in force."""
    if service is not None:
        deps.config.require_service(service)
    async with deps.db.session() as session:
        live = await store.live_decisions(session, service)
        recent = await store.closed_decisions(session, service, limit=RECENT) if service is not None else []
        return StatusView(
            service=service,
            live=[await view_of(session, deps, d) for d in live],
            recent=[await view_of(session, deps, d) for d in recent],
            exceptions=[
                ExceptionView.model_validate(e)
                for e in await store.active_exceptions(session, now=deps.clock.now(), service=service)
            ],
        )
