"""Block Kit and view checks with Slack's documented limits.

Each check returns human-readable problems such as
``"blocks[3] (section): text is 3012 chars (max 3000)"``; an empty list means valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_BLOCKS = {"message": 50, "modal": 100, "home": 100}
MAX_MESSAGE_TEXT = 40_000
MAX_BLOCK_ID = 255
MAX_ACTION_ID = 255
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})
SELECT_TYPES = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)

Problems = list[str]


def validate_blocks(blocks: Any, *, surface: str = "message") -> Problems:
    """Check a ``blocks`` array for a message (``surface="message"``), a modal or a home tab."""
    if not isinstance(blocks, list):
        return [f"blocks must be an array of block objects, got {type(blocks).__name__}"]
    problems: Problems = []
    limit = MAX_BLOCKS[surface]
    if len(blocks) > limit:
        problems.append(f"{len(blocks)} blocks (max {limit} in a {surface})")
    seen_ids: set[str] = set()
    for index, block in enumerate(blocks):
        _check_block(block, f"blocks[{index}]", seen_ids, problems)
    return problems


def validate_view(view: Any, *, expected_type: str | None = None) -> Problems:
    """Check a view payload for views.open/push/update/publish."""
    if not isinstance(view, dict):
        return [f"view must be an object, got {type(view).__name__}"]
    problems: Problems = []
    view_type = view.get("type")
    if view_type not in ("modal", "home"):
        problems.append(f"view.type must be 'modal' or 'home', got {view_type!r}")
        return problems
    if expected_type and view_type != expected_type:
        problems.append(f"view.type must be {expected_type!r} here, got {view_type!r}")
    if view_type == "modal":
        _check_modal_chrome(view, problems)
    for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
        _check_str_len(view.get(key), f"view.{key}", limit, problems)
    blocks = view.get("blocks")
    if blocks is None:
        problems.append("view.blocks is required")
    else:
        problems.extend(f"view.{p}" for p in validate_blocks(blocks, surface=str(view_type)))
    return problems


def _check_modal_chrome(view: dict[str, Any], problems: Problems) -> None:
    if view.get("title") is None:
        problems.append("view.title is required for a modal")
    for key in ("title", "submit", "close"):
        if view.get(key) is not None:
            _check_text(view[key], f"view.{key}", problems, max_len=24, plain_only=True)
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if has_input and view.get("submit") is None:
        problems.append("view.submit is required when a modal has input blocks")


# --- blocks -------------------------------------------------------------------------------------


def _check_block(block: Any, path: str, seen_ids: set[str], problems: Problems) -> None:
    if not isinstance(block, dict):
        problems.append(f"{path}: a block must be an object, got {type(block).__name__}")
        return
    block_type = block.get("type")
    checker = _BLOCK_CHECKERS.get(str(block_type))
    if checker is None:
        problems.append(f"{path}: unknown block type {block_type!r}")
        return
    where = f"{path} ({block_type})"
    block_id = block.get("block_id")
    if block_id is not None:
        if not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID:
            problems.append(f"{where}: block_id must be a string of at most {MAX_BLOCK_ID} chars")
        elif block_id in seen_ids:
            problems.append(f"{where}: duplicate block_id {block_id!r}")
        else:
            seen_ids.add(block_id)
    checker(block, where, problems)


def _check_section(block: dict[str, Any], where: str, problems: Problems) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None and block.get("expand") is None:
        problems.append(f"{where}: needs text or fields")
    if text is not None:
        _check_text(text, f"{where}: text", problems, max_len=3000)
    if fields is not None:
        if not isinstance(fields, list):
            problems.append(f"{where}: fields must be an array")
        else:
            if len(fields) > 10:
                problems.append(f"{where}: {len(fields)} fields (max 10)")
            for index, item in enumerate(fields):
                _check_text(item, f"{where}: fields[{index}]", problems, max_len=2000)
    if block.get("accessory") is not None:
        _check_element(block["accessory"], f"{where}: accessory", problems)


def _check_header(block: dict[str, Any], where: str, problems: Problems) -> None:
    _check_text(block.get("text"), f"{where}: text", problems, max_len=150, plain_only=True)


def _check_context(block: dict[str, Any], where: str, problems: Problems) -> None:
    elements = _elements(block, where, problems, max_items=10)
    for index, element in enumerate(elements):
        path = f"{where}: elements[{index}]"
        if isinstance(element, dict) and element.get("type") == "image":
            _check_image_element(element, path, problems)
        else:
            _check_text(element, path, problems, max_len=3000)


def _check_actions(block: dict[str, Any], where: str, problems: Problems) -> None:
    elements = _elements(block, where, problems, max_items=25)
    action_ids: set[str] = set()
    for index, element in enumerate(elements):
        _check_element(element, f"{where}: elements[{index}]", problems)
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in action_ids:
                problems.append(f"{where}: duplicate action_id {action_id!r} in one block")
            action_ids.add(action_id)


def _check_image_block(block: dict[str, Any], where: str, problems: Problems) -> None:
    _check_image_element(block, where, problems)
    if block.get("title") is not None:
        _check_text(block["title"], f"{where}: title", problems, max_len=2000, plain_only=True)


def _check_input(block: dict[str, Any], where: str, problems: Problems) -> None:
    _check_text(block.get("label"), f"{where}: label", problems, max_len=2000, plain_only=True)
    if block.get("hint") is not None:
        _check_text(block["hint"], f"{where}: hint", problems, max_len=2000, plain_only=True)
    if block.get("element") is None:
        problems.append(f"{where}: element is required")
    else:
        _check_element(block["element"], f"{where}: element", problems)


def _check_rich_text(block: dict[str, Any], where: str, problems: Problems) -> None:
    if not isinstance(block.get("elements"), list):
        problems.append(f"{where}: elements must be an array")


def _check_file(block: dict[str, Any], where: str, problems: Problems) -> None:
    if not block.get("external_id") or block.get("source") != "remote":
        problems.append(f"{where}: needs external_id and source 'remote'")


def _check_video(block: dict[str, Any], where: str, problems: Problems) -> None:
    missing = [k for k in ("alt_text", "title", "thumbnail_url", "video_url") if not block.get(k)]
    if missing:
        problems.append(f"{where}: missing {', '.join(missing)}")
    if block.get("title") is not None:
        _check_text(block["title"], f"{where}: title", problems, max_len=200, plain_only=True)


def _check_markdown(block: dict[str, Any], where: str, problems: Problems) -> None:
    text = block.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: text must be a non-empty string")
    elif len(text) > 12_000:
        problems.append(f"{where}: text is {len(text)} chars (max 12000)")


def _check_divider(block: dict[str, Any], where: str, problems: Problems) -> None:
    return None


_BLOCK_CHECKERS: dict[str, Callable[[dict[str, Any], str, Problems], None]] = {
    "section": _check_section,
    "divider": _check_divider,
    "header": _check_header,
    "context": _check_context,
    "actions": _check_actions,
    "image": _check_image_block,
    "input": _check_input,
    "rich_text": _check_rich_text,
    "file": _check_file,
    "video": _check_video,
    "markdown": _check_markdown,
}


def _elements(block: dict[str, Any], where: str, problems: Problems, *, max_items: int) -> list[Any]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        problems.append(f"{where}: elements must be a non-empty array")
        return []
    if len(elements) > max_items:
        problems.append(f"{where}: {len(elements)} elements (max {max_items})")
    return elements


# --- elements and composition objects -----------------------------------------------------------


def _check_element(element: Any, where: str, problems: Problems) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        problems.append(f"{where}: an element must be an object with a type")
        return
    element_type = element["type"]
    where = f"{where} ({element_type})"
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > MAX_ACTION_ID):
        problems.append(f"{where}: action_id must be a string of at most {MAX_ACTION_ID} chars")
    if element_type == "button":
        _check_button(element, where, problems)
    elif element_type in SELECT_TYPES or element_type in ("overflow", "radio_buttons", "checkboxes"):
        _check_options_element(element, where, problems)
    elif element_type == "image":
        _check_image_element(element, where, problems)
    if element.get("placeholder") is not None:
        _check_text(element["placeholder"], f"{where}: placeholder", problems, max_len=150, plain_only=True)
    if element.get("confirm") is not None:
        _check_confirm(element["confirm"], f"{where}: confirm", problems)


def _check_button(element: dict[str, Any], where: str, problems: Problems) -> None:
    _check_text(element.get("text"), f"{where}: text", problems, max_len=75, plain_only=True)
    _check_str_len(element.get("value"), f"{where}: value", 2000, problems)
    _check_str_len(element.get("url"), f"{where}: url", 3000, problems)
    style = element.get("style")
    if style is not None and style not in ("primary", "danger"):
        problems.append(f"{where}: style must be 'primary' or 'danger', got {style!r}")


def _check_options_element(element: dict[str, Any], where: str, problems: Problems) -> None:
    options = element.get("options")
    if options is None:
        return
    if not isinstance(options, list):
        problems.append(f"{where}: options must be an array")
        return
    max_options = 5 if element["type"] == "overflow" else 100
    if len(options) > max_options:
        problems.append(f"{where}: {len(options)} options (max {max_options})")
    for index, option in enumerate(options):
        path = f"{where}: options[{index}]"
        if not isinstance(option, dict):
            problems.append(f"{path}: an option must be an object")
            continue
        _check_text(option.get("text"), f"{path}.text", problems, max_len=75)
        _check_str_len(option.get("value"), f"{path}.value", 150, problems)


def _check_image_element(element: dict[str, Any], where: str, problems: Problems) -> None:
    if not element.get("image_url") and not element.get("slack_file"):
        problems.append(f"{where}: image_url or slack_file is required")
    _check_str_len(element.get("image_url"), f"{where}: image_url", 3000, problems)
    alt_text = element.get("alt_text")
    if not isinstance(alt_text, str) or not alt_text:
        problems.append(f"{where}: alt_text is required")
    else:
        _check_str_len(alt_text, f"{where}: alt_text", 2000, problems)


def _check_confirm(confirm: Any, where: str, problems: Problems) -> None:
    if not isinstance(confirm, dict):
        problems.append(f"{where}: must be an object")
        return
    for key, limit in (("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)):
        _check_text(confirm.get(key), f"{where}.{key}", problems, max_len=limit, plain_only=key != "text")


def _check_text(obj: Any, where: str, problems: Problems, *, max_len: int, plain_only: bool = False) -> None:
    if not isinstance(obj, dict):
        problems.append(f"{where} must be a text object, got {_describe(obj)}")
        return
    text_type = obj.get("type")
    allowed = ("plain_text",) if plain_only else tuple(sorted(TEXT_TYPES))
    if text_type not in allowed:
        problems.append(f"{where} must be of type {' or '.join(allowed)}, got {text_type!r}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where} must have a non-empty text string")
    elif len(text) > max_len:
        problems.append(f"{where} is {len(text)} chars (max {max_len})")


def _check_str_len(value: Any, where: str, max_len: int, problems: Problems) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(f"{where} must be a string, got {_describe(value)}")
    elif len(value) > max_len:
        problems.append(f"{where} is {len(value)} chars (max {max_len})")


def _describe(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
