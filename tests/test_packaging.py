"""The wheel's contents, as ``pyproject.toml`` declares them: every package and every file the bot
reads at run time (templates, migrations, demo files, fake CLIs) must be in it. `.ci/run` proves it
the long way (it builds the wheel and runs the demo from it); these catch a missing entry at once."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def package_dir(package: str) -> Path:
    mapped = SETUPTOOLS.get("package-dir", {}).get(package)
    return ROOT / mapped if mapped else ROOT.joinpath(*package.split("."))


def source_files() -> set[Path]:
    found = set()
    for top in ("bot", "commands", "templates"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path)
    return found


def test_every_package_of_the_tree_is_listed() -> None:
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("bot", "commands")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert sorted(in_tree - set(SETUPTOOLS["packages"])) == []
    assert sorted(set(SETUPTOOLS["packages"]) - in_tree) == ["bot.templates"]


def test_the_templates_ship_inside_the_bot_package() -> None:
    assert SETUPTOOLS["package-dir"]["bot.templates"] == "templates"
    assert "bot.templates" in SETUPTOOLS["packages"]


def test_every_file_of_the_tree_goes_into_the_wheel() -> None:
    shipped = set()
    for package in SETUPTOOLS["packages"]:
        directory = package_dir(package)
        shipped |= {p for p in directory.glob("*.py")}
        for pattern in SETUPTOOLS.get("package-data", {}).get(package, []):
            shipped |= {directory / name for name in glob.glob(pattern, root_dir=directory, recursive=True)}
    left_out = sorted(str(p.relative_to(ROOT)) for p in source_files() - {p for p in shipped if p.is_file()})
    assert left_out == []
