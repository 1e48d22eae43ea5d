"""The one registry of every user-triggered action: slash sub-commands, buttons, modal submissions,
shortcuts, and the Slack events the bot handles, each with its handler and the permission it needs.

    REGISTRY.commands["/incident"]           the slash command: how its text is parsed, its help
    REGISTRY.subcommands[parse.Declare]      what handles a parsed ``/incident declare …``
    REGISTRY.buttons["rollback_confirm"]     a button by its action id (modals, shortcuts: by callback id)
    REGISTRY.events["reaction_added"]        an event the bot handles

The listeners in ``commands/`` register with Bolt exactly what is listed here (a test enumerates
Bolt's listeners and fails on anything missing from the registry), and ``run_command`` is the one
path from a slash command's text to its handler: parse into a typed command, find the sub-command
that handles that type, run it. ``permission`` is where each action says what it needs (an
``access[].action`` name, or ``PUBLIC``); ``None`` means not declared yet, and the authorization
issue turns that into a refusal (deny by default) and checks the rest before the handler runs.

The table is ``REGISTRY`` at the end of this module: one line per action, read top to bottom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.context import Invocation, Reply
from bot.deps import Deps
from bot.errors import UsageError
from bot.gonogo import dispatch as gonogo
from bot.gonogo import parse as _g
from bot.gonogo.card import Action as GoNoGoButton
from bot.help import usage
from bot.incidents import dispatch as incidents
from bot.incidents import parse as _i
from bot.releases import dispatch as releases
from bot.releases.rollback import parse as _r
from bot.status import dispatch as status

PUBLIC = "public"  # anyone in the workspace may do it

CommandHandler = Callable[[Deps, Any, Invocation], Awaitable[Reply | None]]
ButtonHandler = Callable[[Deps, Invocation], Awaitable[Reply | None]]
ViewHandler = Callable[[Deps, Invocation, dict[str, Any]], Awaitable[Reply | None]]
ViewCheck = Callable[[Deps, dict[str, Any]], Awaitable[dict[str, str]]]
ShortcutHandler = Callable[[Deps, Invocation, dict[str, Any]], Awaitable[Reply | None]]
EventHandler = Callable[[Deps, Any], Awaitable[None]]
Describe = Callable[[dict[str, Any]], str]  # the text a modal submission leaves in the audit log


@dataclass(frozen=True)
class SlashCommand:
    """``/incident``: its text is parsed by ``parse`` into one of its sub-commands' types."""

    name: str
    parse: Callable[[str], Any]
    help: str  # templates/help/<help>.mrkdwn.j2
    summary: str


@dataclass(frozen=True)
class Subcommand:
    """``/incident declare``: the handler of one parsed command type."""

    command: str
    words: tuple[str, ...]  # the first words that select it; () for the command's default
    parsed: type[Any]
    handler: CommandHandler
    summary: str
    read_only: bool = False  # reads only: recorded in the inbox only when its reply misses the ack
    # May run again after a crash mid-way (idempotent by construction), given the text after the word.
    resumable: Callable[[str], bool] | None = None
    permission: str | None = None

    @property
    def name(self) -> str:
        return f"{self.command} {self.words[0]}" if self.words else self.command


H = TypeVar("H")


@dataclass(frozen=True)
class _Interaction(Generic[H]):
    """What a button, a modal or a shortcut has: its id, the command name its invocation carries in
    the audit log ("/rollback confirm"), its handler, what it is for, the permission it needs."""

    id: str
    audit: str
    handler: H
    summary: str
    permission: str | None = None

    @property
    def name(self) -> str:
        return self.id


class Button(_Interaction[ButtonHandler]):
    """A button, by its action id; its value is the invocation's text (what the audit log shows)."""


class Shortcut(_Interaction[ShortcutHandler]):
    """A message shortcut, by its callback id."""


@dataclass(frozen=True)
class Modal(_Interaction[ViewHandler]):
    """A modal's submission, by its callback id; ``check`` returns the field errors Slack shows in the
    form before it closes; ``describe``, the invocation's text (default: none)."""

    check: ViewCheck | None = None
    describe: Describe | None = None


@dataclass(frozen=True)
class Event:
    """A Slack event the bot handles, by ``type`` (``message`` events by subtype:
    ``message/message_changed``); the listener parses the payload into a typed event."""

    type: str
    handler: EventHandler
    summary: str
    permission: str | None = PUBLIC

    @property
    def name(self) -> str:
        return self.type


Entry = SlashCommand | Subcommand | Button | Modal | Shortcut | Event


class Registry:
    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = tuple(entries)
        self.commands: dict[str, SlashCommand] = {}
        self.subcommands: dict[type[Any], Subcommand] = {}
        self.buttons: dict[str, Button] = {}
        self.modals: dict[str, Modal] = {}
        self.shortcuts: dict[str, Shortcut] = {}
        self.events: dict[str, Event] = {}
        self._words: dict[str, dict[str, Subcommand]] = {}
        self._defaults: dict[str, Subcommand] = {}
        for entry in self.entries:
            self._add(entry)
        for sub in self.subcommands.values():
            if sub.command not in self.commands:
                raise ValueError(f"{sub.name}: no slash command {sub.command} in the registry")

    def _add(self, entry: Entry) -> None:
        match entry:
            case SlashCommand():
                _unique(self.commands, entry.name, entry)
            case Subcommand():
                _unique(self.subcommands, entry.parsed, entry)
                words = self._words.setdefault(entry.command, {})
                for word in entry.words:
                    _unique(words, word, entry)
                if not entry.words:
                    _unique(self._defaults, entry.command, entry)
            case Button():
                _unique(self.buttons, entry.id, entry)
            case Modal():
                _unique(self.modals, entry.id, entry)
            case Shortcut():
                _unique(self.shortcuts, entry.id, entry)
            case Event():
                _unique(self.events, entry.type, entry)

    def selected(self, body: dict[str, Any]) -> tuple[Subcommand, str] | None:
        """The sub-command a stored slash command body selects by its first word, and the rest."""
        command = str(body.get("command") or "")
        words = self._words.get(command)
        if words is None:
            return None
        head, _, rest = str(body.get("text") or "").strip().partition(" ")
        found = words.get(head.lower()) or self._defaults.get(command)
        return (found, rest.strip()) if found is not None else None

    def is_read_only(self, body: dict[str, Any]) -> bool:
        found = self.selected(body)
        return found is not None and found[0].read_only

    def is_resumable(self, body: dict[str, Any]) -> bool:
        found = self.selected(body)
        return found is not None and found[0].resumable is not None and found[0].resumable(found[1])

    async def run_command(self, deps: Deps, inv: Invocation) -> Reply | None:
        """Parse a slash command's text and run the sub-command that handles it; a usage error
        carries the command's usage."""
        command = self.commands[inv.command]
        try:
            parsed = command.parse(inv.text)
            return await self.subcommands[type(parsed)].handler(deps, parsed, inv)
        except UsageError as exc:
            exc.usage = exc.usage or usage(deps, command.help)
            raise


def _unique(table: dict[Any, Any], key: Any, entry: Entry) -> None:
    if key in table:
        raise ValueError(f"{entry.name}: registered twice")
    table[key] = entry


# --- the table ------------------------------------------------------------------------------------------

HELP_WORDS = ("", "help", "-h", "--help", "?")


def _declare_resumes(rest: str) -> bool:
    """A declaration with a title is deduplicated by declarer and title: it may run again after a
    crash mid-way (without one it opens a form, whose trigger has expired by then)."""
    return bool(rest)


def _always(_: str) -> bool:
    return True


def read(
    command: str, words: tuple[str, ...], parsed: type[Any], handler: CommandHandler, summary: str
) -> Subcommand:
    """A sub-command that only reads: safe to run again, and recorded only if its reply misses the ack."""
    return Subcommand(command, words, parsed, handler, summary, read_only=True, resumable=_always)


REGISTRY = Registry(
    [
        # /incident
        SlashCommand("/incident", _i.parse, "incident", "declare and run incidents"),
        read("/incident", HELP_WORDS, _i.Help, incidents.show_help, "the grammar"),
        Subcommand(
            "/incident",
            ("declare",),
            _i.Declare,
            incidents.declare,
            "declare an incident",
            resumable=_declare_resumes,
        ),
        Subcommand("/incident", ("status",), _i.SetStatus, incidents.set_status, "post a status update"),
        Subcommand(
            "/incident", ("sev", "severity"), _i.SetSeverity, incidents.set_severity, "change severity"
        ),
        Subcommand("/incident", ("assign",), _i.Assign, incidents.assign, "assign commander, scribe, comms"),
        Subcommand("/incident", ("resolve",), _i.Resolve, incidents.resolve, "resolve the incident"),
        read("/incident", ("list",), _i.ListOpen, incidents.list_open, "open incidents"),
        read("/incident", ("show",), _i.Show, incidents.show, "one incident, its steps"),
        Subcommand("/incident", ("note",), _i.Note, incidents.note, "add a note to the timeline"),
        read("/incident", ("timeline",), _i.Timeline, incidents.show_timeline, "the timeline"),
        Subcommand("/incident", ("postmortem", "rca"), _i.Postmortem, incidents.draft_postmortem, "draft"),
        Subcommand("/incident", ("action",), _i.Action, incidents.add_action_item, "add an action item"),
        Subcommand("/incident", ("ack", "acknowledge"), _i.Ack, incidents.acknowledge, "ack the page"),
        Subcommand("/incident", ("page",), _i.Page, incidents.page, "page on-call"),
        Subcommand("/incident", ("oncall",), _i.OnCallCmd, incidents.oncall, "who is on call"),
        Subcommand(
            "/incident", ("statuspage",), _i.StatuspageDraft, incidents.draft_statuspage, "a public draft"
        ),
        Modal(
            incidents.DECLARE_VIEW,
            "/incident declare (modal)",
            incidents.declare_from_view,
            "the declare form",
            check=incidents.check_declare_view,
        ),
        Button(incidents.RETRY_ACTION, "/incident retry", incidents.retry_step, "retry a failed step"),
        Shortcut(
            incidents.TIMELINE_SHORTCUT,
            "timeline shortcut",
            incidents.capture_shortcut,
            "add a message to the incident timeline",
        ),
        Button(
            incidents.PUBLISH_ACTION, "statuspage publish", incidents.publish_statuspage, "publish a draft"
        ),
        Button(incidents.EDIT_ACTION, "statuspage edit", incidents.edit_statuspage, "edit a draft"),
        Modal(incidents.EDIT_VIEW, "statuspage edit (modal)", incidents.save_statuspage, "save the edit"),
        Event("reaction_added", incidents.reaction_added, "a capture emoji puts a message on the timeline"),
        Event("reaction_removed", incidents.reaction_removed, "removing the last one takes it off"),
        Event("message/message_changed", incidents.message_edited, "an edit updates the timeline entry"),
        Event("message/message_deleted", incidents.message_deleted, "a deletion removes it"),
        # /gonogo
        SlashCommand("/gonogo", _g.parse, "gonogo", "release gates, approvals, GO / NO-GO, freezes"),
        read("/gonogo", HELP_WORDS, _g.Help, gonogo.show_help, "the grammar"),
        Subcommand("/gonogo", (), _g.Decide, gonogo.decide, "run the gates of a release"),
        Subcommand("/gonogo", ("status",), _g.Status, gonogo.status, "open decisions and exceptions"),
        Subcommand("/gonogo", ("exception",), _g.RequestException, gonogo.request_exception, "waive a gate"),
        Subcommand("/gonogo", ("freeze",), _g.Freeze, gonogo.freeze, "freeze deploys"),
        Subcommand("/gonogo", ("unfreeze",), _g.Unfreeze, gonogo.unfreeze, "lift a freeze"),
        Button(GoNoGoButton.APPROVE, "/gonogo approve", gonogo.approve, "approve a release"),
        Button(GoNoGoButton.REJECT, "/gonogo reject (form)", gonogo.open_reject, "ask why it is rejected"),
        Modal(
            GoNoGoButton.REJECT_VIEW,
            "/gonogo reject",
            gonogo.reject,
            "reject a release",
            check=gonogo.reject_errors,
            describe=gonogo.describe_reject,
        ),
        Button(GoNoGoButton.RECHECK, "/gonogo recheck", gonogo.recheck, "run the gates again"),
        Button(GoNoGoButton.DEPLOY, "/gonogo deploy", gonogo.deploy, "deploy a GO release"),
        # /rollback
        SlashCommand("/rollback", _r.parse, "rollback", "roll a service back"),
        read("/rollback", HELP_WORDS, _r.Help, releases.show_help, "the grammar"),
        Subcommand("/rollback", ("history",), _r.History, releases.history, "recent releases"),
        Subcommand("/rollback", (), _r.Request, releases.request, "prepare a rollback"),
        Button(releases.CONFIRM_ACTION, "/rollback confirm", releases.confirm, "run the rollback"),
        Button(releases.CANCEL_ACTION, "/rollback cancel", releases.cancel, "cancel it"),
        # /prodstatus
        SlashCommand("/prodstatus", status.parse, "prodstatus", "production health report"),
        read("/prodstatus", ("help", "-h", "--help", "?"), status.Help, status.show_help, "the grammar"),
        read("/prodstatus", (), status.Report, status.report, "the report (every source at once)"),
    ]
)
