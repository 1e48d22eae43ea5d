"""Choosing current → target from a deploy tool's history (newest first)."""

from __future__ import annotations

import pytest

from bot.errors import Conflict, NotFound
from bot.ports import Release
from bot.releases.rollback.target import choose_target, left_by_rollbacks
from tests.releases.test_ledger import entry


def history(*entries: tuple[str, str, str]) -> list[Release]:
    return [Release(version=v, revision=r, status=s) for v, r, s in entries]


HELM = history(
    ("1.4.2", "5", "deployed"),
    ("1.4.2", "4", "failed"),
    ("1.4.1", "3", "superseded"),
    ("1.4.0", "2", "superseded"),
    ("1.3.9", "1", "superseded"),
)


def test_default_is_the_previous_successful_release_of_another_version() -> None:
    current, target = choose_target(HELM, None)
    assert current is not None and (current.revision, target.revision) == ("5", "3")


def test_versions_earlier_rollbacks_left_are_skipped() -> None:
    _, target = choose_target(HELM, None, avoid={"1.4.1"})
    assert target.version == "1.4.0"


def test_failed_releases_are_skipped() -> None:
    entries = history(("2.0", "3", "deployed"), ("1.9", "2", "failed"), ("1.8", "1", "superseded"))
    assert choose_target(entries, None)[1].version == "1.8"


def test_current_is_the_deployed_one_even_when_a_newer_one_failed() -> None:
    entries = history(("2.0", "3", "failed"), ("1.9", "2", "deployed"), ("1.8", "1", "superseded"))
    current, target = choose_target(entries, None)
    assert current is not None and current.version == "1.9" and target.version == "1.8"


@pytest.mark.parametrize(("wanted", "revision"), [("3", "3"), ("1.4.0", "2"), ("v1.4.0", "2"), ("1", "1")])
def test_a_named_revision_or_version(wanted: str, revision: str) -> None:
    assert choose_target(HELM, wanted)[1].revision == revision


def test_naming_the_current_release_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="deployed now"):
        choose_target(HELM, "5")


def test_an_unknown_target_lists_what_is_known() -> None:
    with pytest.raises(NotFound, match=r"No release `9.9.9`.*1.4.2 \(rev 5\)"):
        choose_target(HELM, "9.9.9")


def test_nothing_older_is_a_conflict() -> None:
    with pytest.raises(Conflict, match="No earlier successful release"):
        choose_target(history(("1.0", "1", "deployed")), None)


def test_no_history_at_all() -> None:
    with pytest.raises(Conflict, match="name the version"):
        choose_target([], None)
    current, target = choose_target([], "v2.0.1")
    assert current is None and (target.version, target.revision) == ("v2.0.1", "v2.0.1")


def test_a_second_rollback_goes_further_back_not_forth_again() -> None:
    """RB 1.4.2 → 1.4.1 happened: rolling back again from 1.4.1 must skip 1.4.2 (and land on 1.4.0)."""
    tool = history(("1.4.1", "6", "deployed"), ("1.4.2", "5", "superseded"), ("1.4.0", "2", "superseded"))
    recorded = [entry("1.4.1", "rollback", previous="1.4.2"), entry("1.4.2"), entry("1.4.1")]
    avoid = left_by_rollbacks(tool, recorded)
    assert avoid == {"1.4.2"} and choose_target(tool, None, avoid=avoid)[1].version == "1.4.0"
    assert left_by_rollbacks([], recorded) == set()
