"""The baseline of benchmark 1: a minimal Bolt ``AsyncApp`` that only acks.

The same stack as ``cmdcenter serve`` minus cmdcenter: uvicorn → Starlette → Bolt's Starlette adapter
(signature check included) → a listener that calls ``ack()`` and nothing else.

    SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=... SLACK_API_URL=http://127.0.0.1:PORT/api/ \\
        .venv/bin/python -m uvicorn --factory bench.baseline_app:build --port 3100
"""

from __future__ import annotations

import os
import re

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


def build() -> Starlette:
    client = AsyncWebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    )
    bolt = AsyncApp(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @bolt.command(re.compile(r"/.*"))
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    @bolt.event(re.compile(r".*"))
    async def ignore_event() -> None:
        return None

    handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        response: Response = await handler.handle(request)
        return response

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
