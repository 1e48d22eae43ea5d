"""Incidents: declare, status, severity, roles, timeline, reminders, post-mortem."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import Services


def register(svc: Services) -> None:
    from bot import chat_ops
    from bot.incidents import paging, postmortem, reminders, statuspage, steps, timeline

    chat_ops.register(svc.outbox, svc.chat)
    steps.register(svc)
    reminders.register(svc)
    timeline.register(svc)
    postmortem.register(svc)
    paging.register(svc)
    statuspage.register(svc)
