"""The /rollback parser: examples, and properties over generated commands and arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.releases.rollback.parse import Help, History, Request, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("checkout", Request(service="checkout")),
        ("Checkout PROD", Request(service="checkout", environment="prod")),
        ("checkout prod to v1.4.1", Request(service="checkout", environment="prod", target="v1.4.1")),
        ("checkout to 41", Request(service="checkout", target="41")),
        (
            "checkout prod because 502s after v1.4.2  <!channel>",
            Request(service="checkout", environment="prod", reason="502s after v1.4.2 <!channel>"),
        ),
        (
            "checkout staging TO 1.4.0 BECAUSE rolled back to 1.4.1 and still bad",
            Request(
                service="checkout",
                environment="staging",
                target="1.4.0",
                reason="rolled back to 1.4.1 and still bad",
            ),
        ),
        ("history checkout", History(service="checkout")),
        ("history checkout prod", History(service="checkout", environment="prod")),
    ],
)
def test_examples(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checkout prod sideways", "Unexpected `sideways`"),
        ("checkout prod to", "Name the version"),
        ("checkout to v1 v2", "Unexpected `v2`"),
        ("checkout because", "Say why"),
        ("because it broke", "Name the service first"),
        ("to v1.4.1", "Name the service first"),
        ("history", "Name the service"),
        ("history checkout prod extra", "Unexpected `extra`"),
        ("check*out", "not a service name"),
        ("checkout prod to --force", "not a version"),
        ("checkout prod to ../../etc", "not a version"),
    ],
)
def test_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("*", r"\*")):
        parse(text)


KEYWORDS = {"to", "because", "history", "help"}
services = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
envs = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True).filter(
    lambda s: s.lower() not in KEYWORDS
)
targets = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+:/@-]{0,30}", fullmatch=True).filter(
    lambda s: s.lower() not in KEYWORDS
)
reasons = st.lists(
    st.text(min_size=1, max_size=12).filter(lambda w: not any(c.isspace() for c in w)), max_size=8
)


@given(services, st.none() | envs, st.none() | targets, reasons)
@settings(max_examples=300)
def test_generated_commands_parse_back(
    service: str, env: str | None, target: str | None, reason_words: list[str]
) -> None:
    text = " ".join(
        [service]
        + ([env] if env else [])
        + (["to", target] if target else [])
        + (["because", *reason_words] if reason_words else [])
    )
    assert parse(text) == Request(
        service=service,
        environment=env.lower() if env else None,
        target=target,
        reason=" ".join(reason_words),
    )


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_any_text_is_a_command_or_a_usage_error(text: str) -> None:
    try:
        cmd = parse(text)
    except UsageError as exc:
        assert str(exc)
        return
    if isinstance(cmd, Request) and cmd.target is not None:
        assert not cmd.target.startswith("-")  # never a flag for the deploy tool's command line
