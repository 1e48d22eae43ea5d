"""What the Slack Web API spec (Swagger 2.0) says about each method: existence, required args, types.

The spec is looked up in ``$CMDCENTER_SPECS_DIR`` or in a ``shared/specs`` folder beside any
ancestor of this package (``<repo>/../shared/specs``). Without it only the hand-written rules
apply and methods the emulator does not know are reported as ``unknown_method``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_FILENAME = "slack_web_openapi_v2.json"
SPECS_DIR_ENV = "CMDCENTER_SPECS_DIR"

# Methods newer than the 2020 spec (or missing from it) that exist in Slack today.
NEWER_METHODS = frozenset(
    {
        "bookmarks.add",
        "bookmarks.edit",
        "bookmarks.list",
        "bookmarks.remove",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "canvases.create",
        "canvases.edit",
        "canvases.delete",
        "canvases.access.set",
        "canvases.access.delete",
        "canvases.sections.lookup",
        "conversations.canvases.create",
        "conversations.inviteShared",
        "conversations.acceptSharedInvite",
        "conversations.externalInvitePermissions.set",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
        "assistant.threads.setStatus",
        "assistant.threads.setSuggestedPrompts",
        "assistant.threads.setTitle",
        "functions.completeSuccess",
        "functions.completeError",
        "apps.connections.open",
        "apps.manifest.create",
        "apps.manifest.update",
        "apps.manifest.validate",
        "apps.manifest.export",
        "apps.manifest.delete",
        "team.externalTeams.list",
        "users.discoverableContacts.lookup",
        "workflows.triggers.permissions.list",
    }
)

# Args whose values are JSON documents: a JSON string in form bodies, an object/array in JSON bodies.
JSON_ARGS = frozenset({"blocks", "attachments", "view", "metadata", "files", "unfurls", "outputs"})

# Types applied to these args of every method when the spec says nothing about them.
GENERIC_ARG_TYPES: Mapping[str, str] = {
    "limit": "integer",
    "length": "integer",
    "reply_broadcast": "boolean",
    "is_private": "boolean",
    "include_users": "boolean",
    "include_num_members": "boolean",
    "exclude_archived": "boolean",
    "inclusive": "boolean",
    "force": "boolean",
}

_INT_RE = re.compile(r"^-?\d+$")
_BOOL_STRINGS = frozenset({"true", "false", "1", "0"})


@dataclass(frozen=True)
class MethodSpec:
    required: frozenset[str] = frozenset()
    types: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SlackApiSpec:
    methods: Mapping[str, MethodSpec]
    source: Path | None

    def knows(self, method: str) -> bool:
        return method in self.methods or method in NEWER_METHODS

    def required_args(self, method: str) -> frozenset[str]:
        spec = self.methods.get(method)
        return spec.required if spec else frozenset()

    def arg_type(self, method: str, arg: str) -> str | None:
        spec = self.methods.get(method)
        declared = spec.types.get(arg) if spec else None
        return declared or GENERIC_ARG_TYPES.get(arg)

    def type_problems(self, method: str, args: Mapping[str, Any]) -> list[str]:
        problems = []
        for name, value in args.items():
            expected = self.arg_type(method, name)
            if expected and not value_matches_type(name, value, expected):
                problems.append(f"argument {name} must be {expected}, got {_short_repr(value)}")
        return problems


def find_spec_file() -> Path | None:
    env_dir = os.environ.get(SPECS_DIR_ENV)
    if env_dir:
        candidate = Path(env_dir) / SPEC_FILENAME
        return candidate if candidate.is_file() else None
    for ancestor in Path(__file__).resolve().parents:
        candidate = ancestor / "shared" / "specs" / SPEC_FILENAME
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=4)
def _load_spec(path: Path | None) -> SlackApiSpec:
    if path is None:
        return SlackApiSpec(methods={}, source=None)
    document = json.loads(path.read_text(encoding="utf-8"))
    methods: dict[str, MethodSpec] = {}
    for route, operations in document.get("paths", {}).items():
        operation = operations.get("post") or operations.get("get") or {}
        methods[route.lstrip("/")] = _method_spec(operation.get("parameters", []))
    return SlackApiSpec(methods=methods, source=path)


def load_spec() -> SlackApiSpec:
    """The spec found by :func:`find_spec_file` (cached), or an empty one."""
    return _load_spec(find_spec_file())


def _method_spec(parameters: list[dict[str, Any]]) -> MethodSpec:
    required = {p["name"] for p in parameters if p.get("required") and p.get("name") != "token"}
    types = {p["name"]: str(p["type"]) for p in parameters if p.get("name") != "token" and "type" in p}
    return MethodSpec(required=frozenset(required), types=types)


def value_matches_type(name: str, value: Any, expected: str) -> bool:
    if expected == "boolean":
        return isinstance(value, bool) or (isinstance(value, str) and value.lower() in _BOOL_STRINGS)
    if expected == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, str) and bool(_INT_RE.match(value.strip())))
    if expected == "number":
        return not isinstance(value, bool) and _is_number(value)
    if expected == "string" and isinstance(value, dict | list):
        return name in JSON_ARGS
    return True


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
