"""Slim: what third-party distributions ship that never runs on Lambda (test suites, stubs,
C sources, docs), found for `lambda_zip.py` in the same sandbox.

Stdlib only, CPython 3.9 syntax: it runs under the Lambda runtime's CPython beside its sibling.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Collection, Dict, Iterable, List, Mapping, Protocol, Set, Tuple


class Item(Protocol):
    """A file of the ZIP being written: its size, and its bytes on demand."""

    size: int

    def read(self) -> bytes:
        ...


# Report keys, in this order; every one is present when slim is on, so readers need no guessing.
# "symbols" counts the native files whose symbol tables `lambda_zip` stripped (`elf_strip`), and
# the bytes that took off them; the others count files left out, and their sizes.
SLIM_CATEGORIES: Tuple[str, ...] = ("tests", "stubs", "sources", "docs", "symbols")
# C, C++ and Cython sources and headers: what a wheel needed to be built, never what it runs.
_NATIVE_SOURCE_SUFFIXES = (
    ".c",
    ".h",
    ".cpp",
    ".hpp",
    ".cc",
    ".cxx",
    ".hh",
    ".hxx",
    ".pyx",
    ".pxd",
    ".pxi",
)
_DOC_SUFFIXES = (".md", ".rst")
# Static libraries (numpy's libnpymath.a) link other extensions at build time; nothing loads them.
_STATIC_LIBRARY_SUFFIX = ".a"
_AR_MAGIC = b"!<arch>\n"
_DOC_DIRS = frozenset({"docs", "doc"})
# A `test` directory is a test suite only if it holds pytest-style modules; `tests` always is.
_TEST_MODULE = re.compile(r"(test_\w*|\w+_test|conftest)\.py")
# Licences and notices travel with redistributed code, whatever their suffix or directory.
_LEGAL_NAME = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|COPYRIGHT|AUTHORS)", re.IGNORECASE)
# `from .x import a, b` / `from pkg.x import (a, b)`: (dots, module, names).
_FROM_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import[ \t]+" r"(\([^)]*\)|(?:\\\n|[^\n#;])*)",
    re.MULTILINE,
)
_COMMENT = re.compile(r"#[^\n]*")
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
# A string that is a module path through a droppable directory (`import_module("pkg.tests")`);
# prose that mentions one in a docstring is no import.
_DOTTED_DROPPABLE = re.compile(r"[\"']((?:[A-Za-z_]\w*\.)+(?:tests|test|docs|doc))(?:\.\w+)*[\"']")


def _module_package(path: str) -> List[str]:
    """The package a module's relative imports start from: `a/b/c.py` and `a/b/__init__.py`
    are both in `a.b`."""
    return path.split("/")[:-1]


def _referenced_modules(path: str, text: str) -> Set[str]:
    """Dotted names `path` imports or names: every module a test or docs dir could be."""
    found: Set[str] = set()
    package = _module_package(path)
    for dots, module, names in _FROM_IMPORT.findall(text):
        if dots:
            up = len(dots) - 1
            if up > len(package):
                continue
            base = package[: len(package) - up]
            target = ".".join(base + ([module] if module else []))
        else:
            target = module
        if not target:
            continue
        found.add(target)
        for name in _COMMENT.sub("", names).strip("()").replace("\\", " ").split(","):
            words = name.split()
            if words and words[0].isidentifier():
                found.add(f"{target}.{words[0]}")
    for clause in _IMPORT.findall(text):
        for name in clause.split(","):
            words = name.split()
            if words:
                found.add(words[0])
    found.update(_DOTTED_DROPPABLE.findall(text))
    return found


def _string_values(text: str) -> Set[str]:
    """The values of the plain string literals in `text` (not f-strings); raises
    `tokenize.TokenError` or `SyntaxError` on text that does not tokenize."""
    values: Set[str] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type != tokenize.STRING:
            continue
        try:
            value = ast.literal_eval(token.string)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, str):
            values.add(value)
    return values


def _names_module(module: str, text: str, path: str) -> bool:
    """Whether Python source `text` (at `path`) imports `module` or names it in a string
    (`"pkg._mod"`, `"._mod"`, `"_mod"`, `"pkg._mod.attr"`): what `importlib` could load it by."""
    bare = module.rpartition(".")[2]
    if bare not in text:
        return False
    if module in _referenced_modules(path, text):
        return True
    try:
        values = _string_values(text)
    except (tokenize.TokenError, SyntaxError, ValueError):
        return True  # Not Python 3 we can read: assume the worst.
    return any(
        value in (module, bare, "." + bare) or value.startswith(module + ".") for value in values
    )


# `_name.cpython-311-x86_64-linux-gnu.so`, `_name.abi3.so`, `_name.so`, `_name.cp311-win_amd64.pyd`
_EXTENSION_SUFFIXES = (".so", ".pyd")


def test_only_extensions(
    files: Mapping[str, Item], candidates: Collection[str], dropped: Mapping[str, str]
) -> List[str]:
    """Compiled modules among `candidates` that only the test code slim leaves out uses.

    A test suite often needs a compiled helper that the package itself never loads (numpy's
    `core/_simd` and `core/_rational_tests`: 0.6 MB zipped). Such a module cannot sit in a
    `tests` directory, since it is imported by its package path. One goes only with all of:
    - it is private (`_name`), so no user code is meant to import it, in a package path;
    - a left-out test module (`dropped`: {path: category}, category "tests") imports it;
    - no kept Python module (or `.pth` file) imports it or names it in a string, as
      `importlib` or numpy's `add_newdoc("numpy.core._multiarray_tests", ...)` would load it;
    - no kept compiled file holds its dotted name (what C code passes to `PyImport_Import`).
    """
    modules: Dict[str, str] = {}  # Dotted name -> path.
    for path in sorted(candidates):
        parts = path.split("/")
        stem = parts[-1].split(".", 1)[0]
        if (
            parts[-1].endswith(_EXTENSION_SUFFIXES)
            and len(parts) > 1
            and stem.startswith("_")
            and stem.isidentifier()
            and all(part.isidentifier() for part in parts[:-1])
        ):
            modules[".".join(parts[:-1] + [stem])] = path
    if not modules:
        return []

    def text(path: str) -> str:
        return files[path].read().decode("utf-8", "replace")

    used_by_tests: Set[str] = set()
    for path in sorted(p for p, c in dropped.items() if c == "tests" and p.endswith(".py")):
        used_by_tests.update(_referenced_modules(path, text(path)) & set(modules))
    wanted = sorted(used_by_tests)
    # Everything that stays is scanned; a candidate found to stay is scanned in the next round,
    # as what it imports must stay too.
    scanned: Set[str] = set()
    while wanted:
        going = {modules[m] for m in wanted}
        before = len(wanted)
        for path in sorted(files):
            if path in dropped or path in going or path in scanned:
                continue
            scanned.add(path)
            if path.endswith((".py", ".pth")):
                source = text(path)
                wanted = [m for m in wanted if not _names_module(m, source, path)]
            elif ".so" in path or path.endswith(".pyd"):  # Also versioned libraries: `libx.so.1`.
                data = files[path].read()
                wanted = [m for m in wanted if m.encode("ascii") not in data]
        if len(wanted) == before:
            break
    return [modules[m] for m in wanted]


def _prefixes(dotted: str) -> Iterable[str]:
    parts = dotted.split(".")
    return (".".join(parts[: i + 1]) for i in range(len(parts)))


def slim_paths(
    files: Mapping[str, Item], owned_by_distributions: Collection[str], protected: Collection[str]
) -> Tuple[Dict[str, str], List[str]]:
    """{path: category} of the distributions' files that slim leaves out, and the test or docs
    directories kept because code outside them imports them.

    Only files a distribution's RECORD claims are candidates, never its `*.dist-info`
    (importlib.metadata reads it) nor a `protected` (first-party) path. A `tests`/`test`/`docs`/
    `doc` directory goes whole, unless a module outside it imports it (numpy's `numpy.testing`
    is public API and never matches; a `pkg/tests` that `pkg/core.py` imports stays). Compiled
    modules that only those test suites use go too (`test_only_extensions`).
    """
    owned = {p for p in owned_by_distributions if p in files}
    owned = {
        p
        for p in owned
        if p not in protected and not any(c.endswith(".dist-info") for c in p.split("/"))
    }
    # `test` dirs that hold a pytest-style module somewhere below.
    test_suites: Set[str] = set()
    for path in owned:
        parts = path.split("/")
        if _TEST_MODULE.fullmatch(parts[-1]):
            test_suites.update(
                "/".join(parts[: i + 1]) for i, c in enumerate(parts[:-1]) if c == "test"
            )
    dirs: Dict[str, str] = {}  # Outermost droppable directory -> category.
    for path in owned:
        parts = path.split("/")
        for i, component in enumerate(parts[:-1]):
            directory = "/".join(parts[: i + 1])
            if component.endswith("-stubs"):
                dirs.setdefault(directory, "stubs")
            elif component == "tests" or directory in test_suites:
                dirs.setdefault(directory, "tests")
            elif component in _DOC_DIRS:
                dirs.setdefault(directory, "docs")
            else:
                continue
            break

    # Keep a test or docs dir that code outside every dropped dir imports; repeat, as a kept
    # dir's modules now count as importers too.
    importable = {
        d.replace("/", "."): d
        for d, category in dirs.items()
        if category != "stubs" and all(c.isidentifier() for c in d.split("/"))
    }
    dropped = set(importable)
    scanned: Set[str] = set()
    kept: List[str] = []

    def inside_dropped(path: str) -> bool:
        parts = path.split("/")
        return any(".".join(parts[:i]) in dropped for i in range(1, len(parts)))

    while dropped:
        newly_kept: Set[str] = set()
        for path in sorted(files):
            if not path.endswith(".py") or path in scanned or inside_dropped(path):
                continue
            scanned.add(path)
            text = files[path].read().decode("utf-8", "replace")
            for name in _referenced_modules(path, text):
                newly_kept.update(p for p in _prefixes(name) if p in dropped)
        if not newly_kept:
            break
        dropped -= newly_kept
        kept.extend(importable[name] for name in sorted(newly_kept))
    for name in importable:
        if name not in dropped:
            del dirs[importable[name]]

    slimmed: Dict[str, str] = {}
    for path in owned:
        parts = path.split("/")
        if _LEGAL_NAME.match(parts[-1]):
            continue
        ancestors = ("/".join(parts[: i + 1]) for i in range(len(parts) - 1))
        category = next((dirs[d] for d in ancestors if d in dirs), None)
        if category is None:
            if parts[-1] == "conftest.py":  # pytest's; nothing else imports it.
                category = "tests"
            elif parts[-1].endswith(".pyi"):
                category = "stubs"
            elif parts[-1].endswith(_NATIVE_SOURCE_SUFFIXES):
                category = "sources"
            elif parts[-1].endswith(_STATIC_LIBRARY_SUFFIX) and files[path].read()[:8] == _AR_MAGIC:
                category = "sources"
            elif parts[-1].endswith(_DOC_SUFFIXES):
                category = "docs"
            else:
                continue
        slimmed[path] = category
    for path in test_only_extensions(files, owned - set(slimmed), slimmed):
        slimmed[path] = "tests"
    return slimmed, sorted(kept)


def slim_summary(
    files: Mapping[str, Item], slimmed: Mapping[str, str]
) -> Dict[str, Dict[str, int]]:
    """{category: {"files": N, "bytes": unzipped size}} for every category, zeros included."""
    summary = {category: {"files": 0, "bytes": 0} for category in SLIM_CATEGORIES}
    for path, category in slimmed.items():
        summary[category]["files"] += 1
        summary[category]["bytes"] += files[path].size
    return summary
