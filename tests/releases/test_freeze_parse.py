"""``/gonogo freeze|unfreeze`` argument parsing."""

from __future__ import annotations

import pytest

from bot.errors import UsageError
from bot.gonogo.parse import Freeze as FreezeCmd
from bot.gonogo.parse import Unfreeze as UnfreezeCmd
from bot.gonogo.parse import parse_freeze, parse_unfreeze


def test_freeze() -> None:
    assert parse_freeze("checkout because SEV1 in progress") == FreezeCmd(
        service="checkout", reason="SEV1 in progress"
    )
    assert parse_freeze("BECAUSE quarter   end") == FreezeCmd(service=None, reason="quarter end")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checkout", "Say why"),
        ("checkout because", "Say why after"),
        ("checkout search because x", "Unexpected `search`"),
        ("all because x", "Leave the service out"),
        ("Check!out because x", "not a service name"),
    ],
)
def test_freeze_usage(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_freeze(text)


def test_unfreeze() -> None:
    assert parse_unfreeze("") == UnfreezeCmd(service=None)
    assert parse_unfreeze(" Checkout ") == UnfreezeCmd(service="checkout")
    with pytest.raises(UsageError, match="Unexpected"):
        parse_unfreeze("checkout now")
