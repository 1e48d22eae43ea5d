"""Small pure helpers on configured values, shared by the adapters and the release gates.

* Placeholders: ``{service}``, ``{env}``, ``{version}``, ``{revision}`` in configured URLs, refs and
  command arguments; anything else (unknown names, format specs, attribute access) is refused, so a
  config can never reach into Python objects, and values are inserted verbatim (no shell).
* JSON answers: ``dig(body, "a.b.0.c")`` follows a dotted path; ``as_text`` shows a scalar the way
  the config writes it.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

from bot.config import ServiceConfig
from bot.errors import DeployError

MISSING = object()  # what ``dig`` returns for a path that is not there


PLACEHOLDERS = ("service", "env", "version", "revision")


def placeholder_values(
    service: ServiceConfig, environment: str, *, version: str | None = None, revision: str | None = None
) -> dict[str, str | None]:
    """The values of the placeholders; ``None`` marks one that is not known at this point."""
    return {"service": service.name, "env": environment, "version": version, "revision": revision}


def fill_placeholders(template: str, values: Mapping[str, str | None], *, where: str) -> str:
    """Replace ``{service}``-style placeholders in ``template``; ``{{``/``}}`` are literal braces.

    Unknown names, positional ``{}``, attribute/index access, conversions and format specs are
    rejected (``DeployError``, not retryable) and so is a known placeholder whose value is
    ``None`` here (``{version}`` while listing releases). Values are inserted verbatim.
    """
    allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DeployError(f"{where}: invalid template {template!r} ({exc})", retryable=False) from exc
    out: list[str] = []
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            shown = (
                "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            raise DeployError(
                f"{where}: unknown placeholder {shown} in {template!r}; use {allowed}", retryable=False
            )
        value = values.get(field)
        if value is None:
            raise DeployError(f"{where}: {{{field}}} is not available here ({template!r})", retryable=False)
        out.append(value)
    return "".join(out)


def dig(body: Any, dotted: str) -> Any:
    """Follow ``a.b.0.c`` through objects (and list indices); ``MISSING`` when a step is absent."""
    node = body
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def as_text(value: Any) -> str:
    """JSON scalars as the config writes them: strings as is, ``true``/``false``/``null``/numbers as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
