"""`pants package` for `powertools_layer` and `python_aws_lambda_powertools`.

Each artifact is built by three kinds of cached processes, so a code edit reruns only the last:
  1. `pex3 venv create --layout flat` from the platform lock: the third-party tree for one
     (requirements, runtime, architecture), shared by every target that needs the same set;
  2. `artifact_zip.py` over that tree: drop what the runtime or the layers provide, normalize,
     optionally compile; this is the layer ZIP, or a function's third-party part;
  3. for a function, `artifact_zip.py` again to add its first-party sources and the
     `lambda_function.py` re-export to the (already normalized) third-party part.
"""

from __future__ import annotations

import json
import logging
import os
import pkgutil
import re
from dataclasses import dataclass
from datetime import date
from typing import Dict, List, Optional, Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.util_rules.faas import (
    ResolvedPythonFaaSHandler,
    ResolvePythonFaaSHandlerRequest,
)
from pants.backend.python.util_rules.pex_cli import PexCliProcess
from pants.backend.python.util_rules.python_sources import (
    PythonSourceFilesRequest,
    StrippedPythonSourceFiles,
)
from pants.core.goals.package import (
    BuiltPackage,
    BuiltPackageArtifact,
    OutputPathField,
    PackageFieldSet,
)
from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    Directory,
    FileContent,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    Paths,
)
from pants.engine.process import (
    FallibleProcessResult,
    Process,
    ProcessCacheScope,
    ProcessResult,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    Targets,
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from pants_powertools import (
    complete_platforms,
    handlers,
    layering,
    limits,
    manifest,
    platform_lockfiles,
    powertools_extras,
    public_layer,
)
from pants_powertools.complete_platforms import complete_platform_filename
from pants_powertools.lockfile_rules import (
    COMPLETE_PLATFORMS_DIR,
    LambdaLockNeedsRequest,
    LambdaPlatformLockError,
    complete_platform_files,
)
from pants_powertools.platform_lockfiles import LockInputs
from pants_powertools.powertools_settings import powertools_environment
from pants_powertools.runtimes import deprecation_warning, get_runtime
from pants_powertools.subsystem import PowertoolsSubsystem
from pants_powertools.target_types import (
    CompileBytecodeField,
    ExcludeRuntimeProvidedField,
    PowertoolsArchitectureField,
    PowertoolsHandlerField,
    PowertoolsLayer,
    PowertoolsLayerArchitecturesField,
    PowertoolsLayersField,
    PowertoolsLogLevelField,
    PowertoolsMetricsNamespaceField,
    PowertoolsPublicLayerVersionField,
    PowertoolsRuntimeField,
    PowertoolsServiceNameField,
    PowertoolsTracingField,
)

logger = logging.getLogger(__name__)

_ZIP_SCRIPT = "__artifact_zip.py"
_ZIP_SCRIPT_CONTENT = pkgutil.get_data("pants_powertools", "artifact_zip.py")
_DEPS_DIR = "deps"
_SRCS_DIR = "srcs"
_LOCK_FILE = "__lambda_platforms.lock"


class PowertoolsPackageError(Exception):
    """A Lambda artifact that cannot be built as declared; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# The platform lock
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformLockRequest:
    python_resolve: str


@dataclass(frozen=True)
class PlatformLock:
    python_resolve: str
    path: str
    inputs: Optional[LockInputs]  # None when the file does not exist
    digest: Digest  # The lock without its header, at _LOCK_FILE, as pex reads it.


@rule
async def read_platform_lock(request: PlatformLockRequest, python_setup: PythonSetup) -> PlatformLock:
    universal = python_setup.resolves.get(request.python_resolve)
    if universal is None:
        raise PowertoolsPackageError(
            f"The resolve `{request.python_resolve}` is not in [python].resolves."
        )
    path = platform_lockfiles.platform_lockfile_path(universal)
    contents = await Get(DigestContents, PathGlobs([path]))
    if not contents:
        empty = await Get(Digest, CreateDigest([]))
        return PlatformLock(request.python_resolve, path, None, empty)
    text = contents[0].content.decode()
    try:
        inputs = platform_lockfiles.parse_header(text)
    except (platform_lockfiles.LockHeaderError, ValueError, KeyError) as e:
        raise LambdaPlatformLockError(
            f"The Lambda platform lockfile {path} is not readable ({e}). Run "
            f"`{platform_lockfiles.generate_command(request.python_resolve)}` to regenerate it."
        )
    digest = await Get(
        Digest,
        CreateDigest([FileContent(_LOCK_FILE, platform_lockfiles.strip_header(text).encode())]),
    )
    return PlatformLock(request.python_resolve, path, inputs, digest)


def _check_lock(target: Address, lock: PlatformLock, needs: LockInputs) -> None:
    if lock.inputs is None:
        raise LambdaPlatformLockError(
            platform_lockfiles.missing_lock_message(str(target), lock.path, lock.python_resolve)
        )
    reasons = platform_lockfiles.stale_reasons(lock.inputs, needs)
    if reasons:
        raise LambdaPlatformLockError(
            platform_lockfiles.stale_lock_message(str(target), lock.path, lock.python_resolve, reasons)
        )


# ---------------------------------------------------------------------------------------------
# Third-party trees
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepsTreeRequest:
    python_resolve: str
    requirements: Tuple[str, ...]
    runtime: str
    architecture: str
    # A target's own complete platform (file name, JSON) instead of the derived one.
    custom_platform: Optional[Tuple[str, str]] = None


@dataclass(frozen=True)
class DepsTree:
    digest: Digest  # Installed distributions under deps/.
    distributions: FrozenDict[str, str]
    # Each distribution's METADATA headers (without the long description), for dependency walks.
    metadata: FrozenDict[str, str] = FrozenDict()


def _parse_metadata(text: str) -> Tuple[str, str]:
    name = version = ""
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key == "Name":
            name = value.strip()
        elif key == "Version":
            version = value.strip()
    return layering.canonicalize_name(name), version


@rule(desc="Install Lambda platform wheels", level=LogLevel.DEBUG)
async def build_deps_tree(request: DepsTreeRequest, python_setup: PythonSetup) -> DepsTree:
    if not request.requirements:
        # An empty deps/ still: artifact_zip.py reads it (`--src deps`) for first-party-only ZIPs.
        empty = await Get(Digest, CreateDigest([Directory(_DEPS_DIR)]))
        return DepsTree(empty, FrozenDict())
    lock = await Get(PlatformLock, PlatformLockRequest(request.python_resolve))
    if request.custom_platform:
        platform_file = request.custom_platform[0]
        files = complete_platform_files((), (request.custom_platform,))
    else:
        platform_file = complete_platform_filename(request.runtime, request.architecture)
        files = complete_platform_files(((request.runtime, request.architecture),))
    platform_files = await Get(Digest, CreateDigest(files))
    input_digest = await Get(Digest, MergeDigests([lock.digest, platform_files]))
    result = await Get(
        ProcessResult,
        PexCliProcess(
            subcommand=("venv", "create"),
            extra_args=(
                "--lock",
                _LOCK_FILE,
                "--complete-platform",
                f"{COMPLETE_PLATFORMS_DIR}/{platform_file}",
                "--pip-version",
                python_setup.pip_version.value,
                "--layout",
                "flat",
                "--scope",
                "deps",
                "--dest-dir",
                _DEPS_DIR,
                *request.requirements,
            ),
            additional_input_digest=input_digest,
            output_directories=(_DEPS_DIR,),
            description=(
                f"Install {len(request.requirements)} requirement(s) for Lambda "
                f"{request.runtime} {request.architecture}"
            ),
            level=LogLevel.DEBUG,
        ),
    )
    metadata = await Get(
        DigestContents,
        DigestSubset(result.output_digest, PathGlobs([f"{_DEPS_DIR}/*.dist-info/METADATA"])),
    )
    distributions: Dict[str, str] = {}
    headers: Dict[str, str] = {}
    for fc in metadata:
        text = fc.content.decode(errors="replace")
        name, version = _parse_metadata(text)
        distributions[name] = version
        headers[name] = text.split("\n\n", 1)[0]
    return DepsTree(
        result.output_digest,
        FrozenDict(sorted(distributions.items())),
        FrozenDict(sorted(headers.items())),
    )


# ---------------------------------------------------------------------------------------------
# Zipping
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeInterpreterRequest:
    runtime: str
    target: Address


@dataclass(frozen=True)
class RuntimeInterpreter:
    path: str


@rule(desc="Find the CPython of a Lambda runtime", level=LogLevel.DEBUG)
async def find_runtime_interpreter(request: RuntimeInterpreterRequest) -> RuntimeInterpreter:
    version = get_runtime(request.runtime).python_version_str
    result = await Get(
        FallibleProcessResult,
        PexCliProcess(
            subcommand=(),
            extra_args=(
                "--interpreter-constraint",
                f"CPython=={version}.*",
                "--",
                "-c",
                "import sys; print(sys.executable)",
            ),
            description=f"Find a CPython {version} to compile bytecode",
            level=LogLevel.DEBUG,
            cache_scope=ProcessCacheScope.PER_RESTART_SUCCESSFUL,
        ),
    )
    output = result.stderr.decode(errors="replace")
    if result.exit_code != 0 and "interpreter" not in output.lower():
        raise PowertoolsPackageError(
            f"Looking for a CPython {version} for {request.target} failed:\n{output.strip()}"
        )
    if result.exit_code != 0:
        raise PowertoolsPackageError(
            f"{request.target} has `compile_bytecode=True`, which needs a CPython {version} (the "
            f"{request.runtime} runtime's version) to compile the bytecode, and none was found on "
            "[python-bootstrap].search_path. Install one (for example `pyenv install "
            f"{version}`), or set `compile_bytecode=False` on the target (or "
            "[powertools].compile_bytecode = false)."
        )
    return RuntimeInterpreter(result.stdout.decode().strip().splitlines()[-1])


@dataclass(frozen=True)
class ZipRequest:
    input_digest: Digest
    args: Tuple[str, ...]
    output: str
    description: str
    compile_runtime: Optional[str]  # Compile bytecode with this runtime's CPython.
    target: Address


@dataclass(frozen=True)
class ZipResult:
    digest: Digest  # Just the ZIP, at `output`.
    report_json: str  # artifact_zip.py's report: distributions, sizes, sha256.

    @property
    def report(self) -> Dict[str, object]:
        return json.loads(self.report_json)


@rule(desc="Write a Lambda ZIP", level=LogLevel.DEBUG)
async def write_lambda_zip(request: ZipRequest, bootstrap: PythonBuildStandaloneBinary) -> ZipResult:
    python = bootstrap.path
    args = list(request.args)
    if request.compile_runtime:
        interpreter = await Get(
            RuntimeInterpreter, RuntimeInterpreterRequest(request.compile_runtime, request.target)
        )
        python = interpreter.path
        args += ["--compile", "--python-version", get_runtime(request.compile_runtime).python_version_str]
    assert _ZIP_SCRIPT_CONTENT is not None
    script = await Get(Digest, CreateDigest([FileContent(_ZIP_SCRIPT, _ZIP_SCRIPT_CONTENT)]))
    input_digest = await Get(Digest, MergeDigests([script, request.input_digest]))
    report_file = "__report.json"
    result = await Get(
        FallibleProcessResult,
        Process(
            argv=(python, _ZIP_SCRIPT, "--out", request.output, "--report", report_file, *args),
            input_digest=input_digest,
            output_files=(request.output, report_file),
            description=request.description,
            env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"},
            level=LogLevel.DEBUG,
        ),
    )
    if result.exit_code != 0:
        raise PowertoolsPackageError(
            f"Could not write the ZIP for {request.target}:\n"
            + result.stderr.decode(errors="replace").strip()
        )
    report_contents, zip_digest = await MultiGet(
        Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([report_file]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([request.output]))),
    )
    return ZipResult(zip_digest, report_contents[0].content.decode())


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


def _excluded_runtime_provided(tgt_value: Optional[bool], subsystem: PowertoolsSubsystem) -> Tuple[str, ...]:
    exclude = subsystem.exclude_runtime_provided if tgt_value is None else tgt_value
    return subsystem.runtime_provided_names() if exclude else ()


def _compile(tgt_value: Optional[bool], subsystem: PowertoolsSubsystem) -> bool:
    return subsystem.compile_bytecode if tgt_value is None else tgt_value


def _warn_deprecated(address: Address, runtime: str) -> None:
    warning = deprecation_warning(get_runtime(runtime), date.today())
    if warning:
        logger.warning(f"{address}: {warning}")


def _artifact_path(output_path: OutputPathField, suffix: str = "") -> str:
    path = output_path.value_or_default(file_ending="zip")
    if suffix:
        stem, ext = os.path.splitext(path)
        path = f"{stem}-{suffix}{ext}"
    return path


@dataclass(frozen=True)
class LayerArtifactRequest:
    address: Address
    architecture: str


@dataclass(frozen=True)
class LayerArtifact:
    address: Address
    runtime: str
    architecture: str
    path: str
    digest: Digest  # The ZIP and its manifest.
    sha256: str
    size: int
    unzipped_size: int
    distributions: FrozenDict[str, str]
    distribution_sizes: FrozenDict[str, int]
    # The METADATA headers of the Powertools the layer carries, for the extras check.
    powertools_metadata: Optional[str] = None


async def _first_party_sources(address: Address) -> StrippedPythonSourceFiles:
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest([address]))
    return await Get(
        StrippedPythonSourceFiles,
        PythonSourceFilesRequest(transitive.closure, include_resources=True, include_files=False),
    )


@rule(desc="Build a Lambda layer ZIP", level=LogLevel.DEBUG)
async def build_layer_artifact(
    request: LayerArtifactRequest, subsystem: PowertoolsSubsystem, python_setup: PythonSetup
) -> LayerArtifact:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="<layer>")
    )
    tgt = wrapped.target
    runtime = tgt[PowertoolsRuntimeField].value
    arch = request.architecture
    needs = await Get(LockInputs, LambdaLockNeedsRequest(request.address))
    sources = await _first_party_sources(request.address)
    lock = await Get(PlatformLock, PlatformLockRequest(needs.python_resolve))
    _check_lock(request.address, lock, needs)
    compile_runtime = runtime if _compile(tgt[CompileBytecodeField].value, subsystem) else None
    deps_request = DepsTreeRequest(needs.python_resolve, needs.requirements, runtime, arch)
    if compile_runtime:
        # Look the compiling interpreter up while the wheels install, not after.
        deps, _ = await MultiGet(
            Get(DepsTree, DepsTreeRequest, deps_request),
            Get(RuntimeInterpreter, RuntimeInterpreterRequest(compile_runtime, request.address)),
        )
    else:
        deps = await Get(DepsTree, DepsTreeRequest, deps_request)
    srcs = await Get(Digest, AddPrefix(sources.stripped_source_files.snapshot.digest, _DEPS_DIR))
    input_digest = await Get(Digest, MergeDigests([deps.digest, srcs]))
    path = _artifact_path(tgt[OutputPathField], arch)
    excluded = _excluded_runtime_provided(tgt[ExcludeRuntimeProvidedField].value, subsystem)
    zipped = await Get(
        ZipResult,
        ZipRequest(
            input_digest=input_digest,
            args=(
                "--src",
                _DEPS_DIR,
                "--prefix",
                "python/",
                "--exclude-top-level",
                "bin",
                *(("--exclude-dist", ",".join(excluded)) if excluded else ()),
            ),
            output=path,
            description=f"Write layer {path}",
            compile_runtime=compile_runtime,
            target=request.address,
        ),
    )
    report = zipped.report
    zip_contents = await Get(DigestContents, Digest, zipped.digest)
    layer_manifest = manifest.build_manifest(
        manifest.LAYER,
        runtime,
        [arch],
        zip_contents[0].content,
        distributions=report["distributions"],  # type: ignore[arg-type]
        artifact=path,
    )
    manifest_digest = await Get(
        Digest,
        CreateDigest(
            [
                FileContent(
                    manifest.manifest_filename(path),
                    manifest.manifest_json(layer_manifest).encode(),
                )
            ]
        ),
    )
    digest = await Get(Digest, MergeDigests([zipped.digest, manifest_digest]))
    return LayerArtifact(
        address=request.address,
        runtime=runtime,
        architecture=arch,
        path=path,
        digest=digest,
        sha256=layer_manifest["sha256"],
        size=layer_manifest["size"],
        unzipped_size=layer_manifest["unzipped_size"],
        distributions=FrozenDict(report["distributions"]),  # type: ignore[arg-type]
        distribution_sizes=FrozenDict(report["distribution_sizes"]),  # type: ignore[arg-type]
        powertools_metadata=deps.metadata.get(powertools_extras.POWERTOOLS_DISTRIBUTION),
    )


@dataclass(frozen=True)
class PowertoolsLayerFieldSet(PackageFieldSet):
    required_fields = (PowertoolsLayerArchitecturesField, PowertoolsRuntimeField)

    runtime: PowertoolsRuntimeField
    architectures: PowertoolsLayerArchitecturesField
    output_path: OutputPathField


def _log_lines(header_values: List[Tuple[str, str]]) -> Tuple[str, ...]:
    width = 4 + max(len(header) for header, _ in header_values)
    return tuple(f"{header.rjust(width)}: {value}" for header, value in header_values)


def _size_line(size: int, unzipped: int) -> str:
    return f"{limits.format_bytes(size)} zipped, {limits.format_bytes(unzipped)} unzipped"


def _warn_zipped_size(address: Address, path: str, size: int) -> None:
    warning = limits.zipped_size_warning(f"{address} ({path})", size)
    if warning:
        logger.warning(warning)


@rule(desc="Package a Powertools Lambda layer", level=LogLevel.DEBUG)
async def package_powertools_layer(field_set: PowertoolsLayerFieldSet) -> BuiltPackage:
    _warn_deprecated(field_set.address, field_set.runtime.value)
    layers = await MultiGet(
        Get(LayerArtifact, LayerArtifactRequest(field_set.address, arch))
        for arch in field_set.architectures.value
    )
    for layer in layers:
        try:
            limits.check_budget(
                f"{field_set.address} ({layer.architecture})",
                layer.unzipped_size,
                [],
                sorted(layer.distribution_sizes.items(), key=lambda kv: -kv[1]),
                kind="layer",
            )
        except limits.LambdaLimitError as e:
            raise PowertoolsPackageError(str(e))
    artifacts = []
    for layer in layers:
        _warn_zipped_size(field_set.address, layer.path, layer.size)
        artifacts.append(
            BuiltPackageArtifact(
                layer.path,
                extra_log_lines=_log_lines(
                    [
                        ("Runtime", f"{layer.runtime} {layer.architecture}"),
                        ("Size", _size_line(layer.size, layer.unzipped_size)),
                        ("Manifest", manifest.manifest_filename(layer.path)),
                    ]
                ),
            )
        )
    digest = await Get(Digest, MergeDigests(layer.digest for layer in layers))
    return BuiltPackage(digest, tuple(artifacts))


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowertoolsFunctionFieldSet(PackageFieldSet):
    required_fields = (PowertoolsHandlerField, PowertoolsArchitectureField)

    handler: PowertoolsHandlerField
    runtime: PowertoolsRuntimeField
    architecture: PowertoolsArchitectureField
    layers: PowertoolsLayersField
    exclude_runtime_provided: ExcludeRuntimeProvidedField
    compile_bytecode: CompileBytecodeField
    output_path: OutputPathField
    public_layer_version: PowertoolsPublicLayerVersionField
    service_name: PowertoolsServiceNameField
    metrics_namespace: PowertoolsMetricsNamespaceField
    log_level: PowertoolsLogLevelField
    tracing: PowertoolsTracingField

    def environment(self) -> Dict[str, str]:
        return powertools_environment(
            self.service_name.value,
            self.metrics_namespace.value,
            self.log_level.value,
            self.tracing.value,
        )


_POWERTOOLS_EXTRAS = re.compile(r"^aws[-_.]lambda[-_.]powertools\s*\[([^\]]*)\]", re.IGNORECASE)


def _check_powertools_extras(
    address: Address,
    sources: Dict[str, bytes],
    deps: DepsTree,
    carry: Dict[str, str],
    layers: Tuple[LayerArtifact, ...],
    subsystem: PowertoolsSubsystem,
    requirements: Tuple[str, ...],
) -> None:
    """Fail when first-party code uses a Powertools feature whose extra is in neither the ZIP, its
    layers nor the runtime: otherwise the function fails at cold start in AWS."""
    # Powertools may reach the function only through a layer.
    candidates = [deps.metadata.get(powertools_extras.POWERTOOLS_DISTRIBUTION)]
    candidates += [layer.powertools_metadata for layer in layers]
    metadata = next((m for m in candidates if m), None)
    if metadata is None:
        return
    available = set(carry) | set(subsystem.runtime_provided_names())
    for layer in layers:
        available.update(layer.distributions)
    declared = set()
    for requirement in requirements:
        match = _POWERTOOLS_EXTRAS.match(requirement)
        if match:
            declared.update(e.strip() for e in match.group(1).split(",") if e.strip())
    files = {
        path: content.decode("utf-8", errors="replace")
        for path, content in sources.items()
        if path.endswith(".py")
    }
    try:
        powertools_extras.check_extras(files, metadata, available, str(address), sorted(declared))
    except powertools_extras.MissingPowertoolsExtraError as e:
        raise PowertoolsPackageError(str(e))


async def _check_handler_file(field_set: PowertoolsFunctionFieldSet) -> None:
    """A missing handler file named in `file.py:func` form gets the plugin's message, before
    Pants' handler dependency inference fails on the same glob with a generic one."""
    path, _, _ = field_set.handler.value.partition(":")
    if not path.endswith(".py"):
        return
    full = os.path.join(field_set.address.spec_path, path)
    paths = await Get(
        Paths, PathGlobs([full], glob_match_error_behavior=GlobMatchErrorBehavior.ignore)
    )
    if not paths.files:
        raise PowertoolsPackageError(
            f"The `handler` {field_set.handler.value!r} of {field_set.address} names the file "
            f"{full}, which does not exist. Fix the file name before the `:` (it is relative to "
            "the BUILD file's directory), or use a module path like `package.module:func`."
        )


async def _function_layers(field_set: PowertoolsFunctionFieldSet) -> Tuple[LayerArtifact, ...]:
    address = field_set.address
    layer_targets = await Get(
        Targets, UnparsedAddressInputs, field_set.layers.to_unparsed_address_inputs()
    )
    names = [str(t.address) for t in layer_targets]
    if field_set.public_layer_version.value is not None:
        names.insert(0, "AWS's public Powertools layer")
    try:
        limits.check_layer_count(str(address), names)
    except limits.LambdaLimitError as e:
        raise PowertoolsPackageError(str(e))
    specs = []
    for tgt in layer_targets:
        if not isinstance(tgt, PowertoolsLayer):
            raise PowertoolsPackageError(
                f"The `layers` field of {address} names {tgt.address}, a `{tgt.alias}` target; "
                "only `powertools_layer` targets can be layers. Fix the address in `layers`."
            )
        layer_runtime = tgt[PowertoolsRuntimeField].value
        layer_archs = tgt[PowertoolsLayerArchitecturesField].value
        try:
            layering.check_layer_compatibility(
                str(address),
                field_set.runtime.value,
                field_set.architecture.value,
                [layering.Layer(str(tgt.address), {}, (layer_runtime,), tuple(layer_archs))],
            )
        except layering.LayerCompatibilityError as e:
            raise PowertoolsPackageError(str(e))
        specs.append(tgt.address)
    return await MultiGet(
        Get(LayerArtifact, LayerArtifactRequest(layer, field_set.architecture.value))
        for layer in specs
    )


@rule(desc="Package a Powertools Lambda function", level=LogLevel.DEBUG)
async def package_powertools_function(
    field_set: PowertoolsFunctionFieldSet,
    subsystem: PowertoolsSubsystem,
    python_setup: PythonSetup,
) -> BuiltPackage:
    address = field_set.address
    runtime = field_set.runtime.value
    arch = field_set.architecture.value
    _warn_deprecated(address, runtime)

    await _check_handler_file(field_set)
    layers = await _function_layers(field_set)
    needs, handler = await MultiGet(
        Get(LockInputs, LambdaLockNeedsRequest(address)),
        Get(ResolvedPythonFaaSHandler, ResolvePythonFaaSHandlerRequest(field_set.handler)),
    )
    sources = await _first_party_sources(address)

    source_contents = await Get(DigestContents, Digest, sources.stripped_source_files.snapshot.digest)
    sources_by_path = {fc.path: fc.content for fc in source_contents}
    try:
        handlers.check_handler(str(address), field_set.handler.value, handler.module, handler.func, sources_by_path)
    except handlers.HandlerError as e:
        raise PowertoolsPackageError(str(e))

    lock = await Get(PlatformLock, PlatformLockRequest(needs.python_resolve))
    _check_lock(address, lock, needs)
    if len(needs.custom_platforms) > 1:
        raise PowertoolsPackageError(
            f"The `complete_platforms` field of {address} names {len(needs.custom_platforms)} "
            "files; a Lambda function runs on exactly one platform. Name one file."
        )
    deps = await Get(
        DepsTree,
        DepsTreeRequest(
            needs.python_resolve,
            needs.requirements,
            runtime,
            arch,
            needs.custom_platforms[0] if needs.custom_platforms else None,
        ),
    )

    runtime_provided = _excluded_runtime_provided(field_set.exclude_runtime_provided.value, subsystem)
    public_layer_provided: Tuple[str, ...] = ()
    public_layers: List[Dict[str, object]] = []
    if field_set.public_layer_version.value is not None:
        version = field_set.public_layer_version.value
        for layer in layers:
            if public_layer.POWERTOOLS_DISTRIBUTION in layer.distributions:
                raise PowertoolsPackageError(
                    f"{address} sets `powertools_public_layer_version={version}`, AWS's public "
                    f"Powertools layer, but its layer {layer.address} carries "
                    f"{public_layer.POWERTOOLS_DISTRIBUTION} too. Use one or the other: remove the "
                    "field, or take Powertools out of that layer."
                )
        public_layer_provided = tuple(
            sorted(
                public_layer.powertools_closure(
                    deps.metadata, complete_platforms.marker_environment(runtime, arch)
                )
            )
        )
        public_layers.append(
            {
                "arn": public_layer.public_layer_arn(runtime, arch, version),
                "public": True,
                "name": "AWS Powertools for AWS Lambda (Python) public layer",
                "version": version,
            }
        )
    try:
        carry = layering.distributions_to_carry(
            str(address),
            dict(deps.distributions),
            [
                layering.Layer(str(layer.address), dict(layer.distributions), (layer.runtime,), (layer.architecture,))
                for layer in layers
            ],
            exclude=(*runtime_provided, *public_layer_provided),
        )
    except layering.LayerConflictError as e:
        raise PowertoolsPackageError(str(e))
    dropped = sorted(set(deps.distributions) - set(carry))
    if not public_layers:
        _check_powertools_extras(
            address, sources_by_path, deps, carry, layers, subsystem, needs.requirements
        )
    compile_runtime = runtime if _compile(field_set.compile_bytecode.value, subsystem) else None

    # The third-party part: cached across code edits.
    deps_zip = await Get(
        ZipResult,
        ZipRequest(
            input_digest=deps.digest,
            args=(
                "--src",
                _DEPS_DIR,
                "--exclude-top-level",
                "bin",
                *(("--exclude-dist", ",".join(dropped)) if dropped else ()),
            ),
            output="__deps.zip",
            description=f"Select third-party code for {address}",
            compile_runtime=compile_runtime,
            target=address,
        ),
    )

    path = _artifact_path(field_set.output_path)
    reexport = await Get(
        Digest,
        CreateDigest(
            [FileContent("__reexport.py", handlers.reexport_source(handler.module, handler.func).encode())]
        ),
    )
    srcs = await Get(Digest, AddPrefix(sources.stripped_source_files.snapshot.digest, _SRCS_DIR))
    input_digest = await Get(Digest, MergeDigests([deps_zip.digest, srcs, reexport]))
    zipped = await Get(
        ZipResult,
        ZipRequest(
            input_digest=input_digest,
            args=(
                "--src",
                "__deps.zip",
                "--src",
                _SRCS_DIR,
                "--file",
                f"{handlers.REEXPORT_MODULE}.py=__reexport.py",
            ),
            output=path,
            description=f"Write function {path}",
            compile_runtime=compile_runtime,
            target=address,
        ),
    )
    report = zipped.report
    unzipped = int(report["unzipped_size"])  # type: ignore[call-overload]
    largest: Dict[str, int] = dict(report["distribution_sizes"])  # type: ignore[call-overload]
    for layer in layers:
        for name, size in layer.distribution_sizes.items():
            largest[f"{name} (layer {layer.address})"] = size
    try:
        limits.check_budget(
            str(address),
            unzipped,
            [(str(layer.address), layer.unzipped_size) for layer in layers],
            sorted(largest.items(), key=lambda kv: -kv[1])[:10],
        )
    except limits.LambdaLimitError as e:
        raise PowertoolsPackageError(str(e))

    zip_contents = await Get(DigestContents, Digest, zipped.digest)
    function_manifest = manifest.build_manifest(
        manifest.FUNCTION,
        runtime,
        [arch],
        zip_contents[0].content,
        handler=f"{handlers.REEXPORT_MODULE}.{handlers.REEXPORT_FUNC}",
        distributions=report["distributions"],  # type: ignore[arg-type]
        layers=[
            *public_layers,
            *(
                {
                    "address": str(layer.address),
                    "artifact": layer.path,
                    "manifest": manifest.manifest_filename(layer.path),
                    "sha256": layer.sha256,
                    "runtime": layer.runtime,
                    "architecture": layer.architecture,
                }
                for layer in layers
            ),
        ],
        environment=field_set.environment(),
        artifact=path,
    )
    function_manifest["source_handler"] = f"{handler.module}.{handler.func}"
    manifest_digest = await Get(
        Digest,
        CreateDigest(
            [FileContent(manifest.manifest_filename(path), manifest.manifest_json(function_manifest).encode())]
        ),
    )
    _warn_zipped_size(address, path, function_manifest["size"])
    digest = await Get(Digest, MergeDigests([zipped.digest, manifest_digest]))
    artifact = BuiltPackageArtifact(
        path,
        extra_log_lines=_log_lines(
            [
                ("Runtime", f"{runtime} {arch}"),
                ("Handler", f"{handlers.REEXPORT_MODULE}.{handlers.REEXPORT_FUNC} ({handler.module}.{handler.func})"),
                ("Size", _size_line(function_manifest["size"], unzipped)),
                *(("Layer", str(public["arn"])) for public in public_layers),
                *(("Layer", f"{layer.path}") for layer in layers),
                ("Manifest", manifest.manifest_filename(path)),
            ]
        ),
    )
    return BuiltPackage(digest, (artifact,))


def rules():
    return (
        *collect_rules(),
        UnionRule(PackageFieldSet, PowertoolsLayerFieldSet),
        UnionRule(PackageFieldSet, PowertoolsFunctionFieldSet),
    )
