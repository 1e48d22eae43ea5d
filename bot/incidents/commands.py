"""``/incident``: the typed command → the service call → the reply. Called by ``commands/incident.py``."""

from __future__ import annotations

from typing import Any

from bot.config import SEVERITIES, Severity
from bot.context import Invocation, Reply, without_nul
from bot.deps import Deps
from bot.errors import NotFound, UsageError
from bot.help import help_reply, usage
from bot.incidents import paging, postmortem, service, statuspage, timeline
from bot.incidents import parse as p
from bot.incidents.store import get_incident, incident_for

DECLARE_VIEW = "incident_declare"
RETRY_ACTION = "incident_retry_step"
TIMELINE_SHORTCUT = "add_to_incident_timeline"


async def handle(deps: Deps, inv: Invocation) -> Reply | None:
    """Parse ``/incident`` text and run it; usage errors carry the command's usage."""
    try:
        return await _execute(deps, p.parse(inv.text), inv)
    except UsageError as exc:
        if not exc.usage:
            exc.usage = usage(deps, "incident")
        raise


async def _incident_id(deps: Deps, cmd: p.IncidentCommand, inv: Invocation) -> int:
    async with deps.db.session(read_only=True) as session:
        incident = await incident_for(session, ref=cmd.ref, channel_id=inv.channel_id)
    assert incident.id is not None
    return incident.id


async def _execute(deps: Deps, cmd: p.IncidentCommand, inv: Invocation) -> Reply | None:
    r = deps.renderer
    match cmd:
        case p.Help():
            return help_reply(deps, "incident")
        case p.Declare(title=None):
            if not inv.trigger_id:
                raise UsageError("Give a severity and a title: `/incident declare sev2 Checkout 502s`.")
            await deps.chat.open_view(trigger_id=inv.trigger_id, view=declare_view(deps, inv.channel_id))
            return None
        case p.Declare(severity=severity, title=str(title), service=service_name):
            incident, created = await service.declare(
                deps,
                user=inv.user_id,
                severity=severity or "sev3",
                title=title,
                service=service_name,
                origin_channel=inv.channel_id,
            )
            return Reply(message=r.message("incident/declare_ack", incident=incident, created=created))
        case p.SetStatus(status=status, message=message):
            incident = await service.set_status(
                deps, await _incident_id(deps, cmd, inv), user=inv.user_id, status=status, message=message
            )
            return Reply(message=r.message("incident/done", text=f"{incident.ref} is now {incident.status}."))
        case p.SetSeverity(severity=severity, reason=reason):
            incident = await service.set_severity(
                deps, await _incident_id(deps, cmd, inv), user=inv.user_id, severity=severity, reason=reason
            )
            return Reply(
                message=r.message("incident/done", text=f"{incident.ref} is now {severity.upper()}.")
            )
        case p.Assign(role=role, user_id=assignee):
            incident = await service.assign(
                deps, await _incident_id(deps, cmd, inv), user=inv.user_id, role=role, assignee=assignee
            )
            return Reply(message=r.message("incident/done", text=f"Assigned {role} of {incident.ref}."))
        case p.Resolve(summary=summary):
            incident = await service.resolve(
                deps, await _incident_id(deps, cmd, inv), user=inv.user_id, summary=summary
            )
            return Reply(message=r.message("incident/done", text=f"{incident.ref} resolved."))
        case p.ListOpen():
            incidents = await deps.open_incidents()  # rendered once per shared read of them:
            return Reply(
                message=r.message_for(incidents, "incident/list", incidents=incidents, now=deps.clock.now())
            )
        case p.Show():
            return await show(deps, cmd, inv)
        case p.Note(text=text):
            await timeline.add_note(deps, await _incident_id(deps, cmd, inv), user=inv.user_id, text=text)
            return Reply(message=r.message("incident/done", text="Added to the timeline."))
        case p.Timeline(page=page):
            return await timeline.show_timeline(deps, await _incident_id(deps, cmd, inv), page=page)
        case p.Postmortem():
            return await postmortem.draft(deps, await _incident_id(deps, cmd, inv), user=inv.user_id)
        case p.Action(owner=owner, due=due, text=text):
            return await postmortem.add_action(
                deps, await _incident_id(deps, cmd, inv), user=inv.user_id, owner=owner, due=due, text=text
            )
        case p.Ack():
            return await paging.ack(deps, cmd, inv, await _incident_id(deps, cmd, inv))
        case p.Page():
            return await paging.page(deps, cmd, inv, await _incident_id(deps, cmd, inv))
        case p.OnCallCmd(ref=ref):
            incident_id = None if ref is None else await _incident_id(deps, cmd, inv)
            return await paging.oncall(deps, cmd, inv, incident_id)
        case p.StatuspageDraft():
            return await statuspage.draft_update(deps, cmd, inv, await _incident_id(deps, cmd, inv))
    raise UsageError(f"`{type(cmd).__name__.lower()}` is not a sub-command of /incident.")


async def show(deps: Deps, cmd: p.IncidentCommand, inv: Invocation) -> Reply:
    incident_id = await _incident_id(deps, cmd, inv)
    async with deps.db.session(read_only=True) as session:
        incident = await get_incident(session, incident_id)
    steps = await deps.outbox.pending_for_incident(incident_id)
    items = await postmortem.action_items(deps, incident_id)
    extra = {name: await provide(incident) for name, provide in deps.incidents.card_lines.items()}
    return Reply(
        message=deps.renderer.message(
            "incident/show",
            incident=incident,
            steps=steps,
            now=deps.clock.now(),
            retry_action=RETRY_ACTION,
            extra=extra,
            items=items,
        )
    )


async def retry_step(deps: Deps, value: str, inv: Invocation) -> Reply:
    if not value.isdigit():
        raise NotFound("That step no longer exists.")
    if not await deps.outbox.retry(int(value)):
        raise NotFound("That step is not failed any more (it was retried or delivered).")
    return Reply(message=deps.renderer.message("incident/done", text="Step queued again."))


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


def validate_declare_view(view: dict[str, Any]) -> dict[str, str]:
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


async def declare_from_view(deps: Deps, view: dict[str, Any], inv: Invocation) -> Reply | None:
    values = _view_values(view)
    severity: Severity = values["severity"]
    incident, created = await service.declare(
        deps,
        user=inv.user_id,
        severity=severity,
        title=" ".join(str(values["title"]).split()),
        service=values.get("service") or None,
        description=str(values.get("description") or ""),
        origin_channel=str(view.get("private_metadata") or ""),
    )
    origin = str(view.get("private_metadata") or "")
    if origin:
        msg = deps.renderer.message("incident/declare_ack", incident=incident, created=created)
        await deps.chat.post_ephemeral(channel=origin, user=inv.user_id, text=msg.text, blocks=msg.blocks)
    return None
