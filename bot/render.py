"""Templates: every message the bot sends is rendered here from ``templates/``.

Three kinds of template, chosen by file suffix:

* ``*.json.j2`` — a Slack message ``{"text": ..., "blocks": [...]}`` (or a modal view). Each
  ``{{ expr }}`` is mrkdwn-escaped *and* JSON-string-escaped, so it is written inside quotes:
  ``"text": "*{{ incident.ref }}* {{ incident.title }}"``.
* ``*.mrkdwn.j2`` — plain Slack mrkdwn text; each ``{{ expr }}`` is mrkdwn-escaped.
* ``*.md.j2`` — a Markdown document (post-mortem); no Slack escaping.

Block Kit templates build their blocks with the macros of ``templates/_blocks.j2`` (which manage the
commas). What a template renders — a macro's output, a ``{% call %}`` body — is :class:`Rendered`:
its ``{{ }}`` were escaped as it rendered, so printing it again leaves it as it is. In a ``*.json.j2``
template a line break is layout (see :class:`_LineBreaksAreLayout`), so long texts wrap.

User text can never ping anyone: ``&``, ``<``, ``>`` are escaped (so ``<!channel>`` and ``<@U1>``
show literally) and a zero-width joiner follows ``@`` in ``@here``/``@channel``/``@everyone``.
Trusted mrkdwn (mentions, links) is produced only by the ``mention``/``link``/``channel`` filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
from jinja2.lexer import Token, TokenStream
from pydantic import BaseModel

JSON = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_MESSAGE_TEXT = 40000

_ID = re.compile(r"^[UWBCGS][A-Z0-9_]{1,20}$")
_BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)


class Mrkdwn(str):
    """Text that is already valid, trusted mrkdwn (produced by our own filters)."""

    __slots__ = ()


def escape_mrkdwn(text: object) -> str:
    """Escape user text for Slack mrkdwn so that it is shown literally and pings nobody."""
    if isinstance(text, Mrkdwn):
        return str(text)
    value = "" if text is None else str(text)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), value)


def mention(user_id: object) -> Mrkdwn:
    """``<@U…>`` for a user id, ``<!subteam^S…>`` for a user group id; anything else is escaped text."""
    value = str(user_id or "")
    if _ID.match(value):
        return Mrkdwn(f"<!subteam^{value}>" if value.startswith("S") else f"<@{value}>")
    return Mrkdwn(escape_mrkdwn(value or "nobody"))


def channel_link(channel_id: object) -> Mrkdwn:
    value = str(channel_id or "")
    return Mrkdwn(f"<#{value}>") if _ID.match(value) else Mrkdwn(escape_mrkdwn(value))


def link(url: object, text: object = "") -> Mrkdwn:
    href = str(url or "")
    if not href.startswith(("https://", "http://")) or any(c in href for c in "<>| "):
        return Mrkdwn(escape_mrkdwn(text or href))
    label = escape_mrkdwn(text or href).replace("|", "¦")
    return Mrkdwn(f"<{href}|{label}>")


def when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(fmt)


def duration(value: timedelta | float | None) -> str:
    """``1h 05m``, ``12m``, ``45s``; None → ``—``."""
    if value is None:
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds < 0:
        seconds = 0
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def truncate(text: object, limit: int = MAX_SECTION_TEXT - 100) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def md_cell(text: object) -> str:
    """Make text safe inside a Markdown table cell."""
    return ("" if text is None else str(text)).replace("|", "\\|").replace("\n", " ").strip()


class RenderedMessage(BaseModel):
    text: str
    blocks: list[JSON] = []

    def payload(self) -> JSON:
        return {"text": self.text, "blocks": self.blocks}


def _json_finalize(value: object) -> str:
    return json.dumps(escape_mrkdwn(value), ensure_ascii=False)[1:-1]


def _mrkdwn_finalize(value: object) -> str:
    return escape_mrkdwn(value)


def _doc_finalize(value: object) -> str:
    return "" if value is None else str(value)


class Rendered(str):
    """Text a template rendered: a macro's output, a ``{% call %}`` body, a ``{% set %}`` block. Every
    ``{{ }}`` in it was escaped when it rendered, so the environment prints it as it is (escaping it
    a second time would show ``&amp;amp;``). Only the environments make one (``concat``)."""

    __slots__ = ()


def _concat(parts: Iterable[str]) -> Rendered:
    return Rendered("".join(parts))


def _keeping_rendered(finalize: Callable[[object], str]) -> Callable[[object], str]:
    def finalize_value(value: object) -> str:
        return value if isinstance(value, Rendered) else finalize(value)

    return finalize_value


def json_list(items: object) -> Rendered:
    """``[…]`` around the items a ``{% call %}`` body rendered, each written by its macro with a
    leading comma (``,{…}``): the macros of ``_blocks.j2`` manage the commas, not the templates."""
    if not isinstance(items, Rendered):
        raise TypeError(f"json_list takes what a template rendered, not {type(items).__name__}")
    inner = items.strip()
    return Rendered(f"[{inner[1:] if inner.startswith(',') else inner}]")


_LINE_BREAK = re.compile(r"\n[ \t]*")
_LAST_LINE_BREAK = re.compile(r"\n[ \t]*\Z")


class _LineBreaksAreLayout(jinja2.ext.Extension):
    """In a Block Kit template a line break is layout, so that a long text can wrap:

    * between two lines of text (one ending with text or ``}}``, the next starting with text or
      ``{{``), a line break and the next line's indentation read as one space;
    * a ``{% tag %}`` at the start or at the end of a line takes that line break with it (as
      ``{%- tag %}`` would, and as ``trim_blocks`` does at the end), and indentation goes: a line
      holding only tags leaves nothing, and a text touches a tag it is written against.

    Only the template's own text changes, never a value: this works on the template's tokens before
    anything renders (a JSON string cannot hold a raw line break anyway, and ``finalize`` writes a
    value's line breaks as ``\\n``). Write ``\\n`` for a line break in the message.
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)
        previous_end = 1  # the line on which the previous token ended
        for i, token in enumerate(tokens):
            if token.type != "data":
                previous_end = token.lineno  # a tag's line (without the line break trim_blocks took)
                yield token
                continue
            value = token.value
            if token.lineno > previous_end:  # a tag (or a comment) ending the line before took its break
                value = value.lstrip(" \t")
            if i + 1 < len(tokens) and tokens[i + 1].type == "block_begin":  # a tag starting a line
                value = _LAST_LINE_BREAK.sub("", value)
            previous_end = token.lineno + token.value.count("\n")
            yield Token(token.lineno, token.type, _LINE_BREAK.sub(" ", value))


def default_templates_dir(package: Path | None = None) -> Path:
    """``bot/templates/`` in an installed wheel (the build copies the source tree's ``templates/``
    there: see ``[tool.setuptools.package-dir]`` in ``pyproject.toml``), else ``templates/`` at the
    top of the source tree (a checkout, an editable install). ``package``: ``bot/``'s directory."""
    package = package or Path(__file__).resolve().parent
    shipped = package / "templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


class Renderer:
    """Loads and renders templates; one instance per app (built by the composition root)."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = templates_dir or default_templates_dir()
        self._fixed: dict[str, Mrkdwn] = {}
        self._fixed_json: dict[tuple[str, ...], str] = {}
        self._last_for: dict[str, tuple[object, str]] = {}  # per template: its source, the JSON

    def _env(
        self, finalize: Callable[[object], str], *, layout_line_breaks: bool = False
    ) -> jinja2.Environment:
        env = jinja2.Environment(  # noqa: S701 - escaping is done by ``finalize`` for Slack, not HTML
            loader=jinja2.FileSystemLoader(str(self.templates_dir)),
            undefined=jinja2.StrictUndefined,
            finalize=_keeping_rendered(finalize),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates ship with the code: no stat() of the file on every render
            extensions=[_LineBreaksAreLayout] if layout_line_breaks else [],
        )
        env.concat = _concat  # type: ignore[method-assign]  # what a template renders is Rendered
        env.filters.update(
            mention=mention,
            channel=channel_link,
            link=link,
            when=when,
            duration=duration,
            truncate_text=truncate,
            md_cell=md_cell,
            escape=escape_mrkdwn,
            json_list=json_list,
        )
        return env

    @cached_property
    def _json_env(self) -> jinja2.Environment:
        return self._env(_json_finalize, layout_line_breaks=True)

    @cached_property
    def _mrkdwn_env(self) -> jinja2.Environment:
        return self._env(_mrkdwn_finalize)

    @cached_property
    def _doc_env(self) -> jinja2.Environment:
        return self._env(_doc_finalize)

    def message(self, name: str, **context: Any) -> RenderedMessage:
        """Render ``templates/<name>.json.j2`` into a Slack message, enforcing Block Kit limits."""
        raw = self._json_env.get_template(f"{name}.json.j2").render(**context)
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"template {name}.json.j2 rendered invalid JSON: {exc}") from exc
        blocks = enforce_limits(list(data.get("blocks", [])))
        # Built without validation: JSON our own template produced, within Block Kit's limits.
        return RenderedMessage.model_construct(
            text=truncate(data.get("text", ""), MAX_MESSAGE_TEXT), blocks=blocks
        )

    def fixed_message(self, name: str, **context: str) -> RenderedMessage:
        """``message(name, **context)`` for a message that never changes (help): rendered once, and
        each caller gets a copy of its own (parsed from the rendered JSON: cheaper than rendering)."""
        key = (name, *(f"{k}={v}" for k, v in sorted(context.items())))
        raw = self._fixed_json.get(key)
        if raw is None:
            raw = self._fixed_json[key] = json.dumps(self.message(name, **context).payload())
        return _copy(raw)

    def message_for(self, source: object, name: str, **context: Any) -> RenderedMessage:
        """``message(name, **context)``, rendered once for the same ``source`` object: the result of
        one shared read (``SharedRead``), whose callers asked at the same moment and get the same
        data, so the same message, each a copy of its own. Another source renders anew."""
        last = self._last_for.get(name)
        if last is not None and last[0] is source:
            return _copy(last[1])
        message = self.message(name, **context)
        self._last_for[name] = (source, json.dumps(message.payload()))
        return message

    def view(self, name: str, **context: Any) -> JSON:
        """Render ``templates/<name>.json.j2`` into a modal view dict."""
        raw = self._json_env.get_template(f"{name}.json.j2").render(**context)
        view: JSON = json.loads(raw)
        return view

    def text(self, name: str, **context: Any) -> Mrkdwn:
        """Render ``templates/<name>.mrkdwn.j2``; the result is trusted mrkdwn (user text escaped)."""
        return Mrkdwn(self._mrkdwn_env.get_template(f"{name}.mrkdwn.j2").render(**context).strip())

    def fixed_text(self, name: str) -> Mrkdwn:
        """``text(name)`` of a template that takes no context (help): rendered once."""
        found = self._fixed.get(name)
        if found is None:
            found = self._fixed[name] = self.text(name)
        return found

    def document(self, name: str, **context: Any) -> str:
        return self._doc_env.get_template(f"{name}.md.j2").render(**context).strip() + "\n"


def enforce_limits(blocks: list[JSON]) -> list[JSON]:
    """Keep a message inside Block Kit limits: cut long texts and, past 50 blocks, summarise the rest."""
    for block in blocks:
        text = block.get("text")
        if block.get("type") == "section" and isinstance(text, dict):
            text["text"] = truncate(text.get("text", ""), MAX_SECTION_TEXT)
        if block.get("type") == "header" and isinstance(text, dict):
            text["text"] = truncate(text.get("text", ""), MAX_HEADER_TEXT)
        for field in block.get("fields", []) or []:
            field["text"] = truncate(field.get("text", ""), MAX_FIELD_TEXT)
    if len(blocks) > MAX_BLOCKS:
        hidden = len(blocks) - (MAX_BLOCKS - 1)
        blocks = [
            *blocks[: MAX_BLOCKS - 1],
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {hidden} more not shown"}]},
        ]
    return blocks


def _copy(raw: str) -> RenderedMessage:
    """A message of its own from rendered JSON (cheaper than rendering it again)."""
    data = json.loads(raw)
    return RenderedMessage.model_construct(text=data["text"], blocks=data["blocks"])
