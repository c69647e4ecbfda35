"""The engine's folder tree is its architecture: each package's __init__ says what it may
import, the code keeps to it, and no two modules import each other (not even lazily)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import engine

ROOT = Path(engine.__file__).parent
TOP_LEVEL_MODULES = {"__init__", "calculator", "fsutil", "net", "threads", "values"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _engine_imports(path: Path) -> set[str]:
    """Every engine module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "engine")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "engine":
            for alias in node.names:  # `from engine.spec import layers` names a module
                named = f"{node.module}.{alias.name}"
                is_module = (ROOT.parent / named.replace(".", "/")).with_suffix(".py").exists()
                found.add(named if is_module else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _engine_imports(p) for p in sorted(ROOT.rglob("*.py"))}


def _unit(module: str) -> str:
    """engine.spec.layers -> engine.spec; engine.net -> engine.net: what a rule is about."""
    return ".".join(module.split(".")[:2])


def _allowed(package: Path) -> set[str]:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    match = re.search(r"May import: (.*?)(?:\n\n|$)", doc or "", re.DOTALL)
    assert match, f"{package.name}/__init__.py must say what it may import ('May import: ...')"
    return {name.strip().rstrip(".") for name in match.group(1).split(",")} - {"nothing"}


def test_the_top_level_holds_only_the_shared_modules():
    loose = {p.stem for p in ROOT.glob("*.py")} - TOP_LEVEL_MODULES
    assert not loose, f"put {sorted(loose)} in the package of its concern"


def test_every_package_keeps_to_what_its_init_says_it_may_import():
    graph = _graph()
    for package in sorted(p for p in ROOT.iterdir() if (p / "__init__.py").exists()):
        name = f"engine.{package.name}"
        allowed = _allowed(package) | {name}
        for module, imports in graph.items():
            if _unit(module) != name:
                continue
            strays = {_unit(i) for i in imports} - allowed - {"engine"}
            assert not strays, f"{module} imports {sorted(strays)}; {name} may import only " \
                               f"{sorted(allowed - {name})}"


def test_no_two_modules_import_each_other_even_lazily():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph or target == module:  # a package naming its own modules
                continue
            assert state.get(target) != 1, "import circle: " + " -> ".join(
                trail[trail.index(target):] + [target])
            if target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
