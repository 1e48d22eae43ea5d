"""The /rollback grammar → a typed command (pure: no I/O).

    /rollback help
    /rollback history <service> [env]
    /rollback <service> [env] [to <version|revision>] [because <reason>]

Anything else raises ``UsageError`` (without the usage, which the caller adds). Names are checked
against strict patterns, and a target never starts with ``-`` (no flag injection into a deploy tool).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from bot.errors import UsageError

_KEYWORDS = frozenset({"to", "because", "history", "help"})
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:/@-]{0,99}$")  # never starts with "-": no flag injection


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True)


class Help(_Cmd):
    pass


class History(_Cmd):
    service: str
    environment: str | None = None


class Request(_Cmd):
    service: str
    environment: str | None = None
    target: str | None = None
    reason: str = ""


RollbackCommand = Help | History | Request


def parse(text: str) -> RollbackCommand:
    """``<service> [env] [to <version|revision>] [because <reason>]``, ``history <service> [env]``
    or ``help``. Raises ``UsageError`` (without the usage, which the caller adds) for anything else.
    """
    words = text.split()
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        return Help()
    if words[0].lower() == "history":
        return _history(words[1:])
    lowered = [w.lower() for w in words]
    reason = ""
    if "because" in lowered:
        at = lowered.index("because")
        reason = " ".join(words[at + 1 :])
        if not reason:
            raise UsageError("Say why after `because`, e.g. `because 502s after v1.4.2`.")
        words, lowered = words[:at], lowered[:at]
    if not words or lowered[0] in _KEYWORDS:
        raise UsageError("Name the service first: `/rollback checkout prod because 502s after v1.4.2`.")
    service, rest = _service(words[0]), words[1:]
    environment = None
    if rest and rest[0].lower() != "to":
        environment = _env(rest.pop(0))
    return Request(service=service, environment=environment, target=_to(rest), reason=reason)


def _history(rest: list[str]) -> History:
    if not rest:
        raise UsageError("Name the service: `/rollback history checkout [env]`.")
    if len(rest) > 2:
        raise UsageError(f"Unexpected `{rest[2][:40]}`: `/rollback history <service> [env]`.")
    return History(service=_service(rest[0]), environment=_env(rest[1]) if len(rest) == 2 else None)


def _to(rest: list[str]) -> str | None:
    """The target of ``to <version|revision>`` (the words after the environment), if any."""
    if not rest:
        return None
    if rest[0].lower() != "to":
        raise UsageError(f"Unexpected `{rest[0][:40]}`: put the reason after `because`.")
    if len(rest) < 2:
        raise UsageError("Name the version or revision after `to`, e.g. `to v1.4.1` or `to 41`.")
    if len(rest) > 2:
        raise UsageError(f"Unexpected `{rest[2][:40]}`: put the reason after `because`.")
    return _target(rest[1])


def _service(word: str) -> str:
    name = word.lower()
    if not _SERVICE.match(name) or name in _KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not a service name.")
    return name


def _env(word: str) -> str:
    if not _ENV.match(word) or word.lower() in _KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not an environment name.")
    return word.lower()


def _target(word: str) -> str:
    if not _TARGET.match(word) or word.lower() in _KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not a version or revision.")
    return word
