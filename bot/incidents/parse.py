"""Parse ``/incident`` text into typed commands. Pure: no I/O, hypothesis-tested."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.config import SEVERITIES, Severity
from bot.errors import UsageError

Status = Literal["investigating", "identified", "monitoring", "resolved"]
STATUSES: tuple[Status, ...] = ("investigating", "identified", "monitoring", "resolved")
Role = Literal["commander", "scribe", "comms"]
ROLES: tuple[Role, ...] = ("commander", "scribe", "comms")

_REF = re.compile(r"^inc-(\d{1,9})$", re.IGNORECASE)
_USER = re.compile(r"^<@([UW][A-Z0-9_]+)(?:\|[^>]*)?>$")
_SEV = re.compile(r"^sev([1-4])$", re.IGNORECASE)
MAX_TITLE = 200


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True)
    ref: int | None = None  # INC-<n> given explicitly


class Help(_Cmd):
    pass


class Declare(_Cmd):
    severity: Severity | None = None
    title: str | None = None  # None: open the modal
    service: str | None = None


class SetStatus(_Cmd):
    status: Status
    message: str = ""


class SetSeverity(_Cmd):
    severity: Severity
    reason: str = ""


class Assign(_Cmd):
    role: Role
    user_id: str


class Resolve(_Cmd):
    summary: str = ""


class ListOpen(_Cmd):
    pass


class Show(_Cmd):
    pass


class Note(_Cmd):
    text: str


class Timeline(_Cmd):
    page: int = 1


class Postmortem(_Cmd):
    pass


class Action(_Cmd):
    owner: str
    due: date
    text: str


class Ack(_Cmd):
    pass


class Page(_Cmd):
    service: str | None = None


class OnCallCmd(_Cmd):
    service: str | None = None


class StatuspageDraft(_Cmd):
    message: str


IncidentCommand = (
    Help
    | Declare
    | SetStatus
    | SetSeverity
    | Assign
    | Resolve
    | ListOpen
    | Show
    | Note
    | Timeline
    | Postmortem
    | Action
    | Ack
    | Page
    | OnCallCmd
    | StatuspageDraft
)


def parse_severity(word: str) -> Severity | None:
    match = _SEV.match(word.strip())
    return SEVERITIES[int(match.group(1)) - 1] if match else None


def parse_user(word: str) -> str | None:
    match = _USER.match(word.strip())
    return match.group(1) if match else None


def _split_ref(rest: str) -> tuple[int | None, str]:
    head, _, tail = rest.strip().partition(" ")
    match = _REF.match(head)
    if match:
        return int(match.group(1)), tail.strip()
    return None, rest.strip()


def _take_option(text: str, *names: str) -> tuple[str, str | None]:
    """Remove ``--name value`` from the text; returns (text without it, value)."""
    words = text.split()
    for i, word in enumerate(words[:-1]):
        if word.lower() in names:
            return " ".join(words[:i] + words[i + 2 :]), words[i + 1].lower()
    return text, None


def _clean(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class _Args:
    """What follows the sub-command word: the incident named first (``INC-42``) and the rest."""

    ref: int | None
    rest: str
    usage: str

    def fail(self, message: str) -> UsageError:
        return UsageError(message, usage=self.usage)


def _help(args: _Args) -> Help:
    return Help()


def _declare(args: _Args) -> Declare:
    rest, service = _take_option(args.rest, "--service", "-s")
    if not rest:
        if service:
            raise args.fail("A title is needed: `/incident declare sev2 Checkout 502s --service checkout`.")
        return Declare(ref=args.ref)
    first, _, title = rest.partition(" ")
    severity = parse_severity(first)
    if severity is None:
        if first.lower().startswith("sev"):
            raise args.fail(f"Unknown severity `{first}`: use sev1, sev2, sev3 or sev4.")
        severity, title = "sev3", rest
    title = _clean(title)
    if not title:
        raise args.fail("A title is needed: `/incident declare sev2 Checkout 502s`.")
    if len(title) > MAX_TITLE:
        raise args.fail(f"The title is {len(title)} characters; keep it under {MAX_TITLE}.")
    return Declare(ref=args.ref, severity=severity, title=title, service=service)


def _status(args: _Args) -> SetStatus:
    word, _, message = args.rest.partition(" ")
    if word.lower() not in STATUSES:
        raise args.fail(f"Unknown status `{word or '(none)'}`: use {', '.join(STATUSES)}.")
    return SetStatus(ref=args.ref, status=word.lower(), message=message.strip())


def _severity(args: _Args) -> SetSeverity:
    word, _, reason = args.rest.partition(" ")
    severity = parse_severity(word)
    if severity is None:
        raise args.fail(f"Unknown severity `{word or '(none)'}`: use sev1, sev2, sev3 or sev4.")
    return SetSeverity(ref=args.ref, severity=severity, reason=reason.strip())


def _assign(args: _Args) -> Assign:
    parts = args.rest.split()
    if len(parts) != 2 or parts[0].lower() not in ROLES:
        raise args.fail("Use `/incident assign <commander|scribe|comms> <@user>`.")
    user = parse_user(parts[1])
    if user is None:
        raise args.fail(f"`{parts[1]}` is not a Slack user mention: type @ and pick the person.")
    return Assign(ref=args.ref, role=parts[0].lower(), user_id=user)


def _resolve(args: _Args) -> Resolve:
    return Resolve(ref=args.ref, summary=args.rest.strip())


def _list(args: _Args) -> ListOpen:
    return ListOpen()


def _show(args: _Args) -> Show:
    return Show(ref=args.ref)


def _note(args: _Args) -> Note:
    if not args.rest:
        raise args.fail("Use `/incident note <text>`.")
    return Note(ref=args.ref, text=args.rest.strip())


def _timeline(args: _Args) -> Timeline:
    rest = args.rest
    page = int(rest) if rest.isdigit() and int(rest) > 0 else 1
    return Timeline(ref=args.ref, page=page)


def _postmortem(args: _Args) -> Postmortem:
    return Postmortem(ref=args.ref)


def _action(args: _Args) -> Action:
    parts = args.rest.split(maxsplit=2)
    if len(parts) < 3:
        raise args.fail("Use `/incident action <@owner> <yyyy-mm-dd> <text>`.")
    owner = parse_user(parts[0])
    if owner is None:
        raise args.fail(f"`{parts[0]}` is not a Slack user mention.")
    try:
        due = date.fromisoformat(parts[1])
    except ValueError:
        raise args.fail(f"`{parts[1]}` is not a date: use yyyy-mm-dd.") from None
    return Action(ref=args.ref, owner=owner, due=due, text=parts[2].strip())


def _ack(args: _Args) -> Ack:
    return Ack(ref=args.ref)


def _page(args: _Args) -> Page:
    return Page(ref=args.ref, service=args.rest or None)


def _oncall(args: _Args) -> OnCallCmd:
    return OnCallCmd(ref=args.ref, service=args.rest or None)


def _statuspage(args: _Args) -> StatuspageDraft:
    if not args.rest:
        raise args.fail("Use `/incident statuspage <public message>`.")
    return StatuspageDraft(ref=args.ref, message=args.rest.strip())


# Each sub-command word (and its aliases) with its parser.
_PARSERS: dict[str, Callable[[_Args], IncidentCommand]] = {
    "help": _help,
    "-h": _help,
    "--help": _help,
    "?": _help,
    "declare": _declare,
    "status": _status,
    "sev": _severity,
    "severity": _severity,
    "assign": _assign,
    "resolve": _resolve,
    "list": _list,
    "show": _show,
    "note": _note,
    "timeline": _timeline,
    "postmortem": _postmortem,
    "rca": _postmortem,
    "action": _action,
    "ack": _ack,
    "acknowledge": _ack,
    "page": _page,
    "oncall": _oncall,
    "statuspage": _statuspage,
}


def parse(text: str, *, usage: str = "") -> IncidentCommand:
    """Parse the text after ``/incident``; UsageError (with ``usage``) on anything malformed."""
    words = text.strip().split(maxsplit=1)
    if not words:
        return Help()
    sub = words[0].lower()
    ref, rest = _split_ref(words[1] if len(words) > 1 else "")
    parser = _PARSERS.get(sub)
    if parser is None:
        raise UsageError(f"Unknown sub-command `{sub}`.", usage=usage)
    return parser(_Args(ref, rest, usage))
