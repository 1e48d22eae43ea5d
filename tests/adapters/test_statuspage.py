"""StatuspageClient against the fake Statuspage on 127.0.0.1 (mounted under /v1 like the real API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bot.adapters.statuspage import StatuspageClient
from bot.errors import StatusPageError
from bot.ports import Component
from bot.sandbox.server import RunningServer, serve_in_thread
from bot.sandbox.specs import specs_dir
from bot.sandbox.vendors.statuspage import StatuspageFake, create_app

API_KEY = "sp-secret-key-123"
PAGE_ID = "pagetest0001"


@pytest.fixture
def fake() -> StatuspageFake:
    return StatuspageFake(api_key=API_KEY, page_id=PAGE_ID)


@pytest.fixture
def spec_checked(fake: StatuspageFake) -> StatuspageFake:
    if not fake.validating:
        pytest.skip(f"../shared/specs not found: Statuspage spec (looked in {specs_dir()})")
    return fake


@pytest.fixture
def server(fake: StatuspageFake) -> Iterator[RunningServer]:
    app = Starlette(routes=[Mount("/v1", app=create_app(fake))])
    with serve_in_thread(app) as running:
        yield running


@pytest.fixture
def base_url(server: RunningServer) -> str:
    return f"{server.url}/v1"


@pytest.fixture
async def status_page(base_url: str) -> AsyncIterator[StatuspageClient]:
    client = StatuspageClient(api_key=API_KEY, page_id=PAGE_ID, base_url=base_url, timeout=5)
    yield client
    await client.aclose()


async def test_create_update_resolve(spec_checked: StatuspageFake, status_page: StatuspageClient) -> None:
    fake = spec_checked
    created = await status_page.create_incident(
        name="Checkout errors",
        status="investigating",
        body="We are investigating failed payments.",
        components={"cmpapi000001": "partial_outage"},
    )
    assert (created.name, created.status) == ("Checkout errors", "investigating")
    assert created.shortlink
    assert fake.component_statuses()["cmpapi000001"] == "partial_outage"

    updated = await status_page.update_incident(
        incident_id=created.id,
        status="identified",
        body="A bad deploy; rolling back.",
        components={"cmpapi000001": "major_outage", "cmpweb000001": "degraded_performance"},
    )
    assert (updated.id, updated.status) == (created.id, "identified")
    assert fake.component_statuses() == {
        "cmpapi000001": "major_outage",
        "cmpweb000001": "degraded_performance",
        "cmpdb0000001": "operational",
    }

    resolved = await status_page.update_incident(
        incident_id=created.id,
        status="resolved",
        body="Payments are back to normal.",
        components={"cmpapi000001": "operational", "cmpweb000001": "operational"},
    )
    assert resolved.status == "resolved"
    assert set(fake.component_statuses().values()) == {"operational"}
    assert fake.status_history(created.id) == ["investigating", "identified", "resolved"]
    incident = fake.incidents[created.id]
    assert incident["incident_updates"][0]["body"] == "Payments are back to normal."
    assert {c["id"] for c in incident["components"]} == {"cmpapi000001", "cmpweb000001"}
    assert fake.violations == []

    first = fake.calls[0]
    assert (first["method"], first["path"]) == ("POST", f"/v1/pages/{PAGE_ID}/incidents")
    assert first["json"] == {
        "incident": {
            "name": "Checkout errors",
            "status": "investigating",
            "body": "We are investigating failed payments.",
            "components": {"cmpapi000001": "partial_outage"},
            "component_ids": ["cmpapi000001"],
        }
    }
    assert fake.calls[1]["method"] == "PATCH"
    assert fake.calls[1]["path"] == f"/v1/pages/{PAGE_ID}/incidents/{created.id}"


async def test_update_without_components_leaves_them(
    spec_checked: StatuspageFake, status_page: StatuspageClient
) -> None:
    created = await status_page.create_incident(
        name="Slow search",
        status="investigating",
        body="Looking.",
        components={"cmpdb0000001": "partial_outage"},
    )
    await status_page.update_incident(incident_id=created.id, status="monitoring", body="Fix deployed.")
    assert spec_checked.calls[-1]["json"] == {"incident": {"status": "monitoring", "body": "Fix deployed."}}
    assert spec_checked.component_statuses()["cmpdb0000001"] == "partial_outage"
    assert spec_checked.violations == []


async def test_components(status_page: StatuspageClient) -> None:
    assert await status_page.components() == [
        Component(id="cmpapi000001", name="API", status="operational"),
        Component(id="cmpweb000001", name="Website", status="operational"),
        Component(id="cmpdb0000001", name="Database", status="operational"),
    ]


async def test_components_are_listed_across_pages() -> None:
    fake = StatuspageFake(
        api_key=API_KEY, page_id=PAGE_ID, components={f"c{n:03d}": f"C{n}" for n in range(150)}
    )
    with serve_in_thread(create_app(fake)) as running:
        status_page = StatuspageClient(api_key=API_KEY, page_id=PAGE_ID, base_url=running.url)
        components = await status_page.components()
        await status_page.aclose()
    assert [c.id for c in components] == [f"c{n:03d}" for n in range(150)]
    assert [call["query"] for call in fake.calls] == [
        [("page", "1"), ("per_page", "100")],
        [("page", "2"), ("per_page", "100")],
    ]


async def test_wrong_api_key_is_not_retryable(base_url: str) -> None:
    status_page = StatuspageClient(api_key="wrong-secret", page_id=PAGE_ID, base_url=base_url)
    with pytest.raises(StatusPageError) as caught:
        await status_page.components()
    await status_page.aclose()
    error = caught.value
    assert (error.retryable, error.status) == (False, 401)
    assert "Could not authenticate" in str(error)
    assert "wrong-secret" not in str(error)
    assert isinstance(error.__cause__, httpx.HTTPStatusError)


async def test_unknown_component_is_422_not_retryable(
    spec_checked: StatuspageFake, status_page: StatuspageClient
) -> None:
    with pytest.raises(StatusPageError) as caught:
        await status_page.create_incident(
            name="Outage", status="investigating", body="...", components={"nope": "major_outage"}
        )
    assert (caught.value.retryable, caught.value.status) == (False, 422)
    assert "component 'nope' not found" in str(caught.value)
    assert spec_checked.incidents == {}
    assert spec_checked.violations


async def test_unknown_incident_is_404_not_retryable(status_page: StatuspageClient) -> None:
    with pytest.raises(StatusPageError) as caught:
        await status_page.update_incident(incident_id="missing", status="resolved", body="Done.")
    assert (caught.value.retryable, caught.value.status) == (False, 404)


async def test_429_sets_retry_after(fake: StatuspageFake, status_page: StatuspageClient) -> None:
    fake.fail_next("create_incident", status=429, times=1, retry_after=20)
    with pytest.raises(StatusPageError) as caught:
        await status_page.create_incident(name="Outage", status="investigating", body="...")
    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, 20, 429)
    assert fake.incidents == {}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable(fake: StatuspageFake, status_page: StatuspageClient, status: int) -> None:
    fake.fail_next("components", status=status, times=1)
    with pytest.raises(StatusPageError) as caught:
        await status_page.components()
    assert (caught.value.retryable, caught.value.status, caught.value.retry_after) == (True, status, None)
    assert len(await status_page.components()) == 3  # the fault is used up


async def test_timeout_is_retryable(fake: StatuspageFake, base_url: str) -> None:
    fake.slow_next("update_incident", 0.6)
    status_page = StatuspageClient(api_key=API_KEY, page_id=PAGE_ID, base_url=base_url, timeout=0.2)
    with pytest.raises(StatusPageError, match="timed out") as caught:
        await status_page.update_incident(incident_id="x", status="resolved", body="Done.")
    await status_page.aclose()
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def test_connection_refused_is_retryable(fake: StatuspageFake) -> None:
    with serve_in_thread(create_app(fake)) as stopped:
        url = stopped.url
    status_page = StatuspageClient(api_key=API_KEY, page_id=PAGE_ID, base_url=url)
    with pytest.raises(StatusPageError, match="connection failed") as caught:
        await status_page.components()
    await status_page.aclose()
    assert caught.value.retryable is True


async def test_injected_client_is_used_and_left_open(fake: StatuspageFake, base_url: str) -> None:
    async with httpx.AsyncClient() as shared:
        status_page = StatuspageClient(api_key=API_KEY, page_id=PAGE_ID, base_url=base_url, client=shared)
        await status_page.components()
        await status_page.aclose()
        assert not shared.is_closed
    assert fake.hits["components"] == 1


async def test_invalid_body_is_a_recorded_violation(spec_checked: StatuspageFake, base_url: str) -> None:
    """The fake itself: a body the spec rejects gets a 400 and is recorded."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{base_url}/pages/{PAGE_ID}/incidents",
            json={"incident": {"name": "x", "status": "on fire", "component_ids": [1]}},
            headers={"Authorization": f"OAuth {API_KEY}"},
        )
    assert response.status_code == 400
    assert any("on fire" in v for v in spec_checked.violations)
    assert any("component_ids" in v for v in spec_checked.violations)


async def test_find_incident_by_the_key_in_its_metadata(
    spec_checked: StatuspageFake, status_page: StatuspageClient
) -> None:
    assert await status_page.find_incident(key="cmdcenter-inc-7") is None
    created = await status_page.create_incident(
        name="Checkout errors", status="investigating", body="Investigating.", key="cmdcenter-inc-7"
    )
    assert spec_checked.incidents[created.id]["metadata"] == {"cmdcenter": {"key": "cmdcenter-inc-7"}}
    found = await status_page.find_incident(key="cmdcenter-inc-7")
    assert found is not None and found.id == created.id
    assert await status_page.find_incident(key="cmdcenter-inc-8") is None
    await status_page.update_incident(incident_id=created.id, status="resolved", body="Fixed.")
    assert await status_page.find_incident(key="cmdcenter-inc-7") is None  # only unresolved ones
