"""Releases: the release ledger, /rollback, deploy freezes and the deploy webhook.

``register`` is called once by the composition root (``bot/app.py:_register_domains``); calling it
again on the same services does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import Services


def register(svc: Services) -> None:
    from bot.releases import freeze, ledger, rollback, webhook

    if svc.extras.get("releases_registered"):
        return
    svc.extras["releases_registered"] = True
    rollback.register(svc)
    freeze.register(svc)
    svc.routes.append(webhook.route(svc))
    svc.extras["release_state"] = ledger.release_state  # /prodstatus: recent releases and freezes
    svc.extras["active_freezes"] = freeze.active_freezes  # the /gonogo no_freeze gate
