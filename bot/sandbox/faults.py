"""Fault injection shared by the HTTP fakes: fail or slow down the next requests to an endpoint."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass
class Fault:
    status: int | None  # None: only a delay
    remaining: int
    retry_after: float | None = None
    delay: float = 0.0
    lost_answer: bool = False  # the request takes effect, then ``status`` is answered


class FaultInjection:
    """Mixin: ``endpoints`` names what can fail; call ``_init_faults()`` in ``__init__``."""

    endpoints: tuple[str, ...] = ()

    def _init_faults(self) -> None:
        self.hits: Counter[str] = Counter()
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()

    def fail_next(
        self, endpoint: str, status: int = 500, times: int = 3, retry_after: float | None = None
    ) -> None:
        """Answer the next ``times`` requests to ``endpoint`` with ``status``."""
        self._add_fault(endpoint, Fault(status, times, retry_after))

    def lose_next_answer(self, endpoint: str, status: int = 502, times: int = 1) -> None:
        """Carry out the next ``times`` requests to ``endpoint`` but answer ``status``: the work
        happened and the answer was lost (a gateway timeout after the upstream did it). Only fakes
        that say so support it."""
        self._add_fault(endpoint, Fault(status, times, lost_answer=True))

    def slow_next(self, endpoint: str, seconds: float, times: int = 1) -> None:
        """Delay the next ``times`` answers of ``endpoint`` by ``seconds`` (to provoke timeouts)."""
        self._add_fault(endpoint, Fault(None, times, delay=seconds))

    def _add_fault(self, endpoint: str, fault: Fault) -> None:
        if endpoint not in self.endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {self.endpoints}")
        with self._lock:
            self._faults.setdefault(endpoint, []).append(fault)

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            self.hits[endpoint] += 1
            queue = self._faults.get(endpoint, [])
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault
