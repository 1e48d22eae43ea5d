"""Read models of the console: channels, messages, threads, the open modal and the stand-ins' records.

Everything is plain JSON for ``console.js``; text stays as Slack has it (mrkdwn, entities escaped)
and the browser renders it with text nodes only.
"""

from __future__ import annotations

import time
from typing import Any

from bot.demo import seed
from bot.demo.progress import ScenarioProgress
from bot.demo.standins import StandIns
from bot.sandbox.slack.emulator import BOT_USER_ID, Channel, Ephemeral, Message, SlackWorkspace

JsonDict = dict[str, Any]
PINNED_CHANNELS = ("general", "incident-bridge", "releases")


class Snapshots:
    def __init__(self, workspace: SlackWorkspace, standins: StandIns, world: seed.World) -> None:
        self.ws = workspace
        self.standins = standins
        self.world = world
        self._first_seen: dict[str, float] = {}  # emulator ts -> wall clock, for display

    # --- workspace ----------------------------------------------------------------------------

    def users(self) -> list[JsonDict]:
        roles = {p.id: p for p in (*seed.PEOPLE, *seed.INTEGRATIONS)}
        with self.ws.lock:
            users = list(self.ws.users.values())
        return [
            {
                "id": u.id,
                "name": u.name,
                "real_name": u.real_name,
                "is_bot": u.is_bot or u.id == BOT_USER_ID,
                "role": roles[u.id].role if u.id in roles else "",
                "title": roles[u.id].title if u.id in roles else "",
                "actor": u.id in {p.id for p in seed.PEOPLE},
            }
            for u in users
        ]

    def channels(self, user: str) -> list[JsonDict]:
        with self.ws.lock:
            found = [c for c in self.ws.channels.values() if not c.is_im and not c.is_archived]
            counts = {c.id: len(self.ws.channel_messages.get(c.id, [])) for c in found}
        order = {name: n for n, name in enumerate(PINNED_CHANNELS)}
        found.sort(key=lambda c: (order.get(c.name, len(order)), c.id))
        return [
            _channel_json(c, user) | {"messages": counts[c.id], "incident": c.name.startswith("inc-")}
            for c in found
        ]

    def channel(self, channel: str, user: str, hidden: set[str]) -> JsonDict:
        with self.ws.lock:
            found = self.ws.require_channel(channel)
            messages = [self._message(m) for m in self.ws.messages(found.id, include_threads=False)]
            messages += [self._message(m) for m in self.ws.messages(found.id) if m.reply_broadcast]
            messages += [
                self._ephemeral(e)
                for e in self.ws.ephemerals
                if e.channel == found.id and e.user == user and e.thread_ts is None and e.ts not in hidden
            ]
            messages.sort(key=lambda m: _ts_key(m["ts"]))
            return {"channel": _channel_json(found, user), "messages": messages}

    def thread(self, channel: str, thread_ts: str, user: str) -> JsonDict:
        with self.ws.lock:
            found = self.ws.require_channel(channel)
            messages = [self._message(m) for m in self.ws.thread(found.id, thread_ts)]
            messages += [
                self._ephemeral(e)
                for e in self.ws.ephemerals
                if e.channel == found.id and e.user == user and e.thread_ts == thread_ts
            ]
        messages.sort(key=lambda m: _ts_key(m["ts"]))
        return {"channel": found.id, "thread_ts": thread_ts, "messages": messages}

    def modal(self, user: str) -> JsonDict | None:
        with self.ws.lock:
            open_views = [v for v in self.ws.views.values() if v.user == user and v.type == "modal"]
            open_views = [v for v in open_views if not v.closed]
            if not open_views:
                return None
            view = open_views[-1]
            payload = view.payload
            return {
                "id": view.id,
                "hash": view.hash,
                "callback_id": view.callback_id,
                "title": payload.get("title"),
                "submit": payload.get("submit"),
                "close": payload.get("close"),
                "blocks": view.blocks,
            }

    def file_content(self, file_id: str) -> tuple[str, bytes] | None:
        with self.ws.lock:
            found = self.ws.files.get(file_id)
            if found is None or found.content is None:
                return None
            return found.filename, found.content

    def _message(self, m: Message) -> JsonDict:
        data = self.ws.render_message(m)
        data["channel"] = m.channel
        data["pinned"] = m.pinned
        data["seen_at"] = self._seen(m.ts)
        data["files"] = [{"id": f.get("id"), "name": f.get("name"), "title": f.get("title")} for f in m.files]
        return data

    def _ephemeral(self, e: Ephemeral) -> JsonDict:
        return {
            "ts": e.ts,
            "channel": e.channel,
            "user": BOT_USER_ID,
            "bot_id": "BBOT",
            "text": e.text,
            "blocks": e.blocks,
            "thread_ts": e.thread_ts,
            "ephemeral": True,
            "seen_at": self._seen(e.ts),
        }

    def _seen(self, ts: str) -> float:
        return self._first_seen.setdefault(ts, time.time())

    # --- stand-ins ----------------------------------------------------------------------------

    def standins_json(self) -> JsonDict:
        s = self.standins
        data: JsonDict = {"missing": dict(s.missing), "probes": self.world.snapshot()}
        if s.pagerduty is not None:
            data["pagerduty"] = {
                "events": [_pd_event(e) for e in list(s.pagerduty.events)],
                "alerts": {
                    k: {"status": a["status"], "history": a["history"]} for k, a in s.pagerduty.alerts.items()
                },
                "oncall_lookups": len(s.pagerduty.rest_calls),
                "violations": list(s.pagerduty.violations),
            }
        if s.statuspage is not None:
            data["statuspage"] = {
                "incidents": [_sp_incident(i) for i in list(s.statuspage.incidents.values())],
                "components": {c["name"]: c["status"] for c in list(s.statuspage.components.values())},
                "violations": list(s.statuspage.violations),
            }
        if s.argocd is not None:
            data["argocd"] = {
                "calls": [
                    {"method": c.method, "path": c.path, "body": c.body}
                    for c in list(s.argocd.calls)
                    if c.method != "GET"
                ],
                "reads": sum(1 for c in list(s.argocd.calls) if c.method == "GET"),
                "apps": {name: _argo_app(app) for name, app in list(s.argocd.applications.items())},
                "problems": list(s.argocd.problems),
            }
        with self.ws.lock:
            calls = self.ws.calls[-40:]
            violations = list(self.ws.violations)
        data["slack"] = {
            "calls": [
                {"method": c.method, "ok": c.ok, "error": c.error, "channel": c.args.get("channel")}
                for c in calls
            ],
            "violations": violations,
        }
        return data

    def fingerprint(self, progress: ScenarioProgress) -> tuple[Any, ...]:
        """Changes whenever anything the console shows may have changed."""
        s = self.standins
        with self.ws.lock:
            messages = sum(len(m) for m in self.ws.channel_messages.values())
            reactions = sum(
                len(users)
                for ms in self.ws.channel_messages.values()
                for m in ms
                for users in m.reactions.values()
            )
            closed = sum(1 for v in self.ws.views.values() if v.closed)
            workspace = (
                len(self.ws.calls),
                len(self.ws.channels),
                messages,
                reactions,
                len(self.ws.ephemerals),
                sum(len(r) for r in self.ws.response_urls.values()),
                len(self.ws.views),
                closed,
            )
        vendors = (
            len(s.pagerduty.events) + len(s.pagerduty.rest_calls) if s.pagerduty is not None else 0,
            len(s.statuspage.calls) if s.statuspage is not None else 0,
            len(s.argocd.calls) if s.argocd is not None else 0,
        )
        return (*workspace, *vendors, self.world.version, progress.version)


def _channel_json(c: Channel, user: str) -> JsonDict:
    return {
        "id": c.id,
        "name": c.name,
        "topic": c.topic,
        "purpose": c.purpose,
        "members": len(c.members),
        "is_member": user in c.members,
    }


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)


def _pd_event(event: JsonDict) -> JsonDict:
    payload = event.get("payload") or {}
    return {
        "action": event.get("event_action"),
        "dedup_key": event.get("dedup_key"),
        "summary": payload.get("summary"),
        "severity": payload.get("severity"),
        "component": payload.get("component"),
        "routing_key": str(event.get("routing_key", ""))[:8] + "…",
    }


def _sp_incident(incident: JsonDict) -> JsonDict:
    updates = incident.get("incident_updates") or []
    return {
        "id": incident.get("id"),
        "name": incident.get("name"),
        "status": incident.get("status"),
        "updates": [{"status": u.get("status"), "body": u.get("body")} for u in updates],
    }


def _argo_app(app: JsonDict) -> JsonDict:
    status = app.get("status") or {}
    history = status.get("history") or []
    live = history[-1] if history else {}
    params = ((live.get("source") or {}).get("helm") or {}).get("parameters") or []
    version = next((p.get("value") for p in params if p.get("name") == "image.tag"), live.get("revision"))
    return {
        "version": version,
        "sync": (status.get("sync") or {}).get("status"),
        "health": (status.get("health") or {}).get("status"),
        "operation": (status.get("operationState") or {}).get("phase"),
        "history": len(history),
    }
