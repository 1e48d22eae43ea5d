"""The ``cmdcenter demo`` sub-command: its arguments, and the launch (imported only when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8000
DEFAULT_DATA_DIR = Path(".cmdcenter-demo")

__all__ = ["add_demo_parser", "run_demo"]


def add_demo_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-command to ``parser.add_subparsers()``."""
    demo: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the bot in a local sandbox Slack workspace with a web console (no credentials needed)",
        description="Start the bot, a local Slack workspace emulator, stand-ins for PagerDuty, "
        "Statuspage, Argo CD, health endpoints and Prometheus, and a web console, all on 127.0.0.1.",
    )
    demo.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"console port (default {DEFAULT_PORT}; with --headless a free port)",
    )
    demo.add_argument(
        "--scenario",
        default=None,
        metavar="NAME",
        help="replay a scripted incident: a bundled scenario (checkout-502) or a YAML file",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="with --scenario: no console; run the scenario, print a summary and exit",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where the demo keeps its database and config (default {DEFAULT_DATA_DIR}/)",
    )
    demo.add_argument(
        "--socket",
        action="store_true",
        help="connect the bot to the sandbox workspace over Socket Mode (as `cmdcenter socket`) "
        "instead of HTTP",
    )
    demo.add_argument(
        "--step-delay",
        type=float,
        default=2.5,
        metavar="SECONDS",
        help="pause between scenario steps in the console (default 2.5)",
    )
    demo.set_defaults(func=run_demo)
    return demo


def run_demo(args: argparse.Namespace) -> int:
    """Run ``cmdcenter demo`` with parsed arguments; returns the exit code."""
    from bot.demo.launch import launch

    return launch(
        port=args.port,
        scenario=args.scenario,
        headless=bool(args.headless),
        data_dir=Path(args.data_dir),
        step_delay=float(getattr(args, "step_delay", 2.5)),
        socket_mode=bool(getattr(args, "socket", False)),
    )
