"""Tests for slim's test-only compiled modules: which private extension modules go with the test
suites that use them, and every reason one stays."""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import pytest

from pants_powertools.sandbox import slim


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self) -> bytes:
        return self.data


SIMD = "lib/core/_simd.cpython-311-x86_64-linux-gnu.so"


def layer(**extra: str) -> Dict[str, str]:
    """A numpy-like distribution: a private compiled module that only its tests import."""
    files = {
        "lib/__init__.py": "from .core import api\n",
        "lib/core/__init__.py": "",
        "lib/core/api.py": "def f():\n    return 1\n",
        "lib/core/_umath.cpython-311-x86_64-linux-gnu.so": "\x7fELF lib.core._umath",
        SIMD: "\x7fELF lib.core._simd",
        "lib/core/tests/__init__.py": "",
        "lib/core/tests/test_simd.py": "from lib.core._simd import targets\n",
    }
    files.update(extra)
    return files


def run(
    files: Mapping[str, str], owned: Optional[Mapping[str, str]] = None
) -> Tuple[Dict[str, str], Dict[str, Dict[str, int]]]:
    """slim over `files`, all owned by a distribution unless `owned` says otherwise."""
    items = {path: _Bytes(text.encode()) for path, text in files.items()}
    paths, _ = slim.slim_paths(items, set(owned if owned is not None else files), set())
    return paths, slim.slim_summary(items, paths)


def test_a_private_extension_only_a_left_out_test_suite_imports_is_test_code() -> None:
    files = layer()
    paths, summary = run(files)
    assert paths[SIMD] == "tests"
    assert "lib/core/_umath.cpython-311-x86_64-linux-gnu.so" not in paths  # No test imports it.
    tests = ["lib/core/tests/__init__.py", "lib/core/tests/test_simd.py", SIMD]
    assert summary["tests"] == {"files": 3, "bytes": sum(len(files[p]) for p in tests)}


LAZY_IMPORT = "import importlib\nm = importlib.import_module('._simd', 'lib.core')\n"


@pytest.mark.parametrize(
    "extra",
    [
        # Imported by a module that stays: relative, absolute, through `import ... as`.
        {"lib/core/umath_shim.py": "from ._simd import *\n"},
        {"lib/util.py": "def g():\n    from lib.core import _simd\n    return _simd\n"},
        {"lib/util.py": "import lib.core._simd as simd\n"},
        # Named in a string, which importlib (or numpy's add_newdoc) imports.
        {"lib/core/_docs.py": "add_newdoc('lib.core._simd', 'targets', 'doc')\n"},
        {"lib/core/lazy.py": LAZY_IMPORT},
        {"lib/core/lazy.py": "SUBMODULES = ['api', '_simd']\n"},
        {"lib/hooks.py": "hiddenimports = ['lib.core._simd.targets']\n"},
        # A compiled module that imports it from C, by its dotted name.
        {"lib/core/_umath.cpython-311-x86_64-linux-gnu.so": "\x7fELF lib.core._simd"},
        # A `.pth` file runs its import lines at start-up.
        {"lib-init.pth": "import lib.core._simd\n"},
        # Source that does not tokenize: kept rather than guessed.
        {"lib/core/broken.py": "x = '''_simd\n"},
        # First-party or unowned code is scanned too.
        {"app.py": "from lib.core._simd import targets\n"},
    ],
)
def test_a_private_extension_stays_when_kept_code_can_load_it(extra: Dict[str, str]) -> None:
    paths, _ = run(layer(**extra))
    assert SIMD not in paths
    assert paths["lib/core/tests/test_simd.py"] == "tests"


def test_prose_that_mentions_the_module_does_not_keep_it() -> None:
    # numpy/distutils/command/build.py: "the '_simd' module is a very large." in a docstring.
    extra = {
        "lib/build.py": '"""\nthe \'_simd\' module is very large\n"""\n# lib.core._simd too\n',
        "lib/README.txt": "import lib.core._simd",  # Not code.
    }
    paths, _ = run(layer(**extra))
    assert paths[SIMD] == "tests"


def test_a_test_suite_that_stays_keeps_the_modules_it_imports() -> None:
    # lib/core/tests is imported by lib/core/api.py, so it ships, and so does what it imports.
    paths, _ = run(layer(**{"lib/core/api.py": "from .tests import test_simd\n"}))
    assert "lib/core/tests/test_simd.py" not in paths
    assert SIMD not in paths


@pytest.mark.parametrize(
    "path",
    [
        "lib/core/simd.cpython-311-x86_64-linux-gnu.so",  # Public: user code may import it.
        "lib/core-data/_simd.so",  # Not in an importable package path.
        "lib/core/_simd.dat",  # Not a compiled module.
        "_simd.so",  # A top-level module: no package to tie it to a test suite.
    ],
)
def test_only_private_compiled_modules_of_a_package_are_candidates(path: str) -> None:
    module = path.rsplit(".so", 1)[0].split(".")[0].replace("/", ".")
    files = layer(**{"lib/core/tests/test_other.py": f"import {module}\n", path: "\x7fELF"})
    del files[SIMD]
    paths, _ = run(files)
    assert path not in paths


def test_what_no_distribution_owns_is_never_a_candidate() -> None:
    files = layer()
    owned = {p: "" for p in files if p != SIMD}
    paths, _ = run(files, owned)
    assert SIMD not in paths
    assert paths["lib/core/tests/test_simd.py"] == "tests"


def test_what_a_staying_candidate_imports_stays_too() -> None:
    # _api_tests is also used by kept code, and its C code imports lib.core._simd.
    extra = {
        "lib/core/_api_tests.so": "\x7fELF lib.core._simd",
        "lib/core/tests/test_api.py": "from lib.core import _api_tests\n",
        "lib/core/api.py": "def f():\n    from . import _api_tests\n",
    }
    paths, _ = run(layer(**extra))
    assert "lib/core/_api_tests.so" not in paths
    assert SIMD not in paths
    # Without the kept importer, both go.
    extra["lib/core/api.py"] = ""
    paths, _ = run(layer(**extra))
    assert paths["lib/core/_api_tests.so"] == paths[SIMD] == "tests"
