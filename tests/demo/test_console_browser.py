"""Issue 9, done-when: the demo console in a real headless Chromium (Debian's ``chromium`` package).

Declares an incident by typing the slash command, sees the new channel with the declaration, puts
a message on the timeline with a :memo: reaction, confirms a rollback as allowed people and sees
the outcome; the page is saved to ``test-artifacts/console.png`` whatever happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo.runner import DemoSandbox
from tests.harness import wait_until

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000

if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[DemoSandbox, str]]:
    sandbox = DemoSandbox.build(data_dir=tmp_path / "demo", worker_interval=0.05)
    with sandbox.serve() as url:
        yield sandbox, url


@pytest.fixture
def page(demo: tuple[DemoSandbox, str]) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        context = browser.new_page(viewport={"width": 1500, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        context.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield context
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            context.screenshot(path=str(ARTIFACTS / "console.png"))
            browser.close()
        assert not errors, f"JavaScript errors in the console: {errors}"


def act_as(page: Any, user: str) -> None:
    page.select_option("[data-testid=user-switcher]", user)


def type_command(page: Any, text: str) -> None:
    composer = page.get_by_test_id("composer")
    composer.fill(text)
    composer.press("Enter")


def test_console_declare_timeline_and_rollback(page: Any, demo: tuple[DemoSandbox, str]) -> None:
    sandbox, url = demo
    expect = sync_api.expect
    page.goto(url)
    expect(page.locator("#channel-name")).to_contain_text("general")
    expect(page.get_by_test_id("messages")).to_contain_text("Welcome to the Acme Shop sandbox")
    page.locator('[data-channel-name="incident-bridge"]').click()
    expect(page.locator("#channel-name")).to_contain_text("incident-bridge")

    # Declare: the incident channel appears in the list, live, and holds the declaration.
    act_as(page, "U_RIYA")
    type_command(page, "/incident declare sev2 Checkout 502s")
    incident = page.locator('[data-channel-name^="inc-"][data-channel-name$="-checkout-502s"]')
    expect(incident).to_have_count(1)
    expect(page.get_by_test_id("messages")).to_contain_text("Only visible to you")
    incident.click()
    messages = page.get_by_test_id("messages")
    expect(messages).to_contain_text("INC-1")
    expect(messages).to_contain_text("Checkout 502s")
    timeline = messages.locator(".msg", has_text=re.compile("Timeline of INC-1"))
    expect(timeline).to_have_count(1)

    # Timeline: a :memo: reaction on a message puts it into the timeline thread.
    type_command(page, "Error rate jumped right after checkout v2.14.0 went out")
    finding = messages.locator(".msg", has_text="right after checkout v2.14.0")
    finding.hover()
    finding.locator("[data-react=memo]").click()
    expect(finding.locator(".reaction[data-emoji=memo]")).to_contain_text("1")
    expect(timeline.get_by_test_id("thread-link")).to_contain_text("replies", timeout=TIMEOUT_MS)
    timeline.get_by_test_id("thread-link").click()
    expect(page.get_by_test_id("thread")).to_contain_text("right after checkout v2.14.0")

    # Rollback: the release captain asks, allowed people confirm, the outcome shows up.
    act_as(page, "U_MAYA")
    type_command(page, "/rollback checkout prod because 502s after v2.14.0")
    confirm = messages.locator("button.bk-btn", has_text=re.compile(r"^\W*(Confirm|Approve)", re.I))
    wait_until(lambda: confirm.count() > 0, timeout=15, message="a rollback card")
    argocd = sandbox.standins.argocd
    assert argocd is not None

    def rolled_back() -> list[dict[str, Any]]:  # the card's dry run does not count
        return [r for r in argocd.rollbacks if not r.get("dryRun")]

    assert not rolled_back()
    act_as(page, "U_OMAR")  # two-person rule in prod: someone other than the requester confirms
    confirm.last.click()
    dialog = page.locator(".modal.confirm")  # the button's confirmation dialog, if it has one
    if dialog.count():
        dialog.locator("button.primary, button.danger").click()
    wait_until(rolled_back, timeout=30, message="the rollback at the Argo CD stand-in")
    expect(messages).to_contain_text(re.compile(r"Rolled back\W+to\W+2\.13\.4"), timeout=30_000)
    expect(messages).to_contain_text("Healthy", timeout=30_000)  # the bot verified the service's health
    page.locator(".tab", has_text="Argo CD").click()
    expect(page.get_by_test_id("standins")).to_contain_text("rollback")
