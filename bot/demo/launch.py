"""``cmdcenter demo`` from start to Ctrl-C (or to the end of a headless scenario)."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.demo import seed
from bot.demo.runner import SLACK_PREFIX, DemoSandbox
from bot.demo.scenario import Scenario, load_scenario
from bot.demo.scenario_run import ScenarioRunner

VIEWER_WAIT_SECONDS = 120.0
Printer = Callable[[str], None]


def _print(line: str) -> None:
    sys.stdout.write(f"{line}\n")  # one write: the scenario thread prints too
    sys.stdout.flush()


def launch(
    *,
    port: int | None,
    scenario: str | None,
    headless: bool,
    data_dir: Path,
    step_delay: float = 2.5,
    socket_mode: bool = False,
    out: Printer = _print,
) -> int:
    if headless and not scenario:
        out("error: --headless needs --scenario (e.g. --scenario checkout-502)")
        return 2
    script = load_scenario(scenario) if scenario else None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    chosen = port if port is not None else (0 if headless else 8000)
    sandbox = DemoSandbox.build(data_dir=data_dir, port=chosen, socket_mode=socket_mode)
    try:
        serving = sandbox.serve()
        url = serving.__enter__()
    except (OSError, RuntimeError) as exc:
        out(f"error: cannot listen on 127.0.0.1:{chosen} ({exc}); choose another with --port")
        return 2
    try:
        _banner(sandbox, url, headless=headless, out=out)
        if headless:
            assert script is not None
            return _run_scenario(sandbox, script, step_delay=0.0, out=out)
        out("Press Ctrl-C to stop.")
        if script is not None:
            threading.Thread(
                target=_console_scenario,
                args=(sandbox, script, step_delay, out),
                name="demo-scenario",
                daemon=True,
            ).start()
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        out("stopping the demo")
        return 0
    finally:
        serving.__exit__(None, None, None)


def _banner(sandbox: DemoSandbox, url: str, *, headless: bool, out: Printer) -> None:
    if headless:
        out(f"cmdcenter demo (headless) serving on {sandbox.base_url}")
    else:
        out(f"cmdcenter demo: open the console at {url}")
        people = ", ".join(f"{p.real_name} ({p.role.replace('_', ' ')})" for p in seed.PEOPLE)
        out(f"  people: {people}")
        out("  try in #incident-bridge: /incident declare sev2 Checkout 502s")
    if sandbox.socket_mode:
        bot = f"Socket Mode, {sandbox.base_url.replace('http://', 'ws://')}{SLACK_PREFIX}/link/"
    else:
        bot = f"{sandbox.base_url}/slack/events"
    out(f"  bot: {bot} · Slack emulator: {sandbox.base_url}{SLACK_PREFIX}/api/")
    for line in sandbox.summary_of_standins():
        out(f"  {line}")
    out(f"  state: {sandbox.settings.config_path.parent}/ (fresh at every start)")


def _run_scenario(sandbox: DemoSandbox, script: Scenario, *, step_delay: float, out: Printer) -> int:
    out(f"scenario {script.name}: {script.title}")
    runner = ScenarioRunner(sandbox, script, step_delay=step_delay, log=out)
    progress = asyncio.run(runner.run())
    out("")
    out(progress.table())
    with sandbox.workspace.lock:
        violations = list(sandbox.workspace.violations)
    for violation in violations:
        out(f"warning: the bot broke a Slack rule: {violation}")
    failed = progress.failed()
    if failed:
        out(f"FAILED: {', '.join(r.id for r in failed)}")
        return 1
    out("OK: every available step passed")
    return 0


def _console_scenario(sandbox: DemoSandbox, script: Scenario, step_delay: float, out: Printer) -> None:
    out(f"scenario {script.name} starts when the console is open (or in {VIEWER_WAIT_SECONDS:.0f} s)")
    sandbox.console.ever_viewed.wait(VIEWER_WAIT_SECONDS)
    time.sleep(min(step_delay, 3.0))
    try:
        _run_scenario(sandbox, script, step_delay=step_delay, out=out)
    except Exception as exc:  # the console keeps running; say what broke
        print(f"scenario stopped: {exc!r}", file=sys.stderr)
