"""The Pants-free core imports nothing from Pants, so it is tested in milliseconds and survives
Pants API changes; the engine layer (rules, targets, options) is the only part that does."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import List

PACKAGE = Path(__file__).parent
# The top-level modules that adapt the core to Pants: targets, options, the backend's entry
# points and the RuleRunner set-up of the tests. Rules live in the engine packages.
ENGINE = {"register.py", "subsystem.py", "target_types.py", "rule_runner_support.py"}
ENGINE_PACKAGES = ("goals", "util_rules")


def _imports(path: Path) -> List[str]:
    """Absolute module names `path` imports; `from a import b` also counts as `a.b`."""
    names: List[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(folder: Path) -> List[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.endswith("_test.py"))


def _core_modules() -> List[Path]:
    return [p for p in _modules(PACKAGE) if p.name not in ENGINE]


def _engine_modules() -> List[Path]:
    modules = [PACKAGE / name for name in sorted(ENGINE)]
    for package in ENGINE_PACKAGES:
        modules += [p for p in _modules(PACKAGE / package) if p.name != "__init__.py"]
    return modules


def _is_pants(name: str) -> bool:
    return name == "pants" or name.startswith("pants.")


def _is_engine(name: str) -> bool:
    parts = name.split(".")
    return (
        parts[0] == "pants_powertools"
        and len(parts) > 1
        and (parts[1] in ENGINE_PACKAGES or f"{parts[1]}.py" in ENGINE)
    )


def test_the_core_is_what_we_think_it_is() -> None:
    names = {p.name for p in _core_modules()}
    # A new top-level module is core unless it is listed in ENGINE on purpose.
    assert {"runtimes.py", "complete_platforms.py", "handlers.py", "manifest.py"} <= names
    assert {"distributions.py", "function_plan.py", "layering.py", "limits.py"} <= names
    assert {"platform_lockfiles.py", "public_layer.py", "powertools_extras.py"} <= names
    # Rule modules belong in the engine packages, as in Pants' own backends.
    assert {p.name for p in _modules(PACKAGE / "goals")} >= {"package.py", "lockfile.py"}
    assert {p.name for p in _modules(PACKAGE / "util_rules")} >= {
        "platform_lock.py",
        "layer_inference.py",
    }


def test_the_core_imports_nothing_from_pants_nor_from_the_engine() -> None:
    offenders = {
        p.name: [n for n in _imports(p) if _is_pants(n) or _is_engine(n)] for p in _core_modules()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_every_engine_module_needs_pants() -> None:
    """What imports nothing from Pants is core, and belongs at the top level with its tests."""
    pants_free = [
        str(p.relative_to(PACKAGE))
        for p in _engine_modules()
        if not any(_is_pants(n) for n in _imports(p))
    ]
    assert pants_free == []


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
