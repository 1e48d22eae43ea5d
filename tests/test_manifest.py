"""manifest.yaml validates against Slack's manifest schema and declares exactly what the app handles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from bot.actions import REGISTRY
from bot.clock import FakeClock
from bot.config import Config

COMMANDS = tuple(REGISTRY.commands)
EVENTS = sorted({event.partition("/")[0] for event in REGISTRY.events})

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_BASE = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    return data


def _closure_values(func: Any, depth: int = 0) -> set[str]:
    """The string constants a Bolt matcher closes over (its command name), through nested closures."""
    found: set[str] = set()
    for cell in getattr(func, "__closure__", None) or ():
        value = cell.cell_contents
        if isinstance(value, str):
            found.add(value)
        elif callable(value) and depth < 3:
            found |= _closure_values(value, depth + 1)
    return found


def test_manifest_validates_against_slack_schema(shared_specs: Path) -> None:
    folder = shared_specs / "slack_manifest_schema"
    resources = []
    for name in ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json"):
        schema = json.loads((folder / name).read_text())
        resources.append((SCHEMA_BASE + name, Resource.from_contents(schema)))
    top = json.loads((folder / "manifest.schema.json").read_text())
    validator = jsonschema.Draft7Validator(top, registry=Registry().with_resources(resources))
    errors = sorted(validator.iter_errors(_manifest()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_manifest_commands_are_exactly_the_registered_ones(tmp_path: Path) -> None:
    from bot.app import build
    from bot.settings import Settings

    settings = Settings.model_validate(
        {
            "slack_bot_token": "xoxb-test",
            "slack_signing_secret": "secret",
            "slack_api_url": "http://127.0.0.1:9/api/",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        }
    )
    app = build(settings, Config(), clock=FakeClock()).bolt
    registered: set[str] = set()
    for listener in app._async_listeners:
        for matcher in listener.matchers:
            registered |= {v for v in _closure_values(getattr(matcher, "func", None)) if v.startswith("/")}
    declared = {c["command"] for c in _manifest()["features"]["slash_commands"]}
    assert declared == set(COMMANDS)
    assert registered == set(COMMANDS), registered


def test_manifest_shortcut_and_events_match_the_code() -> None:
    manifest = _manifest()
    assert {s["callback_id"] for s in manifest["features"]["shortcuts"]} == set(REGISTRY.shortcuts)
    bot_events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    for event in EVENTS:
        if event == "message":
            assert "message.channels" in bot_events
        else:
            assert event in bot_events
    assert all(c["url"].endswith("/slack/events") for c in manifest["features"]["slash_commands"])
