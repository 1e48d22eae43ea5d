"""The house rules of the code base, as tests (the import rules are import-linter contracts in
``pyproject.toml``, checked by ``scripts/test``):

* no module over 450 lines and no function over 60 lines in ``bot/`` and ``commands/`` (the sandbox,
  the demo's stand-ins and the migrations aside: test doubles and generated code);
* nobody kicks the outbox by hand: a unit of work that records an effect wakes the worker itself;
* an outbox op or job kind is a constant, written once, in the module that registers its handler;
* no untyped bag of dependencies.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
EXEMPT = ("bot/sandbox/", "bot/db/migrations/")


def _modules() -> Iterator[tuple[str, ast.Module, str]]:
    for folder in ("bot", "commands"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if not name.startswith(EXEMPT):
                text = path.read_text(encoding="utf-8")
                yield name, ast.parse(text), text


def test_no_module_is_over_450_lines() -> None:
    long = {name: len(text.splitlines()) for name, _, text in _modules()}
    assert {n: lines for n, lines in long.items() if lines > MAX_MODULE_LINES} == {}


def test_no_function_is_over_60_lines() -> None:
    found = {}
    for name, tree, _ in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{name}:{node.name}"] = lines
    assert found == {}


def _calls(tree: ast.Module) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _method(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ""


def test_nobody_kicks_the_outbox_by_hand() -> None:
    kicks = [
        name
        for name, tree, _ in _modules()
        if not name.startswith("bot/db/")
        for call in _calls(tree)
        if _method(call) == "kick"
    ]
    assert kicks == []


_RECORDERS = frozenset({"enqueue", "outbox_row", "schedule"})
_REGISTER = frozenset({"register", "register_batch"})


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _registers_with_outbox_or_jobs(call: ast.Call) -> bool:
    func = call.func
    return (
        _callee(call) in _REGISTER
        and isinstance(func, ast.Attribute)
        and ast.unparse(func.value).endswith(("outbox", "jobs"))
        and len(call.args) >= 2
    )


def _home(node: ast.expr, imports: dict[str, str]) -> str:
    """Where a name comes from: ``mod.NAME`` is mod's, a bare name is this module's unless imported,
    ``partial(f, ...)`` is f's, ``self.x`` is this module's."""
    if (
        isinstance(node, ast.Call)
        and node.args
        and ast.unparse(node.func) in ("partial", "functools.partial")
    ):
        return _home(node.args[0], imports)
    if isinstance(node, ast.Attribute):
        base = ast.unparse(node.value)
        return "" if base == "self" else imports.get(base, base)
    if isinstance(node, ast.Name):
        return imports.get(node.id, "")
    return f"<{ast.unparse(node)}>"


def _imports(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                found[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found[alias.asname or alias.name] = alias.name
    return found


def test_op_names_are_constants_written_once_beside_their_handler() -> None:
    """``enqueue(op=...)``, ``outbox_row(op=...)``, ``schedule(kind=...)``, ``outbox.register(op, ...)``
    and ``jobs.register(kind, ...)`` name their op with a constant, never a string literal; and the
    op a handler is registered for comes from the same module as the handler."""
    literal: list[str] = []
    apart: list[str] = []
    for name, tree, _ in _modules():
        imports = _imports(tree)
        for call in _calls(tree):
            values = [
                k.value for k in call.keywords if k.arg in ("op", "kind") and _callee(call) in _RECORDERS
            ]
            if _registers_with_outbox_or_jobs(call):
                op, handler = call.args[0], call.args[1]
                values.append(op)
                if _home(op, imports) != _home(handler, imports):
                    apart.append(f"{name}:{call.lineno}: {ast.unparse(op)} / {ast.unparse(handler)}")
            literal += [f"{name}:{call.lineno}" for v in values if isinstance(v, ast.Constant)]
    assert literal == []
    assert apart == []


def test_wiring_functions_are_short() -> None:
    """An area's ``wire``/``register`` only connects handlers (module-level functions) to the outbox,
    the jobs and the hooks: no handler bodies inside it."""
    long = {}
    for name, tree, _ in _modules():
        if name.startswith("bot/"):
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name in ("wire", "register"):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > 20:
                        long[f"{name}:{node.name}"] = lines
    assert long == {}


def test_no_untyped_bag_of_dependencies() -> None:
    assert [name for name, _, text in _modules() if ".extras" in text] == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.Module) -> set[str]:
    """Every module an import names, function-local ones included (``from pkg import x`` names both
    ``pkg``, whose ``__init__`` runs first, and ``pkg.x``); ``TYPE_CHECKING`` blocks never run."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def test_no_import_cycle_between_modules_nor_through_a_package() -> None:
    """No module reaches itself through imports, counting a package's ``__init__`` (which runs when
    any of its modules is imported): areas wire themselves in ``wiring.py``, not in ``__init__``."""
    graph: dict[str, set[str]] = {}
    for folder in ("bot", "commands"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                graph[_module_name(path)] = _imported(ast.parse(path.read_text(encoding="utf-8")))
    graph = {name: {m for m in deps if m in graph and m != name} for name, deps in graph.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = sorted(f"{a} -> {b}" for a, deps in graph.items() for b in deps if reaches(b, a))
    assert cycles == []
