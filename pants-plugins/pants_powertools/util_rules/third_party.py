"""Third-party trees: the locked wheels for one (requirements, runtime, architecture), installed.

One `pex3 venv create --layout flat` from the platform lock, shared by every target that needs
the same set (functions with the same requirements ask for the same tree), and a code edit never
re-runs it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.pex_cli import PexCliProcess, PexPEX
from pants.backend.python.util_rules.pex_environment import PexEnvironment
from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    Directory,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from pants_powertools import distributions
from pants_powertools.complete_platforms import complete_platform_filename
from pants_powertools.util_rules.interpreters import (
    LinkedPython,
    ScriptPythonRequest,
    script_python_unlinked,
)
from pants_powertools.util_rules.platform_lock import (
    COMPLETE_PLATFORMS_DIR,
    LOCK_FILE,
    PlatformLock,
    PlatformLockRequest,
    complete_platform_files,
)

DEPS_DIR = "deps"
# The pex CLI installed as a venv, per pex CLI and interpreter, in a named cache: started from a
# venv, `pex3 venv create` spends ~0.4 s of CPU where the zipapp spends ~0.7 s unpacking itself.
PEX_CLI_VENVS_CACHE = "pants_powertools_pex_cli"
_PEX_CLI_VENVS_DIR = "__pex_cli"
# Creates the venv once (atomically: concurrent runs of Pants may race); recreates one whose
# interpreter is gone. Its scripts are run through its `bin/python`, never their shebangs.
_MAKE_PEX_CLI_VENV = r"""
import os, shutil, subprocess, sys
cache, key, pex = sys.argv[1:4]
dest = os.path.join(cache, key)
ready = os.path.join(dest, "bin", "pex3")
if not (os.path.isfile(ready) and os.path.exists(os.path.join(dest, "bin", "python"))):
    shutil.rmtree(dest, ignore_errors=True)
    tmp = "%s.%d.tmp" % (dest, os.getpid())
    env = dict(os.environ, PEX_TOOLS="1")
    subprocess.run(
        [os.path.realpath(sys.executable), pex, "venv", tmp],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )
    try:
        os.rename(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
"""
# Not a path of any machine: the same in every key. pex needs no PATH lookups for a locked,
# wheels-only install for a complete platform.
_PORTABLE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class ThirdPartyTreeRequest:
    python_resolve: str
    requirements: Tuple[str, ...]
    runtime: str
    architecture: str
    # A target's own complete platform (file name, JSON) instead of the derived one.
    custom_platform: Optional[Tuple[str, str]] = None
    # Never installed, with what only they need (pex `--exclude`): a layer leaves out what the
    # runtime provides (botocore alone is 30 MB in 2,000 files), and never copies it around.
    exclude: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ThirdPartyTree:
    digest: Digest  # Installed distributions under deps/.
    distributions: FrozenDict[str, str]  # {PEP 503 name: version}
    # Each distribution's METADATA headers (without the long description), for dependency walks.
    metadata: FrozenDict[str, str] = FrozenDict()


def portable(process: Process, python: LinkedPython) -> Process:
    """The pex CLI's Process without host paths: Pants 2.17 puts its own interpreter's absolute
    path in argv and env, and the interpreter search path in `--python-path` and `PATH`.
    Certificates belong in `[GLOBAL].ca_certs_path`, which pex gets as an input file."""
    argv: List[str] = [python.argv0]
    rest = list(process.argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--python-path" and rest:
            rest.pop(0)
            continue
        argv.append(arg)
    # The host's locale and compiler flags would key the install on the machine too; a locked,
    # wheels-only install needs neither (UTF-8 mode replaces the locale).
    env = {
        k: v
        for k, v in process.env.items()
        if k not in ("PEX_PYTHON", "PEX_PYTHON_PATH", "CPPFLAGS", "LDFLAGS", "LANG")
        and not k.startswith("LC_")
    }
    env["PATH"] = _PORTABLE_PATH
    env["PYTHONUTF8"] = "1"
    return dataclasses.replace(
        process,
        argv=tuple(argv),
        env=FrozenDict(env),
        append_only_caches=FrozenDict({**process.append_only_caches, **python.append_only_caches}),
    )


@dataclass(frozen=True)
class InstallProcessRequest:
    tree: ThirdPartyTreeRequest
    dest_dir: str = DEPS_DIR


@dataclass(frozen=True)
class InstallProcess:
    """`pex3 venv create` of a tree into `dest_dir`, not yet run (see `sandbox/layer_build.py`)."""

    process: Process


@dataclass(frozen=True)
class PexCliVenvRequest:
    """The pex CLI as a venv, for the interpreter that runs the plugin's pex processes."""


@dataclass(frozen=True)
class PexCliVenv:
    path: str  # In the sandbox, under the named cache's directory.


@rule(desc="Set up the pex CLI venv", level=LogLevel.DEBUG)
async def pex_cli_venv(
    _: PexCliVenvRequest,
    pex_pex: PexPEX,
    pex_env: PexEnvironment,
    bootstrap: PythonBuildStandaloneBinary,
) -> PexCliVenv:
    """Made once per run of Pants if missing, side by side with the interpreter's link (both
    only read the machine; the venv's name holds nothing of it)."""
    python = script_python_unlinked()
    key = f"{pex_pex.digest.fingerprint[:16]}-{python.name}"
    in_sandbox = pex_env.in_sandbox(working_directory=None)
    await Get(
        ProcessResult,
        Process(
            argv=(
                bootstrap.path,
                "-S",
                "-c",
                _MAKE_PEX_CLI_VENV,
                _PEX_CLI_VENVS_DIR,
                key,
                pex_pex.exe,
            ),
            description=f"Set up the pex CLI venv for {python.name}",
            input_digest=pex_pex.digest,
            env={"PEX_ROOT": str(in_sandbox.pex_root), "PEX_IGNORE_RCFILES": "true"},
            append_only_caches=FrozenDict(
                {**in_sandbox.append_only_caches, PEX_CLI_VENVS_CACHE: _PEX_CLI_VENVS_DIR}
            ),
            cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
            level=LogLevel.DEBUG,
        ),
    )
    return PexCliVenv(f"{_PEX_CLI_VENVS_DIR}/{key}")


@rule(desc="Set up a Lambda platform wheel install", level=LogLevel.DEBUG)
async def install_process(
    install: InstallProcessRequest, python_setup: PythonSetup
) -> InstallProcess:
    request = install.tree
    lock = await Get(PlatformLock, PlatformLockRequest(request.python_resolve))
    if request.custom_platform:
        platform_file = request.custom_platform[0]
        files = complete_platform_files((), (request.custom_platform,))
    else:
        platform_file = complete_platform_filename(request.runtime, request.architecture)
        files = complete_platform_files(((request.runtime, request.architecture),))
    platform_files = await Get(Digest, CreateDigest(files))
    input_digest = await Get(Digest, MergeDigests([lock.digest, platform_files]))
    python = await Get(LinkedPython, ScriptPythonRequest())
    process = await Get(
        Process,
        PexCliProcess(
            subcommand=("venv", "create"),
            extra_args=(
                "--lock",
                LOCK_FILE,
                "--complete-platform",
                f"{COMPLETE_PLATFORMS_DIR}/{platform_file}",
                "--pip-version",
                python_setup.pip_version.value,
                "--layout",
                "flat",
                "--scope",
                "deps",
                "--dest-dir",
                install.dest_dir,
                *(arg for name in request.exclude for arg in ("--exclude", name)),
                *request.requirements,
            ),
            additional_input_digest=input_digest,
            output_directories=(install.dest_dir,),
            description=(
                f"Install {len(request.requirements)} requirement(s) for Lambda "
                f"{request.runtime} {request.architecture}"
            ),
            level=LogLevel.DEBUG,
        ),
    )
    process = portable(process, python)
    venv = (await Get(PexCliVenv, PexCliVenvRequest())).path
    return InstallProcess(
        dataclasses.replace(
            process,
            # [python, pex CLI, *args] -> the venv's python running its pex3 script.
            argv=(f"{venv}/bin/python", "-s", f"{venv}/bin/pex3", *process.argv[2:]),
            env=FrozenDict({k: v for k, v in process.env.items() if k != "PEX_SCRIPT"}),
            append_only_caches=FrozenDict(
                {**process.append_only_caches, PEX_CLI_VENVS_CACHE: _PEX_CLI_VENVS_DIR}
            ),
        )
    )


@rule(desc="Install Lambda platform wheels", level=LogLevel.DEBUG)
async def install_third_party_tree(request: ThirdPartyTreeRequest) -> ThirdPartyTree:
    if not request.requirements:
        # An empty deps/ still: the ZIP script reads it for first-party-only ZIPs.
        empty = await Get(Digest, CreateDigest([Directory(DEPS_DIR)]))
        return ThirdPartyTree(empty, FrozenDict())
    install = await Get(InstallProcess, InstallProcessRequest(request))
    result = await Get(ProcessResult, Process, install.process)
    metadata_files = await Get(
        DigestContents,
        DigestSubset(result.output_digest, PathGlobs([f"{DEPS_DIR}/*.dist-info/METADATA"])),
    )
    versions: Dict[str, str] = {}
    headers: Dict[str, str] = {}
    for fc in metadata_files:
        meta = distributions.parse_metadata(fc.content.decode(errors="replace"))
        versions[meta.name] = meta.version
        headers[meta.name] = meta.headers
    return ThirdPartyTree(
        result.output_digest,
        FrozenDict(sorted(versions.items())),
        FrozenDict(sorted(headers.items())),
    )


def rules():
    return collect_rules()
