"""The ``cmdcenter`` command: serve, socket, migrate, check-config, demo."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.demo.command import add_demo_parser
from bot.errors import ConfigError, MigrationError

if TYPE_CHECKING:  # imported where used: ``serve`` imports them with the collector off
    from bot.config import Config
    from bot.settings import Settings

log = logging.getLogger("cmdcenter")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _load(*, require_config: bool = False) -> tuple[Settings, Config]:
    from bot.config import load_config
    from bot.settings import load_settings

    settings = load_settings()
    config = load_config(settings.config_path, required=require_config)
    return settings, config


def _collector_off_for_start_up() -> None:
    """Start-up builds the heap the process keeps until exit (modules, classes, tables, schemas,
    templates) and makes little garbage: the cyclic collector, run every 700 allocations, only walks
    that growing heap again and again, about a sixth of the start-up time. Off until
    ``_freeze_start_up_heap``."""
    gc.disable()


def _freeze_start_up_heap() -> None:
    """Move what start-up built (most of the heap, alive until exit) out of the garbage collector's
    sight, then turn the collector on. Without this, every full collection walked it all and
    stopped the event loop for ~100 ms, and every request in flight with it (the p99 of benchmark
    1). What start-up left as garbage stays too (a one-off few hundred kB; collecting it first
    would cost a full collection's pause at every start)."""
    gc.freeze()
    gc.enable()


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(args, socket_mode=False)


def cmd_socket(args: argparse.Namespace) -> int:
    return _serve(args, socket_mode=True)


def _serve(args: argparse.Namespace, *, socket_mode: bool) -> int:
    """HTTP mode (``bot.web``: Slack's requests at /slack/events and the service routes) or Socket
    Mode (``bot.socket_mode``: the websocket to Slack and the service routes), served by uvicorn on
    ``--host``/``--port``, which stops gracefully on SIGTERM."""
    _collector_off_for_start_up()
    from bot.db.migrate import start_upgrade_if_behind

    settings, config = _load()
    settings.require("slack_bot_token", "slack_signing_secret", *(["slack_app_token"] if socket_mode else []))
    _setup_logging(settings.log_level)
    migrations = start_upgrade_if_behind(settings.database_url)  # runs while the rest is imported
    import uvicorn

    from bot.app import build

    app = build(settings, config)
    if socket_mode:
        from bot.socket_mode import build_socket_web

        assert settings.slack_app_token is not None
        web = build_socket_web(app, settings.slack_app_token.get_secret_value())
        log.info(
            "cmdcenter in Socket Mode; /healthz and the other routes on http://%s:%d", args.host, args.port
        )
    else:
        from bot.web import build_web

        web = build_web(app)
        log.info("cmdcenter listening on http://%s:%d/slack/events", args.host, args.port)
    migrations.wait()
    _freeze_start_up_heap()
    uvicorn.run(
        web,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        ws="none",  # no websocket routes (Socket Mode's websocket is a client): no protocol to load at start
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade
    from bot.settings import load_settings

    settings = load_settings()
    _setup_logging(settings.log_level)
    upgrade(settings.database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from bot.config import load_config
    from bot.settings import load_settings

    problems: list[str] = []
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems += exc.problems
        settings = None
    path = args.config or (settings.config_path if settings else None)
    if path is not None:
        try:
            config = load_config(path, required=True)
            problems += _cross_check(config)
        except ConfigError as exc:
            problems += exc.problems
    if settings is not None and not args.config_only:
        try:
            settings.require("slack_bot_token", "slack_signing_secret")
        except ConfigError as exc:
            problems += [f"settings: {p}" for p in exc.problems]
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{path}: OK")
    return 0


def _cross_check(config: Config) -> list[str]:
    """Checks that span sections (a rule naming an unknown service...)."""
    problems: list[str] = []
    names = {s.name for s in config.services}
    for i, rule in enumerate(config.access):
        for service in rule.services:
            if service != "*" and service not in names:
                problems.append(f"access[{i}].services: unknown service {service!r}")
        if not rule.users and not rule.usergroups:
            problems.append(f"access[{i}]: a rule needs users or usergroups")
    from bot.gonogo import gate_specs

    problems += gate_specs.config_problems(config)
    return problems


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmdcenter", description="Slack chat-ops bot for incidents and releases"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run in HTTP mode (Slack sends requests to /slack/events)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.set_defaults(func=cmd_serve)

    socket = sub.add_parser(
        "socket",
        help="run in Socket Mode (needs SLACK_APP_TOKEN; no public URL); /healthz, /metrics, "
        "/hooks/deploy and /api/prodstatus on --host/--port",
    )
    socket.add_argument("--host", default="127.0.0.1")
    socket.add_argument("--port", type=int, default=3000)
    socket.set_defaults(func=cmd_socket)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)

    check = sub.add_parser("check-config", help="validate the YAML config and the settings")
    check.add_argument("--config", type=Path, default=None, help="config file to check")
    check.add_argument("--config-only", action="store_true", help="skip the Slack token checks")
    check.set_defaults(func=cmd_check_config)

    add_demo_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
