"""The /gonogo parser: examples, and properties over arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import UsageError
from bot.gonogo.parse import Decide, Freeze, Help, RequestException, Status, Unfreeze, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("checkout v1.4.3", Decide(service="checkout", version="v1.4.3")),
        ("Checkout v1.4.3 PROD", Decide(service="checkout", version="v1.4.3", environment="prod")),
        ("status", Status()),
        ("status search", Status(service="search")),
        ("freeze checkout because SEV1", Freeze(service="checkout", reason="SEV1")),
        ("UNFREEZE", Unfreeze(service=None)),
        (
            "exception image_digest checkout 3 because legacy sidecar, fix in PLAT-12",
            RequestException(
                gate="image_digest", service="checkout", days=3, reason="legacy sidecar, fix in PLAT-12"
            ),
        ),
        (
            'exception "CI summary" checkout 2d risk HIGH because  flaky   suite',
            RequestException(
                gate="CI summary", service="checkout", days=2, reason="flaky suite", risk="high"
            ),
        ),
        (
            "exception \u201cCI summary\u201d checkout 8 because smart quotes from a Mac",
            RequestException(gate="CI summary", service="checkout", days=8, reason="smart quotes from a Mac"),
        ),
    ],
)
def test_examples(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checkout", "Give the version too"),
        ("checkout v1 prod extra", "Unexpected `extra`"),
        ("checkout --help", "is not a version"),
        ("status a b", "Unexpected `b`"),
        ("exception http checkout 3", "Say why after `because`"),
        ("exception http checkout 3 because", "Say why after `because`"),
        ("exception http checkout because reasons", "Name the gate, the service and the days"),
        ("exception http checkout soon because reasons", "is not a number of days"),
        ("exception http checkout 0 because reasons", "at least one day"),
        ("exception http checkout 2 risk extreme because reasons", "Risk is one of low, medium, high"),
        ('exception "CI summary checkout 2 because x', "Close the quotes"),
        ("Check_Out! v1", "is not a service name"),
    ],
)
def test_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(text)


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_any_text_is_a_command_or_a_usage_error(text: str) -> None:
    try:
        parse(text)
    except UsageError as exc:
        assert str(exc) and not exc.usage  # the caller adds the usage


services = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True).filter(
    lambda s: s not in {"status", "exception", "help", "freeze", "unfreeze"}
)
versions = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,30}", fullmatch=True)
envs = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,15}", fullmatch=True)


@given(services, versions, st.none() | envs)
def test_decide_round_trips(service: str, version: str, env: str | None) -> None:
    text = f"{service} {version}" + (f" {env}" if env else "")
    assert parse(text) == Decide(service=service, version=version, environment=env)


@given(
    st.from_regex(r"[a-z_][a-z0-9_-]{0,20}", fullmatch=True),
    services,
    st.integers(min_value=1, max_value=9999),
    st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=80),
)
def test_exception_round_trips(gate: str, service: str, days: int, reason: str) -> None:
    if not " ".join(reason.split()) or {gate, service} & {"because", "risk"}:
        return
    cmd = parse(f"exception {gate} {service} {days} because {reason}")
    assert cmd == RequestException(gate=gate, service=service, days=days, reason=" ".join(reason.split()))
