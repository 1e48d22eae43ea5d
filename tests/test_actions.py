"""The action registry (``bot.actions.REGISTRY``) is the one list of what users can trigger: every
listener Bolt has is in it with the registry's own handler, and every type a command's parser can
produce has exactly one sub-command handling it."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest

from bot.actions import REGISTRY, Button, Modal, Registry, Shortcut, SlashCommand, Subcommand
from bot.app import build
from bot.clock import FakeClock
from bot.config import Config
from bot.gonogo import parse as gonogo_parse
from bot.incidents import parse as incident_parse
from bot.releases.rollback import parse as rollback
from bot.settings import Settings
from bot.status import dispatch as status_dispatch


def _bolt_listeners(tmp_path: Path) -> list[tuple[str, Any, Any]]:
    """(kind, constraint, listener function) of every listener registered with Bolt, read from the
    matchers Bolt built (``app.command("/x")`` closes over "/x", ``app.action(id)`` over the id)."""
    settings = Settings.model_validate(
        {
            "slack_bot_token": "xoxb-test",
            "slack_signing_secret": "secret",
            "slack_api_url": "http://127.0.0.1:9/api/",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        }
    )
    bolt = build(settings, Config(), clock=FakeClock()).bolt
    found = []
    for listener in bolt._async_listeners:
        for matcher in listener.matchers:
            inner = matcher.func.__closure__[0].cell_contents  # Bolt's builtin matcher function
            kind = inner.__qualname__.split(".")[0]
            (constraint,) = [cell.cell_contents for cell in inner.__closure__]
            found.append((kind, constraint, listener.ack_function))
    return found


def _closed_over(func: Any) -> list[Any]:
    return [cell.cell_contents for cell in func.__closure__ or ()]


def test_every_bolt_listener_is_in_the_registry_with_its_handler(tmp_path: Path) -> None:
    listeners = _bolt_listeners(tmp_path)
    tables: dict[str, dict[str, Any]] = {
        "command": REGISTRY.commands,
        "action": REGISTRY.buttons,
        "view_submission": REGISTRY.modals,
        "shortcut": REGISTRY.shortcuts,
    }
    seen: dict[str, set[str]] = {kind: set() for kind in tables}
    for kind, constraint, function in listeners:
        if kind == "event":
            bolt_types = {t.partition("/")[0] for t in REGISTRY.events}
            assert isinstance(constraint, re.Pattern)
            assert {
                t
                for t in ("message", "reaction_added", "reaction_removed", "app_home_opened")
                if constraint.match(t)
            } == bolt_types
            continue
        assert kind in tables, f"Bolt has a {kind} listener the registry does not know"
        assert str(constraint) in tables[kind], f"{kind} {constraint} is not in the registry"
        seen[kind].add(str(constraint))
        entry = tables[kind][str(constraint)]
        closure = _closed_over(function)
        if isinstance(entry, SlashCommand):
            assert REGISTRY in closure  # dispatched through the registry
        else:
            assert entry in closure  # the listener runs this entry's handler
    for kind, table in tables.items():
        assert seen[kind] == set(table), f"registry {kind} entries without a Bolt listener"


def _members(union: Any) -> set[type[Any]]:
    return set(typing.get_args(union))


@pytest.mark.parametrize(
    ("command", "types"),
    [
        ("/incident", _members(incident_parse.IncidentCommand)),
        ("/gonogo", _members(gonogo_parse.GoNoGoCommand)),
        ("/rollback", _members(rollback.RollbackCommand)),
        ("/prodstatus", {status_dispatch.Help, status_dispatch.Report}),
    ],
)
def test_every_parsed_type_has_exactly_one_subcommand(command: str, types: set[type[Any]]) -> None:
    handled = {sub.parsed for sub in REGISTRY.subcommands.values() if sub.command == command}
    assert handled == types


@pytest.mark.parametrize(
    ("command", "text", "parsed"),
    [
        ("/incident", "", incident_parse.Help),
        ("/incident", "declare sev2 Checkout 502s", incident_parse.Declare),
        ("/incident", "sev sev1 worse", incident_parse.SetSeverity),
        ("/incident", "severity sev1 worse", incident_parse.SetSeverity),
        ("/incident", "rca", incident_parse.Postmortem),
        ("/incident", "acknowledge", incident_parse.Ack),
        ("/gonogo", "checkout v1.4.3 prod", gonogo_parse.Decide),
        ("/gonogo", "freeze checkout because SEV1", gonogo_parse.Freeze),
        ("/gonogo", "unfreeze", gonogo_parse.Unfreeze),
        ("/rollback", "history checkout", rollback.History),
        ("/rollback", "checkout prod because 502s", rollback.Request),
        ("/prodstatus", "checkout share", status_dispatch.Report),
        ("/prodstatus", "help", status_dispatch.Help),
    ],
)
def test_the_first_word_selects_the_subcommand_the_parser_chooses(
    command: str, text: str, parsed: type
) -> None:
    """The inbox decides read-only and resumable by the first word (without parsing the whole text):
    that word must lead to the same sub-command as the parser's result."""
    assert isinstance(REGISTRY.commands[command].parse(text), parsed)
    selected = REGISTRY.selected({"command": command, "text": text})
    assert selected is not None and selected[0] is REGISTRY.subcommands[parsed]


def test_read_only_and_resumable_commands() -> None:
    def body(command: str, text: str) -> dict[str, str]:
        return {"command": command, "text": text}

    read_only = [body("/incident", t) for t in ("", "help", "list", "show INC-4", "timeline 2")]
    read_only += [body("/prodstatus", ""), body("/prodstatus", "checkout share"), body("/rollback", "help")]
    assert all(REGISTRY.is_read_only(b) for b in read_only)
    writes = [body("/incident", "declare sev2 x"), body("/gonogo", "checkout v1"), body("/rollback", "x")]
    assert not any(REGISTRY.is_read_only(b) for b in writes)
    assert REGISTRY.is_resumable(body("/incident", "declare sev2 Checkout down"))
    assert not REGISTRY.is_resumable(body("/incident", "declare"))  # the form: its trigger has expired
    assert not REGISTRY.is_resumable(body("/incident", "resolve fixed"))
    assert not REGISTRY.is_read_only(body("/elsewhere", "list"))


def test_an_action_registered_twice_is_refused() -> None:
    async def handler(*_: Any) -> None:
        return None

    twice = [Button("same", "/x", handler, "one"), Button("same", "/x", handler, "two")]
    with pytest.raises(ValueError, match="same: registered twice"):
        Registry(twice)
    orphan = Subcommand("/nothing", ("go",), int, handler, "no slash command")
    with pytest.raises(ValueError, match="no slash command /nothing"):
        Registry([orphan])
    assert {type(e) for e in REGISTRY.entries} >= {SlashCommand, Subcommand, Button, Modal, Shortcut}
