"""CommandDeployer: argv templates run without a shell."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bot.adapters.command import CommandDeployer, parse_history
from bot.config import ServiceConfig
from bot.errors import DeployError
from bot.ports import Release

PY = sys.executable
# Records its arguments and CMDCENTER_* environment; no braces, so no placeholders in the code.
RECORD = (
    "import json, os, sys; "
    "env = dict((k, v) for k, v in os.environ.items() if k.startswith('CMDCENTER_')); "
    "open(sys.argv[1], 'w').write(json.dumps([sys.argv[2:], env])); print('rolled back')"
)
TARGET = Release(version="1.4.0", revision="41")


def service(**deploy: object) -> ServiceConfig:
    return ServiceConfig.model_validate(
        {"name": "checkout", "deploy": {"tool": "command", "rollback": [PY, "-c", "pass"], **deploy}}
    )


@pytest.fixture
def command() -> CommandDeployer:
    return CommandDeployer()


async def test_rollback_fills_the_argv(
    tmp_path: Path, command: CommandDeployer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("CMDCENTER_")]:
        monkeypatch.delenv(name)  # the test runner's own CMDCENTER_TEST_DB(S) would show up below
    out = tmp_path / "out.json"
    svc = service(
        rollback=[PY, "-c", RECORD, str(out), "{service}", "--env={env}", "{version}", "{revision}", "{{x}}"]
    )
    result = await command.rollback(service=svc, environment="prod", target=TARGET)
    assert result.ok and result.summary == "rollback command succeeded: rolled back"
    argv, env = json.loads(out.read_text())
    assert argv == ["checkout", "--env=prod", "1.4.0", "41", "{x}"]
    assert env == {
        "CMDCENTER_SERVICE": "checkout",
        "CMDCENTER_ENV": "prod",
        "CMDCENTER_VERSION": "1.4.0",
        "CMDCENTER_REVISION": "41",
    }


async def test_arguments_are_not_split_or_interpreted(tmp_path: Path, command: CommandDeployer) -> None:
    out = tmp_path / "out.json"
    hostile = Release(version="1.4.0; rm -rf / $(id)", revision="1 && true")
    svc = service(rollback=[PY, "-c", RECORD, str(out), "{version}", "{revision}"])
    assert (await command.rollback(service=svc, environment="prod", target=hostile)).ok
    assert json.loads(out.read_text())[0] == ["1.4.0; rm -rf / $(id)", "1 && true"]


async def test_dry_run_shows_the_command_and_runs_nothing(tmp_path: Path, command: CommandDeployer) -> None:
    out = tmp_path / "out.json"
    svc = service(rollback=[PY, "-c", RECORD, str(out), "--to", "{version} (r{revision})"])
    result = await command.rollback(service=svc, environment="prod", target=TARGET, dry_run=True)
    assert result.ok and result.dry_run
    assert result.summary.endswith(f"{out} --to '1.4.0 (r41)'")
    assert result.summary.startswith(f"dry run: would run {PY} -c ")
    assert not out.exists()


async def test_failure_is_summarised(command: CommandDeployer) -> None:
    code = (
        "import sys; print('rolling back'); "
        "print('Error: deploy lock held by alice', file=sys.stderr); sys.exit(3)"
    )
    result = await command.rollback(
        service=service(rollback=[PY, "-c", code]), environment="prod", target=TARGET
    )
    assert not result.ok
    assert result.summary == "rollback command failed (exit 3): Error: deploy lock held by alice"
    assert "rolling back" in result.output


async def test_unknown_placeholder_runs_nothing(tmp_path: Path, command: CommandDeployer) -> None:
    out = tmp_path / "out.json"
    svc = service(rollback=[PY, "-c", RECORD, str(out), "{cluster}"])
    with pytest.raises(DeployError, match=r"deploy\.rollback\[4\]: unknown placeholder \{cluster\}"):
        await command.rollback(service=svc, environment="prod", target=TARGET)
    assert not out.exists()


async def test_timeout(command: CommandDeployer) -> None:
    svc = service(rollback=[PY, "-c", "import time; time.sleep(30)"], timeout_seconds=1)
    with pytest.raises(DeployError, match=r"timed out after 1 s"):
        await command.rollback(service=svc, environment="prod", target=TARGET)


async def test_missing_program(command: CommandDeployer) -> None:
    with pytest.raises(DeployError, match="deployctl-missing not found"):
        await command.rollback(
            service=service(rollback=["deployctl-missing"]), environment="prod", target=TARGET
        )


async def test_deploy(tmp_path: Path, command: CommandDeployer) -> None:
    out = tmp_path / "out.json"
    assert not (await command.deploy(service=service(), environment="prod", version="2.0.0")).ok
    svc = service(deploy=[PY, "-c", RECORD, str(out), "{version}"])
    assert (await command.deploy(service=svc, environment="prod", version="2.0.0")).ok
    assert json.loads(out.read_text())[0] == ["2.0.0"]
    with pytest.raises(DeployError, match=r"\{revision\} is not available here"):
        await command.deploy(service=service(deploy=["x", "{revision}"]), environment="prod", version="2.0.0")


async def test_history(tmp_path: Path, command: CommandDeployer) -> None:
    listing = tmp_path / "history.json"
    listing.write_text('[{"version": "1.5.0", "revision": 42}, {"version": "1.4.0", "revision": "41"}]')
    code = "import sys; sys.exit(2) if sys.argv[2] != 'checkout-prod' else print(open(sys.argv[1]).read())"
    svc = service(history=[PY, "-c", code, str(listing), "{service}-{env}"])
    releases = await command.releases(service=svc, environment="prod")
    assert [(r.version, r.revision, r.status) for r in releases] == [
        ("1.5.0", "42", "deployed"),
        ("1.4.0", "41", "superseded"),
    ]
    with pytest.raises(DeployError, match=r"\{version\} is not available here"):
        await command.releases(service=service(history=["x", "{version}"]), environment="prod")


async def test_no_history_command(command: CommandDeployer) -> None:
    assert await command.releases(service=service(), environment="prod") == []


def test_history_parsing() -> None:
    releases = parse_history(
        '[{"version": "1.5.0", "revision": 42, "deployed_at": "2024-05-02T10:00:00Z"},'
        ' {"version": "1.4.0", "revision": "41", "status": "rolled-back"}]'
    )
    assert [(r.version, r.revision, r.status) for r in releases] == [
        ("1.5.0", "42", "deployed"),
        ("1.4.0", "41", "rolled-back"),
    ]
    assert releases[0].deployed_at is not None and releases[1].deployed_at is None


@pytest.mark.parametrize(
    ("stdout", "problem"),
    [
        ("not json", "did not print JSON"),
        ('{"version": "1"}', "must print a JSON list"),
        ('[{"version": "1.0"}]', "entry 0 needs a version and a revision"),
        ('[{"version": "1.0", "revision": true}]', "entry 0 needs a version and a revision"),
    ],
)
def test_bad_history_output(stdout: str, problem: str) -> None:
    with pytest.raises(DeployError, match=problem):
        parse_history(stdout)


async def test_failing_history_command(command: CommandDeployer) -> None:
    svc = service(history=[PY, "-c", "import sys; sys.exit('Error: no access')"])
    with pytest.raises(DeployError, match=r"history command failed \(exit 1\): Error: no access"):
        await command.releases(service=svc, environment="prod")
