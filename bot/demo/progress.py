"""Progress of a scenario run, shared (thread-safely) by the runner, the console and the summary."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

Outcome = Literal["pending", "running", "passed", "failed", "skipped"]


@dataclass
class StepRecord:
    id: str
    title: str
    status: Outcome = "pending"
    detail: str = ""
    seconds: float = 0.0
    user: str = ""  # who acts in the step, and where: the console follows them
    channel: str = ""


class ScenarioProgress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.name = ""
        self.title = ""
        self.steps: list[StepRecord] = []
        self.finished = False
        self.version = 0

    def start(self, name: str, title: str, steps: list[tuple[str, str]]) -> None:
        with self._lock:
            self.name, self.title, self.finished = name, title, False
            self.steps = [StepRecord(step_id, step_title) for step_id, step_title in steps]
            self.version += 1

    def update(
        self,
        index: int,
        status: Outcome,
        detail: str = "",
        seconds: float | None = None,
        *,
        user: str = "",
        channel: str = "",
    ) -> None:
        with self._lock:
            record = self.steps[index]
            record.status, record.detail = status, detail
            if seconds is not None:
                record.seconds = seconds
            record.user, record.channel = user or record.user, channel or record.channel
            self.version += 1

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            self.version += 1

    def records(self) -> list[StepRecord]:
        with self._lock:
            return [StepRecord(**asdict(r)) for r in self.steps]

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "title": self.title,
                "finished": self.finished,
                "steps": [asdict(r) for r in self.steps],
            }

    def failed(self) -> list[StepRecord]:
        return [r for r in self.records() if r.status == "failed"]

    def table(self) -> str:
        """The summary table: step, result, duration, detail."""
        rows = self.records()
        width = max([len(r.title) for r in rows] + [4])
        lines = [f"{'#':>2}  {'step':<{width}}  {'result':<7}  {'time':>6}  detail"]
        lines.append("-" * (width + 30))
        for n, r in enumerate(rows, start=1):
            seconds = f"{r.seconds:5.1f}s" if r.status in ("passed", "failed") else "     -"
            lines.append(f"{n:>2}  {r.title:<{width}}  {r.status.upper():<7}  {seconds}  {r.detail}")
        counts = {s: sum(1 for r in rows if r.status == s) for s in ("passed", "failed", "skipped")}
        lines.append("-" * (width + 30))
        lines.append(", ".join(f"{count} {status}" for status, count in counts.items()))
        return "\n".join(lines)
