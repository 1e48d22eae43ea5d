"""The shape of a Bolt listener, for the modules that build them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Listener = Callable[..., Awaitable[None]]
