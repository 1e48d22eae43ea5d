"""Release gates: one evaluator per kind, all run concurrently, each inside its own timeout.

    gates = gates_for(service, "prod")    # bot.gonogo.gate_specs
    runs = await evaluate(deps, service=service, environment="prod", version="v1.4.3", gates=gates)

The kinds and their config are ``bot.gonogo.gate_specs``. The evaluators read outside only through
``deps.gate_sources`` (JSON endpoints, GitHub check runs, manifests, commands: the ``GateSources``
port) and ``deps.metrics`` (Prometheus), besides cmdcenter's own incidents and freezes. A gate that
raises or outlives its timeout is ``error`` (⚠️): it blocks like a failure unless it is advisory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import yaml

from bot.config import ServiceConfig
from bot.deps import Deps
from bot.errors import CmdcenterError, ProbeError, new_error_id
from bot.gonogo.gate_specs import (
    ChangeWindowSpec,
    CommandSpec,
    Gate,
    GitHubChecksSpec,
    HttpSpec,
    ImageDigestSpec,
    NoOpenIncidentsSpec,
    PrometheusSpec,
    zone,
)
from bot.ports import CheckRun
from bot.releases.freeze import active_freezes
from bot.values import MISSING, as_text, dig, fill_placeholders, placeholder_values

log = logging.getLogger(__name__)

GateStatus = Literal["pass", "fail", "error"]
EVIDENCE_CHARS = 300
GREEN_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_IMAGE_LINE = re.compile(r"""^\s*-?\s*["']?image["']?\s*:[ \t]*(\S[^#\n]*?)[ \t]*(?:#.*)?$""", re.MULTILINE)

# --- evaluation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: GateStatus
    evidence: str


def passed(evidence: str) -> Outcome:
    return Outcome("pass", evidence)


def failed(evidence: str) -> Outcome:
    return Outcome("fail", evidence)


@dataclass(frozen=True)
class GateRun:
    gate: Gate
    status: GateStatus
    evidence: str
    duration_ms: int


@dataclass(frozen=True)
class GateContext:
    deps: Deps
    service: ServiceConfig
    environment: str
    version: str
    now: datetime

    def fill(self, template: str, *, where: str) -> str:
        values = placeholder_values(self.service, self.environment, version=self.version)
        return fill_placeholders(template, values, where=where)


Evaluator = Callable[[Gate, GateContext], Awaitable[Outcome]]


async def evaluate(
    deps: Deps, *, service: ServiceConfig, environment: str, version: str, gates: list[Gate]
) -> list[GateRun]:
    """Run every gate but ``approvals`` concurrently; each ends within its own timeout."""
    ctx = GateContext(deps, service, environment, version, deps.clock.now())
    return list(await asyncio.gather(*(run_gate(g, ctx) for g in gates if g.kind != "approvals")))


async def run_gate(gate: Gate, ctx: GateContext) -> GateRun:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(gate.timeout):
            outcome = await EVALUATORS[gate.kind](gate, ctx)
    except TimeoutError:
        outcome = Outcome("error", f"no answer within {gate.timeout:g} s (timed out)")
    except CmdcenterError as exc:
        outcome = Outcome("error", str(exc) or type(exc).__name__)
    except Exception:
        error_id = new_error_id()
        log.exception("gate %s (%s) of %s raised (%s)", gate.key, gate.kind, ctx.service.name, error_id)
        outcome = Outcome("error", f"unexpected error {error_id} (see the log)")
    evidence = " ".join(outcome.evidence.split())
    if len(evidence) > EVIDENCE_CHARS:
        evidence = evidence[: EVIDENCE_CHARS - 1] + "…"
    return GateRun(gate, outcome.status, evidence, int((time.perf_counter() - started) * 1000))


# --- the evaluators -----------------------------------------------------------------------------------------


async def no_open_incidents(gate: Gate, ctx: GateContext) -> Outcome:
    spec: NoOpenIncidentsSpec = gate.spec
    found = await ctx.deps.open_incidents()
    name = ctx.service.name
    hits = [
        i
        for i in found
        if i.severity in spec.severities and (spec.scope == "all" or i.service in (None, name))
    ]
    sevs = "/".join(s.upper() for s in spec.severities)
    where = f"on {name}" if spec.scope == "service" else "anywhere"
    if not hits:
        return passed(f"no open {sevs} incident {where}")
    listed = "; ".join(
        f"{i.ref} ({i.severity.upper()}{', ' + i.service if i.service else ''}) {i.title}" for i in hits[:3]
    )
    more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
    return failed(f"open {sevs} {where}: {listed}{more}")


async def no_freeze(gate: Gate, ctx: GateContext) -> Outcome:
    name = ctx.service.name
    covering = [f for f in await active_freezes(ctx.deps) if f.service in (None, name)]
    if not covering:
        return passed(f"no deploy freeze on {name}")
    listed = "; ".join(f"{f.scope}: {f.reason}" for f in covering[:3])
    return failed(f"deploys frozen ({listed})")


async def change_window(gate: Gate, ctx: GateContext) -> Outcome:
    spec: ChangeWindowSpec = gate.spec
    try:
        tz = zone(spec.timezone or ctx.deps.config.slack.timezone)
    except ValueError as exc:
        raise ProbeError(str(exc), retryable=False) from None
    check = spec.window().check(ctx.now, tz)
    return Outcome("pass" if check.open else "fail", check.evidence)


async def http_check(gate: Gate, ctx: GateContext) -> Outcome:
    spec: HttpSpec = gate.spec
    url = ctx.fill(spec.url, where=f"gate {gate.key}.url")
    answer = await ctx.deps.gate_sources.get(url=url, timeout=gate.timeout)
    if answer.status != spec.expect_status:
        return failed(f"HTTP {answer.status} (expected {spec.expect_status})")
    if spec.json_field is None:
        return passed(f"HTTP {answer.status}")
    found = dig(answer.body, spec.json_field)
    if found is MISSING:
        return failed(f"HTTP {answer.status} but {spec.json_field} is missing from the answer")
    shown = as_text(found)
    if spec.expect_value is not None:
        ok = shown == spec.expect_value
        expected = "" if ok else f" (expected {spec.expect_value!r})"
        return Outcome("pass" if ok else "fail", f"{spec.json_field} is {shown!r}{expected}")
    if spec.min is not None or spec.max is not None:
        return _compare(spec.json_field, _number(found), low=spec.min, high=spec.max, unit="")
    return Outcome("pass" if found else "fail", f"{spec.json_field} is {shown}")


async def prometheus(gate: Gate, ctx: GateContext) -> Outcome:
    spec: PrometheusSpec = gate.spec
    metrics = ctx.deps.metrics
    if metrics is None:
        raise ProbeError("PROMETHEUS_URL is not set", retryable=False)
    sample = await metrics.instant(query=spec.query, timeout=gate.timeout)
    if sample.value is None:
        return Outcome("pass" if spec.no_data == "pass" else "fail", "the query returned no data")
    return _compare("value", sample.value, low=spec.min, high=spec.max, unit=spec.unit)


async def github_checks(gate: Gate, ctx: GateContext) -> Outcome:
    spec: GitHubChecksSpec = gate.spec
    ref = ctx.fill(spec.ref, where=f"gate {gate.key}.ref")
    runs = await ctx.deps.gate_sources.check_runs(repository=spec.repository, ref=ref, timeout=gate.timeout)
    by_name: dict[str, CheckRun] = {}
    for run in runs:
        by_name.setdefault(run.name, run)
    missing = [n for n in spec.required if n not in by_name]
    considered = (
        [by_name[n] for n in spec.required if n in by_name] if spec.required else list(by_name.values())
    )
    if not considered and not missing:
        return failed(f"no check runs on {ref} in {spec.repository}")
    red = [r for r in considered if r.status == "completed" and r.conclusion not in GREEN_CONCLUSIONS]
    running = [r for r in considered if r.status != "completed"]
    problems = [
        *([f"failed: {', '.join(f'{r.name} ({r.conclusion})' for r in red)}"] if red else []),
        *([f"not finished: {', '.join(r.name for r in running)}"] if running else []),
        *([f"missing: {', '.join(missing)}"] if missing else []),
    ]
    if problems:
        return failed(f"{ref}: " + "; ".join(problems))
    return passed(f"{len(considered)} check run(s) green on {ref}")


async def image_digest(gate: Gate, ctx: GateContext) -> Outcome:
    spec: ImageDigestSpec = gate.spec
    path = ctx.fill(spec.path, where=f"gate {gate.key}.path") if spec.path else None
    url = ctx.fill(spec.url, where=f"gate {gate.key}.url") if spec.url else None
    found = [
        ref
        for _, text in await ctx.deps.gate_sources.manifests(path=path, url=url, timeout=gate.timeout)
        for ref in images(text)
    ]
    if not found:
        return failed(f"no image references found in {path or url}")
    loose = sorted({ref for ref, pinned in found if not pinned})
    if loose:
        return failed(f"{len(loose)} image(s) not pinned by digest: {', '.join(loose)}")
    return passed(f"all {len(found)} image reference(s) pinned by @sha256 digest")


async def command(gate: Gate, ctx: GateContext) -> Outcome:
    spec: CommandSpec = gate.spec
    argv = [ctx.fill(arg, where=f"gate {gate.key}.argv[{i}]") for i, arg in enumerate(spec.argv)]
    values = placeholder_values(ctx.service, ctx.environment, version=ctx.version)
    env = {f"CMDCENTER_{k.upper()}": v for k, v in values.items() if v is not None}
    output = await ctx.deps.gate_sources.run(argv=argv, env=env, timeout=gate.timeout)
    lines = [line.strip() for line in (output.stdout or output.stderr).splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if output.ok:
        return passed(last or "exit 0")
    return failed(f"exit {output.returncode}" + (f": {last}" if last else ""))


EVALUATORS: dict[str, Evaluator] = {
    "no_open_incidents": no_open_incidents,
    "no_freeze": no_freeze,
    "change_window": change_window,
    "http": http_check,
    "prometheus": prometheus,
    "github_checks": github_checks,
    "image_digest": image_digest,
    "command": command,
}


# --- helpers (pure) -----------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(what: str, value: float | None, *, low: float | None, high: float | None, unit: str) -> Outcome:
    if value is None:
        return failed(f"{what} is not a number")
    shown = f"{what} {value:g}{unit}"
    if high is not None and value > high:
        return failed(f"{shown} above the maximum {high:g}{unit}")
    if low is not None and value < low:
        return failed(f"{shown} below the minimum {low:g}{unit}")
    bounds = " ".join(
        x
        for x in (
            f"≥ {low:g}{unit}" if low is not None else "",
            f"≤ {high:g}{unit}" if high is not None else "",
        )
        if x
    )
    return passed(f"{shown} ({bounds})")


def images(text: str) -> list[tuple[str, bool]]:
    """(image reference, pinned by digest) for every ``image:`` in YAML/JSON manifests or Helm values.

    ``image: repo/name@sha256:…`` strings and Helm-style ``image: {repository, tag, digest}`` maps are
    understood; text that is not YAML (a Helm template) is scanned line by line."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        refs = [ref.strip("\"'") for ref in _IMAGE_LINE.findall(text)]
        return [(ref, bool(_DIGEST.search(ref))) for ref in refs if ref]
    found: list[tuple[str, bool]] = []
    for document in documents:
        _walk(document, found)
    return found


def _walk(node: Any, found: list[tuple[str, bool]]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, found)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "image" and isinstance(value, str):
            found.append((value, bool(_DIGEST.search(value))))
        elif key == "image" and isinstance(value, dict) and ("repository" in value or "digest" in value):
            found.append(_helm_image(value))
        else:
            _walk(value, found)


def _helm_image(value: dict[str, Any]) -> tuple[str, bool]:
    repository = str(value.get("repository") or "")
    if value.get("registry"):
        repository = f"{value['registry']}/{repository}"
    tag, digest = str(value.get("tag") or ""), str(value.get("digest") or "")
    pinned = bool(re.fullmatch(r"sha256:[0-9a-f]{64}", digest)) or bool(_DIGEST.search(tag))
    shown = repository + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return shown or "(empty image)", pinned
