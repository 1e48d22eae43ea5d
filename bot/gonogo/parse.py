"""``/gonogo`` text → a typed command. Pure; ``UsageError`` (without the usage: the caller adds it).

    /gonogo <service> <version> [env]
    /gonogo status [service]
    /gonogo exception <gate> <service> <days> [risk low|medium|high] because <reason>
    /gonogo help

    /gonogo freeze [service] because <reason>
    /gonogo unfreeze [service]

A gate name with spaces is quoted (``"CI summary"``) or written as its key (``ci-summary``).
"""

from __future__ import annotations

import re
import shlex

from pydantic import BaseModel, ConfigDict

from bot.errors import UsageError

KEYWORDS = frozenset({"status", "exception", "help", "freeze", "unfreeze"})
RISKS = ("low", "medium", "high")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")  # never starts with "-": no flag injection
_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_GATE = re.compile(r"^[\w .:/()-]{1,80}$")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_DAYS = re.compile(r"^(\d{1,4})(d|days?)?$")


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True)


class Help(_Cmd):
    pass


class Freeze(_Cmd):
    """``freeze [service] because <reason>``: no service freezes every service."""

    service: str | None
    reason: str


class Unfreeze(_Cmd):
    service: str | None


class Status(_Cmd):
    service: str | None = None


class Decide(_Cmd):
    service: str
    version: str
    environment: str | None = None


class RequestException(_Cmd):
    gate: str
    service: str
    days: int
    reason: str
    risk: str = ""


GoNoGoCommand = Help | Freeze | Unfreeze | Status | Decide | RequestException


def parse(text: str) -> GoNoGoCommand:
    words = text.split()
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        return Help()
    first = words[0].lower()
    if first == "freeze":
        return parse_freeze(text.strip()[len(words[0]) :])
    if first == "unfreeze":
        return parse_unfreeze(text.strip()[len(words[0]) :])
    if first == "status":
        if len(words) > 2:
            raise UsageError(f"Unexpected `{words[2][:40]}`: `/gonogo status [service]`.")
        return Status(service=service_name(words[1]) if len(words) == 2 else None)
    if first == "exception":
        return _exception(text.strip()[len(words[0]) :])
    if len(words) < 2:
        raise UsageError(f"Give the version too: `/gonogo {words[0][:40]} v1.4.3 [env]`.")
    if len(words) > 3:
        raise UsageError(f"Unexpected `{words[3][:40]}`: `/gonogo <service> <version> [env]`.")
    return Decide(
        service=service_name(words[0]),
        version=_version(words[1]),
        environment=_env(words[2]) if len(words) == 3 else None,
    )


def _exception(rest: str) -> RequestException:
    example = "`/gonogo exception image_digest checkout 3 because legacy sidecar, fix in PLAT-12`"
    lowered = rest.lower()
    match = re.search(r"(^|\s)because(\s|$)", lowered)
    if match is None:
        raise UsageError(f"Say why after `because`: {example}.")
    head, reason = rest[: match.start()], " ".join(rest[match.end() :].split())
    if not reason:
        raise UsageError(f"Say why after `because`: {example}.")
    try:
        words = shlex.split(head.translate(_SMART_QUOTES))
    except ValueError:
        raise UsageError(f"Close the quotes around the gate name: {example}.") from None
    risk = ""
    if len(words) >= 2 and words[-2].lower() == "risk":
        risk = words[-1].lower()
        if risk not in RISKS:
            raise UsageError(f"Risk is one of {', '.join(RISKS)}, not `{words[-1][:20]}`.")
        words = words[:-2]
    if len(words) != 3:
        raise UsageError(f"Name the gate, the service and the days: {example}.")
    gate, service, days = words
    if not _GATE.match(gate):
        raise UsageError(f"`{gate[:40]}` is not a gate name.")
    found = _DAYS.match(days.lower())
    if found is None:
        raise UsageError(f"`{days[:20]}` is not a number of days.")
    count = int(found.group(1))
    if count < 1:
        raise UsageError("An exception lasts at least one day.")
    return RequestException(gate=gate, service=service_name(service), days=count, reason=reason, risk=risk)


def service_name(word: str) -> str:
    name = word.lower()
    if not _SERVICE.match(name) or name in KEYWORDS:
        raise UsageError(f"`{word[:40]}` is not a service name.")
    return name


def _version(word: str) -> str:
    if not _VERSION.match(word):
        raise UsageError(f"`{word[:40]}` is not a version (e.g. v1.4.3).")
    return word


def _env(word: str) -> str:
    if not _ENV.match(word):
        raise UsageError(f"`{word[:40]}` is not an environment name.")
    return word.lower()


def parse_freeze(text: str) -> Freeze:
    """``[service] because <reason>`` (the words after ``/gonogo freeze``)."""
    words = text.split()
    lowered = [w.lower() for w in words]
    if "because" not in lowered:
        raise UsageError("Say why: `/gonogo freeze [service] because <reason>`.")
    at = lowered.index("because")
    reason = " ".join(words[at + 1 :])
    if not reason:
        raise UsageError("Say why after `because`: `/gonogo freeze checkout because SEV1 in progress`.")
    head = words[:at]
    if len(head) > 1:
        raise UsageError(f"Unexpected `{head[1]}`: freeze one service, or leave it out to freeze all.")
    return Freeze(service=_freeze_scope(head[0]) if head else None, reason=reason)


def parse_unfreeze(text: str) -> Unfreeze:
    """``[service]`` (the words after ``/gonogo unfreeze``)."""
    words = text.split()
    if len(words) > 1:
        raise UsageError(f"Unexpected `{words[1]}`: `/gonogo unfreeze [service]`.")
    return Unfreeze(service=_freeze_scope(words[0]) if words else None)


def _freeze_scope(word: str) -> str:
    name = word.lower()
    if name in ("all", "*"):
        raise UsageError("Leave the service out to freeze or unfreeze all services.")
    if not _SERVICE.match(name):
        raise UsageError(f"`{word[:40]}` is not a service name.")
    return name
