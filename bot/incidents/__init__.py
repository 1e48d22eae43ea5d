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
    svc.inbox.resumable(is_declaration)


def is_declaration(body: dict[str, Any]) -> bool:
    """``/incident declare <sev> <title>``: deduplicated by declarer and title, so a crash mid-way
    may run it again (the inbox resumes it) without a second incident."""
    words = str(body.get("text") or "").split()
    return body.get("command") == "/incident" and len(words) > 1 and words[0].lower() == "declare"
