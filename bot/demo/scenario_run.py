"""Play a :class:`~bot.demo.scenario.Scenario` against a running :class:`~bot.demo.runner.DemoSandbox`.

Steps run in order. A step is SKIPPED (never passed) when a step it needs did not pass, when a
feature it requires is missing from the bot, or when the bot answers one of its commands with
"Unknown sub-command" / "is not available"; otherwise it PASSES when all its conditions hold
within its timeout and FAILS when they do not.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.db.engine import Database
from bot.demo import seed
from bot.demo.interact import InteractionError
from bot.demo.probes import ephemeral_text, failed_since, missing_feature, outbox_mark, pending_ops
from bot.demo.progress import Outcome, ScenarioProgress
from bot.demo.scenario import Action, Scenario, Step, Wait
from bot.sandbox.slack.emulator import BOT_USER_ID, Ephemeral, Message

if TYPE_CHECKING:
    from bot.demo.runner import DemoSandbox

POLL_SECONDS = 0.1
UNAVAILABLE = re.compile(r"Unknown sub-command|is not available|not implemented", re.IGNORECASE)


class StepError(Exception):
    """The step cannot go on (a missing message, a refused request...): it fails with this text."""


class _Unbound(StepError):
    """A ``$variable`` no step has bound yet."""


class StepSkipped(Exception):
    """The feature the step shows is not available: the step is skipped with this reason."""


class ScenarioRunner:
    def __init__(
        self,
        sandbox: DemoSandbox,
        scenario: Scenario,
        *,
        progress: ScenarioProgress | None = None,
        step_delay: float = 0.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.sb = sandbox
        self.ws = sandbox.workspace
        self.scenario = scenario
        self.progress = progress or sandbox.progress
        self.step_delay = step_delay
        self.log = log or (lambda _: None)
        self.vars: dict[str, str] = {}
        self.outcomes: dict[str, str] = {}
        self._db: Database | None = None
        self._mark: str | None = None

    async def run(self) -> ScenarioProgress:
        steps = self.scenario.steps
        self.progress.start(self.scenario.name, self.scenario.title, [(s.id, s.title) for s in steps])
        self._db = Database(self.sb.settings.database_url)
        try:
            for index, step in enumerate(steps):
                if index and self.step_delay:
                    await asyncio.sleep(self.step_delay)
                await self._run_step(index, step)
        finally:
            await self._db.dispose()
            self.progress.finish()
        return self.progress

    async def _run_step(self, index: int, step: Step) -> None:
        self.progress.update(index, "running")
        started = time.monotonic()
        try:
            self._check_preconditions(step)
            await self._play(step, index)
        except StepSkipped as exc:
            self._done(index, step, "skipped", str(exc), 0.0)
        except StepError as exc:
            self._done(index, step, "failed", str(exc), time.monotonic() - started)
        else:
            self._done(index, step, "passed", "", time.monotonic() - started)

    def _done(self, index: int, step: Step, status: Outcome, detail: str, seconds: float) -> None:
        self.outcomes[step.id] = status
        self.progress.update(index, status, detail, seconds)
        total = len(self.scenario.steps)
        note = f" ({detail})" if detail else ""
        self.log(f"[{index + 1:>2}/{total}] {status.upper():<7} {step.title} {seconds:.1f}s{note}")

    def _check_preconditions(self, step: Step) -> None:
        for need in step.needs:
            outcome = self.outcomes.get(need, "not run")
            if outcome != "passed":
                raise StepSkipped(
                    f"needs step '{need}', which {outcome if outcome != 'not run' else 'did not run'}"
                )
        for feature in step.requires:
            reason = missing_feature(self.sb.bot.deps, self.sb.standins, feature)
            if reason:
                raise StepSkipped(reason)

    async def _play(self, step: Step, index: int) -> None:
        user = seed.person(step.as_).id if step.as_ else seed.person("responder").id
        self.progress.update(index, "running", user=user, channel=self._where(step))
        if step.do or self._mark is None:
            self._mark = self.ws.next_ts()  # what happens from here on is this step's doing
        mark = self._mark  # a step that only waits looks at the effects of the last one that acted
        commands = any(a.kind == "command" for a in step.do)
        outbox_start = await outbox_mark(self._db) if self._db is not None else 0
        for action in step.do:
            await self._act(action, user)
        deadline = time.monotonic() + (step.timeout or self.scenario.timeout)
        while True:
            if commands and (reason := self._unavailable_reply(user, mark)):
                raise StepSkipped(f"the bot answered: {reason}")
            unmet = [await self._check(w, user, mark) for w in step.wait]
            unmet_text = [u for u in unmet if u]
            if not unmet_text:
                return
            if time.monotonic() > deadline:
                last = self._last_reply(user, mark)
                hint = f"; last reply to {step.as_ or 'responder'}: {last!r}" if last else ""
                failed = await failed_since(self._db, outbox_start) if self._db is not None else []
                hint += f"; failed deliveries: {'; '.join(failed)}" if failed else ""
                raise StepError(f"timed out waiting for {'; '.join(unmet_text)}{hint}")
            await asyncio.sleep(POLL_SECONDS)

    def _where(self, step: Step) -> str:
        """The channel (id) a step acts or looks in, for the console to show."""
        specs = [a.spec for a in step.do] + [w.spec for w in step.wait]
        for spec in specs:
            channel = getattr(spec, "channel", None)
            if isinstance(channel, str):
                try:
                    found = self.ws.find_channel(self._sub(channel))
                except StepError:
                    continue
                return found.id if found is not None else ""
        return ""

    # --- actions ------------------------------------------------------------------------------

    async def _act(self, action: Action, user: str) -> None:
        spec = action.spec
        kind = action.kind
        world, it = self.sb.world, self.sb.interactor
        try:
            if kind == "metric":
                world.set_metric(spec.service, spec.name, spec.value)
            elif kind == "health":
                world.set_health(spec.service, spec.status)
            elif kind == "post":
                seed.post_alert(self.ws, self._sub(spec.channel), spec.text, who=spec.as_)
            elif kind in ("command", "say"):
                result = await it.send_text(user, self._sub(spec.channel), self._sub(spec.text))
                if result["status"] != 200:
                    raise StepError(f"the bot answered HTTP {result['status']} to {spec.text!r}")
            elif kind == "react":
                channel = self._sub(spec.channel)
                message = self._newest(channel, lambda m: spec.to in m.text)
                if message is None:
                    raise StepError(f"no message containing {spec.to!r} in {channel}")
                await it.react(user, channel, message.ts, spec.emoji, add=True)
            elif kind == "pause":
                await asyncio.sleep(float(spec))
            elif kind == "click":
                who = seed.person(spec.as_).id if spec.as_ else user
                await self._click(who, self._sub(spec.channel), spec.button, optional=spec.optional)
        except (InteractionError, KeyError) as exc:
            raise StepError(f"{kind}: {exc}") from exc

    async def _click(self, user: str, channel: str, label: str, *, optional: bool = False) -> None:
        found = self._find_button(channel, label, user, since=None)
        if found is None:
            if optional:
                return
            raise StepError(f"no button {label!r} in {channel}")
        ts, ephemeral, block_id, element = found
        result = await self.sb.interactor.click(
            user,
            channel,
            ts,
            str(element.get("action_id", "")),
            str(element.get("value", "")),
            block_id=block_id,
            ephemeral=ephemeral,
        )
        if result["status"] != 200:
            raise StepError(f"the bot answered HTTP {result['status']} to the {label!r} button")

    # --- conditions ---------------------------------------------------------------------------

    async def _check(self, wait: Wait, user: str, mark: str) -> str:
        try:
            return await self._unmet(wait, user, mark)
        except _Unbound as exc:
            return str(exc)

    async def _unmet(self, wait: Wait, user: str, mark: str) -> str:
        """Empty when ``wait`` holds, else what is still missing."""
        spec, kind = wait.spec, wait.kind
        if kind == "outbox_idle":
            return await self._outbox_busy()
        if kind == "healthy":
            health = self.sb.world.snapshot().get(spec.service, {}).get("health", 0)
            return "" if 0 < int(health) < 400 else f"{spec.service} to be healthy (health {health})"
        if kind == "standin":
            return self._standin_unmet(spec)
        if kind == "channel":
            return self._channel_unmet(spec.name, spec.bind)
        if kind == "reply":
            ok = any(spec.contains in ephemeral_text(e) for e in self._ephemerals(user, mark))
            return "" if ok else f"a reply containing {spec.contains!r}"
        channel = self._sub(spec.channel)
        if kind == "message":
            found = self._newest(
                channel,
                lambda m: (not spec.replies_only or m.is_reply) and spec.contains in m.all_text(),
                since=mark,
            )
            where = "thread reply" if spec.replies_only else "message"
            return "" if found else f"a {where} containing {spec.contains!r} in {spec.channel}"
        if kind == "button":
            button = self._find_button(channel, spec.text, user, since=mark)
            return "" if button else f"a {spec.text!r} button in {spec.channel}"
        if kind == "file":
            return (
                ""
                if self._newest(channel, lambda m: bool(m.files), since=mark)
                else f"a file in {spec.channel}"
            )
        return f"unknown condition {kind}"

    def _channel_unmet(self, pattern: str, bind: str | None) -> str:
        with self.ws.lock:
            names = [(c.id, c.name) for c in self.ws.channels.values() if not c.is_im]
        matches = [cid for cid, name in names if fnmatch.fnmatchcase(name, pattern)]
        if not matches:
            return f"a channel named {pattern}"
        if bind:
            self.vars[bind] = max(matches)
        return ""

    def _standin_unmet(self, spec: Any) -> str:
        s = self.sb.standins
        if spec.pagerduty is not None:
            events = list(s.pagerduty.events) if s.pagerduty is not None else []
            ok = any(
                e.get("event_action") == spec.pagerduty
                and spec.contains in str(e.get("payload", {}).get("summary", ""))
                for e in events
            )
            return "" if ok else f"a PagerDuty {spec.pagerduty} event about {spec.contains!r}"
        if spec.statuspage is not None:
            incidents = list(s.statuspage.incidents.values()) if s.statuspage is not None else []
            ok = any(spec.contains in str(i.get("name", "")) for i in incidents)
            return "" if ok else "a Statuspage incident"
        records = []
        if s.argocd is not None:
            records = list(s.argocd.rollbacks if spec.argocd == "rollback" else s.argocd.syncs)
        ok = any(spec.contains in str(r.get("application", "")) and not r.get("dryRun") for r in records)
        return "" if ok else f"an Argo CD {spec.argocd} (not a dry run) of {spec.contains!r}"

    async def _outbox_busy(self) -> str:
        assert self._db is not None
        pending = await pending_ops(self._db)
        return f"the outbox to drain (pending: {', '.join(pending)})" if pending else ""

    # --- lookups ------------------------------------------------------------------------------

    def _sub(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.vars:
                raise _Unbound(f"${name} is not known yet (no earlier step bound it)")
            return self.vars[name]

        return re.sub(r"\$([a-z_]+)", replace, text)

    def _newest(
        self, channel: str, predicate: Callable[[Message], bool], since: str | None = None
    ) -> Message | None:
        with self.ws.lock:
            messages = self.ws.messages(channel)
            for m in reversed(messages):
                if since is not None and not _after(m, since):
                    continue
                if predicate(m):
                    return m
        return None

    def _ephemerals(self, user: str, mark: str) -> list[Ephemeral]:
        with self.ws.lock:
            return [e for e in self.ws.ephemerals if e.user == user and _ts(e.ts) > _ts(mark)]

    def _unavailable_reply(self, user: str, mark: str) -> str:
        for e in self._ephemerals(user, mark):
            found = UNAVAILABLE.search(ephemeral_text(e))
            if found:
                line = next(line for line in ephemeral_text(e).splitlines() if found[0] in line)
                return re.sub(r"^\W+", "", line)[:160]
        return ""

    def _last_reply(self, user: str, mark: str) -> str:
        found = self._ephemerals(user, mark)
        return " ".join(ephemeral_text(found[-1]).split())[:200] if found else ""

    def _find_button(
        self, channel: str, label: str, user: str, *, since: str | None
    ) -> tuple[str, bool, str, dict[str, Any]] | None:
        """(ts, ephemeral?, block id, element) of the newest button whose label starts with ``label``
        (or one of its ``|``-separated alternatives), ignoring a leading emoji."""
        wanted = tuple(w.strip().lower() for w in label.split("|") if w.strip())
        with self.ws.lock:
            where = self.ws.require_channel(channel)
            candidates: list[tuple[str, bool, list[dict[str, Any]]]] = [
                (m.ts, False, m.blocks)
                for m in self.ws.messages(where.id)
                if m.user == BOT_USER_ID and (since is None or _after(m, since))
            ]
            candidates += [
                (e.ts, True, e.blocks)
                for e in self.ws.ephemerals
                if e.channel == where.id and e.user == user and (since is None or _ts(e.ts) > _ts(since))
            ]
        superseded = self.sb.interactor.superseded_ephemerals()
        for ts, ephemeral, blocks in sorted(candidates, key=lambda c: _ts(c[0]), reverse=True):
            if ephemeral and ts in superseded:
                continue
            for block in blocks:
                for element in [*block.get("elements", []), block.get("accessory")]:
                    if not isinstance(element, dict) or element.get("type") != "button":
                        continue
                    text = str((element.get("text") or {}).get("text", "")).strip().lower()
                    if re.sub(r"^(:[a-z0-9_+-]+:|\W)+\s*", "", text).startswith(wanted):
                        return ts, ephemeral, str(block.get("block_id", "")), element
        return None


def _ts(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _after(message: Message, mark: str) -> bool:
    edited = (message.edited or {}).get("ts")
    return _ts(message.ts) > _ts(mark) or (edited is not None and _ts(str(edited)) > _ts(mark))
