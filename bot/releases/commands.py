"""``/rollback`` and ``/gonogo freeze|unfreeze``: the typed command → the service call → the reply.

Called by ``commands/rollback.py`` and ``commands/gonogo.py``. ``/gonogo`` dispatches on its first
word through ``GONOGO_SUBCOMMANDS``; anything it does not list gets the help (add sub-commands there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.context import Invocation, Reply
from bot.deps import Deps
from bot.errors import NotFound, UsageError
from bot.help import command_help, usage
from bot.releases import freeze
from bot.releases import rollback as rb

CONFIRM_ACTION = rb.CONFIRM_ACTION
CANCEL_ACTION = rb.CANCEL_ACTION


async def handle_rollback(deps: Deps, inv: Invocation) -> Reply | None:
    """Parse ``/rollback`` text and run it; usage errors carry the command's usage."""
    try:
        cmd = rb.parse(inv.text)
    except UsageError as exc:
        exc.usage = exc.usage or usage(deps, "rollback")
        raise
    match cmd:
        case rb.History():
            return await rb.show_history(deps, cmd)
        case rb.Request():
            return await rb.request_rollback(deps, cmd, user=inv.user_id, channel=inv.channel_id)
        case _:
            return await command_help(deps, "rollback", "help")


def button_invocation(body: dict[str, Any], *, command: str) -> Invocation:
    """The Invocation of a button click, its value (the rollback id) as the text (for the audit log)."""
    inv = Invocation.from_interaction(body, command=command)
    value = str(((body.get("actions") or [{}])[0]).get("value") or "")
    return inv.model_copy(update={"text": value})


def _rollback_id(text: str) -> int:
    if not text.strip().isdigit():
        raise NotFound("That rollback no longer exists.")
    return int(text)


async def confirm_rollback(deps: Deps, inv: Invocation) -> Reply:
    return await rb.confirm(deps, rollback_id=_rollback_id(inv.text), user=inv.user_id)


async def cancel_rollback(deps: Deps, inv: Invocation) -> Reply:
    return await rb.cancel(deps, rollback_id=_rollback_id(inv.text), user=inv.user_id)


# --- /gonogo ----------------------------------------------------------------------------------------------

GonogoHandler = Callable[[Deps, Invocation, str], Awaitable[Reply | None]]


async def handle_freeze(deps: Deps, inv: Invocation, rest: str) -> Reply:
    frozen = await freeze.freeze(deps, freeze.parse_freeze(rest), user=inv.user_id)
    return Reply(message=deps.renderer.message("freeze/reply", frozen=[frozen], lifted=False))


async def handle_unfreeze(deps: Deps, inv: Invocation, rest: str) -> Reply:
    lifted = await freeze.unfreeze(deps, freeze.parse_unfreeze(rest), user=inv.user_id)
    return Reply(message=deps.renderer.message("freeze/reply", frozen=lifted, lifted=True))


GONOGO_SUBCOMMANDS: dict[str, GonogoHandler] = {
    "freeze": handle_freeze,
    "unfreeze": handle_unfreeze,
}


async def handle_gonogo(deps: Deps, inv: Invocation) -> Reply | None:
    word, _, rest = inv.text.strip().partition(" ")
    handler = GONOGO_SUBCOMMANDS.get(word.lower())
    if handler is None:
        from bot.gonogo import commands as gonogo_commands

        return await gonogo_commands.handle(deps, inv)
    try:
        return await handler(deps, inv, rest)
    except UsageError as exc:
        exc.usage = exc.usage or usage(deps, "gonogo")
        raise
