"""`pants check` for `python_aws_lambda_powertools`: proof that the packaged ZIP imports.

Where this machine can run the function's runtime (a Linux of the same architecture, with a
CPython of the runtime's minor version), one cached process per function extracts the function
ZIP, its layer ZIPs and the stand-in for what the runtime provides, and imports the handler in a
fresh interpreter with Lambda's `sys.path` and environment (`sandbox/import_check.py`). Elsewhere
the check says in one line that only the build's static checks ran, and passes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Tuple

from pants.core.goals.check import CheckRequest, CheckResult, CheckResults
from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    Digest,
    DigestContents,
    DigestSubset,
    MergeDigests,
    PathGlobs,
    Snapshot,
)
from pants.engine.platform import Platform
from pants.engine.process import FallibleProcessResult, Process, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSet
from pants.engine.unions import UnionRule
from pants.option.option_types import IntOption, SkipOption
from pants.option.subsystem import Subsystem
from pants.util.logging import LogLevel
from pants.util.strutil import softwrap

from pants_powertools.runtimes import get_runtime
from pants_powertools.target_types import (
    PowertoolsArchitectureField,
    PowertoolsHandlerField,
    PowertoolsRuntimeField,
)
from pants_powertools.util_rules.artifacts import (
    FunctionArtifactRequest,
    LambdaArtifact,
    PowertoolsPackageError,
)
from pants_powertools.util_rules.interpreters import (
    LinkedPython,
    RuntimeInterpreter,
    RuntimeInterpreterRequest,
)
from pants_powertools.util_rules.sandbox_inputs import script_input

_DIR = "__import_check"
_SCRIPT = f"{_DIR}/import_check.py"
_REQUEST = f"{_DIR}/request.json"
_REPORT = f"{_DIR}/report.json"
_FUNCTION_DIR = f"{_DIR}/function"
_LAYERS_DIR = f"{_DIR}/layers"
_PROVIDED_DIR = f"{_DIR}/provided"
_RUNTIME_TREE = "__runtime"

# The Lambda architecture each Linux build machine can run natively.
_NATIVE_ARCHITECTURE = {
    Platform.linux_x86_64: "x86_64",
    Platform.linux_arm64: "arm64",
}


class LambdaImportCheck(Subsystem):
    options_scope = "lambda-import"
    name = "lambda-import"
    help = softwrap(
        """
        The `pants check` of `python_aws_lambda_powertools` targets: builds each function's ZIP
        and imports its handler the way Lambda's Python runtime would (task root, then its
        layers, then the runtime's boto3 & co.), in a fresh interpreter of the runtime's Python
        version. It fails when the import raises, when the handler is not a plain callable
        Lambda can call as `handler(event, context)` (an `async def`, a class, a constant), or
        when modules that the ZIP ships bytecode for are compiled from source instead.

        It runs only where the runtime can run: on Linux of the function's architecture, with a
        CPython of the runtime's version on `[python-bootstrap].search_path`. Elsewhere it says
        so in one line and passes (the build's static checks still ran).
        """
    )

    skip = SkipOption("check")
    timeout = IntOption(
        default=60,
        help=softwrap(
            """
            Seconds that importing one handler may take before the check fails. Lambda itself
            allows 10 s for a function's init phase; the check is more lenient because the
            build machine may be busy.
            """
        ),
    )


@dataclass(frozen=True)
class LambdaImportFieldSet(FieldSet):
    required_fields = (PowertoolsHandlerField, PowertoolsArchitectureField)

    handler: PowertoolsHandlerField
    runtime: PowertoolsRuntimeField
    architecture: PowertoolsArchitectureField


class LambdaImportRequest(CheckRequest):
    field_set_type = LambdaImportFieldSet
    tool_name = LambdaImportCheck.options_scope


@dataclass(frozen=True)
class ImportCheckOutcome:
    """One function's verdict: `text` starts with its address and is shown as is."""

    exit_code: int
    text: str


def cannot_run_here(
    platform: Platform, runtime: str, architecture: str, python_found: Optional[bool]
) -> Optional[str]:
    """Why this machine cannot import a function as its runtime would, or None when it can.

    `python_found` is None when the interpreter was not looked up yet (it is looked up only on a
    machine of the right kind)."""
    if platform.is_macos:
        return f"the {runtime} runtime is Linux and this machine is macOS"
    native = _NATIVE_ARCHITECTURE.get(platform)
    if native != architecture:
        return f"{architecture} code cannot run on this {native or platform.value} machine"
    if python_found is False:
        version = get_runtime(runtime).python_version_str
        return f"no CPython {version} found on [python-bootstrap].search_path"
    return None


def skipped_outcome(address: Address, reason: str) -> ImportCheckOutcome:
    return ImportCheckOutcome(0, f"{address}: static checks only ({reason}).")


def outcome_from_report(
    address: Address, handler: str, runtime: str, architecture: str, report: Mapping[str, Any]
) -> ImportCheckOutcome:
    """The script's JSON report as one line when the import passed, a block when it failed."""
    where = f"{runtime} {architecture}, CPython {report['python']}"
    if report.get("bytecode_checked"):
        where += f", shipped .pyc used for {report['modules_from_bytecode']} modules"
    slowest = ", ".join(f"{name} {ms} ms" for name, ms in report.get("slowest", ()))
    if report["ok"]:
        line = f"{address}: imports {handler} in {report['import_ms']} ms ({where})"
        return ImportCheckOutcome(0, line + (f"; slowest: {slowest}" if slowest else ""))
    failures = "\n".join(
        "  " + failure.replace("\n", "\n  ") for failure in report.get("failures", ())
    )
    return ImportCheckOutcome(
        1, f"{address}: {handler} does not import as Lambda would ({where}):\n{failures}"
    )


def _function_name(address: Address) -> str:
    """A valid Lambda function name for AWS_LAMBDA_FUNCTION_NAME."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", address.spec).strip("-")[:64] or "function"


def _script_request(
    artifact: LambdaArtifact, function_name: str, timeout: int
) -> Mapping[str, Any]:
    return {
        "function_zip": f"{_FUNCTION_DIR}/{artifact.path}",
        "layer_zips": [f"{_LAYERS_DIR}/{path}" for path in artifact.layer_paths],
        "provided_zips": [],
        "provided_dirs": (
            [f"{_PROVIDED_DIR}/{_RUNTIME_TREE}"] if artifact.provided_digest is not None else []
        ),
        "handler": artifact.handler,
        "function_name": function_name,
        "environment": dict(artifact.environment),
        "scratch": f"{_DIR}/scratch",
        "timeout_seconds": timeout,
    }


@dataclass(frozen=True)
class RuntimeStandInRequest:
    """The ZIP of what a function's layers and runtime provide, for one runtime CPython."""

    provided_digest: Digest
    python: LinkedPython


@dataclass(frozen=True)
class RuntimeStandIn:
    digest: Digest  # The extracted, compiled tree under `__runtime/`.


@rule(desc="Prepare the stand-in for a Lambda runtime's libraries", level=LogLevel.DEBUG)
async def prepare_runtime_stand_in(request: RuntimeStandInRequest) -> RuntimeStandIn:
    # Its own process: it depends on the requirements and layers only, so editing the function's
    # code reuses it, and the check process starts from compiled botocore like the runtime does.
    script = await Get(Digest, script_input(_DIR, "import_check.py"))
    snapshot, input_digest = await MultiGet(
        Get(Snapshot, Digest, request.provided_digest),
        Get(Digest, MergeDigests([script, request.provided_digest])),
    )
    zips = tuple(path for path in snapshot.files if path.endswith(".zip"))
    result = await Get(
        ProcessResult,
        Process,
        request.python.process(
            (
                "-S",
                "-B",
                _SCRIPT,
                "--workers",
                "{pants_concurrency}",
                "--prepare-runtime",
                _RUNTIME_TREE,
                *zips,
            ),
            description=(
                f"Extract and compile the runtime stand-in for CPython {request.python.version}"
            ),
            env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1", "PYTHONHASHSEED": "0"},
            input_digest=input_digest,
            output_directories=(_RUNTIME_TREE,),
            concurrency_available=2,
            level=LogLevel.DEBUG,
        ),
    )
    return RuntimeStandIn(result.output_digest)


@rule(desc="Import a Lambda function's handler as its runtime would", level=LogLevel.DEBUG)
async def check_function_import(
    field_set: LambdaImportFieldSet, platform: Platform, subsystem: LambdaImportCheck
) -> ImportCheckOutcome:
    address = field_set.address
    try:
        artifact = await Get(LambdaArtifact, FunctionArtifactRequest(address))
    except PowertoolsPackageError as e:
        return ImportCheckOutcome(1, f"{address}: cannot be built:\n  {e}".replace("\n", "\n  "))
    assert artifact.handler is not None
    runtime, architecture = artifact.runtime, artifact.architecture
    reason = cannot_run_here(platform, runtime, architecture, None)
    if reason is not None:
        return skipped_outcome(address, reason)
    interpreter = await Get(RuntimeInterpreter, RuntimeInterpreterRequest(runtime))
    reason = cannot_run_here(platform, runtime, architecture, interpreter.python is not None)
    if reason is not None or interpreter.python is None:
        return skipped_outcome(address, reason or "no interpreter")

    request = _script_request(artifact, _function_name(address), subsystem.timeout)
    inputs = [(artifact.digest, _FUNCTION_DIR)]
    if artifact.layers_digest is not None:
        inputs.append((artifact.layers_digest, _LAYERS_DIR))
    if artifact.provided_digest is not None:
        stand_in = await Get(
            RuntimeStandIn, RuntimeStandInRequest(artifact.provided_digest, interpreter.python)
        )
        inputs.append((stand_in.digest, _PROVIDED_DIR))
    script, *prefixed = await MultiGet(
        Get(Digest, script_input(_DIR, "import_check.py", request)),
        *(Get(Digest, AddPrefix(digest, prefix)) for digest, prefix in inputs),
    )
    input_digest = await Get(Digest, MergeDigests([script, *prefixed]))
    result = await Get(
        FallibleProcessResult,
        Process,
        interpreter.python.process(
            ("-S", "-B", _SCRIPT, _REQUEST, _REPORT),
            description=f"Import {artifact.handler} of {address} ({runtime} {architecture})",
            env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1"},
            input_digest=input_digest,
            output_files=(_REPORT,),
            level=LogLevel.DEBUG,
        ),
    )
    contents = await Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([_REPORT])))
    if result.exit_code not in (0, 1) or not contents:
        output = (result.stderr or result.stdout).decode(errors="replace").strip()
        return ImportCheckOutcome(
            result.exit_code or 1, f"{address}: the import check could not run:\n  {output}"
        )
    report = json.loads(contents[0].content)
    return outcome_from_report(address, artifact.handler, runtime, architecture, report)


@rule(desc="Check that Lambda functions import", level=LogLevel.DEBUG)
async def lambda_import_check(
    request: LambdaImportRequest, subsystem: LambdaImportCheck
) -> CheckResults:
    if subsystem.skip:
        return CheckResults([], checker_name=request.tool_name)
    outcomes: Tuple[ImportCheckOutcome, ...] = await MultiGet(
        Get(ImportCheckOutcome, LambdaImportFieldSet, field_set) for field_set in request.field_sets
    )
    return CheckResults(
        [
            CheckResult(
                exit_code=max((o.exit_code for o in outcomes), default=0),
                stdout="\n".join(o.text for o in outcomes),
                stderr="",
            )
        ],
        checker_name=request.tool_name,
    )


def rules() -> Iterable:
    return (
        *collect_rules(),
        *LambdaImportCheck.rules(),
        UnionRule(CheckRequest, LambdaImportRequest),
    )
