"""The package's module graph: no import cycle, and no Qt or napari under the core.

A cycle hidden by a function-level import still ties two modules together (neither can be
read, tested or moved without the other), so every ``import`` in a module counts, wherever
it stands: at the top, in a function, in a branch.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import napari_mask_compare

PACKAGE = Path(napari_mask_compare.__file__).parent
NAME = PACKAGE.name

#: Modules that napari loads (the plugin's contributions) and may import Qt or napari.
NAPARI_ENTRY_MODULES = ("_widget", "_reader", "_writer", "_sample_data")


def package_modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package by its ``__init__``)."""
    modules = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def imported_modules(name: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its code.

    ``from . import x`` imports module ``x`` when there is one, else the package;
    ``from .x import f`` imports ``x``. Importing a module also runs its packages'
    ``__init__``, which is not counted: Python runs those first, it is no cycle.
    """
    is_package = file.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".")
                package = parts[: len(parts) - node.level + is_package]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def module_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, file, modules) for name, file in modules.items()}


def test_the_cycle_finder_sees_a_cycle_and_a_chain():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports():
    graph = module_graph()
    # a relative import at the top, one in a function, one two levels up in a subpackage
    assert f"{NAME}.errors" in graph[f"{NAME}.store"]
    assert f"{NAME}._tally" in graph[f"{NAME}.pairing"]  # imported in functions (numba)
    assert f"{NAME}._sample_data" in graph[f"{NAME}.cli._review"]  # from .. import _sample_data
    assert f"{NAME}.cli._common" in graph[f"{NAME}.cli"]  # the package's __init__


def test_no_import_cycle_among_the_package_modules():
    found = cycles(module_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def core_modules() -> list[str]:
    """Every module that is neither under ``_qt`` nor one that napari loads (nor a
    ``__main__``, which runs the command line)."""
    return [name for name in package_modules()
            if name != NAME and not name.startswith(f"{NAME}._qt")
            and name.rsplit(".", 1)[-1] not in (*NAPARI_ENTRY_MODULES, "__main__")]


def test_core_modules_load_no_qt_and_no_napari():
    code = ("import importlib, json, sys\n"
            f"for name in {core_modules()!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    loaded = set(json.loads(result.stdout))
    gui = {name for name in loaded
           if name in ("qtpy", "napari") or name.startswith(("PyQt", "PySide"))}
    assert not gui, f"core modules load {sorted(gui)}"
    assert "numpy" in loaded  # the modules were imported
