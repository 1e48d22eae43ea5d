"""Every template in ``templates/`` renders, in each of its states, with hostile user text: valid JSON
within Block Kit's limits for the Block Kit ones, no ping from user text anywhere; and every line of
every template stays under 200 characters.

The contexts are plain objects holding what each template reads (not the areas' models), so that
they describe the templates' inputs; the areas' own tests render them with their real models.
``CASES`` is also what a change of the templates or of ``bot/render.py`` can be compared on, before
and after: ``render_case(Renderer(), case)``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as ns
from typing import Any

import pytest

from bot.render import Mrkdwn, Renderer, default_templates_dir
from bot.sandbox.slack._blocks import validate_blocks, validate_view

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Leading and trailing spaces, JSON's special characters, mrkdwn's, and every way to ping people.
HOSTILE = '  <!channel> @here & <@U_ALL> <!subteam^S1> "q" \\ `x` *b* _i_ ~s~ \n\tend  '
LONG = HOSTILE + "long " * 700
PINGS = ("<!channel>", "<@U_ALL>", "<!subteam^S1>", "@here")
MAX_LINE = 200


@dataclass(frozen=True)
class Case:
    template: str  # file name under templates/, e.g. "incident/show.json.j2"
    context: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.template}[{self.label}]" if self.label else self.template


def render_case(renderer: Renderer, case: Case) -> str:
    """What the bot would send for ``case``: the message's or view's JSON, or the text."""
    name, kind = case.template.rsplit(".", 2)[0], case.template.rsplit(".", 2)[1]
    if kind == "json":
        if case.template.endswith("_modal.json.j2"):
            return json.dumps(renderer.view(name, **case.context), ensure_ascii=False)
        return json.dumps(renderer.message(name, **case.context).payload(), ensure_ascii=False)
    if kind == "mrkdwn":
        return str(renderer.text(name, **case.context))
    return renderer.document(name, **case.context)


# --- contexts --------------------------------------------------------------------------------------


def incident(**overrides: Any) -> ns:
    values: dict[str, Any] = {
        "id": 42,
        "ref": "INC-42",
        "title": LONG,
        "severity": "sev1",
        "status": "investigating",
        "service": "checkout",
        "commander": "U_ALICE",
        "scribe": "U_BOB",
        "comms": None,
        "channel_id": "C0INC42",
        "description": LONG,
        "resolution": HOSTILE,
        "declared_by": "U_ALICE",
        "declared_at": AT,
        "acknowledged_at": AT + timedelta(minutes=3),
        "identified_at": AT + timedelta(minutes=20),
        "mitigated_at": None,
        "resolved_at": AT + timedelta(hours=2, minutes=5),
    }
    return ns(**(values | overrides))


BARE_INCIDENT = incident(
    service=None, channel_id=None, description="", scribe=None, resolved_at=None, title="Checkout 502s"
)


def freeze(**overrides: Any) -> ns:
    values: dict[str, Any] = {
        "scope": "checkout",
        "service": "checkout",
        "reason": LONG,
        "incident_ref": None,
        "source": "manual",
        "created_by": "U_ALICE",
        "since": AT,
    }
    return ns(**(values | overrides))


def gate(i: int, status: str, *, exception: bool = False, advisory: bool = False) -> ns:
    waiver = ns(ref="EXC-4", owner="U_ALICE", expires_at=AT + timedelta(days=3)) if exception else None
    return ns(name=f"{HOSTILE} gate {i}", status=status, exception=waiver, advisory=advisory, evidence=LONG)


def decision_view(
    status: str, *, verdict: str = "no_go", gates: int = 6, deploy_ok: bool | None = None
) -> ns:
    decision = ns(
        id=7,
        ref="GNG-7",
        service="checkout",
        environment="prod",
        version="v1.4.3-" + "x" * 90,
        requested_by="U_ALICE",
        status=status,
        required_approvals={"sre": 1, "product": 2},
        allow_self_approval=False,
        deploy_ready=status == "go",
        deploy_note=LONG,
        objection_until=AT + timedelta(minutes=10),
        go_at=AT,
        superseded_by=8,
        deployed_by="U_BOB",
        deploy_ok=deploy_ok,
        deploy_summary=LONG,
        deploy_url="https://ci.example.com/run/1",
        created_at=AT,
        evaluated_at=AT,
        evaluation=3,
        default_gates=True,
    )
    statuses = ("pass", "fail", "error")
    assessment = ns(
        verdict=verdict,
        gates=[gate(i, statuses[i % 3], exception=i == 1, advisory=i == 4) for i in range(gates)],
        blockers=[f"{HOSTILE} gate 2", "approvals"] if verdict != "go" else [],
        roles=[
            ns(role="sre", complete=True, approvers=["U_BOB"], needed=1),
            ns(role="product", complete=False, approvers=[], needed=2),
        ],
        approvals=[ns(user_id="U_ALICE", note=HOSTILE), ns(user_id="U_BOB", note=None)],
        counted=["U_BOB"],
        rejections=[ns(user_id="U_DAVE", at=AT, reason=LONG)] if status == "rejected" else [],
    )
    return ns(
        decision=decision,
        assessment=assessment,
        at_local="09:00 UTC",
        release_channel="releases",
        objection_minutes=10,
    )


ACTIONS = ns(
    APPROVE=ns(value="gonogo_approve"),
    REJECT=ns(value="gonogo_reject"),
    RECHECK=ns(value="gonogo_recheck"),
    DEPLOY=ns(value="gonogo_deploy"),
)
GONOGO_STATES = [
    ("open", "no_go"),
    ("open", "go"),
    ("objection", "go"),
    ("go", "go"),
    ("deploying", "go"),
    ("deployed", "go"),
    ("rejected", "no_go"),
    ("superseded", "no_go"),
]


def policy_exception() -> ns:
    return ns(
        ref="EXC-4",
        service="checkout",
        gate="image_digest",
        gate_name=HOSTILE,
        owner="S0001",
        reason=LONG,
        risk=None,
        days=3,
        expires_at=AT + timedelta(days=3),
    )


def rollback(state: str, health: str | None = None, **overrides: Any) -> ns:
    values: dict[str, Any] = {
        "id": 7,
        "ref": "RB-7",
        "service": "checkout",
        "environment": "prod",
        "state": state,
        "requested_by": "U_ALICE",
        "reason": LONG,
        "tool": "helm",
        "current_version": "1.4.2",
        "current_revision": "3",
        "target_version": "1.4.1",
        "target_revision": "2",
        "dry_run_ok": state != "failed",
        "dry_run_summary": LONG,
        "dry_run_output": "```" + LONG,
        "two_person": True,
        "confirmations": ["U_ALICE", "U_BOB"],
        "decided_by": "U_BOB",
        "result_summary": LONG,
        "result_output": LONG,
        "result_url": "https://argocd.example.com/applications/checkout-prod",
        "health": health,
        "health_detail": LONG,
        "notes": ["suspended Argo CD automated sync", HOSTILE, LONG],
        "incident_id": 42,
        "created_at": AT,
    }
    return ns(**(values | overrides))


ROLLBACK_STATES = ["pending", "approved", "running", "succeeded", "failed", "cancelled", "expired", "odd"]
HEALTHS = [None, "checking", "healthy", "unhealthy", "skipped"]


def report(level: str, *, scope: str | None = "prod", crowded: bool = False) -> ns:
    levels = ["HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN"]
    many = 14 if crowded else 4
    return ns(
        level=level,
        scope=scope,
        services=[
            ns(
                name=f"svc-{i}",
                level=levels[i % 4],
                figures=[f"{HOSTILE} p95 812ms", "5xx 2.5%", "saturation 91%", "extra"] if i % 2 else [],
                unknown=["prometheus", HOSTILE] if i % 4 == 3 else [],
            )
            for i in range(many)
        ],
        sources=[
            ns(name="health", ok=True, reason=""),
            ns(name="prometheus", ok=False, reason=LONG),
        ]
        + [ns(name=f"src-{i}", ok=False, reason=HOSTILE) for i in range(many)],
        attention=[
            ns(
                level="critical" if i % 2 else "warning",
                service="checkout",
                figure=HOSTILE,
                reason=LONG,
                correlation=HOSTILE if i % 2 else None,
                action=LONG if i % 3 else None,
                runbook_url="https://runbooks.example.com/checkout" if i % 2 else None,
            )
            for i in range(many)
        ],
        open_incidents=[
            ns(id="INC-42", severity="sev1", title=LONG, service="checkout", source="cmdcenter"),
            ns(id="PD-1", severity="sev2", title=HOSTILE, service=None, source="pagerduty"),
        ],
        freezes=[ns(service=None, reason=LONG, since=AT), ns(service="checkout", reason=HOSTILE, since=AT)],
        recent_changes=[
            ns(deployed_at=AT, service="checkout", environment="prod", version=HOSTILE, actor="U_BOB"),
            ns(deployed_at=AT, service="search", environment="prod", version="2.0.0", actor=None),
        ],
        generated_at=AT,
        duration_ms=123.6,
    )


def weekly(*, empty: bool = False) -> ns:
    figure = ns(service="checkout", name=HOSTILE, value="99.95%")
    return ns(
        start=AT - timedelta(days=7),
        end=AT,
        figures=ns(
            availability=[] if empty else [figure, figure],
            performance=[] if empty else [figure],
            errors=[] if empty else [figure],
            cost=[] if empty else [figure],
        ),
        health={} if empty else {"checkout": "HEALTHY", "search": "DEGRADED"},
        incidents=[] if empty else [incident(), BARE_INCIDENT] * 9,
        by_severity={} if empty else {"sev1": 1, "sev2": 3},
        deploys=[]
        if empty
        else [ns(deployed_at=AT, service="checkout", environment="prod", version=HOSTILE)] * 20,
        action_items=[] if empty else [ns(incident_id=42, owner="U_BOB", text=LONG, due="2026-01-12")] * 20,
    )


def timeline_entry(**overrides: Any) -> ns:
    values: dict[str, Any] = {
        "occurred_at": AT,
        "kind": "message",
        "text": LONG,
        "author": "U_BOB",
        "actor": "U_ALICE",
        "permalink": "https://acme.slack.com/archives/C0INC42/p1",
    }
    return ns(**(values | overrides))


def ledger_entry(status: str, source: str) -> ns:
    return ns(
        version=HOSTILE,
        kind="deploy",
        environment="prod",
        status=status,
        at=AT,
        actor="U_BOB" if source == "cmdcenter" else HOSTILE,
        source=source,
        rollback_id=7 if status == "failed" else None,
        url="https://ci.example.com/1" if status != "started" else None,
    )


def _cases() -> Iterator[Case]:
    # errors/
    yield Case("errors/refused.json.j2", {"message": LONG, "who": ["U_ALICE", "S0001", HOSTILE]})
    yield Case("errors/refused.json.j2", {"message": HOSTILE, "who": []}, "nobody")
    yield Case("errors/unavailable.json.j2")
    yield Case("errors/unexpected.json.j2", {"error_id": "E-1A2B3C4D"})
    yield Case("errors/usage.json.j2", {"message": HOSTILE, "usage": Mrkdwn("*Usage:* `/x <y>`\n• a")})
    yield Case("errors/usage.json.j2", {"message": HOSTILE, "usage": ""}, "no usage")
    # freeze/
    for lifted in (False, True):
        on = "lifted" if lifted else "frozen"
        yield Case(
            "freeze/announce.json.j2",
            {"freeze": freeze(), "lifted": lifted, "user": "U_ALICE", "lift_reason": HOSTILE},
            f"{on}, by hand",
        )
        yield Case(
            "freeze/announce.json.j2",
            {
                "freeze": freeze(source="incident", incident_ref="INC-42", service=None),
                "lifted": lifted,
                "user": None,
            },
            f"{on}, by an incident",
        )
        yield Case("freeze/reply.json.j2", {"frozen": [freeze(), freeze(service=None)], "lifted": lifted}, on)
    release = ns(
        service="checkout",
        version=LONG,
        status="succeeded",
        environment="prod",
        url="https://ci.example.com/1",
    )
    yield Case("freeze/deploy_during.json.j2", {"release": release, "freezes": [freeze()] * 4})
    yield Case(
        "freeze/deploy_during.json.j2",
        {"release": ns(**vars(release) | {"url": None}), "freezes": []},
        "no url",
    )
    yield Case("freeze/incident_card.mrkdwn.j2", {"freezes": [freeze(), freeze(incident_ref="INC-42")]})
    # gonogo/
    for status, verdict in GONOGO_STATES:
        label = f"{status}, {verdict}"
        for gates in (0, 6, 45):
            view = decision_view(status, verdict=verdict, gates=gates, deploy_ok=status == "deployed")
            yield Case("gonogo/card.json.j2", {"view": view, "actions": ACTIONS}, f"{label}, {gates} gates")
        view = decision_view(status, verdict=verdict)
        for template in ("reply", "go", "objection", "withdrawn", "rejected"):
            if template == "rejected" and status != "rejected":
                continue
            yield Case(f"gonogo/{template}.json.j2", {"view": view}, label)
    failed_go = decision_view("go", verdict="go", deploy_ok=False)
    failed_go.decision.deploy_ready = False
    yield Case("gonogo/card.json.j2", {"view": failed_go, "actions": ACTIONS}, "go, deploy failed, not ready")
    no_approvals = decision_view("open", verdict="go", gates=2)
    no_approvals.decision.required_approvals = {}
    no_approvals.assessment.roles = []
    no_approvals.assessment.approvals = []
    yield Case("gonogo/card.json.j2", {"view": no_approvals, "actions": ACTIONS}, "no approvals needed")
    for event in ("approved", "rechecked", "deploying", "rejected"):
        for counted in (True, False):
            for user in ("U_ALICE", "U_BOB"):
                verdict = "go" if user == "U_BOB" else "no_go"
                context = {"view": decision_view("open", verdict=verdict), "event": event, "counted": counted}
                yield Case("gonogo/ack.json.j2", context | {"user": user}, f"{event}, {counted}, {user}")
    figures = [
        ns(name=HOSTILE, value=0.25, unit="%", level="ok", detail=None),
        ns(name="p95", value=812.0, unit="ms", level="critical", detail=None),
        ns(name="p99", value=1.5, unit="s", level="warn", detail=None),
        ns(name="errors", value=None, unit="", level="unknown", detail=HOSTILE),
        ns(name="saturation", value=None, unit="", level="unknown", detail=None),
    ]
    for ok in (True, False):
        view = decision_view("deployed" if ok else "go", verdict="go", deploy_ok=ok)
        yield Case(
            "gonogo/deployed.json.j2", {"view": view, "figures": figures, "card_link": None}, f"ok={ok}"
        )
    link = "https://acme.slack.com/archives/C0REL/p1"
    bare = decision_view("deployed", verdict="go", deploy_ok=True)
    bare.decision.deploy_url = None
    yield Case("gonogo/deployed.json.j2", {"view": bare, "figures": [], "card_link": link}, "card link only")
    yield Case("gonogo/deployed.json.j2", {"view": bare, "figures": [], "card_link": None}, "no evidence")
    yield Case(
        "gonogo/deployed.json.j2",
        {"view": decision_view("deployed", verdict="go", deploy_ok=True), "figures": [], "card_link": link},
        "both links",
    )
    for expired in (False, True):
        yield Case(
            "gonogo/exception.json.j2", {"exception": policy_exception(), "expired": expired}, f"{expired}"
        )
    views = [decision_view(s, verdict=v) for s, v in GONOGO_STATES]
    status = ns(service="checkout", live=views[:5], recent=views[5:], exceptions=[policy_exception()] * 3)
    yield Case("gonogo/status.json.j2", {"status": status}, "busy")
    yield Case(
        "gonogo/status.json.j2", {"status": ns(service=None, live=[], recent=[], exceptions=[])}, "empty"
    )
    yield Case(
        "gonogo/status.json.j2",
        {"status": ns(service=None, live=[], recent=views[5:], exceptions=[])},
        "closed only",
    )
    yield Case(
        "gonogo/reject_modal.json.j2",
        {"decision": decision_view("go").decision, "callback_id": "cb", "block_id": "b", "action_id": "a"},
    )
    # help/
    for command in ("gonogo", "incident", "prodstatus", "rollback"):
        yield Case(f"help/{command}.mrkdwn.j2")
    yield Case(
        "help/reply.json.j2", {"command": "incident", "usage": Mrkdwn("*Usage:* `/incident <x>`\n• y")}
    )
    # incident/
    for inc, label in ((incident(), "full"), (BARE_INCIDENT, "bare")):
        yield Case("incident/announce.json.j2", {"incident": inc}, label)
        yield Case(
            "incident/announce.json.j2",
            {"incident": inc, "channel_error": HOSTILE},
            f"{label}, channel error",
        )
        for created in (True, False):
            yield Case(
                "incident/declare_ack.json.j2", {"incident": inc, "created": created}, f"{label}, {created}"
            )
        yield Case("incident/declared.json.j2", {"incident": inc}, label)
        yield Case("incident/escalated.json.j2", {"incident": inc, "minutes": 10, "level": 2}, label)
        yield Case(
            "incident/reminder.json.j2",
            {"incident": inc, "overdue": timedelta(minutes=47), "every": timedelta(minutes=15)},
            label,
        )
        for summary in (LONG, None):
            context = {"incident": incident(resolved_at=AT + timedelta(hours=3)) if label == "bare" else inc}
            yield Case("incident/resolved.json.j2", context | {"summary": summary, "user": "U_BOB"}, label)
        yield Case(
            "incident/role_assigned.json.j2",
            {"incident": inc, "role": "scribe", "assignee": "U_BOB", "user": "U_ALICE"},
        )
        for raised, reason in ((True, LONG), (False, None)):
            yield Case(
                "incident/severity_changed.json.j2",
                {"incident": inc, "old": "sev3", "raised": raised, "reason": reason, "user": "U_ALICE"},
                f"{label}, raised={raised}",
            )
        for message in (LONG, None):
            yield Case(
                "incident/status_update.json.j2",
                {"incident": inc, "status": "identified", "message": message, "user": "U_ALICE"},
                f"{label}, {bool(message)}",
            )
        yield Case("incident/topic.mrkdwn.j2", {"incident": inc}, label)
        yield Case("incident/timeline_root.json.j2", {"incident": inc}, label)
        yield Case("postmortem/linked.json.j2", {"incident": inc, "file_id": "F0001"}, label)
        yield Case("postmortem/linked.json.j2", {"incident": inc, "file_id": None}, f"{label}, no file")
        yield Case("postmortem/uploaded.mrkdwn.j2", {"incident": inc}, label)
    # Severity descriptions and service names come from the config: plain words, not hostile text
    # (an option's text is at most 75 characters, and escaping lengthens it).
    severities = [
        ("sev1", "service down " * 10),
        ("sev2", "major feature down"),
        ("sev3", "minor"),
        ("sev4", ""),
    ]
    for services in ([], [f"service-{n}" for n in range(120)]):
        yield Case(
            "incident/declare_modal.json.j2",
            {
                "callback_id": "incident_declare",
                "channel_id": "C0BRIDGE",
                "severities": severities,
                "services": services,
            },
            f"{len(services)} services",
        )
    yield Case("incident/done.json.j2", {"text": HOSTILE})
    many = [incident(id=n, ref=f"INC-{n}", channel_id=None if n % 2 else "C0INC") for n in range(50)]
    yield Case("incident/list.json.j2", {"incidents": many, "now": AT + timedelta(hours=1)}, "50")
    yield Case("incident/list.json.j2", {"incidents": many[:2], "now": AT + timedelta(hours=1)}, "2")
    yield Case("incident/list.json.j2", {"incidents": [], "now": AT}, "none")
    people = [(ns(escalation_level=1, name=HOSTILE), "U_ALICE"), (ns(escalation_level=2, name=HOSTILE), None)]
    yield Case("incident/oncall.json.j2", {"service": HOSTILE, "rows": people})
    yield Case("incident/oncall.json.j2", {"service": "checkout", "rows": []}, "nobody")
    for level in (1, 2):
        yield Case(
            "incident/oncall_invited.json.j2",
            {
                "level": level,
                "users": ["U_ALICE", "U_BOB"],
                "incident": incident(),
                "missing": [HOSTILE, "x@y.z"],
                "error": LONG,
            },
            f"level {level}",
        )
    yield Case(
        "incident/oncall_invited.json.j2",
        {"level": 1, "users": [], "incident": incident(), "missing": [], "error": None},
        "nobody",
    )
    steps = [
        ns(id=1, status="failed", op="slack.create_channel", attempts=5, last_error=LONG),
        ns(id=2, status="pending", op="pagerduty.trigger", attempts=0, last_error=None),
    ] * 9
    items = [ns(owner="U_BOB", text=LONG, due="2026-01-12", status="open")] * 25
    extra = {"freeze": Mrkdwn(":snowflake: *Deploy freeze*: checkout"), "empty": "", "paging": HOSTILE}
    yield Case(
        "incident/show.json.j2",
        {
            "incident": incident(),
            "steps": steps,
            "now": AT + timedelta(hours=3),
            "extra": extra,
            "items": items,
            "retry_action": "retry",
        },
        "full",
    )
    yield Case(
        "incident/show.json.j2",
        {
            "incident": BARE_INCIDENT,
            "steps": [],
            "now": AT,
            "extra": {},
            "items": [],
            "retry_action": "retry",
        },
        "bare",
    )
    for item_incident in (42, None):
        item = ns(op="slack.post", attempts=5, last_error=LONG, incident_id=item_incident)
        yield Case("incident/step_failed.json.j2", {"item": item}, f"incident {item_incident}")
    entries = [timeline_entry(), timeline_entry(author=None, permalink=None, kind="status")] * 12
    for page, pages in ((1, 3), (3, 3)):
        yield Case(
            "incident/timeline.json.j2",
            {"incident": incident(), "entries": entries, "total": 70, "page": page, "pages": pages},
            f"page {page}/{pages}",
        )
    yield Case(
        "incident/timeline.json.j2",
        {"incident": incident(), "entries": [], "total": 0, "page": 1, "pages": 1},
        "empty",
    )
    for variant in ("added", "removed"):
        yield Case(
            "incident/timeline_entry.json.j2", {"variant": variant, "entry": timeline_entry()}, variant
        )
    yield Case(
        "incident/timeline_entry.json.j2",
        {"variant": "added", "entry": timeline_entry(actor="U_BOB", permalink=None)},
        "own capture, no link",
    )
    yield Case(
        "incident/timeline_entry.json.j2",
        {"variant": "added", "entry": timeline_entry(author=None, actor=None, permalink=None)},
        "bot entry",
    )
    # postmortem/
    durations = ns(
        started_at=AT - timedelta(minutes=9), detection=timedelta(minutes=9), mitigation=None, total=7500
    )
    yield Case(
        "postmortem/draft.md.j2",
        {
            "incident": incident(),
            "generated_at": AT,
            "policy": ns(description=HOSTILE),
            "d": durations,
            "items": items[:3],
            "entries": entries[:4],
        },
    )
    yield Case(
        "postmortem/draft.md.j2",
        {
            "incident": BARE_INCIDENT,
            "generated_at": AT,
            "policy": None,
            "d": durations,
            "items": [],
            "entries": [],
        },
        "bare",
    )
    # prodstatus/
    for level in ("HEALTHY", "DEGRADED", "UNHEALTHY", "UNKNOWN"):
        for detailed in (False, True):
            yield Case(
                "prodstatus/report.json.j2",
                {"report": report(level), "detailed": detailed},
                f"{level}, {detailed}",
            )
    yield Case(
        "prodstatus/report.json.j2",
        {"report": report("UNHEALTHY", crowded=True), "detailed": False},
        "crowded",
    )
    yield Case(
        "prodstatus/report.json.j2",
        {"report": report("DEGRADED", crowded=True), "detailed": True},
        "crowded, detailed",
    )
    calm = report("HEALTHY", scope=None)
    calm.attention, calm.sources, calm.open_incidents, calm.freezes, calm.recent_changes = [], [], [], [], []
    calm.services = [ns(name="checkout", level="HEALTHY", figures=[], unknown=[])]
    yield Case("prodstatus/report.json.j2", {"report": calm, "detailed": False}, "calm")
    yield Case("prodstatus/weekly.json.j2", {"r": weekly()})
    yield Case("prodstatus/weekly.json.j2", {"r": weekly(empty=True)}, "empty")
    # rollback/
    for state in ROLLBACK_STATES:
        for health in HEALTHS:
            rb = rollback(state, health)
            yield Case(
                "rollback/card.json.j2",
                {
                    "rb": rb,
                    "freezes": [freeze()] * 4,
                    "who": ["S0001", "U_BOB"],
                    "confirm_action": "rollback_confirm",
                    "cancel_action": "rollback_cancel",
                    "health_timeout": 300.0,
                },
                f"{state}, {health}",
            )
        for template in ("outcome", "notice"):
            for health in (None, "checking", "skipped"):
                rb = rollback(state, health)
                yield Case(
                    f"rollback/{template}.json.j2",
                    {"rb": rb, "eta": timedelta(minutes=4)},
                    f"{state}, {health}",
                )
    bare_rb = rollback(
        "pending",
        current_version=None,
        current_revision=None,
        target_revision="1.4.1",
        reason=None,
        dry_run_output="",
        two_person=False,
        confirmations=[],
        notes=[],
        result_url=None,
        result_summary="",
        incident_id=None,
    )
    for state in ("pending", "expired"):
        yield Case(
            "rollback/card.json.j2",
            {
                "rb": ns(**vars(bare_rb) | {"state": state}),
                "freezes": [],
                "who": [],
                "confirm_action": "c",
                "cancel_action": "x",
                "health_timeout": 60,
            },
            f"bare, {state}",
        )
    yield Case("rollback/notice.json.j2", {"rb": bare_rb, "eta": None}, "bare")
    for health in ("healthy", "unhealthy"):
        yield Case(
            "rollback/health.json.j2", {"rb": rollback("succeeded", health), "health_timeout": 30.0}, health
        )
    for rb, label in ((rollback("pending"), "two-person"), (bare_rb, "bare")):
        yield Case("rollback/requested.json.j2", {"rb": rb}, label)
        yield Case("rollback/ack.json.j2", {"rb": rb, "text": HOSTILE}, label)
    yield Case("rollback/needs_second.json.j2", {"rb": rollback("pending"), "who": ["S0001", "U_BOB"]})
    yield Case("rollback/needs_second.json.j2", {"rb": rollback("pending"), "who": []}, "nobody named")
    view = ns(
        service="checkout",
        environment="prod",
        entries=[
            ledger_entry(s, src)
            for s in ("succeeded", "failed", "started", "odd")
            for src in ("cmdcenter", "ci")
        ],
        tool="helm",
        tool_environment="prod",
        tool_releases=[
            ns(version=HOSTILE, revision="3" * 30, status=s, deployed_at=AT)
            for s in ("deployed", "failed", "superseded")
        ],
        tool_error=LONG,
    )
    yield Case("rollback/history.json.j2", {"view": view}, "full")
    yield Case(
        "rollback/history.json.j2",
        {
            "view": ns(
                **vars(view) | {"environment": None, "entries": [], "tool_releases": [], "tool_error": None}
            )
        },
        "empty",
    )
    yield Case("rollback/history.json.j2", {"view": ns(**vars(view) | {"tool": None})}, "no tool")
    # statuspage/
    for state in ("draft", "publishing", "published"):
        for by in ("U_ALICE", None):
            draft = ns(id=3, state=state, published_by=by, status="investigating", body=LONG)
            yield Case(
                "statuspage/draft.json.j2",
                {
                    "draft": draft,
                    "incident": incident(),
                    "publish_action": "sp_publish",
                    "edit_action": "sp_edit",
                },
                f"{state}, {by}",
            )
    yield Case(
        "statuspage/edit_modal.json.j2", {"callback_id": "sp_edit_view", "draft": ns(id=3, body=HOSTILE)}
    )
    for inc in (incident(), BARE_INCIDENT, incident(severity="sev2")):
        for status in ("investigating", "identified", "monitoring", "resolved"):
            public = ns(**vars(inc) | {"status": status})
            yield Case(
                "statuspage/update.md.j2", {"incident": public}, f"{inc.severity}, {inc.service}, {status}"
            )
        yield Case("statuspage/name.md.j2", {"incident": inc}, f"{inc.severity}, {inc.service}")
        yield Case("statuspage_incident.md.j2", {"incident": inc}, f"{inc.severity}, {inc.service}")


CASES = list(_cases())


# --- tests -----------------------------------------------------------------------------------------


def template_files() -> list[str]:
    root = default_templates_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.j2") if not p.name.startswith("_"))


def test_every_template_has_a_case() -> None:
    covered = {case.template for case in CASES}
    assert [name for name in template_files() if name not in covered] == []
    assert sorted(covered - set(template_files())) == []


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_template_renders_within_slack_limits(renderer: Renderer, case: Case) -> None:
    rendered = render_case(renderer, case)
    if case.template.endswith("_modal.json.j2"):
        assert validate_view(json.loads(rendered), expected_type="modal") == []
    elif case.template.endswith(".json.j2"):
        message = json.loads(rendered)
        assert message["text"].strip()
        assert validate_blocks(message["blocks"], surface="message") == []
    else:
        assert rendered.strip()
    if not case.template.endswith(".md.j2"):  # Markdown documents are not Slack text: no escaping
        assert not [ping for ping in PINGS if ping in rendered]
        assert "&amp;amp;" not in rendered and "&amp;lt;" not in rendered  # escaped once, not twice


def test_no_template_line_is_over_200_characters() -> None:
    root = default_templates_dir()
    long_lines = [
        f"{path.relative_to(root)}:{number}: {len(line)} characters"
        for path in sorted(root.rglob("*.j2"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if len(line) > MAX_LINE
    ]
    assert long_lines == []


def test_templates_are_read_from_the_source_tree_or_the_installed_package() -> None:
    found = default_templates_dir()
    assert (found / "_blocks.j2").is_file()
    assert found.parent.name == "bot" or (found.parent / "pyproject.toml").is_file()


def test_templates_are_read_from_the_package_when_installed_else_from_the_source_tree(tmp_path: Path) -> None:
    source_tree = tmp_path / "checkout"
    (source_tree / "bot").mkdir(parents=True)
    assert default_templates_dir(source_tree / "bot") == source_tree / "templates"
    (source_tree / "bot" / "templates").mkdir()  # where a wheel puts them
    assert default_templates_dir(source_tree / "bot") == source_tree / "bot" / "templates"


# --- the macro library and the environment's rules -------------------------------------------------


@pytest.fixture
def scratch(tmp_path: Path) -> Callable[..., Any]:
    """Render a template of the test's own (JSON-in-Jinja, parsed) next to the real ``_blocks.j2``."""
    shutil.copy(default_templates_dir() / "_blocks.j2", tmp_path)

    def render(source: str, **context: Any) -> Any:
        (tmp_path / "t.json.j2").write_text('{% import "_blocks.j2" as b %}\n' + source, encoding="utf-8")
        return Renderer(tmp_path).view("t", **context)

    return render


def test_user_text_is_escaped_once_whatever_macro_prints_it(scratch: Callable[..., Any]) -> None:
    found = scratch(
        """{"blocks": {% call b.list() %}
          {{ b.section(x) }}
          {% call b.section() %}{{ x }}{% endcall %}
          {% call b.fields() %}{{ b.field(x, x) }}{% call b.field("F") %}{{ x }}{% endcall %}{% endcall %}
          {{ b.context(x, x) }}
          {% call b.header() %}{{ x }}{% endcall %}
          {% call b.actions(block_id=x) %}
            {% call b.button(x, x, x, confirm_title=x, confirm=x, deny=x) %}{{ x }}{% endcall %}
          {% endcall %}
          {{ b.input(x, x, b.text_input(x, placeholder=x, initial_value=x)) }}
          {% call b.input(x, x) %}{% call b.select(x) %}{{ b.option(x, x) }}{% endcall %}{% endcall %}
        {% endcall %}}""",
        x=HOSTILE,
    )
    kinds = {"section", "mrkdwn", "context", "header", "plain_text", "actions", "button", "input"}
    kinds |= {"plain_text_input", "static_select"}
    escaped = (
        HOSTILE.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("@here", "@\u2060here")
    )
    assert {s for s in _strings(found) if s not in kinds} == {
        escaped,
        "*F*\n" + escaped,
        f"*{escaped}*\n{escaped}",
    }


def test_trusted_mrkdwn_passes_through_macros(scratch: Callable[..., Any]) -> None:
    found = scratch(
        '{"blocks": {% call b.list() %}{{ b.section("U_ALICE"|mention) }}'
        '{% call b.section() %}{{ "U_BOB"|mention }} and {{ "<@U_ALL>" }}{% endcall %}{% endcall %}}'
    )
    assert [block["text"]["text"] for block in found["blocks"]] == [
        "<@U_ALICE>",
        "<@U_BOB> and &lt;@U_ALL&gt;",
    ]


def test_the_macros_write_the_commas(scratch: Callable[..., Any]) -> None:
    source = """{"blocks": {% call b.list() %}
      {% if first %}{{ b.divider() }}{% endif %}
      {% for n in items %}{{ b.section(n) }}{% endfor %}
      {% if last %}{{ b.context("end") }}{% endif %}
    {% endcall %}}"""
    assert scratch(source, first=False, items=[], last=False) == {"blocks": []}
    found = scratch(source, first=False, items=["1", "2"], last=True)
    assert [block["type"] for block in found["blocks"]] == ["section", "section", "context"]
    assert [block["type"] for block in scratch(source, first=True, items=["1"], last=False)["blocks"]] == [
        "divider",
        "section",
    ]


def test_a_line_break_in_a_template_is_layout(scratch: Callable[..., Any]) -> None:
    found = scratch(
        """{"text": "one
            two {{ x }}
            {% if yes %}
              , three
            {% endif %}
            four{% if yes %}
            five{% endif %}\\nsix", "blocks": {% call b.list() %}
          {% call b.section() %}
            {{ x }}
            {{ x }}
          {% endcall %}
        {% endcall %}}""",
        x="  a value\nkeeps its spaces  ",
        yes=True,
    )
    value = "  a value\\nkeeps its spaces  ".replace("\\n", "\n")
    # text/}} then text: a space; a tag starting or ending a line: nothing; indentation: nothing
    assert found["text"] == f"one two {value}, threefourfive\nsix"
    assert found["blocks"][0]["text"]["text"] == f"{value} {value}"


def test_only_what_a_template_rendered_is_printed_as_it_is(scratch: Callable[..., Any]) -> None:
    found = scratch('{% set mine %}<{{ x }}>{% endset %}{"text": "{{ mine }} {{ x }}"}', x="&amp;")
    assert (
        found["text"] == "<&amp;amp;> &amp;amp;"
    )  # the template's "<" is its own; the value is escaped once
    with pytest.raises(TypeError, match="json_list takes what a template rendered"):
        scratch('{"blocks": {{ x|json_list }}}', x='{"type": "section"}')


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
