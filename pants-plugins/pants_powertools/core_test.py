"""The Pants-free core imports nothing from Pants, so it is tested in milliseconds and survives
Pants API changes; the engine layer (rules, targets, options) is the only part that does."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import List

PACKAGE = Path(__file__).parent
# Modules that adapt the core to Pants: targets, options, rules and their test support.
ENGINE = {
    "register.py",
    "subsystem.py",
    "target_types.py",
    "lockfile_rules.py",
    "layer_inference.py",
    "rule_runner_support.py",
}


def _imports(path: Path) -> List[str]:
    names: List[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _core_modules() -> List[Path]:
    return sorted(
        p for p in PACKAGE.glob("*.py") if p.name not in ENGINE and not p.name.endswith("_test.py")
    )


def test_the_core_is_what_we_think_it_is() -> None:
    names = {p.name for p in _core_modules()}
    # A new top-level module is core unless it is listed in ENGINE on purpose.
    assert {"runtimes.py", "complete_platforms.py", "handlers.py", "manifest.py"} <= names
    assert {"distributions.py", "function_plan.py", "layering.py", "limits.py"} <= names


def test_the_core_imports_nothing_from_pants() -> None:
    offenders = {
        p.name: [n for n in _imports(p) if n == "pants" or n.startswith("pants.")]
        for p in _core_modules()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_sandbox_scripts_import_only_the_stdlib_and_their_siblings() -> None:
    stdlib = set(getattr(sys, "stdlib_module_names", ())) or None
    siblings = {p.stem for p in (PACKAGE / "sandbox").glob("*.py")}
    for script in (PACKAGE / "sandbox").glob("*.py"):
        if script.name.endswith("_test.py") or script.name == "__init__.py":
            continue
        for name in _imports(script):
            top = name.split(".")[0]
            if (
                name.startswith("pants_powertools.sandbox")
                or top in siblings
                or top == "__future__"
            ):
                continue
            assert not top.startswith("pants"), f"{script.name} imports {name}"
            if stdlib is not None:  # CPython 3.10+ can say what the stdlib is.
                assert top in stdlib, f"{script.name} imports {name}, which is not stdlib"
