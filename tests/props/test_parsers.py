"""Property tests for the parsers that take user text."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.incidents.naming import MAX_CHANNEL_NAME, channel_name
from bot.incidents.parse import Declare, parse
from bot.render import escape_mrkdwn

ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@given(st.text(max_size=400))
@settings(max_examples=300)
def test_incident_parser_returns_a_command_or_a_usage_error(text: str) -> None:
    try:
        parse(text)
    except UsageError as exc:
        assert str(exc)


@given(st.sampled_from(["sev1", "SEV2", "sev3", "Sev4"]), st.text(min_size=1, max_size=150))
def test_declare_keeps_the_title(sev: str, title: str) -> None:
    try:
        cmd = parse(f"declare {sev} {title}")
    except UsageError:
        assert not " ".join(title.split()) or "--service" in title.lower() or "-s" in title.lower().split()
        return
    assert isinstance(cmd, Declare) and cmd.severity == sev.lower()
    assert cmd.title and len(cmd.title) <= 200


@given(st.text(max_size=300), st.integers(min_value=1, max_value=10**9), st.sampled_from(["", "-2", "-5"]))
@settings(max_examples=300)
def test_channel_names_are_always_valid_for_slack(title: str, number: int, suffix: str) -> None:
    name = channel_name(
        "inc-{date}-{n}-{slug}", number=number, title=title, when=datetime(2026, 1, 5), suffix=suffix
    )
    assert 1 <= len(name) <= MAX_CHANNEL_NAME
    assert set(name) <= ALLOWED
    assert name == name.lower()
    assert str(number) in name


@given(st.text(max_size=300))
def test_escaped_text_cannot_mention_anyone(text: str) -> None:
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped
    for word in ("@here", "@channel", "@everyone"):
        assert word not in escaped.lower()
