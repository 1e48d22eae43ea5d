"""Incidents: declare, status, severity, roles, timeline, reminders, post-mortem."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    svc.inbox.resumable(is_resumable)


READ_ONLY = frozenset({"", "help", "list", "show", "timeline"})


def is_resumable(body: dict[str, Any]) -> bool:
    """``/incident`` invocations that may run again after a crash mid-way: the read-only ones, and
    ``declare <sev> <title>``, which is deduplicated by declarer and title (no second incident)."""
    if body.get("command") != "/incident":
        return False
    words = str(body.get("text") or "").split()
    first = words[0].lower() if words else ""
    return first in READ_ONLY or (first == "declare" and len(words) > 1)
