"""Choosing the release a rollback goes to (pure: no I/O).

The current release is the newest ``deployed`` one of a newest-first history (else the newest). The
target is the release asked for, or the newest older successful one that is neither the current
version nor one an earlier rollback left (rolling back twice goes further back, never forth again).
"""

from __future__ import annotations

from bot.errors import Conflict, NotFound
from bot.ports import Release
from bot.releases.ledger import LedgerEntry, rolled_back_from

SUCCESSFUL = frozenset({"deployed", "superseded", "succeeded", "success", "complete", "completed"})


def current_release(releases: list[Release]) -> Release | None:
    """The newest ``deployed`` release of a newest-first history, else the newest; None when empty."""
    return next((r for r in releases if r.status == "deployed"), releases[0] if releases else None)


def left_by_rollbacks(releases: list[Release], recorded: list[LedgerEntry]) -> set[str]:
    """The versions earlier rollbacks left, by the ledger (``recorded``, newest first), that a new
    rollback must not return to (see ``ledger.rolled_back_from``)."""
    current = current_release(releases)
    return rolled_back_from(recorded, current=current.version) if current else set()


def _plain(version: str) -> str:
    return version.lower().removeprefix("v")


def choose_target(
    releases: list[Release], wanted: str | None, *, avoid: frozenset[str] | set[str] = frozenset()
) -> tuple[Release | None, Release]:
    """(current, target) from a newest-first history.

    The current release is the newest ``deployed`` one (else the newest). Without ``wanted`` the target
    is the newest older successful release whose version is neither the current one nor in ``avoid``
    (versions earlier rollbacks left: see ``ledger.rolled_back_from``); with it, the release whose
    revision, else version (``v`` prefix optional), matches. With no history at all, ``wanted`` is taken
    as is (tools that keep none, like GitHub Actions or a command, before the ledger knows anything).
    """
    current = current_release(releases)
    if wanted is not None:
        return current, _wanted(releases, current, wanted)
    if current is None:
        raise Conflict(
            "No release history is known (the tool keeps none and the ledger has no deploys yet): "
            "name the version with `to <version>`."
        )
    older = releases[releases.index(current) + 1 :]
    target = next(
        (
            r
            for r in older
            if r.status.lower() in SUCCESSFUL and r.version != current.version and r.version not in avoid
        ),
        None,
    )
    if target is None:
        raise Conflict(
            f"No earlier successful release than {current.version} to roll back to; "
            "name one with `to <version|revision>`."
        )
    return current, target


def _wanted(releases: list[Release], current: Release | None, wanted: str) -> Release:
    """The release named by ``to <version|revision>``: its revision, else its version."""
    if not releases:
        return Release(version=wanted, revision=wanted, status="requested")
    match = next((r for r in releases if r.revision == wanted), None) or next(
        (r for r in releases if _plain(r.version) == _plain(wanted) and r.status in SUCCESSFUL),
        next((r for r in releases if _plain(r.version) == _plain(wanted)), None),
    )
    if match is None:
        known = ", ".join(f"{r.version} (rev {r.revision})" for r in releases[:8])
        raise NotFound(f"No release `{wanted}` in the history. Known: {known}.")
    if current is not None and match.revision == current.revision:
        raise Conflict(f"{match.version} (rev {match.revision}) is what is deployed now.")
    return match
