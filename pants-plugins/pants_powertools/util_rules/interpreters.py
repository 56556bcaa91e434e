"""The CPythons the plugin's processes run on, reached by a path no cache key can see.

A process key holds its argv and env. An absolute interpreter path (Pants' own interpreter lives
in the launcher's venv under the user's HOME; pyenv's under PYENV_ROOT) would make every key
specific to one machine's layout, and a remote cache filled by CI useless to a laptop. So each
interpreter is linked into an append-only named cache under a name that says only what matters
for the output: the zlib that deflates, and for bytecode the exact CPython version whose magic
number and compiler the `.pyc` carry. Processes run `__interpreters/<name>`, relative to their
sandbox; the link itself is made by a cheap process that is never cached across runs.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from pants.core.subsystems.python_bootstrap import PythonBootstrap
from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from pants_powertools.runtimes import get_runtime

NAMED_CACHE = "pants_powertools_interpreters"
SANDBOX_DIR = "__interpreters"

# Prints what identifies the interpreter's output: implementation, version, zlib.
_IDENTIFY = (
    "import platform, sys, zlib; "
    "print(platform.python_implementation(), platform.python_version(), zlib.ZLIB_RUNTIME_VERSION)"
)


class RuntimeInterpreterNotFound(Exception):
    """No CPython of a runtime's minor version on the building machine."""


@dataclass(frozen=True)
class LinkedPython:
    """An interpreter as processes see it: a sandbox-relative path and the cache that holds it."""

    name: str  # The link's name, e.g. `cpython-3.12.1-zlib-1.2.13`.
    version: str  # The exact CPython version.

    @property
    def argv0(self) -> str:
        return f"{SANDBOX_DIR}/{self.name}"

    @property
    def append_only_caches(self) -> FrozenDict[str, str]:
        return FrozenDict({NAMED_CACHE: SANDBOX_DIR})

    def process(
        self,
        args: Tuple[str, ...],
        *,
        description: str,
        env: Optional[Dict[str, str]] = None,
        **kwargs: object,
    ) -> Process:
        """A Process that runs this interpreter; nothing host-specific in its key."""
        return Process(
            argv=(self.argv0, *args),
            description=description,
            env=env or {},
            append_only_caches=self.append_only_caches,
            **kwargs,  # type: ignore[arg-type]
        )


def link_name(version: str, zlib_version: str) -> str:
    return f"cpython-{version}-zlib-{zlib_version}"


async def _link(path: str, name: str) -> None:
    """(Re)point `__interpreters/<name>` at `path`, atomically, once per run of Pants."""
    await Get(
        ProcessResult,
        Process(
            argv=(
                path,
                "-S",
                "-c",
                "import os, sys; d, n, t = sys.argv[1:]; os.makedirs(d, exist_ok=True); "
                "tmp = os.path.join(d, '.' + n + '.' + str(os.getpid())); os.symlink(t, tmp); "
                "os.replace(tmp, os.path.join(d, n))",
                SANDBOX_DIR,
                name,
                path,
            ),
            description=f"Link {name} for sandboxed processes",
            append_only_caches=FrozenDict({NAMED_CACHE: SANDBOX_DIR}),
            cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
            level=LogLevel.TRACE,
        ),
    )


@dataclass(frozen=True)
class ScriptPythonRequest:
    """Any CPython that can run the plugin's stdlib-only scripts and the pex CLI."""


@rule(desc="Link the Python that runs sandboxed scripts", level=LogLevel.DEBUG)
async def script_python(
    _: ScriptPythonRequest, bootstrap: PythonBuildStandaloneBinary
) -> LinkedPython:
    python = script_python_unlinked()
    await _link(bootstrap.path, python.name)
    return python


def script_python_unlinked() -> LinkedPython:
    """What `script_python` links, known without a process: in a local environment it is the
    interpreter Pants runs on, so this process knows its version and zlib."""
    version = "{}.{}.{}".format(*sys.version_info[:3])
    return LinkedPython(link_name(version, zlib.ZLIB_RUNTIME_VERSION), version)


@dataclass(frozen=True)
class RuntimeInterpreterRequest:
    runtime: str  # A Lambda runtime name, e.g. `python3.12`.


@dataclass(frozen=True)
class RuntimeInterpreter:
    """The CPython of a runtime's minor version, or why there is none here."""

    python: Optional[LinkedPython]
    searched: Tuple[str, ...]  # The search path, for messages.


# Finds the first `python3.X` on the search path that is a CPython 3.X, links it into the named
# cache and prints its version and zlib: the whole lookup in one process, where Pants'
# `BinaryPaths` takes four in a row (find bash, test it, search, test each candidate).
_FIND_AND_LINK = r"""
import os, subprocess, sys
cache, minor, identify = sys.argv[1:4]
for directory in sys.argv[4:]:
    path = os.path.join(directory, "python" + minor)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        continue
    try:
        out = subprocess.run(
            [path, "-S", "-c", identify], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            universal_newlines=True, timeout=60,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        continue
    if len(out) != 3 or out[0] != "CPython" or out[1].rsplit(".", 1)[0] != minor:
        continue
    name = "cpython-%s-zlib-%s" % (out[1], out[2])
    os.makedirs(cache, exist_ok=True)
    tmp = os.path.join(cache, "." + name + "." + str(os.getpid()))
    os.symlink(path, tmp)
    os.replace(tmp, os.path.join(cache, name))
    print(out[1], out[2])
    break
"""


@rule(desc="Find the CPython of a Lambda runtime", level=LogLevel.DEBUG)
async def find_runtime_interpreter(
    request: RuntimeInterpreterRequest,
    python_bootstrap: PythonBootstrap,
    bootstrap: PythonBuildStandaloneBinary,
) -> RuntimeInterpreter:
    minor = get_runtime(request.runtime).python_version_str
    searched = tuple(python_bootstrap.interpreter_search_paths)
    result = await Get(
        ProcessResult,
        Process(
            argv=(bootstrap.path, "-S", "-c", _FIND_AND_LINK, SANDBOX_DIR, minor, _IDENTIFY)
            + searched,
            description=f"Find and link a CPython {minor}",
            append_only_caches=FrozenDict({NAMED_CACHE: SANDBOX_DIR}),
            # It reads the machine, not its inputs: never reused across runs of Pants.
            cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
            level=LogLevel.DEBUG,
        ),
    )
    fields = result.stdout.decode().split()
    if len(fields) != 2:
        return RuntimeInterpreter(None, searched)
    version, zlib_version = fields
    return RuntimeInterpreter(LinkedPython(link_name(version, zlib_version), version), searched)


def rules():
    return collect_rules()
