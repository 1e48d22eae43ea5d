"""Help and usage for the commands (the text itself lives in ``templates/help/``)."""

from __future__ import annotations

from bot.context import Reply
from bot.deps import Deps
from bot.errors import UsageError


def usage(deps: Deps, command: str) -> str:
    return deps.renderer.fixed_text(f"help/{command}")


def help_reply(deps: Deps, command: str) -> Reply:
    """``/<command> help``: the same message every time, so rendered once (each reply gets its own copy)."""
    return Reply(
        message=deps.renderer.fixed_message("help/reply", command=command, usage=usage(deps, command))
    )


async def command_help(deps: Deps, command: str, text: str) -> Reply:
    """Answer ``help`` (or nothing); anything else is an unknown sub-command."""
    word = text.strip().split(maxsplit=1)[0].lower() if text.strip() else "help"
    if word in ("help", "-h", "--help", "?"):
        return help_reply(deps, command)
    raise UsageError(f"Unknown sub-command `{word}` for /{command}.", usage=usage(deps, command))
