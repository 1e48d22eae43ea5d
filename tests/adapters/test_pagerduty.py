"""PagerDutyPager / PagerDutyOnCall against the fake PagerDuty on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.adapters.pagerduty import PagerDutyOnCall, PagerDutyPager
from bot.errors import ConfigError, PagerError
from bot.ports import Link, OnCall, PagerSeverity
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.specs import specs_dir
from bot.sandbox.vendors.pagerduty import PagerDutyFake, create_app

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "fedcba9876543210fedcba9876543210"
TOKEN = "pd-test-token"


@pytest.fixture
def fake() -> PagerDutyFake:
    return PagerDutyFake(api_token=TOKEN)


@pytest.fixture
def spec_checked(fake: PagerDutyFake) -> PagerDutyFake:
    if not fake.validating:
        pytest.skip(f"../shared/specs not found: PagerDuty specs (looked in {specs_dir()})")
    return fake


@pytest.fixture
def server(fake: PagerDutyFake) -> Iterator[RunningServer]:
    with serve_in_thread(create_app(fake)) as running:
        yield running


@pytest.fixture
async def pager(server: RunningServer) -> AsyncIterator[PagerDutyPager]:
    adapter = PagerDutyPager(routing_key=ROUTING_KEY, events_url=server.url, timeout=5)
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def directory(server: RunningServer) -> AsyncIterator[PagerDutyOnCall]:
    adapter = PagerDutyOnCall(api_token=TOKEN, api_url=server.url, from_email="bot@example.com", timeout=5)
    yield adapter
    await adapter.aclose()


# --- Events API v2 --------------------------------------------------------------------------------


async def test_trigger_acknowledge_resolve_is_one_alert(
    spec_checked: PagerDutyFake, pager: PagerDutyPager
) -> None:
    fake = spec_checked
    link = Link(href="https://cmdcenter.example.com/incidents/INC-7", text="INC-7")
    for _ in range(2):  # a retried trigger with the same dedup key must not open a second alert
        result = await pager.trigger(
            dedup_key="cmdcenter:INC-7",
            summary="INC-7 checkout is down",
            severity="critical",
            source="checkout",
            component="payments-db",
            custom_details={"incident": "INC-7", "commander": "U123"},
            links=[link],
        )
        assert result.dedup_key == "cmdcenter:INC-7"
        assert result.status == "success"
    await pager.acknowledge(dedup_key="cmdcenter:INC-7")
    await pager.resolve(dedup_key="cmdcenter:INC-7")

    assert fake.violations == []
    assert list(fake.alerts) == ["cmdcenter:INC-7"]
    assert fake.alert_history("cmdcenter:INC-7") == ["triggered", "acknowledged", "resolved"]
    assert fake.alerts["cmdcenter:INC-7"]["triggers"] == 2
    trigger = fake.events[0]
    assert trigger == {
        "event_action": "trigger",
        "routing_key": ROUTING_KEY,
        "dedup_key": "cmdcenter:INC-7",
        "payload": {
            "summary": "INC-7 checkout is down",
            "source": "checkout",
            "severity": "critical",
            "component": "payments-db",
            "custom_details": {"incident": "INC-7", "commander": "U123"},
        },
        "links": [{"href": "https://cmdcenter.example.com/incidents/INC-7", "text": "INC-7"}],
    }
    assert [e["event_action"] for e in fake.events] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert all(e["dedup_key"] == "cmdcenter:INC-7" for e in fake.events)


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info"])
async def test_every_severity_is_valid(
    spec_checked: PagerDutyFake, pager: PagerDutyPager, severity: PagerSeverity
) -> None:
    await pager.trigger(dedup_key=f"k-{severity}", summary="s", severity=severity, source="svc")
    assert spec_checked.violations == []
    assert spec_checked.events[0]["payload"] == {"summary": "s", "source": "svc", "severity": severity}


async def test_long_summary_is_truncated(spec_checked: PagerDutyFake, pager: PagerDutyPager) -> None:
    await pager.trigger(dedup_key="k", summary="x" * 2000, severity="info", source="svc")
    assert spec_checked.violations == []
    assert len(spec_checked.events[0]["payload"]["summary"]) == 1024


async def test_per_call_routing_key_overrides_default(fake: PagerDutyFake, pager: PagerDutyPager) -> None:
    await pager.trigger(dedup_key="k", summary="s", severity="info", source="svc", routing_key=OTHER_KEY)
    await pager.resolve(dedup_key="k", routing_key=OTHER_KEY)
    await pager.acknowledge(dedup_key="other")
    assert [e["routing_key"] for e in fake.events] == [OTHER_KEY, OTHER_KEY, ROUTING_KEY]


async def test_no_routing_key_is_not_retryable(fake: PagerDutyFake, server: RunningServer) -> None:
    pager = PagerDutyPager(routing_key=None, events_url=server.url)
    with pytest.raises(PagerError, match="routing key") as caught:
        await pager.trigger(dedup_key="k", summary="s", severity="info", source="svc")
    assert caught.value.retryable is False
    assert fake.hits["enqueue"] == 0


async def test_500_is_retryable_and_the_library_does_not_retry(
    fake: PagerDutyFake, pager: PagerDutyPager
) -> None:
    fake.fail_next("enqueue", status=500, times=3)
    for attempt in range(1, 4):
        started = time.monotonic()
        with pytest.raises(PagerError) as caught:
            await pager.trigger(dedup_key="k", summary="s", severity="error", source="svc")
        assert (caught.value.retryable, caught.value.status) == (True, 500)
        assert isinstance(caught.value.__cause__, Exception)
        assert fake.hits["enqueue"] == attempt  # exactly one request per call
        assert time.monotonic() - started < 2  # no cooldown sleeps
    await pager.trigger(dedup_key="k", summary="s", severity="error", source="svc")
    assert fake.alert_history("k") == ["triggered"]


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retryable(fake: PagerDutyFake, pager: PagerDutyPager, status: int) -> None:
    fake.fail_next("enqueue", status=status, times=1)
    with pytest.raises(PagerError) as caught:
        await pager.resolve(dedup_key="k")
    assert (caught.value.retryable, caught.value.status) == (True, status)
    assert fake.hits["enqueue"] == 1


async def test_429_sets_retry_after(fake: PagerDutyFake, pager: PagerDutyPager) -> None:
    fake.fail_next("enqueue", status=429, times=1, retry_after=30)
    started = time.monotonic()
    with pytest.raises(PagerError) as caught:
        await pager.trigger(dedup_key="k", summary="s", severity="warning", source="svc")
    assert time.monotonic() - started < 2  # the library would otherwise retry 429s forever
    assert caught.value.retryable is True
    assert caught.value.retry_after == 30
    assert caught.value.status == 429
    assert fake.hits["enqueue"] == 1


async def test_400_is_not_retryable_and_carries_the_message(
    spec_checked: PagerDutyFake, server: RunningServer
) -> None:
    bad_key = "too-short-secret-key"
    pager = PagerDutyPager(routing_key=bad_key, events_url=server.url)
    with pytest.raises(PagerError) as caught:
        await pager.trigger(dedup_key="k", summary="s", severity="info", source="svc")
    error = caught.value
    assert (error.retryable, error.status) == (False, 400)
    assert "Event object is invalid" in str(error)
    assert "routing_key" in str(error)
    assert bad_key not in str(error)
    assert spec_checked.violations and spec_checked.alerts == {}


async def test_timeout_is_retryable(fake: PagerDutyFake, server: RunningServer) -> None:
    fake.slow_next("enqueue", 0.6)
    pager = PagerDutyPager(routing_key=ROUTING_KEY, events_url=server.url, timeout=0.2)
    with pytest.raises(PagerError, match="timed out") as caught:
        await pager.acknowledge(dedup_key="k")
    assert caught.value.retryable is True
    assert fake.hits["enqueue"] == 1


async def test_connection_refused_is_retryable(fake: PagerDutyFake) -> None:
    with serve_in_thread(create_app(fake)) as stopped:
        url = stopped.url
    pager = PagerDutyPager(routing_key=ROUTING_KEY, events_url=url, timeout=2)
    with pytest.raises(PagerError, match="connection failed") as caught:
        await pager.resolve(dedup_key="k")
    assert caught.value.retryable is True
    assert ROUTING_KEY not in str(caught.value)


def test_plain_http_is_refused_except_on_loopback() -> None:
    with pytest.raises(ConfigError):
        PagerDutyPager(routing_key=ROUTING_KEY, events_url="http://events.example.com")
    with pytest.raises(ConfigError):
        PagerDutyOnCall(api_token=TOKEN, api_url="http://api.example.com")
    PagerDutyPager(routing_key=ROUTING_KEY, events_url="https://events.eu.pagerduty.com")


# --- REST API v2 ----------------------------------------------------------------------------------


async def test_oncalls_are_mapped_and_ordered(
    spec_checked: PagerDutyFake, directory: PagerDutyOnCall
) -> None:
    spec_checked.oncalls["PEPX"] = [
        {"id": "PU3", "name": "Carol", "email": "carol@example.com", "level": 2},
        {"id": "PU2", "name": "bob", "email": None, "level": 1},
        {"id": "PU1", "name": "Alice", "email": "alice@example.com", "level": 1},
        {"id": "PU1", "name": "Alice", "email": "alice@example.com", "level": 1},  # a second schedule
    ]
    oncalls = await directory.oncalls(escalation_policy_id="PEPX")
    assert oncalls == [
        OnCall(name="Alice", email="alice@example.com", escalation_level=1, user_id="PU1"),
        OnCall(name="bob", email=None, escalation_level=1, user_id="PU2"),
        OnCall(name="Carol", email="carol@example.com", escalation_level=2, user_id="PU3"),
    ]
    assert spec_checked.violations == []
    query = spec_checked.rest_calls[0]["query"]
    assert ("escalation_policy_ids[]", "PEPX") in query
    assert ("include[]", "users") in query


async def test_oncalls_follow_pagination(fake: PagerDutyFake, directory: PagerDutyOnCall) -> None:
    fake.oncalls["PEPBIG"] = [
        {"id": f"PU{n:03d}", "name": f"User {n:03d}", "email": None, "level": 1 + n % 3} for n in range(150)
    ]
    oncalls = await directory.oncalls(escalation_policy_id="PEPBIG")
    assert len(oncalls) == 150
    assert [o.escalation_level for o in oncalls] == sorted(o.escalation_level for o in oncalls)
    assert len(fake.rest_calls) == 2


async def test_unknown_policy_has_nobody_on_call(directory: PagerDutyOnCall) -> None:
    assert await directory.oncalls(escalation_policy_id="PNOPE") == []


async def test_open_incidents_filter_by_service_and_status(
    spec_checked: PagerDutyFake, directory: PagerDutyOnCall
) -> None:
    incidents = await directory.open_incidents(service_ids=["PSVC01", "PSVC02"])
    assert [(i.id, i.status, i.service_id) for i in incidents] == [
        ("PINC001", "triggered", "PSVC01"),
        ("PINC002", "acknowledged", "PSVC02"),
    ]
    assert incidents[0].title == "Checkout latency"
    assert incidents[0].created_at is not None
    query = spec_checked.rest_calls[0]["query"]
    assert ("statuses[]", "triggered") in query and ("statuses[]", "acknowledged") in query
    assert spec_checked.violations == []


async def test_open_incidents_without_services_makes_no_call(
    fake: PagerDutyFake, directory: PagerDutyOnCall
) -> None:
    assert await directory.open_incidents(service_ids=[]) == []
    assert fake.rest_calls == []


async def test_rest_bad_token_is_not_retryable(server: RunningServer) -> None:
    directory = PagerDutyOnCall(api_token="wrong-token", api_url=server.url)
    with pytest.raises(PagerError) as caught:
        await directory.oncalls(escalation_policy_id="PEPOLICY1")
    assert (caught.value.retryable, caught.value.status) == (False, 401)
    assert "wrong-token" not in str(caught.value)


async def test_rest_429_and_500_are_retryable(fake: PagerDutyFake, directory: PagerDutyOnCall) -> None:
    fake.fail_next("oncalls", status=429, times=1, retry_after=12)
    with pytest.raises(PagerError) as caught:
        await directory.oncalls(escalation_policy_id="PEPOLICY1")
    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, 12, 429)

    fake.fail_next("incidents", status=500, times=1)
    with pytest.raises(PagerError) as caught:
        await directory.open_incidents(service_ids=["PSVC01"])
    assert (caught.value.retryable, caught.value.status) == (True, 500)
    assert fake.hits == {"oncalls": 1, "incidents": 1}
