"""Scripts that run inside sandboxed Pants processes, under the Lambda runtime's CPython.

They import only the stdlib (and each other, as siblings in the sandbox). Rule code never
imports them: it ships their text into the process with `script_files`.
"""

from __future__ import annotations

import pkgutil
from typing import Tuple

# Each script and the sibling modules it imports.
SCRIPTS = {
    "lambda_zip.py": (
        "lambda_zip.py",
        "bytecode.py",
        "elf_strip.py",
        "native_code.py",
        "slim.py",
    ),
    "layer_build.py": (
        "layer_build.py",
        "lambda_zip.py",
        "bytecode.py",
        "elf_strip.py",
        "native_code.py",
        "slim.py",
    ),
    "index_lookup.py": ("index_lookup.py",),
    "import_check.py": ("import_check.py",),
}


def script_files(script: str) -> Tuple[Tuple[str, bytes], ...]:
    """(file name, content) of a script and its siblings, to write into a sandbox."""
    files = []
    for name in SCRIPTS[script]:
        data = pkgutil.get_data(__name__, name)
        assert data is not None, f"{name} is missing from the pants_powertools.sandbox package"
        files.append((name, data))
    return tuple(files)
