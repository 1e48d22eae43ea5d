"""``bot.web.malformed``: the early check of signed bodies before Bolt sees them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from hypothesis import given
from hypothesis import strategies as st

from bot.web import malformed

FORM = "application/x-www-form-urlencoded"


def test_slash_commands() -> None:
    assert malformed(b"token=x&command=%2Fincident&text=help", FORM) is None
    assert malformed(b"command=/incident", FORM) is None
    assert malformed(b"text=a&command=incident", FORM) == "command must start with /"
    assert malformed(b"subcommand=x&command=+%2Fincident", FORM) == "command must start with /"
    assert malformed(b"text=command%3Dx", FORM) is None  # no command field at all
    assert malformed(b"payload=%7B%7D", FORM) == "interactivity payload without a type"
    assert malformed(b"a=1&payload=%7B%22type%22%3A%22block_actions%22%7D", FORM) is None


@given(st.dictionaries(st.sampled_from(["command", "text", "user_id", "xcommand"]), st.text(max_size=20)))
def test_the_fast_command_check_agrees_with_parsing_the_form(fields: dict[str, str]) -> None:
    body = urlencode(fields).encode()
    form = parse_qs(body.decode(), keep_blank_values=True)
    expected = (
        "command must start with /" if "command" in form and not form["command"][0].startswith("/") else None
    )
    assert malformed(body, FORM) == expected
