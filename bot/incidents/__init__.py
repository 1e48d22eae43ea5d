"""Incidents: declare, status, severity, roles, timeline, reminders, paging, Statuspage, post-mortem."""

from __future__ import annotations

from typing import Any

from bot.deps import Deps
from bot.incidents import paging, postmortem, reminders, statuspage, steps, timeline


def wire(deps: Deps) -> None:
    """Called once by the composition root (``bot.app``): outbox steps, jobs and lifecycle hooks."""
    steps.register(deps)
    reminders.register(deps)
    timeline.register(deps)
    postmortem.register(deps)
    paging.register(deps)
    statuspage.register(deps)
    deps.inbox.read_only(is_read_only)
    deps.inbox.resumable(is_resumable)


READ_ONLY = frozenset({"", "help", "list", "show", "timeline"})


def _subcommand(body: dict[str, Any]) -> tuple[str, str] | None:
    """The subcommand of an ``/incident`` body (``""`` for none) and the rest of its text, or None
    for another command."""
    if body.get("command") != "/incident":
        return None
    words = str(body.get("text") or "").split(maxsplit=1)
    return (words[0].lower() if words else "", words[1] if len(words) > 1 else "")


def is_read_only(body: dict[str, Any]) -> bool:
    """``/incident`` invocations that only read: help, list, show, timeline."""
    found = _subcommand(body)
    return found is not None and found[0] in READ_ONLY


def is_resumable(body: dict[str, Any]) -> bool:
    """``/incident declare <sev> <title>`` may run again after a crash mid-way: it is deduplicated by
    declarer and title (no second incident). (Read-only invocations may too: ``is_read_only``.)"""
    found = _subcommand(body)
    return found is not None and found[0] == "declare" and bool(found[1])
