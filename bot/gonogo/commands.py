"""``/gonogo``: the typed command → the service call → the reply.

``handle`` answers everything but ``freeze`` / ``unfreeze`` (``parse.FOREIGN``), which belong to the
releases area: for those it returns None, and the dispatcher in front of it must route them there.
"""

from __future__ import annotations

from bot.context import Invocation, Reply
from bot.deps import Deps
from bot.errors import UsageError
from bot.gonogo import parse as p
from bot.gonogo import service
from bot.help import help_reply, usage

FOREIGN = p.FOREIGN
SUBCOMMANDS = frozenset({"status", "exception", "help"})  # and "<service> <version> [env]"


async def handle(deps: Deps, inv: Invocation) -> Reply | None:
    """Parse ``/gonogo`` text and run it; usage errors carry the command's usage."""
    try:
        return await _execute(deps, p.parse(inv.text), inv)
    except UsageError as exc:
        exc.usage = exc.usage or usage(deps, "gonogo")
        raise


async def _execute(deps: Deps, cmd: p.GoNoGoCommand, inv: Invocation) -> Reply | None:
    r = deps.renderer
    match cmd:
        case p.Foreign():
            return None
        case p.Help():
            return help_reply(deps, "gonogo")
        case p.Status(service=name):
            found = await service.status(deps, service=name)
            return Reply(message=r.message("gonogo/status", status=found))
        case p.RequestException():
            exception = await service.request_exception(deps, cmd, user=inv.user_id)
            return Reply(message=r.message("gonogo/exception", exception=exception, expired=False))
        case p.Decide():
            view = await service.decide_gonogo(deps, cmd, user=inv.user_id, channel=inv.channel_id)
            return Reply(message=r.message("gonogo/reply", view=view))
