"""The ui/ package has no import circle: every module imports on its own in a fresh interpreter (in
alphabetical order, so no module relies on another having been imported first), and the graph of
its imports of its own modules (at any depth of a module, type-only ones too) has no cycle. No panel
imports the main window: panels get the app context."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mfv_desktop

UI = Path(mfv_desktop.__file__).parent / "ui"


def ui_modules() -> dict[str, Path]:
    out = {}
    for path in sorted(UI.rglob("*.py")):
        parts = path.relative_to(UI.parent.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The ui modules a file imports (a `from package import module` counts as the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state:
                cycle = visit(m)
                if cycle:
                    return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            if cycle:
                return cycle
    return None


def test_the_ui_import_graph_has_no_cycle():
    modules = ui_modules()
    graph = {name: imports_of(path, set(modules)) - {name} for name, path in modules.items()}
    assert len(graph) > 20 and graph["mfv_desktop.ui.shell.main_window"]  # the parse found the modules
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_panel_imports_the_main_window():
    modules = ui_modules()
    users = sorted(
        name for name, path in modules.items() if "mfv_desktop.ui.shell.main_window" in imports_of(path, set(modules))
    )
    assert users == ["mfv_desktop.ui", "mfv_desktop.ui.app"]  # the package's lazy name and the entry point


def test_every_ui_module_imports_alone_in_a_fresh_interpreter():
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for m in [m for m in sys.modules if m.startswith('mfv_desktop')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
    )
    names = sorted(ui_modules())
    r = subprocess.run(
        [sys.executable, "-c", code, *names],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
