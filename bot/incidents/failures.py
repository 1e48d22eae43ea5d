"""Steps that fail for good, told once: the outbox's default failure notifier.

An outbox item that fails for good (its retries spent, or an error that will never succeed) is
reported once in its incident's channel (else ``#incident-bridge``) with a pointer to ``/incident
show``, where a Retry button puts it back in the queue. The report is an outbox item itself
(``NOTICE``), keyed by the failed item and its attempts; if it fails too, nothing more is said.
"""

from __future__ import annotations

from functools import partial

from bot import chat_ops
from bot.db.models import Incident, OutboxItem
from bot.deps import Deps
from bot.outbox import enqueue

NOTICE = "slack.post.notice"


async def notify_failed(deps: Deps, item: OutboxItem) -> None:
    """Tell the incident channel (else #incident-bridge) once that a step failed for good."""
    if item.op == NOTICE:
        return  # the notice itself failed: do not loop
    async with deps.db.session() as session:
        incident = await session.get(Incident, item.incident_id) if item.incident_id else None
        channel = (incident.channel_id if incident else None) or deps.config.slack.incident_channel
        await enqueue(
            session,
            key=f"step-failed:{item.id}:{item.attempts}",
            op=NOTICE,
            target="slack",
            payload={
                "channel": channel,
                "failed": {
                    "op": item.op,
                    "attempts": item.attempts,
                    "last_error": item.last_error,
                    "incident_id": item.incident_id,
                },
            },
            incident_id=item.incident_id,
        )


async def post_notice(deps: Deps, item: OutboxItem) -> None:
    msg = deps.renderer.message("incident/step_failed", item=item.payload["failed"])
    await chat_ops.deliver_post(
        deps.chat, item, channel=item.payload["channel"], text=msg.text, blocks=msg.blocks
    )


def register(deps: Deps) -> None:
    deps.outbox.register(NOTICE, partial(post_notice, deps))
    deps.outbox.default_failure_notifier = partial(notify_failed, deps)
