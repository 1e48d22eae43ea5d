"""A local Slack workspace emulator: a fake Slack Web API server backed by :class:`SlackWorkspace`,
with Socket Mode.

    ws = SlackWorkspace()
    with start_slack_emulator(ws) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        ...
    assert ws.violations == []

A Bolt app in Socket Mode connects with the emulator's app-level token (``slack.app_token``) and a
web client on ``slack.api_url``; ``SlackDriver.socket(slack)`` then sends it envelopes:

    handler = AsyncSocketModeHandler(app, slack.app_token, web_client=app.client)
    await handler.connect_async()
    ...
    slack.socket_mode.disconnect("refresh_requested")   # the app reconnects by itself

Routes of the app built by :func:`build_slack_emulator`:

- ``GET|POST /api/{method}``: the Web API (form, multipart or JSON bodies, args in the query too);
- ``POST /upload/{file_id}``: the upload URLs handed out by ``files.getUploadURLExternal``;
- ``POST /response_url/{token}``: response URLs from ``workspace.new_response_url``;
- ``GET /files/{file_id}/{filename}``: ``url_private`` downloads (bot token required);
- ``WEBSOCKET /link/?ticket=…``: Socket Mode, at the URLs ``apps.connections.open`` hands out
  (app-level token required; see ``_socket_mode.py`` for the protocol and the redelivery rules).

Every request that breaks Slack's rules is answered like Slack would and also appended to
``workspace.violations``; state-dependent errors (``name_taken``, ``already_in_channel``…) are
only answered (and visible in ``workspace.calls``).
"""

from __future__ import annotations

import json
from email.message import Message as EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from types import TracebackType
from typing import Protocol
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.slack._context import ApiError
from bot.sandbox.slack._dispatch import ApiDispatcher
from bot.sandbox.slack._models import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Bookmark,
    Call,
    Channel,
    Envelope,
    EnvelopeAck,
    Ephemeral,
    File,
    JsonDict,
    Message,
    SocketConnection,
    User,
    Usergroup,
    View,
)
from bot.sandbox.slack._responses import apply_response, record_ack_reply, response_problems
from bot.sandbox.slack._socket_mode import Delivery, DeliveryOutcome, SocketModeServer
from bot.sandbox.slack._spec import JSON_ARGS, SlackApiSpec, load_spec
from bot.sandbox.slack._workspace import SlackWorkspace

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "BaseUrlHolder",
    "Bookmark",
    "Call",
    "Channel",
    "Delivery",
    "DeliveryOutcome",
    "Envelope",
    "EnvelopeAck",
    "Ephemeral",
    "File",
    "Message",
    "SlackEmulator",
    "SlackWorkspace",
    "SocketConnection",
    "SocketModeServer",
    "User",
    "Usergroup",
    "View",
    "build_slack_emulator",
    "record_ack_reply",
    "start_slack_emulator",
]

MAX_RESPONSE_URL_USES = 5
DEFAULT_BOT_TOKEN = "xoxb-test"  # noqa: S105 - the emulator's fake token, not a secret
DEFAULT_APP_TOKEN = "xapp-1-A0001-1-test"  # noqa: S105 - the emulator's fake app-level token


class HasUrl(Protocol):
    @property
    def url(self) -> str | None: ...


class BaseUrlHolder:
    """A URL to fill in once the server is up (a :class:`RunningServer` works as a holder too)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url


def build_slack_emulator(
    workspace: SlackWorkspace,
    *,
    bot_token: str = DEFAULT_BOT_TOKEN,
    app_token: str = DEFAULT_APP_TOKEN,
    base_url_holder: HasUrl | None = None,
    spec: SlackApiSpec | None = None,
    socket_mode: SocketModeServer | None = None,
) -> Starlette:
    """The emulator as an ASGI app.

    URLs it hands out (upload URLs, permalinks, ``url_private``, Socket Mode URLs) start with
    ``base_url_holder.url``, else ``workspace.base_url``, else the request's own base URL. Pass
    ``socket_mode`` (a ``SocketModeServer(workspace)``) to deliver envelopes to the app connected
    to it (``SlackDriver(..., socket_mode=...)``).
    """
    emulator = _EmulatorApp(
        workspace, bot_token, app_token, base_url_holder, spec or load_spec(), socket_mode=socket_mode
    )
    return emulator.starlette()


class SlackEmulator:
    """A running emulator: ``workspace``, ``url``, ``api_url`` (for ``AsyncWebClient(base_url=...)``),
    ``bot_token``, ``app_token`` and ``socket_mode`` (deliveries, disconnects: :class:`SocketModeServer`)."""

    def __init__(self, app: _EmulatorApp, server: RunningServer) -> None:
        self._app = app
        self.server = server

    @property
    def workspace(self) -> SlackWorkspace:
        return self._app.ws

    @property
    def bot_token(self) -> str:
        return self._app.bot_token

    @property
    def app_token(self) -> str:
        """The app-level token (``xapp-…``) ``apps.connections.open`` accepts."""
        return self._app.app_token

    @property
    def socket_mode(self) -> SocketModeServer:
        return self._app.socket_mode

    def reset(self, workspace: SlackWorkspace | None = None) -> SlackWorkspace:
        """Serve a fresh (or the given) workspace from now on, e.g. per test with a per-module server
        (Socket Mode connections are closed and what was pending for them is dropped)."""
        fresh = workspace or SlackWorkspace()
        fresh.base_url = self.url
        self._app.use_workspace(fresh)
        return fresh

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/`` (with the trailing slash slack_sdk needs)."""
        return f"{self.server.url}/api/"

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> SlackEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_slack_emulator(
    workspace: SlackWorkspace | None = None,
    *,
    bot_token: str = DEFAULT_BOT_TOKEN,
    app_token: str = DEFAULT_APP_TOKEN,
) -> SlackEmulator:
    """Build the emulator, serve it on a free loopback port and set ``workspace.base_url``."""
    app = _EmulatorApp(workspace or SlackWorkspace(), bot_token, app_token, None, load_spec())
    server = serve_in_thread(app.starlette())
    app.ws.base_url = server.url
    return SlackEmulator(app, server)


class _EmulatorApp:
    def __init__(
        self,
        workspace: SlackWorkspace,
        bot_token: str,
        app_token: str,
        holder: HasUrl | None,
        spec: SlackApiSpec,
        *,
        socket_mode: SocketModeServer | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.holder = holder
        self.spec = spec
        self.socket_mode = socket_mode or SocketModeServer(workspace)
        self.use_workspace(workspace)

    def use_workspace(self, workspace: SlackWorkspace) -> None:
        self.ws = workspace
        if self.socket_mode.ws is not workspace:
            self.socket_mode.use_workspace(workspace)
        self.dispatcher = ApiDispatcher(
            workspace,
            bot_token=self.bot_token,
            app_token=self.app_token,
            spec=self.spec,
            socket_mode=self.socket_mode,
        )

    def starlette(self) -> Starlette:
        routes = [
            Route("/api/{method}", self.api, methods=["GET", "POST"]),
            Route("/upload/{file_id}", self.upload, methods=["POST", "PUT"]),
            Route("/response_url/{token}", self.response_url, methods=["POST"]),
            Route("/files/{file_id}/{filename}", self.download, methods=["GET"]),
            WebSocketRoute("/link/", self.socket_mode.endpoint),
        ]
        return Starlette(routes=routes)

    def base_url(self, request: Request) -> str:
        held = self.holder.url if self.holder is not None else None
        return (held or self.ws.base_url or str(request.base_url)).rstrip("/")

    async def api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args, parse_error = await read_args(request)
        header_token = _bearer_token(request)
        token = header_token or _pop_token(args)
        args.pop("token", None)
        result = self.dispatcher.call(
            method,
            args,
            token=token,
            token_in_header=header_token is not None,
            base_url=self.base_url(request),
            parse_error=parse_error,
        )
        return JSONResponse(result.body, status_code=result.status, headers=dict(result.headers))

    async def upload(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            parts = [v for v in _parse_multipart(body, content_type).values() if isinstance(v, bytes)]
            body = parts[0] if parts else b""
        with self.ws.lock:
            file = self.ws.files.get(file_id)
            if file is None:
                self.ws.add_violation(
                    f"upload: {file_id} is not an upload URL from files.getUploadURLExternal"
                )
                return PlainTextResponse("file not found", status_code=404)
            file.content = body
        return PlainTextResponse(f"OK - {len(body)}")

    async def download(self, request: Request) -> Response:
        if _bearer_token(request) != self.bot_token:
            self.ws.add_violation("files: url_private downloads need 'Authorization: Bearer <bot token>'")
            return PlainTextResponse("not authorized", status_code=403)
        with self.ws.lock:
            file = self.ws.files.get(request.path_params["file_id"])
            if file is None or file.content is None:
                return PlainTextResponse("file not found", status_code=404)
            return Response(file.content, media_type=file.mimetype)

    async def response_url(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        with self.ws.lock:
            target = self.ws.response_targets.get(token)
            if target is None:
                self.ws.add_violation(f"response_url: {token!r} was never issued")
                return PlainTextResponse("no_service", status_code=404)
            if not isinstance(body, dict):
                self.ws.add_violation("response_url: body must be a JSON object")
                return PlainTextResponse("invalid_payload", status_code=400)
            posted = self.ws.response_urls.setdefault(token, [])
            posted.append(body)
            uses = len(posted) - (token in self.ws.ack_replies)  # a reply in the ack is not a use
            if uses > MAX_RESPONSE_URL_USES:
                self.ws.add_violation(f"response_url: used {len(posted)} times (max {MAX_RESPONSE_URL_USES})")
                return PlainTextResponse("used_url", status_code=404)
            problems = response_problems(body)
            if problems:
                self.ws.add_violation("response_url: " + "; ".join(problems))
                return PlainTextResponse("invalid_blocks", status_code=400)
            apply_response(self.ws, target, body)
        return JSONResponse({"ok": True})


# --- request parsing ----------------------------------------------------------------------------


async def read_args(request: Request) -> tuple[JsonDict, ApiError | None]:
    """Query args merged with the body args (form, multipart or JSON), JSON-valued args decoded."""
    args: JsonDict = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    try:
        args.update(_parse_body(body, content_type))
    except ApiError as error:
        return args, error
    return args, _decode_json_args(args)


def _parse_body(body: bytes, content_type: str) -> JsonDict:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body.strip():
        return {}
    if media_type == "application/json":
        return _parse_json_body(body)
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    if media_type == "multipart/form-data":
        return _parse_multipart(body, content_type)
    if not media_type:
        raise ApiError("missing_post_type", "a request body needs a Content-Type header")
    raise ApiError("invalid_post_type", f"unsupported Content-Type {media_type!r}")


def _parse_json_body(body: bytes) -> JsonDict:
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise ApiError("invalid_json", f"body is not valid JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise ApiError("json_not_object", "a JSON body must be an object")
    return {key: value for key, value in parsed.items() if value is not None}


def _parse_multipart(body: bytes, content_type: str) -> JsonDict:
    envelope = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = BytesParser(policy=HTTP).parsebytes(envelope)
    fields: JsonDict = {}
    if not message.is_multipart():
        raise ApiError("invalid_form_data", "malformed multipart/form-data body")
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        fields[name] = payload if part.get_filename() else payload.decode("utf-8")
    return fields


def _decode_json_args(args: JsonDict) -> ApiError | None:
    for name in JSON_ARGS & args.keys():
        value = args[name]
        if not isinstance(value, str):
            continue
        try:
            args[name] = json.loads(value)
        except ValueError:
            code = "invalid_blocks_format" if name == "blocks" else "invalid_arguments"
            return ApiError(code, f"argument {name} is not valid JSON: {value[:60]!r}")
    return None


def _bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def _pop_token(args: JsonDict) -> str | None:
    token = args.pop("token", None)
    return str(token) if token else None
