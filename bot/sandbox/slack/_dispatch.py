"""Routes one Web API call: method lookup, auth, argument rules, fault injection, handler, recording."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.slack._context import ApiError, Handler, MethodContext
from bot.sandbox.slack._methods_messages import MESSAGE_HANDLERS
from bot.sandbox.slack._methods_other import OTHER_HANDLERS
from bot.sandbox.slack._models import Call, Fault, JsonDict
from bot.sandbox.slack._socket_mode import SocketModeServer
from bot.sandbox.slack._spec import SlackApiSpec
from bot.sandbox.slack._workspace import SlackWorkspace

HANDLERS: dict[str, Handler] = {**MESSAGE_HANDLERS, **OTHER_HANDLERS}

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
"""Methods that take the app-level token (``xapp-…``), in the Authorization header only."""

_CONTENT_ARGS = ("text", "blocks", "attachments", "markdown_text")

# Required args the spec does not mark (or that are not in the 2020 spec at all).
REQUIRED_ARGS: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("channel",),
    "chat.postEphemeral": ("channel", "user"),
    "chat.update": ("channel", "ts"),
    "chat.delete": ("channel", "ts"),
    "chat.getPermalink": ("channel", "message_ts"),
    "conversations.create": ("name",),
    "conversations.invite": ("channel", "users"),
    "conversations.join": ("channel",),
    "conversations.setTopic": ("channel", "topic"),
    "conversations.setPurpose": ("channel", "purpose"),
    "conversations.info": ("channel",),
    "conversations.history": ("channel",),
    "conversations.replies": ("channel", "ts"),
    "conversations.members": ("channel",),
    "conversations.archive": ("channel",),
    "pins.add": ("channel", "timestamp"),
    "pins.remove": ("channel", "timestamp"),
    "pins.list": ("channel",),
    "reactions.add": ("channel", "name", "timestamp"),
    "reactions.remove": ("channel", "name", "timestamp"),
    "reactions.get": ("channel", "timestamp"),
    "users.info": ("user",),
    "users.lookupByEmail": ("email",),
    "usergroups.users.list": ("usergroup",),
    "views.open": ("trigger_id", "view"),
    "views.push": ("trigger_id", "view"),
    "views.update": ("view",),
    "views.publish": ("user_id", "view"),
    "bookmarks.add": ("channel_id", "title", "type"),
    "bookmarks.list": ("channel_id",),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files",),
    "files.info": ("file",),
}

# At least one of these args must be present, or the call fails with the given error.
ONE_OF_ARGS: dict[str, tuple[tuple[str, ...], str]] = {
    "chat.postMessage": (_CONTENT_ARGS, "no_text"),
    "chat.postEphemeral": (_CONTENT_ARGS, "no_text"),
    "chat.update": ((*_CONTENT_ARGS, "metadata", "file_ids"), "no_text"),
    "views.update": (("view_id", "external_id"), "invalid_arguments"),
    "conversations.open": (("users", "channel"), "users_list_not_supplied"),
}

# Slack's error code for a missing arg, where it is not the generic "invalid_arguments".
_MISSING_ARG_ERRORS: dict[str, str] = {
    "channel": "channel_not_found",
    "channel_id": "channel_not_found",
    "ts": "message_not_found",
    "message_ts": "message_not_found",
    "timestamp": "no_item_specified",
    "users": "no_user",
    "user": "user_not_found",
    "email": "users_not_found",
    "trigger_id": "invalid_trigger_id",
}
_MISSING_NAME_ERRORS = {"conversations.create": "invalid_name_required"}


@dataclass(frozen=True)
class ApiResult:
    body: JsonDict
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class ApiDispatcher:
    def __init__(
        self,
        workspace: SlackWorkspace,
        *,
        bot_token: str,
        spec: SlackApiSpec,
        app_token: str | None = None,
        socket_mode: SocketModeServer | None = None,
    ) -> None:
        self.workspace = workspace
        self.bot_token = bot_token
        self.app_token = app_token
        self.spec = spec
        self.socket_mode = socket_mode
        self.handlers = dict(HANDLERS)
        if socket_mode is not None:
            self.handlers["apps.connections.open"] = self._apps_connections_open

    def knows(self, method: str) -> bool:
        return method in self.handlers or self.spec.knows(method)

    def call(
        self,
        method: str,
        args: JsonDict,
        *,
        token: str | None,
        base_url: str,
        parse_error: ApiError | None = None,
        token_in_header: bool = True,
    ) -> ApiResult:
        ws = self.workspace
        with ws.lock:
            try:
                if parse_error is not None:
                    raise parse_error
                result = self._call(method, args, token, base_url, token_in_header)
            except ApiError as error:
                if error.violation is not None:
                    ws.add_violation(f"{method}: {error.violation}")
                result = ApiResult({"ok": False, "error": error.error, **error.extra})
            except Exception as exc:
                ws.add_violation(f"{method}: the emulator crashed on this request: {exc!r}")
                result = ApiResult({"ok": False, "error": "fatal_error"}, status=500)
            ok = result.body.get("ok") is True
            ws.record_call(
                Call(method, args, ok, None if ok else str(result.body.get("error")), result.status)
            )
            return result

    def _call(
        self, method: str, args: JsonDict, token: str | None, base_url: str, token_in_header: bool
    ) -> ApiResult:
        if not self.knows(method):
            raise ApiError("unknown_method", f"{method!r} is not a Slack Web API method")
        if method in APP_TOKEN_METHODS:
            self._authenticate_app(method, token, token_in_header)
        else:
            self._authenticate(token)
        handler = self.handlers.get(method)
        if handler is None:
            raise ApiError(
                "not_implemented_in_emulator", "this Slack method is not implemented by the emulator"
            )
        self._check_args(method, args)
        fault = self.workspace.take_fault(method)
        if fault is not None:
            return _fault_result(fault)
        body = handler(MethodContext(self.workspace, method, args, base_url))
        return ApiResult({"ok": True, **body})

    def _authenticate(self, token: str | None) -> None:
        if not token:
            raise ApiError("not_authed", "no token: send 'Authorization: Bearer <bot token>'")
        if token == self.app_token:
            raise ApiError(
                "not_allowed_token_type",
                "the app-level token (xapp-…) only opens Socket Mode connections: use the bot token",
            )
        if token != self.bot_token:
            raise ApiError("invalid_auth", f"token {token[:10]!r}… is not the bot token")

    def _authenticate_app(self, method: str, token: str | None, in_header: bool) -> None:
        if token and not in_header:
            raise ApiError(
                "not_authed",
                f"{method} takes the app-level token in the Authorization header, not as an argument",
            )
        if not token:
            raise ApiError("not_authed", "no token: send 'Authorization: Bearer <app-level token xapp-…>'")
        if token == self.bot_token:
            raise ApiError(
                "not_allowed_token_type", f"{method} needs the app-level token (xapp-…), not the bot token"
            )
        if token != self.app_token:
            raise ApiError("invalid_auth", f"token {token[:10]!r}… is not the app-level token")

    def _apps_connections_open(self, ctx: MethodContext) -> JsonDict:
        assert self.socket_mode is not None
        return {"url": self.socket_mode.open_url(ctx.base_url)}

    def _check_args(self, method: str, args: Mapping[str, Any]) -> None:
        required = set(REQUIRED_ARGS.get(method, ())) | self.spec.required_args(method)
        for name in sorted(required):
            if _is_missing(args.get(name)):
                error = _MISSING_NAME_ERRORS.get(method) if name == "name" else None
                error = error or _MISSING_ARG_ERRORS.get(name, "invalid_arguments")
                raise ApiError(error, f"missing required argument {name!r}")
        if method in ONE_OF_ARGS:
            names, error = ONE_OF_ARGS[method]
            if all(_is_missing(args.get(name)) for name in names):
                raise ApiError(error, f"needs one of {', '.join(names)}")
        problems = self.spec.type_problems(method, args)
        if problems:
            raise ApiError("invalid_arguments", "; ".join(problems))


def _is_missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def _fault_result(fault: Fault) -> ApiResult:
    headers: dict[str, str] = {}
    if fault.status == 429 or fault.retry_after is not None:
        headers["Retry-After"] = str(1 if fault.retry_after is None else fault.retry_after)
    return ApiResult({"ok": False, "error": fault.error}, status=fault.status, headers=headers)
