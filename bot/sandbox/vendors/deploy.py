"""Helpers for the deploy-tool fakes: the fake ``helm``/``kubectl`` executables and their state,
and request-body validation against the Swagger 2.0 definitions of the Argo specs.

    state = HelmFakeState(tmp_path / "state.json", log=tmp_path / "calls.jsonl")
    state.add_release("checkout", namespace="prod", versions=["1.4.0", "1.5.0"])
    monkeypatch.setenv(...) for each of state.env().items()
    HelmDeployer(helm_bin=str(fake_bin_dir() / "helm"))
    state.calls()  # [["helm", "history", "checkout", ...], ...] (argv[0] is the script's name)

The state file is JSON shared by both scripts: ``{"releases": {"<ns>/<release>": [revision...]},
"rollouts": {"<ns>/<rollout>": {...}}}``. Environment variables the scripts read:
``CMDCENTER_FAKE_HELM_STATE`` (the state file), ``CMDCENTER_FAKE_BIN_LOG`` (argv log, one JSON
list a line), ``CMDCENTER_FAKE_HELM_FAIL=1`` (helm rollback fails), ``CMDCENTER_FAKE_KUBECTL_FAIL=1``
(kubectl argo rollouts undo/abort/promote fail) and ``CMDCENTER_FAKE_BIN_SLEEP`` (seconds to sleep
before answering, for timeout tests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator  # type: ignore[import-untyped]  # no stubs in the environment
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from bot.sandbox.specs import SchemaValidator, load_spec, schema_errors

ARGOCD_SPEC = "argocd_swagger.json"
ARGO_ROLLOUTS_SPEC = "argo_rollouts_swagger.json"
_SPEC_URI = "urn:cmdcenter:swagger"


def fake_bin_dir() -> Path:
    """The directory holding the fake ``helm`` and ``kubectl`` scripts."""
    return Path(__file__).resolve().parent / "fake_bin"


def _stamp(base: datetime, index: int) -> str:
    return (base + timedelta(hours=index)).isoformat(timespec="microseconds")


class HelmFakeState:
    """Reads and writes the state file of the fake ``helm`` and ``kubectl``."""

    def __init__(self, path: Path, *, log: Path | None = None) -> None:
        self.path = path
        self.log = log if log is not None else path.with_suffix(".calls.jsonl")
        if not path.exists():
            self.save({"releases": {}, "rollouts": {}})

    def env(
        self, *, helm_fail: bool = False, kubectl_fail: bool = False, sleep: float = 0.0
    ) -> dict[str, str]:
        """The environment variables pointing the scripts at this state."""
        env = {"CMDCENTER_FAKE_HELM_STATE": str(self.path), "CMDCENTER_FAKE_BIN_LOG": str(self.log)}
        if helm_fail:
            env["CMDCENTER_FAKE_HELM_FAIL"] = "1"
        if kubectl_fail:
            env["CMDCENTER_FAKE_KUBECTL_FAIL"] = "1"
        if sleep:
            env["CMDCENTER_FAKE_BIN_SLEEP"] = str(sleep)
        return env

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.path.write_text(json.dumps(data, indent=2), encoding="utf-8")

    def calls(self) -> list[list[str]]:
        """Every argv the scripts were run with, oldest first."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    # --- helm ---------------------------------------------------------------------------------

    def add_release(
        self,
        release: str,
        *,
        namespace: str,
        versions: list[str],
        chart: str | None = None,
        failed: frozenset[int] = frozenset(),
        start: datetime | None = None,
    ) -> None:
        """A release deployed once per version (oldest first); the last revision is ``deployed``."""
        base = start or datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        revisions = []
        for index, version in enumerate(versions):
            number = index + 1
            last = index == len(versions) - 1
            status = "failed" if number in failed else ("deployed" if last else "superseded")
            revisions.append(
                {
                    "revision": number,
                    "updated": _stamp(base, index),
                    "status": status,
                    "chart": f"{chart or release}-{version}",
                    "app_version": version,
                    "description": "Install complete" if number == 1 else "Upgrade complete",
                }
            )
        data = self.load()
        data.setdefault("releases", {})[f"{namespace}/{release}"] = revisions
        self.save(data)

    def history(self, release: str, *, namespace: str) -> list[dict[str, Any]]:
        revisions: list[dict[str, Any]] = self.load().get("releases", {}).get(f"{namespace}/{release}", [])
        return revisions

    # --- kubectl (Argo Rollouts) --------------------------------------------------------------

    def add_rollout(
        self,
        rollout: str,
        *,
        namespace: str,
        images: list[str],
        stable: int | None = None,
        start: datetime | None = None,
    ) -> None:
        """A rollout with one ReplicaSet per image (revisions 1..n), pod-template hashes ``h0001``...

        ``stable`` (a revision) defaults to the last; the last is always the current (canary) one.
        """
        base = start or datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        sets = [
            {"revision": i + 1, "image": image, "hash": f"h{i + 1:04d}", "created": _stamp(base, i)}
            for i, image in enumerate(images)
        ]
        stable_hash = sets[(stable or len(sets)) - 1]["hash"]
        data = self.load()
        data.setdefault("rollouts", {})[f"{namespace}/{rollout}"] = {
            "replicaSets": sets,
            "stable": stable_hash,
            "current": sets[-1]["hash"],
        }
        self.save(data)

    def rollout(self, rollout: str, *, namespace: str) -> dict[str, Any]:
        state: dict[str, Any] = self.load().get("rollouts", {}).get(f"{namespace}/{rollout}", {})
        return state


# --- Swagger 2.0 request validation ---------------------------------------------------------------


def definition_validator(spec_name: str, definition: str) -> SchemaValidator | None:
    """A validator for ``#/definitions/<definition>`` of a Swagger 2.0 spec, or None without specs.

    Swagger 2.0 schemas are (mostly) JSON Schema draft 4; ``$ref``s resolve inside the spec.
    """
    spec = load_spec(spec_name)
    if spec is None or definition not in spec.get("definitions", {}):
        return None
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT4)
    )
    validator: SchemaValidator = Draft4Validator(
        {"$ref": f"{_SPEC_URI}#/definitions/{definition}"}, registry=registry
    )
    return validator


def body_problems(validator: SchemaValidator | None, body: Any) -> list[str]:
    """Schema violations of ``body`` (none when there is no validator)."""
    return [] if validator is None else schema_errors(validator, body)
