"""The YAML config and ``cmdcenter check-config``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import parse_config
from bot.errors import ConfigError
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_passes_check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    assert main(["check-config", "--config", str(ROOT / "cmdcenter.example.yaml")]) == 0
    assert "OK" in capsys.readouterr().out


def test_broken_config_names_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        """
slack:
  incident_channel_pattern: "inc-{slug}"
services:
  - name: Checkout!
    deploy: {tool: helmfile}
  - name: search
    health_checks:
      - url: ${CMDCENTER_TEST_UNSET_VAR}
"""
    )
    assert main(["check-config", "--config", str(path), "--config-only"]) == 1
    err = capsys.readouterr().err
    assert "slack.incident_channel_pattern" in err and "{n}" in err
    assert "services[0].name" in err
    assert "services[0].deploy" in err and "helmfile" in err
    assert "services[1].health_checks[0].url" in err and "CMDCENTER_TEST_UNSET_VAR" in err
    assert "4 problem(s) found" in err


def test_cross_checks_and_yaml_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("access:\n  - action: rollback\n    services: [nosuch]\n")
    assert main(["check-config", "--config", str(path), "--config-only"]) == 1
    err = capsys.readouterr().err
    assert "access[0].services: unknown service 'nosuch'" in err
    assert "access[0]: a rule needs users or usergroups" in err
    path.write_text("slack: [unclosed\n")
    assert main(["check-config", "--config", str(path), "--config-only"]) == 1
    assert "invalid YAML" in capsys.readouterr().err


def test_missing_secret_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: SLACK_BOT_TOKEN is not set", "error: SLACK_SIGNING_SECRET is not set"]


def test_env_interpolation_and_defaults() -> None:
    config = parse_config(
        "services:\n  - name: api\n    pagerduty: {routing_key: '${PD_KEY}'}\n", env={"PD_KEY": "abc"}
    )
    service = config.service("api")
    assert service is not None and service.pagerduty.routing_key == "abc"
    assert service.default_env == "prod"
    assert config.severities["sev1"].update_minutes == 15
    with pytest.raises(ConfigError):
        parse_config("services: [{name: a}, {name: a}]")


def test_settings_accept_plain_database_urls() -> None:
    assert load_settings(DATABASE_URL="postgresql://u@h/db").database_url == "postgresql+asyncpg://u@h/db"
    assert load_settings(DATABASE_URL="sqlite:///x.db").database_url == "sqlite+aiosqlite:///x.db"
    assert load_settings().slack_api_url.endswith("/")
