"""``/incident``, its modal, buttons and shortcut, and the Slack events that feed the timeline: each
handler takes the typed command (or event) and its dependencies, calls a service, renders the reply.
Every handler here is listed, with what it needs, in ``bot.actions``.
"""

from __future__ import annotations

from typing import Any

from bot.config import SEVERITIES, Severity
from bot.context import Invocation, MessageDeleted, MessageEdited, Reaction, Reply, without_nul
from bot.deps import Deps
from bot.errors import NotFound, UsageError
from bot.help import help_reply
from bot.incidents import paging, postmortem, service, statuspage, timeline
from bot.incidents import parse as p

DECLARE_VIEW = "incident_declare"
RETRY_ACTION = "incident_retry_step"
TIMELINE_SHORTCUT = "add_to_incident_timeline"
PUBLISH_ACTION, EDIT_ACTION, EDIT_VIEW = (
    statuspage.PUBLISH_ACTION,
    statuspage.EDIT_ACTION,
    statuspage.EDIT_VIEW,
)


def done(deps: Deps, text: str) -> Reply:
    return Reply(message=deps.renderer.message("incident/done", text=text))


async def _incident_id(deps: Deps, cmd: p.IncidentCommand, inv: Invocation) -> int:
    """The incident named in the command (``INC-42``), else the one whose channel this is."""
    incident = await service.find(deps, ref=cmd.ref, channel_id=inv.channel_id)
    assert incident.id is not None
    return incident.id


# --- /incident sub-commands ------------------------------------------------------------------------


async def show_help(deps: Deps, cmd: p.Help, inv: Invocation) -> Reply:
    return help_reply(deps, "incident")


async def declare(deps: Deps, cmd: p.Declare, inv: Invocation) -> Reply | None:
    if cmd.title is None:  # no title: the form
        if not inv.trigger_id:
            raise UsageError("Give a severity and a title: `/incident declare sev2 Checkout 502s`.")
        await deps.chat.open_view(trigger_id=inv.trigger_id, view=declare_view(deps, inv.channel_id))
        return None
    incident, created = await service.declare(
        deps,
        user=inv.user_id,
        severity=cmd.severity or "sev3",
        title=cmd.title,
        service=cmd.service,
        origin_channel=inv.channel_id,
    )
    return Reply(message=deps.renderer.message("incident/declare_ack", incident=incident, created=created))


async def set_status(deps: Deps, cmd: p.SetStatus, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    incident = await service.set_status(
        deps, incident_id, user=inv.user_id, status=cmd.status, message=cmd.message
    )
    return done(deps, f"{incident.ref} is now {incident.status}.")


async def set_severity(deps: Deps, cmd: p.SetSeverity, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    incident = await service.set_severity(
        deps, incident_id, user=inv.user_id, severity=cmd.severity, reason=cmd.reason
    )
    return done(deps, f"{incident.ref} is now {cmd.severity.upper()}.")


async def assign(deps: Deps, cmd: p.Assign, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    incident = await service.assign(deps, incident_id, user=inv.user_id, role=cmd.role, assignee=cmd.user_id)
    return done(deps, f"Assigned {cmd.role} of {incident.ref}.")


async def resolve(deps: Deps, cmd: p.Resolve, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    incident = await service.resolve(deps, incident_id, user=inv.user_id, summary=cmd.summary)
    return done(deps, f"{incident.ref} resolved.")


async def list_open(deps: Deps, cmd: p.ListOpen, inv: Invocation) -> Reply:
    incidents = await deps.open_incidents()  # rendered once per shared read of them
    message = deps.renderer.message_for(incidents, "incident/list", incidents=incidents, now=deps.clock.now())
    return Reply(message=message)


async def show(deps: Deps, cmd: p.Show, inv: Invocation) -> Reply:
    found = await service.overview(deps, await _incident_id(deps, cmd, inv))
    message = deps.renderer.message(
        "incident/show",
        incident=found.incident,
        steps=found.steps,
        now=deps.clock.now(),
        retry_action=RETRY_ACTION,
        extra=found.extra,
        items=found.items,
    )
    return Reply(message=message)


async def note(deps: Deps, cmd: p.Note, inv: Invocation) -> Reply:
    await timeline.add_note(deps, await _incident_id(deps, cmd, inv), user=inv.user_id, text=cmd.text)
    return done(deps, "Added to the timeline.")


async def show_timeline(deps: Deps, cmd: p.Timeline, inv: Invocation) -> Reply:
    found = await timeline.timeline_page(deps, await _incident_id(deps, cmd, inv), page=cmd.page)
    message = deps.renderer.message(
        "incident/timeline",
        incident=found.incident,
        entries=found.entries,
        page=found.page,
        pages=found.pages,
        total=found.total,
    )
    return Reply(message=message)


async def draft_postmortem(deps: Deps, cmd: p.Postmortem, inv: Invocation) -> Reply:
    incident = await postmortem.request_draft(deps, await _incident_id(deps, cmd, inv), user=inv.user_id)
    return done(deps, f"Drafting the post-mortem of {incident.ref}; it will be uploaded to its channel.")


async def add_action_item(deps: Deps, cmd: p.Action, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    incident = await postmortem.add_action(
        deps, incident_id, user=inv.user_id, owner=cmd.owner, due=cmd.due, text=cmd.text
    )
    return done(deps, f"Action item recorded on {incident.ref}.")


async def acknowledge(deps: Deps, cmd: p.Ack, inv: Invocation) -> Reply:
    incident = await paging.acknowledge(deps, await _incident_id(deps, cmd, inv), user=inv.user_id)
    return done(deps, f"{incident.ref} acknowledged in PagerDuty.")


async def page(deps: Deps, cmd: p.Page, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    await paging.page_on_demand(deps, incident_id, user=inv.user_id, service=cmd.service)
    return done(deps, "Paging on-call.")


async def oncall(deps: Deps, cmd: p.OnCallCmd, inv: Invocation) -> Reply:
    name = cmd.service
    if name is None and cmd.ref is not None:
        name = (await service.find(deps, ref=cmd.ref, channel_id=inv.channel_id)).service
    if name is None:
        raise UsageError("Name a service: `/incident oncall checkout`.")
    rows = await paging.who_is_on_call(deps, name)
    return Reply(message=deps.renderer.message("incident/oncall", service=name, rows=rows))


async def draft_statuspage(deps: Deps, cmd: p.StatuspageDraft, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    await statuspage.draft_update(deps, incident_id, user=inv.user_id, message=cmd.message)
    return done(deps, "Statuspage draft posted in the channel.")


# --- the declare modal, the Retry button, the timeline shortcut, the Statuspage draft's buttons ------


def declare_view(deps: Deps, channel_id: str) -> dict[str, Any]:
    return deps.renderer.view(
        "incident/declare_modal",
        callback_id=DECLARE_VIEW,
        channel_id=channel_id,
        severities=[(s, deps.config.severities[s].description) for s in SEVERITIES],
        services=[s.name for s in deps.config.services],
    )


def _view_values(view: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for block in without_nul((view.get("state") or {}).get("values", {})).values():
        for action_id, field in block.items():
            if "value" in field:
                values[action_id] = field.get("value")
            elif "selected_option" in field:
                values[action_id] = (field.get("selected_option") or {}).get("value")
    return values


async def check_declare_view(deps: Deps, view: dict[str, Any]) -> dict[str, str]:
    """Field errors for the declare modal (shown next to the fields)."""
    values = _view_values(view)
    errors: dict[str, str] = {}
    title = " ".join(str(values.get("title") or "").split())
    if not title:
        errors["title_block"] = "A title is needed."
    elif len(title) > p.MAX_TITLE:
        errors["title_block"] = f"Keep the title under {p.MAX_TITLE} characters."
    if values.get("severity") not in SEVERITIES:
        errors["severity_block"] = "Pick a severity."
    return errors


async def declare_from_view(deps: Deps, inv: Invocation, view: dict[str, Any]) -> Reply | None:
    values = _view_values(view)
    severity: Severity = values["severity"]
    origin = str(view.get("private_metadata") or "")
    incident, created = await service.declare(
        deps,
        user=inv.user_id,
        severity=severity,
        title=" ".join(str(values["title"]).split()),
        service=values.get("service") or None,
        description=str(values.get("description") or ""),
        origin_channel=origin,
    )
    if origin:
        msg = deps.renderer.message("incident/declare_ack", incident=incident, created=created)
        await deps.chat.post_ephemeral(channel=origin, user=inv.user_id, text=msg.text, blocks=msg.blocks)
    return None


async def retry_step(deps: Deps, inv: Invocation) -> Reply:
    if not inv.text.isdigit():
        raise NotFound("That step no longer exists.")
    if not await deps.outbox.retry(int(inv.text)):
        raise NotFound("That step is not failed any more (it was retried or delivered).")
    return done(deps, "Step queued again.")


async def capture_shortcut(deps: Deps, inv: Invocation, body: dict[str, Any]) -> Reply:
    message = body.get("message") or {}
    entry = await timeline.capture(
        deps, channel=inv.channel_id, ts=str(message.get("ts", "")), actor=inv.user_id, message=message
    )
    if entry is None:
        raise NotFound(
            "This channel is not an incident channel: only messages in incident channels go on a timeline."
        )
    return done(deps, "Added to the incident timeline.")


def _draft_id(inv: Invocation) -> int:
    return int(inv.text) if inv.text.isdigit() else 0


async def publish_statuspage(deps: Deps, inv: Invocation) -> Reply:
    await statuspage.publish(deps, _draft_id(inv), user=inv.user_id)
    return done(deps, "Publishing to the status page.")


async def edit_statuspage(deps: Deps, inv: Invocation) -> None:
    draft = await statuspage.editable_draft(deps, _draft_id(inv))
    if inv.trigger_id:
        view = deps.renderer.view("statuspage/edit_modal", draft=draft, callback_id=EDIT_VIEW)
        await deps.chat.open_view(trigger_id=inv.trigger_id, view=view)


async def save_statuspage(deps: Deps, inv: Invocation, view: dict[str, Any]) -> None:
    values = without_nul((view.get("state") or {}).get("values", {}))
    body = str(((values.get("body_block") or {}).get("body") or {}).get("value") or "").strip()
    draft_id = str(view.get("private_metadata") or "")
    await statuspage.save_edit(deps, int(draft_id) if draft_id.isdigit() else 0, body=body)


# --- events: the timeline follows reactions, edits and deletions ---------------------------------------


async def reaction_added(deps: Deps, event: Reaction) -> None:
    if event.reaction in deps.config.slack.timeline_emojis:
        await timeline.capture(deps, channel=event.channel, ts=event.ts, actor=event.user)


async def reaction_removed(deps: Deps, event: Reaction) -> None:
    if event.reaction in deps.config.slack.timeline_emojis:
        await timeline.uncapture(deps, channel=event.channel, ts=event.ts)


async def message_edited(deps: Deps, event: MessageEdited) -> None:
    await timeline.edited(deps, channel=event.channel, ts=event.ts, text=event.text)


async def message_deleted(deps: Deps, event: MessageDeleted) -> None:
    await timeline.uncapture(deps, channel=event.channel, ts=event.ts, reason="message deleted")
