"""Help and usage for the commands (the text itself lives in ``templates/help/``)."""

from __future__ import annotations

from bot.context import Reply
from bot.deps import Deps


def usage(deps: Deps, command: str) -> str:
    return deps.renderer.fixed_text(f"help/{command}")


def help_reply(deps: Deps, command: str) -> Reply:
    """``/<command> help``: the same message every time, so rendered once (each reply gets its own copy)."""
    return Reply(
        message=deps.renderer.fixed_message("help/reply", command=command, usage=usage(deps, command))
    )
