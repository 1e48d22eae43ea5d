"""The web console's HTTP routes: the page, its JSON API and a server-sent event stream.

    GET  /                               the console (static/index.html, console.js, console.css)
    GET  /console/api/bootstrap          people, bot, scenario
    GET  /console/api/channels?user=U    channel list
    GET  /console/api/channel/C?user=U   messages of a channel (and U's ephemeral ones)
    GET  /console/api/thread/C/TS?user=U a thread
    GET  /console/api/modal?user=U       the modal open for U, if any
    GET  /console/api/standins           what PagerDuty, Statuspage, Argo CD, probes, Slack received
    GET  /console/api/scenario           scenario progress
    GET  /console/api/files/F            a file's content (text/plain)
    GET  /console/api/events             text/event-stream: "change" whenever anything changed
    POST /console/api/send|react|action|submit|close   what a person does (JSON bodies)

POSTs need ``Content-Type: application/json`` (so other web sites cannot post here), and the
whole app answers only for the 127.0.0.1/localhost host names.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.demo import seed
from bot.demo.interact import InteractionError, Interactor
from bot.demo.progress import ScenarioProgress
from bot.demo.snapshot import Snapshots
from bot.demo.standins import StandIns
from bot.sandbox.slack.emulator import BOT_USER_ID, SlackWorkspace

STATIC = Path(__file__).resolve().parent / "static"
POLL_SECONDS = 0.2
STREAM_SECONDS = 25.0  # each event stream ends after this; EventSource reconnects at once
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
Handler = Callable[[Request], Awaitable[Response]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str


class SendBody(_Body):
    channel: str
    text: str = Field(max_length=4000)
    thread_ts: str | None = None


class ReactBody(_Body):
    channel: str
    ts: str
    emoji: str


class ActionBody(_Body):
    channel: str = ""
    ts: str = ""
    action_id: str
    value: str = ""
    block_id: str | None = None
    ephemeral: bool = False
    view_id: str | None = None


class SubmitBody(_Body):
    view_id: str
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)


class CloseBody(_Body):
    view_id: str


class Console:
    def __init__(
        self,
        workspace: SlackWorkspace,
        interactor: Interactor,
        standins: StandIns,
        world: seed.World,
        progress: ScenarioProgress,
    ) -> None:
        self.ws = workspace
        self.interactor = interactor
        self.snapshots = Snapshots(workspace, standins, world)
        self.progress = progress
        self.stopping = threading.Event()
        self.ever_viewed = threading.Event()  # a console connected (a scenario waits for it)

    def routes(self) -> list[BaseRoute]:
        api = "/console/api"
        get = [
            ("/bootstrap", self.bootstrap),
            ("/channels", self.channels),
            ("/channel/{channel}", self.channel),
            ("/thread/{channel}/{ts}", self.thread),
            ("/modal", self.modal),
            ("/standins", self.standins),
            ("/scenario", self.scenario),
            ("/files/{file_id}", self.file),
            ("/events", self.events),
        ]
        post = [
            ("/send", self.send),
            ("/react", self.react),
            ("/action", self.action),
            ("/submit", self.submit),
            ("/close", self.close),
        ]
        return [
            Route("/", self.index, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            *(Route(api + path, _guard(fn), methods=["GET"]) for path, fn in get),
            *(Route(api + path, _guard(fn), methods=["POST"]) for path, fn in post),
        ]

    # --- reads --------------------------------------------------------------------------------

    async def index(self, _: Request) -> Response:
        headers = {
            "Content-Security-Policy": CSP,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        }
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=headers)

    async def bootstrap(self, _: Request) -> Response:
        actors = [p.id for p in seed.PEOPLE]
        return JSONResponse(
            {
                "team": f"{seed.COMPANY} (sandbox)",
                "bot": BOT_USER_ID,
                "users": self.snapshots.users(),
                "actors": actors,
                "default_user": seed.person("responder").id,
                "default_channel": "general",  # the welcome message is there
                "scenario": self.progress.to_json(),
            }
        )

    async def channels(self, request: Request) -> Response:
        return JSONResponse(self.snapshots.channels(self._user(request)))

    async def channel(self, request: Request) -> Response:
        user = self._user(request)
        hidden = self.interactor.superseded_ephemerals()
        return JSONResponse(self.snapshots.channel(request.path_params["channel"], user, hidden))

    async def thread(self, request: Request) -> Response:
        params = request.path_params
        return JSONResponse(self.snapshots.thread(params["channel"], params["ts"], self._user(request)))

    async def modal(self, request: Request) -> Response:
        return JSONResponse({"view": self.snapshots.modal(self._user(request))})

    async def standins(self, _: Request) -> Response:
        return JSONResponse(self.snapshots.standins_json())

    async def scenario(self, _: Request) -> Response:
        return JSONResponse(self.progress.to_json())

    async def file(self, request: Request) -> Response:
        found = self.snapshots.file_content(request.path_params["file_id"])
        if found is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        name, content = found
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
            "Content-Disposition": f'inline; filename="{_safe_filename(name)}"',
        }
        return Response(content, media_type="text/plain; charset=utf-8", headers=headers)

    async def events(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            self.ever_viewed.set()
            yield "retry: 500\n\n"
            last: tuple[Any, ...] | None = None
            loop = asyncio.get_running_loop()
            ends = loop.time() + STREAM_SECONDS
            while not self.stopping.is_set() and loop.time() < ends:
                current = self.snapshots.fingerprint(self.progress)
                if current != last:
                    last = current
                    yield f"event: change\ndata: {json.dumps({'at': loop.time()})}\n\n"
                await asyncio.sleep(POLL_SECONDS)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # --- writes -------------------------------------------------------------------------------

    async def send(self, request: Request) -> Response:
        body = SendBody.model_validate(await _json(request))
        result = await self.interactor.send_text(body.user, body.channel, body.text, body.thread_ts)
        return JSONResponse(result)

    async def react(self, request: Request) -> Response:
        body = ReactBody.model_validate(await _json(request))
        return JSONResponse(await self.interactor.react(body.user, body.channel, body.ts, body.emoji))

    async def action(self, request: Request) -> Response:
        b = ActionBody.model_validate(await _json(request))
        if b.view_id:
            return JSONResponse(await self.interactor.view_action(b.user, b.view_id, b.action_id, b.value))
        result = await self.interactor.click(
            b.user, b.channel, b.ts, b.action_id, b.value, block_id=b.block_id, ephemeral=b.ephemeral
        )
        return JSONResponse(result)

    async def submit(self, request: Request) -> Response:
        body = SubmitBody.model_validate(await _json(request))
        return JSONResponse(await self.interactor.submit_view(body.user, body.view_id, body.values))

    async def close(self, request: Request) -> Response:
        body = CloseBody.model_validate(await _json(request))
        self.interactor.close_view(body.user, body.view_id)
        return JSONResponse({"closed": True})

    def _user(self, request: Request) -> str:
        user = request.query_params.get("user") or seed.person("responder").id
        self.ws.require_user(user)
        return user


def _guard(handler: Handler) -> Handler:
    """Map the errors a person can cause to JSON answers (400/404/415)."""

    async def guarded(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if request.method == "POST" and media_type != "application/json":
            return JSONResponse({"error": "send application/json"}, status_code=415)
        try:
            return await handler(request)
        except InteractionError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return JSONResponse({"error": problems}, status_code=400)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0]) if exc.args else "not found"}, status_code=404)

    return guarded


async def _json(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > 64 * 1024:
        raise InteractionError("That request is too big.")
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise InteractionError("The body is not JSON.") from exc


def _safe_filename(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum() or ch in "._-")[:100] or "file.txt"
