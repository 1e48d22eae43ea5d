"""``/prodstatus [service|env] [share]``: the typed command → the report → the reply. Listed, with
what it needs, in ``bot.actions``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.context import Invocation, Reply
from bot.deps import Deps
from bot.errors import UsageError
from bot.help import help_reply
from bot.status.prodstatus import build_report, render


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True)


class Help(_Cmd):
    pass


class Report(_Cmd):
    scope: str | None = None  # a service or an environment
    share: bool = False  # in the channel, not only to the caller


def parse(text: str) -> Help | Report:
    words = text.lower().split()
    if words and words[0] in ("help", "-h", "--help", "?"):
        return Help()
    rest = [w for w in words if w != "share"]
    if len(rest) > 1:
        raise UsageError(
            "Give at most one service or environment: `/prodstatus checkout` or `/prodstatus prod`."
        )
    return Report(scope=rest[0] if rest else None, share="share" in words)


async def show_help(deps: Deps, cmd: Help, inv: Invocation) -> Reply:
    return help_reply(deps, "prodstatus")


async def report(deps: Deps, cmd: Report, inv: Invocation) -> Reply:
    found = await build_report(deps, scope=cmd.scope)
    return Reply(message=render(deps, found), in_channel=cmd.share)
