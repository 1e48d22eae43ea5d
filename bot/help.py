"""Help and usage for the commands (the text itself lives in ``templates/help/``)."""

from __future__ import annotations

from bot.app import Services
from bot.context import Reply
from bot.errors import UsageError


def usage(svc: Services, command: str) -> str:
    return svc.renderer.fixed_text(f"help/{command}")


def help_reply(svc: Services, command: str) -> Reply:
    """``/<command> help``: the same message every time, so rendered once (each reply gets its own copy)."""
    return Reply(message=svc.renderer.fixed_message("help/reply", command=command, usage=usage(svc, command)))


async def command_help(svc: Services, command: str, text: str) -> Reply:
    """Answer ``help`` (or nothing); anything else is an unknown sub-command."""
    word = text.strip().split(maxsplit=1)[0].lower() if text.strip() else "help"
    if word in ("help", "-h", "--help", "?"):
        return help_reply(svc, command)
    raise UsageError(f"Unknown sub-command `{word}` for /{command}.", usage=usage(svc, command))
