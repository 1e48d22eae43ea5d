"""Who may do what: the config's access rules, checked against Slack users and user groups.

Sensitive actions (``rollback``, ``deploy``, ``freeze``, ``statuspage.publish``, ``gonogo.approve``)
are denied unless a rule allows them; a refusal names who may. Other actions are open to everyone
unless a rule for them exists. User group members are read from Slack and cached briefly.
"""

from __future__ import annotations

import time

from bot.config import AccessRule, Config
from bot.errors import ChatError, PermissionDenied
from bot.ports import Chat

SENSITIVE = frozenset({"rollback", "deploy", "freeze", "statuspage.publish", "gonogo.approve"})
_CACHE_SECONDS = 60.0


def _matches(values: list[str], value: str | None) -> bool:
    return "*" in values or value is None or value in values


class Access:
    def __init__(self, config: Config, chat: Chat) -> None:
        self.config = config
        self.chat = chat
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def rules(
        self, action: str, *, service: str | None = None, environment: str | None = None
    ) -> list[AccessRule]:
        return [
            r
            for r in self.config.access
            if r.action == action and _matches(r.services, service) and _matches(r.environments, environment)
        ]

    async def _members(self, usergroup: str) -> frozenset[str]:
        cached = self._groups.get(usergroup)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            members = frozenset(await self.chat.usergroup_members(usergroup=usergroup))
        except ChatError:
            members = cached[1] if cached else frozenset()
        self._groups[usergroup] = (time.monotonic() + _CACHE_SECONDS, members)
        return members

    async def _in_rule(self, rule: AccessRule, user: str) -> bool:
        if user in rule.users:
            return True
        for group in rule.usergroups:
            if user in await self._members(group):
                return True
        return False

    async def allowed(
        self, *, action: str, user: str, service: str | None = None, environment: str | None = None
    ) -> bool:
        rules = self.rules(action, service=service, environment=environment)
        if not rules:
            return action not in SENSITIVE and not any(r.action == action for r in self.config.access)
        for rule in rules:
            if await self._in_rule(rule, user):
                return True
        return False

    async def roles(
        self, *, action: str, user: str, service: str | None = None, environment: str | None = None
    ) -> set[str]:
        """The roles (``AccessRule.role``) through which ``user`` may do ``action`` (approval roles)."""
        found: set[str] = set()
        for rule in self.rules(action, service=service, environment=environment):
            if rule.role and await self._in_rule(rule, user):
                found.add(rule.role)
        return found

    def who_may(
        self, action: str, *, service: str | None = None, environment: str | None = None
    ) -> list[str]:
        """User and user group ids allowed by the rules (rendered as mentions by the templates)."""
        rules = self.rules(action, service=service, environment=environment)
        return sorted({u for r in rules for u in r.users}) + sorted({g for r in rules for g in r.usergroups})

    async def require(
        self,
        *,
        action: str,
        user: str,
        service: str | None = None,
        environment: str | None = None,
        what: str = "",
    ) -> None:
        if await self.allowed(action=action, user=user, service=service, environment=environment):
            return
        where = " ".join(x for x in (service, environment) if x)
        who = self.who_may(action, service=service, environment=environment)
        raise PermissionDenied(
            f"You may not {what or action}{' (' + where + ')' if where else ''}."
            + ("" if who else " No access rule allows it: an admin must add one to the config."),
            who=who,
        )
