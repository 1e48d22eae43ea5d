"""Find the vendor API specs (``../shared/specs``) and build JSON-schema validators from them.

The specs are test data kept next to the repository, not shipped with the bot: when they are
absent, :func:`specs_dir` and :func:`load_spec` return ``None`` and the fakes skip schema checks.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from jsonschema import Draft7Validator  # type: ignore[import-untyped]  # no stubs in the environment
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ENV_VAR = "CMDCENTER_SPECS_DIR"
_SPEC_URI = "urn:cmdcenter:spec"


class SchemaValidator(Protocol):
    """The part of ``jsonschema.Validator`` the fakes use (see :func:`schema_errors`)."""

    def iter_errors(self, instance: Any) -> Any: ...


def specs_dir() -> Path | None:
    """``$CMDCENTER_SPECS_DIR``, else the first ``shared/specs`` found walking up from this file."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        path = Path(configured)
        return path if path.is_dir() else None
    for ancestor in Path(__file__).resolve().parents:
        candidate = ancestor / "shared" / "specs"
        if candidate.is_dir():
            return candidate
    return None


def load_spec(name: str) -> dict[str, Any] | None:
    """The parsed spec file ``name`` (e.g. ``"pagerduty_events_v2_openapiv3.json"``), or None.

    Cached per directory and name: treat the returned dict as read-only.
    """
    directory = specs_dir()
    if directory is None:
        return None
    return _load(directory / name)


@cache
def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def request_validator(spec: dict[str, Any], path: str, method: str) -> SchemaValidator:
    """A validator for the JSON request body of ``method path`` in an OpenAPI 3 ``spec``.

    ``$ref``s resolve inside ``spec``. OpenAPI 3.0 schemas are close enough to draft 7 for request
    checks; unknown formats (``url``) and OpenAPI-only keywords (``nullable``) are ignored.
    """
    pointer = "/".join(
        ["", "paths", _escape(path), method.lower(), "requestBody", "content", "application~1json", "schema"]
    )
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT7)
    )
    validator: SchemaValidator = Draft7Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=registry)
    return validator


def schema_errors(validator: SchemaValidator, instance: Any) -> list[str]:
    """Every schema violation of ``instance`` as ``"<json path>: <message>"``."""
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(instance)]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def query_parameters(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, dict[str, Any]]:
    """The query parameters of ``method path`` by name, with local ``$ref``s resolved."""
    params: dict[str, dict[str, Any]] = {}
    for param in spec["paths"][path][method.lower()].get("parameters", []):
        resolved = _resolve(spec, param)
        if resolved.get("in") == "query":
            params[str(resolved["name"])] = resolved
    return params


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def query_violations(params: dict[str, dict[str, Any]], query: list[tuple[str, str]]) -> list[str]:
    """Rough checks of a query string against ``query_parameters``: names, integers, booleans, enums."""
    problems: list[str] = []
    for name, value in query:
        param = params.get(name)
        if param is None:
            problems.append(f"unknown query parameter {name!r}")
            continue
        schema: dict[str, Any] = param.get("schema", {})
        if schema.get("type") == "array":
            schema = schema.get("items", {})
        kind, allowed = schema.get("type"), schema.get("enum")
        if kind == "integer" and not value.lstrip("-").isdigit():
            problems.append(f"{name}={value!r} is not an integer")
        elif kind == "boolean" and value not in ("true", "false"):
            problems.append(f"{name}={value!r} is not true/false")
        elif allowed is not None and value not in allowed:
            problems.append(f"{name}={value!r} is not one of {allowed}")
    return problems
