"""Web API handlers for everything but messages: auth, team, users, usergroups, views, bookmarks, files."""

from __future__ import annotations

from typing import Any

from bot.sandbox.slack._blocks import validate_view
from bot.sandbox.slack._context import Handler, MethodContext
from bot.sandbox.slack._models import (
    BASE_TIME,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    Bookmark,
    File,
    JsonDict,
    View,
)

# --- auth, team, users ------------------------------------------------------------------------


def auth_test(ctx: MethodContext) -> JsonDict:
    return {
        "url": f"{ctx.base_url}/",
        "team": TEAM_NAME,
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def team_info(ctx: MethodContext) -> JsonDict:
    team = {
        "id": TEAM_ID,
        "name": TEAM_NAME,
        "url": f"{ctx.base_url}/",
        "domain": TEAM_DOMAIN,
        "email_domain": "example.com",
        "icon": {"image_default": True},
        "is_verified": False,
    }
    return {"team": team}


def users_info(ctx: MethodContext) -> JsonDict:
    return {"user": ctx.user().to_api()}


def users_list(ctx: MethodContext) -> JsonDict:
    page, cursor = ctx.paginate([u.to_api() for u in ctx.ws.users.values()], default_limit=1000)
    return {"members": page, "cache_ts": BASE_TIME, "response_metadata": {"next_cursor": cursor}}


def users_lookup_by_email(ctx: MethodContext) -> JsonDict:
    user = ctx.ws.find_user_by_email(ctx.text("email"))
    if user is None:
        ctx.fail("users_not_found")
    return {"user": user.to_api()}


def usergroups_list(ctx: MethodContext) -> JsonDict:
    include_users = ctx.flag("include_users")
    return {"usergroups": [g.to_api(include_users=include_users) for g in ctx.ws.usergroups.values()]}


def usergroups_users_list(ctx: MethodContext) -> JsonDict:
    group = ctx.ws.usergroups.get(ctx.text("usergroup"))
    if group is None:
        ctx.fail("no_such_subteam")
    return {"users": list(group.members)}


# --- views.* ----------------------------------------------------------------------------------


def views_open(ctx: MethodContext) -> JsonDict:
    user, trigger_id = _exchange_trigger(ctx)
    view = _store_view(ctx, _view_payload(ctx, "modal"), user=user, trigger_id=trigger_id)
    return {"view": view.to_api()}


def views_push(ctx: MethodContext) -> JsonDict:
    user, trigger_id = _exchange_trigger(ctx)
    payload = _view_payload(ctx, "modal")
    below = next(
        (v for v in reversed(ctx.ws.views.values()) if v.type == "modal" and v.user == user and not v.closed),
        None,
    )
    view = _store_view(ctx, payload, user=user, trigger_id=trigger_id)
    if below is not None:
        view.previous_view_id = below.id
        view.root_view_id = below.root_view_id or below.id
    return {"view": view.to_api()}


def views_update(ctx: MethodContext) -> JsonDict:
    view = _find_view(ctx)
    payload = _view_payload(ctx, view.type)
    expected_hash = ctx.optional_text("hash")
    if expected_hash is not None and expected_hash != view.hash:
        ctx.fail("hash_conflict")
    view.payload = payload
    view.hash = _new_hash(ctx)
    return {"view": view.to_api()}


def views_publish(ctx: MethodContext) -> JsonDict:
    user = ctx.user("user_id")
    payload = _view_payload(ctx, "home")
    home = next((v for v in ctx.ws.views.values() if v.type == "home" and v.user == user.id), None)
    if home is None:
        home = _store_view(ctx, payload, user=user.id, trigger_id=None)
    else:
        home.payload, home.hash = payload, _new_hash(ctx)
    return {"view": home.to_api()}


def _exchange_trigger(ctx: MethodContext) -> tuple[str, str]:
    trigger_id = ctx.text("trigger_id")
    if trigger_id in ctx.ws.exchanged_triggers:
        ctx.fail("exchanged_trigger_id", f"trigger_id {trigger_id!r} was already used")
    if trigger_id not in ctx.ws.triggers:
        ctx.fail(
            "invalid_trigger_id",
            f"trigger_id {trigger_id!r} was never issued (use SlackDriver or workspace.new_trigger_id())",
        )
    ctx.ws.exchanged_triggers.add(trigger_id)
    return ctx.ws.triggers[trigger_id], trigger_id


def _view_payload(ctx: MethodContext, expected_type: str) -> JsonDict:
    view = ctx.args.get("view")
    problems = validate_view(view, expected_type=expected_type)
    if problems or not isinstance(view, dict):
        messages = [f"[ERROR] {p}" for p in problems]
        ctx.fail("invalid_arguments", "; ".join(problems), response_metadata={"messages": messages})
    return dict(view)


def _find_view(ctx: MethodContext) -> View:
    view_id, external_id = ctx.optional_text("view_id"), ctx.optional_text("external_id")
    if view_id is None and external_id is None:
        ctx.fail("invalid_arguments", "views.update needs view_id or external_id")
    for view in ctx.ws.views.values():
        if view.id == view_id or (external_id and view.payload.get("external_id") == external_id):
            return view
    ctx.fail("not_found")


def _store_view(ctx: MethodContext, payload: JsonDict, *, user: str, trigger_id: str | None) -> View:
    external_id = payload.get("external_id")
    if external_id and any(v.payload.get("external_id") == external_id for v in ctx.ws.views.values()):
        ctx.fail("duplicate_external_id")
    view = View(
        id=ctx.ws.next_id("V"),
        type=str(payload["type"]),
        payload=payload,
        user=user,
        trigger_id=trigger_id,
        hash=_new_hash(ctx),
    )
    ctx.ws.views[view.id] = view
    return view


def _new_hash(ctx: MethodContext) -> str:
    return f"{ctx.ws.next_ts()}.{len(ctx.ws.views):08x}"


# --- bookmarks.* ------------------------------------------------------------------------------


def bookmarks_add(ctx: MethodContext) -> JsonDict:
    channel = ctx.writable_channel("channel_id")
    bookmark_type = ctx.text("type")
    if bookmark_type != "link":
        ctx.fail("invalid_bookmark_type", f"type must be 'link', got {bookmark_type!r}")
    link = ctx.text("link")
    if not link.startswith(("http://", "https://")):
        ctx.fail("invalid_link", f"link must be an http(s) URL, got {link!r}")
    bookmark = Bookmark(
        id=ctx.ws.next_id("Bk"),
        channel_id=channel.id,
        title=ctx.text("title"),
        type=bookmark_type,
        link=link,
        emoji=ctx.text("emoji"),
    )
    ctx.ws.bookmarks[bookmark.id] = bookmark
    return {"bookmark": bookmark.to_api()}


def bookmarks_list(ctx: MethodContext) -> JsonDict:
    channel = ctx.channel("channel_id")
    return {"bookmarks": [b.to_api() for b in ctx.ws.bookmarks.values() if b.channel_id == channel.id]}


# --- files.* ----------------------------------------------------------------------------------


def files_get_upload_url_external(ctx: MethodContext) -> JsonDict:
    length = ctx.integer("length", -1)
    if length < 0:
        ctx.fail("invalid_arguments", f"length must be a byte count, got {ctx.args.get('length')!r}")
    file = File(
        id=ctx.ws.next_id("F"),
        filename=ctx.text("filename"),
        title=ctx.text("filename"),
        declared_length=length,
    )
    ctx.ws.files[file.id] = file
    return {"upload_url": f"{ctx.base_url}/upload/{file.id}", "file_id": file.id}


def files_complete_upload_external(ctx: MethodContext) -> JsonDict:
    entries = ctx.args.get("files")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        ctx.fail("invalid_arguments", "files must be a JSON array of {id, title} objects")
    files = [_completed_file(ctx, entry) for entry in entries]
    channel_ids = ctx.csv("channels") or ctx.csv("channel_id")
    for channel_id in channel_ids:
        _share_files(ctx, files, channel_id)
    return {"files": [f.to_api(ctx.base_url) for f in files]}


def _completed_file(ctx: MethodContext, entry: dict[str, Any]) -> File:
    file = ctx.ws.files.get(str(entry.get("id")))
    if file is None:
        ctx.fail("file_not_found", f"file {entry.get('id')!r} was not created by files.getUploadURLExternal")
    if file.content is None:
        ctx.fail("file_not_found", f"file {file.id} was never uploaded to its upload_url")
    if len(file.content) != file.declared_length:
        ctx.violate(f"file {file.id} has {len(file.content)} bytes but length was {file.declared_length}")
    file.title = str(entry.get("title") or file.filename)
    file.completed = True
    return file


def _share_files(ctx: MethodContext, files: list[File], channel_id: str) -> None:
    channel = ctx.ws.channels.get(channel_id)
    if channel is None or channel.is_archived:
        ctx.fail("channel_not_found" if channel is None else "is_archived")
    thread_ts = ctx.thread_root(channel)
    comment = ctx.text("initial_comment")
    for file in files:
        file.channels.append(channel.id)
        file.initial_comment, file.thread_ts = comment, thread_ts
    shared = [f.to_api(ctx.base_url) for f in files]
    ctx.ws.post_message(channel.id, text=comment, thread_ts=thread_ts, files=shared)


def files_info(ctx: MethodContext) -> JsonDict:
    file = ctx.ws.files.get(ctx.text("file"))
    if file is None or not file.completed:
        ctx.fail("file_not_found")
    return {"file": file.to_api(ctx.base_url), "comments": [], "response_metadata": {"next_cursor": ""}}


OTHER_HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "team.info": team_info,
    "users.info": users_info,
    "users.list": users_list,
    "users.lookupByEmail": users_lookup_by_email,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
    "bookmarks.add": bookmarks_add,
    "bookmarks.list": bookmarks_list,
    "files.getUploadURLExternal": files_get_upload_url_external,
    "files.completeUploadExternal": files_complete_upload_external,
    "files.info": files_info,
}
