"""Ledger logic without a database: the deploy report model and the rollback chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from bot.releases.ledger import DeployReport, LedgerEntry, rolled_back_from

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def entry(
    version: str, kind: str = "deploy", previous: str | None = None, status: str = "succeeded"
) -> LedgerEntry:
    return LedgerEntry(
        id=1,
        service="checkout",
        environment="prod",
        kind=kind,
        version=version,
        previous_version=previous,
        status=status,
        source="cmdcenter" if kind == "rollback" else "webhook",
        started_at=AT,
    )


def test_a_chain_of_rollbacks_is_avoided() -> None:
    found = [
        entry("1.4.0", "rollback", previous="1.4.1"),
        entry("1.4.1", "rollback", previous="1.4.2"),
        entry("1.4.2"),
        entry("1.4.1"),
        entry("1.4.0"),
    ]
    assert rolled_back_from(found, current="1.4.0") == {"1.4.1", "1.4.2"}


def test_a_deploy_ends_the_chain_and_failures_do_not_count() -> None:
    found = [
        entry("1.5.0", "rollback", previous="1.5.1", status="failed"),
        entry("1.5.0"),
        entry("1.4.1", "rollback", previous="1.4.2"),
    ]
    assert rolled_back_from(found, current="1.5.0") == set()


def test_a_ledger_that_does_not_know_the_current_release_avoids_nothing() -> None:
    assert rolled_back_from([entry("1.4.1", "rollback", previous="1.4.2")], current="2.0.0") == set()


@pytest.mark.parametrize(
    ("status", "normalised"),
    [("success", "succeeded"), ("FAILURE", "failed"), ("in_progress", "started"), ("canceled", "cancelled")],
)
def test_ci_statuses_are_understood(status: str, normalised: str) -> None:
    report = DeployReport.model_validate(
        {"service": "checkout", "environment": "prod", "version": "1", "status": status}
    )
    assert report.status == normalised


@pytest.mark.parametrize(
    "body",
    [
        {"service": "checkout", "environment": "prod", "version": "1", "status": "maybe"},
        {"service": "checkout", "environment": "prod", "version": " ", "status": "started"},
        {"service": "checkout", "environment": "prod", "version": "1", "status": "started", "url": "ftp://x"},
        {"service": "checkout", "environment": "prod", "version": "1", "status": 3},
    ],
)
def test_bad_reports(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DeployReport.model_validate(body)
