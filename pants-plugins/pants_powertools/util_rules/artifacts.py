"""The one artifact pipeline that layers and functions share: third-party tree, ZIP, manifest.

Functions add their first-party code and the plan of what their layers already provide; both
end in `_finish`, which turns a ZIP's report into the manifest and the `LambdaArtifact`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pants.backend.python.util_rules.faas import (
    ResolvedPythonFaaSHandler,
    ResolvePythonFaaSHandlerRequest,
)
from pants.backend.python.util_rules.python_sources import (
    PythonSourceFiles,
    PythonSourceFilesRequest,
    StrippedPythonSourceFiles,
)
from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    FileContent,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    Paths,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    AllTargets,
    Target,
    Targets,
    TransitiveTargets,
    TransitiveTargetsRequest,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from pants_powertools import distributions, handlers, layering, limits, manifest, powertools_extras
from pants_powertools.distributions import POWERTOOLS_DISTRIBUTION
from pants_powertools.function_plan import (
    FunctionPlan,
    FunctionPlanError,
    LayerContents,
    plan_function,
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
    SlimField,
)
from pants_powertools.util_rules.interpreters import (
    LinkedPython,
    RuntimeInterpreter,
    RuntimeInterpreterRequest,
)
from pants_powertools.util_rules.lambda_zip import (
    LambdaZip,
    LambdaZipError,
    LambdaZipRequest,
    NativeCheck,
    ZipReport,
    ZipSource,
)
from pants_powertools.util_rules.layer_zip import (
    LayerZipPart,
    LayerZips,
    LayerZipsRequest,
    layer_tree_dir,
)
from pants_powertools.util_rules.platform_lock import (
    LambdaLockNeedsRequest,
    PlatformLock,
    PlatformLockRequest,
)
from pants_powertools.util_rules.third_party import (
    DEPS_DIR,
    InstallProcess,
    InstallProcessRequest,
    PexCliVenv,
    PexCliVenvRequest,
    ThirdPartyTree,
    ThirdPartyTreeRequest,
)

logger = logging.getLogger(__name__)

_SRCS_DIR = "srcs"
_DEPS_ZIP = "__deps.zip"
_EXCLUDED_ZIP = "__excluded.zip"
_REEXPORT = "__reexport.py"


class PowertoolsPackageError(Exception):
    """A Lambda artifact that cannot be built as declared; the message says how to fix it."""


@dataclass(frozen=True)
class LambdaArtifact:
    """A built ZIP with its manifest, and what a function on it (as a layer) needs to know."""

    address: Address
    runtime: str
    architecture: str
    path: str
    digest: Digest  # The ZIP and its manifest.
    report: ZipReport
    log_lines: Tuple[Tuple[str, str], ...]
    powertools_metadata: Optional[str] = None
    # What the import check needs: a function's handler, its layers' ZIPs, the stand-in for
    # what its layers and the runtime provide, and its environment.
    handler: Optional[str] = None
    layer_paths: Tuple[str, ...] = ()
    layers_digest: Optional[Digest] = None
    provided_digest: Optional[Digest] = None
    environment: FrozenDict[str, str] = FrozenDict()

    def layer_contents(self) -> LayerContents:
        return LayerContents(
            str(self.address),
            self.runtime,
            self.architecture,
            self.report.distributions,
            self.powertools_metadata,
        )


# ---------------------------------------------------------------------------------------------
# Shared steps
# ---------------------------------------------------------------------------------------------


def _artifact_path(tgt: Target, suffix: str = "") -> str:
    path = tgt[OutputPathField].value_or_default(file_ending="zip")
    if suffix:
        stem, ext = os.path.splitext(path)
        path = f"{stem}-{suffix}{ext}"
    return path


@dataclass(frozen=True)
class ArtifactPaths:
    """Every path under dist/ that a Lambda target of this repository writes, and who writes it."""

    writers: FrozenDict[str, Tuple[Address, ...]]


@dataclass(frozen=True)
class ArtifactPathsRequest:
    pass


@rule(desc="Collect the paths Lambda targets write", level=LogLevel.DEBUG)
async def artifact_paths(_: ArtifactPathsRequest, all_targets: AllTargets) -> ArtifactPaths:
    writers: Dict[str, list] = {}
    for tgt in all_targets:
        if isinstance(tgt, PowertoolsLayer):
            for arch in tgt[PowertoolsLayerArchitecturesField].value:
                writers.setdefault(_artifact_path(tgt, arch), []).append(tgt.address)
        elif tgt.has_field(PowertoolsHandlerField):
            writers.setdefault(_artifact_path(tgt), []).append(tgt.address)
    return ArtifactPaths(
        FrozenDict((path, tuple(sorted(addresses))) for path, addresses in sorted(writers.items()))
    )


async def _check_unique_path(tgt: Target, path: str) -> None:
    """Two targets that write one file would otherwise meet in an engine error about
    conflicting digests, long after both were built."""
    paths = await Get(ArtifactPaths, ArtifactPathsRequest())
    others = [a for a in paths.writers.get(path, ()) if a != tgt.address]
    if others:
        raise PowertoolsPackageError(
            f"{tgt.address} and {', '.join(str(a) for a in others)} would "
            f"{'both' if len(others) == 1 else 'all'} write "
            f"dist/{path}. Give each an `output_path` of its own (relative to dist/), e.g. "
            f'output_path="{os.path.splitext(path)[0]}-{tgt.address.target_name}.zip".'
        )


def _warn_deprecated(address: Address, runtime: str) -> None:
    warning = deprecation_warning(get_runtime(runtime), date.today())
    if warning:
        logger.warning(f"{address}: {warning}")


def _runtime_provided(tgt: Target, subsystem: PowertoolsSubsystem) -> Tuple[str, ...]:
    exclude = tgt[ExcludeRuntimeProvidedField].value_or_global_default(subsystem)
    return subsystem.runtime_provided_names() if exclude else ()


def _slim(tgt: Target, subsystem: PowertoolsSubsystem) -> bool:
    return tgt[SlimField].value_or_global_default(subsystem)


def _slim_log_lines(slimmed: Mapping[str, Mapping[str, int]]) -> Tuple[Tuple[str, str], ...]:
    """One `Slimmed` line for `pants package` when slim ran: what it saved, by category.

    "symbols" counts native files that stayed, stripped of their symbol tables: their bytes are
    saved, but no file is left out."""
    if not slimmed:
        return ()
    files = sum(counts["files"] for category, counts in slimmed.items() if category != "symbols")
    size = sum(counts["bytes"] for counts in slimmed.values())
    parts = "".join(
        f", {category} {counts['bytes'] / (1024 * 1024):.1f} MiB"
        for category, counts in slimmed.items()
        if counts["files"]
    )
    return (("Slimmed", f"{files} files, {limits.format_bytes(size)} unzipped left out{parts}"),)


async def _compiler(
    tgt: Target, runtime: str, subsystem: PowertoolsSubsystem
) -> Optional[LinkedPython]:
    """The runtime's CPython when bytecode is wanted. Asked for on the target, its absence is an
    error; wanted only by `[powertools].compile_bytecode`, it is a one-line warning."""
    value = tgt[CompileBytecodeField].value
    if not tgt[CompileBytecodeField].value_or_global_default(subsystem):
        return None
    found = await Get(RuntimeInterpreter, RuntimeInterpreterRequest(runtime))
    if found.python is not None:
        return found.python
    version = get_runtime(runtime).python_version_str
    if value:
        raise PowertoolsPackageError(
            f"{tgt.address} has `compile_bytecode=True`, which needs a CPython {version} (the "
            f"{runtime} runtime's version) to compile the bytecode, and none was found on "
            "[python-bootstrap].search_path. Install one (for example `pyenv install "
            f"{version}`), or set `compile_bytecode=False` on the target."
        )
    logger.warning(
        f"{tgt.address}: no CPython {version} on this machine ([python-bootstrap].search_path), "
        f"so the {runtime} ZIP ships without bytecode (a slower cold start); install CPython "
        f"{version} to compile it."
    )
    return None


_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_")


def _native_check(
    runtime: str, architecture: str, custom_platform: Optional[Tuple[str, str]]
) -> NativeCheck:
    glibc = get_runtime(runtime).glibc
    if custom_platform is not None:
        # A custom platform says its own glibc through its newest manylinux tag.
        levels = [
            (int(m.group(1)), int(m.group(2)))
            for tag in json.loads(custom_platform[1]).get("compatible_tags", [])
            for m in [_MANYLINUX.search(tag)]
            if m
        ]
        if levels:
            glibc = max(levels)
    return NativeCheck(architecture, glibc)


async def _zip(address: Address, request: LambdaZipRequest) -> LambdaZip:
    try:
        return await Get(LambdaZip, LambdaZipRequest, request)
    except LambdaZipError as e:
        raise PowertoolsPackageError(f"{address}: cannot build {request.output}:\n{e}")


async def _finish(
    tgt: Target,
    kind: str,
    runtime: str,
    architecture: str,
    path: str,
    zipped: LambdaZip,
    log_lines: Sequence[Tuple[str, str]],
    **manifest_fields: Any,
) -> Tuple[Digest, Dict[str, Any]]:
    """The manifest from the ZIP's report, written next to it.

    A function passes `slimmed` from its third-party ZIP step, where slim applies.
    """
    report = zipped.report
    slimmed = manifest_fields.pop("slimmed", report.slimmed)
    for warning in report.warnings:
        logger.warning(f"{tgt.address}: {warning}")
    data = manifest.build_manifest(
        kind,
        runtime,
        [architecture],
        manifest.ZipFacts(report.sha256, report.code_sha256, report.size, report.unzipped_size),
        distributions=dict(report.distributions),
        artifact=path,
        slimmed=slimmed,
        **manifest_fields,
    )
    size_warning = limits.zipped_size_warning(f"{tgt.address} ({path})", report.size)
    if size_warning:
        logger.warning(size_warning)
    manifest_digest = await Get(
        Digest,
        CreateDigest(
            [FileContent(manifest.manifest_filename(path), manifest.manifest_json(data).encode())]
        ),
    )
    return await Get(Digest, MergeDigests([zipped.digest, manifest_digest])), data


@dataclass(frozen=True)
class FirstPartyRequest:
    address: Address


@dataclass(frozen=True)
class FirstParty:
    """First-party Python and resources (source-root-relative) and `files` (build-root-relative,
    as Lambda's working directory is the task root), all in `stripped`."""

    stripped: StrippedPythonSourceFiles
    files: Tuple[str, ...]

    @property
    def digest(self) -> Digest:
        return self.stripped.stripped_source_files.snapshot.digest


@rule(desc="Gather a Lambda artifact's first-party code", level=LogLevel.DEBUG)
async def first_party_sources(request: FirstPartyRequest) -> FirstParty:
    transitive = await Get(TransitiveTargets, TransitiveTargetsRequest([request.address]))
    sources = await Get(
        PythonSourceFiles,
        PythonSourceFilesRequest(transitive.closure, include_resources=True, include_files=True),
    )
    stripped = await Get(StrippedPythonSourceFiles, PythonSourceFiles, sources)
    return FirstParty(stripped, tuple(sorted(sources.source_files.unrooted_files)))


@dataclass(frozen=True)
class CompilerRequest:
    address: Address
    runtime: str


@dataclass(frozen=True)
class Compiler:
    python: Optional[LinkedPython]


@rule(desc="Choose the CPython that compiles bytecode", level=LogLevel.DEBUG)
async def choose_compiler(request: CompilerRequest, subsystem: PowertoolsSubsystem) -> Compiler:
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="<lambda>")
    )
    return Compiler(await _compiler(wrapped.target, request.runtime, subsystem))


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerArtifactRequest:
    address: Address
    architecture: str


@dataclass(frozen=True)
class LayerArtifactsRequest:
    address: Address


@dataclass(frozen=True)
class LayerArtifacts:
    artifacts: Tuple[LambdaArtifact, ...]  # One per architecture, in the target's order.


@dataclass(frozen=True)
class LayerTreesRequest:
    address: Address
    runtime: str
    architectures: Tuple[str, ...]
    exclude: Tuple[str, ...]


@dataclass(frozen=True)
class LayerTrees:
    needs: LockInputs
    trees: Tuple[ThirdPartyTreeRequest, ...]  # One per architecture.


@rule(desc="Plan a Lambda layer's wheel installs", level=LogLevel.DEBUG)
async def layer_trees(request: LayerTreesRequest) -> LayerTrees:
    needs = await Get(LockInputs, LambdaLockNeedsRequest(request.address))
    trees = tuple(
        # What the runtime provides is never installed, rather than installed and dropped.
        ThirdPartyTreeRequest(
            needs.python_resolve, needs.requirements, request.runtime, arch, exclude=request.exclude
        )
        for arch in request.architectures
    )
    if needs.requirements:
        lock = await Get(PlatformLock, PlatformLockRequest(needs.python_resolve))
        lock.check(str(request.address), needs)
        # Set up now (lock read, pex's interpreter linked) what the layer's process will run,
        # while the caller looks up the compiler.
        await MultiGet(
            Get(InstallProcess, InstallProcessRequest(tree, layer_tree_dir(tree.architecture)))
            for tree in trees
        )
    return LayerTrees(needs, trees)


@rule(desc="Build a Lambda layer's ZIPs", level=LogLevel.DEBUG)
async def build_layer_artifacts(
    request: LayerArtifactsRequest, subsystem: PowertoolsSubsystem
) -> LayerArtifacts:
    """Every architecture of the layer in one process (`util_rules/layer_zip.py`)."""
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(request.address, description_of_origin="<layer>")
    )
    tgt = wrapped.target
    runtime = tgt[PowertoolsRuntimeField].value
    architectures = tuple(tgt[PowertoolsLayerArchitecturesField].value)
    provided = _runtime_provided(tgt, subsystem)
    # Everything that does not depend on the rest at once; the pex CLI's venv is checked early,
    # as the installs' set-up needs it once the requirements are known.
    planned, sources, compiler, _, _ = await MultiGet(
        Get(LayerTrees, LayerTreesRequest(request.address, runtime, architectures, provided)),
        Get(FirstParty, FirstPartyRequest(request.address)),
        Get(Compiler, CompilerRequest(request.address, runtime)),
        Get(ArtifactPaths, ArtifactPathsRequest()),
        Get(PexCliVenv, PexCliVenvRequest()),
    )
    paths = tuple(_artifact_path(tgt, arch) for arch in architectures)
    for path in paths:
        await _check_unique_path(tgt, path)
    slim = _slim(tgt, subsystem)
    srcs = await Get(Digest, AddPrefix(sources.digest, _SRCS_DIR))
    parts = tuple(
        LayerZipPart(
            tree=tree,
            zip=LambdaZipRequest(
                input_digest=srcs,
                output=path,
                sources=(
                    ZipSource(layer_tree_dir(tree.architecture)),
                    ZipSource(_SRCS_DIR, first_party=True),
                ),
                prefix=manifest.LAYER_SITE_PACKAGES,
                exclude_distributions=provided,
                compiler=compiler.python,
                native=_native_check(runtime, tree.architecture, None),
                description=f"Write layer {path}",
                slim=slim,
                metadata_of=(POWERTOOLS_DISTRIBUTION,),
            ),
        )
        for tree, path in zip(planned.trees, paths)
    )
    try:
        built = await Get(
            LayerZips,
            LayerZipsRequest(
                parts,
                compiler.python,
                share_bytecode=not slim,
                description=f"Build layer {', '.join(paths)}",
            ),
        )
    except LambdaZipError as e:
        raise PowertoolsPackageError(f"{request.address}: cannot build {', '.join(paths)}:\n{e}")
    artifacts = []
    for arch, path, zipped in zip(architectures, paths, built.zips):
        try:
            limits.check_budget(
                f"{request.address} ({arch})",
                zipped.report.unzipped_size,
                [],
                sorted(zipped.report.distribution_sizes.items(), key=lambda kv: -kv[1]),
                kind="layer",
            )
        except limits.LambdaLimitError as e:
            raise PowertoolsPackageError(str(e))
        log_lines = (("Runtime", f"{runtime} {arch}"), *_slim_log_lines(zipped.report.slimmed))
        digest, _ = await _finish(tgt, manifest.LAYER, runtime, arch, path, zipped, log_lines)
        powertools = zipped.report.metadata.get(POWERTOOLS_DISTRIBUTION)
        artifacts.append(
            LambdaArtifact(
                address=request.address,
                runtime=runtime,
                architecture=arch,
                path=path,
                digest=digest,
                report=zipped.report,
                log_lines=log_lines,
                powertools_metadata=(
                    distributions.parse_metadata(powertools).headers if powertools else None
                ),
            )
        )
    return LayerArtifacts(tuple(artifacts))


@rule(desc="Build a Lambda layer ZIP", level=LogLevel.DEBUG)
async def build_layer_artifact(request: LayerArtifactRequest) -> LambdaArtifact:
    """One architecture of a layer, as a function on it asks for it: all are built together."""
    built = await Get(LayerArtifacts, LayerArtifactsRequest(request.address))
    for artifact in built.artifacts:
        if artifact.architecture == request.architecture:
            return artifact
    raise PowertoolsPackageError(
        f"{request.address} is not built for {request.architecture}: add it to its "
        "`architectures`."
    )


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionArtifactRequest:
    address: Address


async def _check_handler_file(tgt: Target) -> None:
    """A missing handler file named in `file.py:func` form gets the plugin's message, before
    Pants' handler dependency inference fails on the same glob with a generic one."""
    spec = tgt[PowertoolsHandlerField].value
    path, _, _ = spec.partition(":")
    if not path.endswith(".py"):
        return
    full = os.path.join(tgt.address.spec_path, path)
    paths = await Get(
        Paths, PathGlobs([full], glob_match_error_behavior=GlobMatchErrorBehavior.ignore)
    )
    if not paths.files:
        raise PowertoolsPackageError(
            f"The `handler` {spec!r} of {tgt.address} names the file {full}, which does not "
            "exist. Fix the file name before the `:` (it is relative to the BUILD file's "
            "directory), or use a module path like `package.module:func`."
        )


async def _layer_addresses(tgt: Target) -> Tuple[Address, ...]:
    """The function's `layers`, checked as targets before anything is built."""
    layer_targets = await Get(
        Targets, UnparsedAddressInputs, tgt[PowertoolsLayersField].to_unparsed_address_inputs()
    )
    names = [str(t.address) for t in layer_targets]
    if tgt[PowertoolsPublicLayerVersionField].value is not None:
        names.insert(0, "AWS's public Powertools layer")
    runtime = tgt[PowertoolsRuntimeField].value
    architecture = tgt[PowertoolsArchitectureField].value
    try:
        limits.check_layer_count(str(tgt.address), names)
        for layer in layer_targets:
            if not isinstance(layer, PowertoolsLayer):
                raise PowertoolsPackageError(
                    f"The `layers` field of {tgt.address} names {layer.address}, a "
                    f"`{layer.alias}` target; only `powertools_layer` targets can be layers. Fix "
                    "the address in `layers`."
                )
            layering.check_layer_compatibility(
                str(tgt.address),
                runtime,
                architecture,
                [
                    layering.Layer(
                        str(layer.address),
                        {},
                        (layer[PowertoolsRuntimeField].value,),
                        tuple(layer[PowertoolsLayerArchitecturesField].value),
                    )
                ],
            )
    except (limits.LambdaLimitError, layering.LayeringError) as e:
        raise PowertoolsPackageError(str(e))
    return tuple(layer.address for layer in layer_targets)


def _environment(tgt: Target) -> Dict[str, str]:
    return powertools_environment(
        tgt[PowertoolsServiceNameField].value,
        tgt[PowertoolsMetricsNamespaceField].value,
        tgt[PowertoolsLogLevelField].value,
        tgt[PowertoolsTracingField].value,
    )


def _check_handler(
    tgt: Target, runtime: str, handler: ResolvedPythonFaaSHandler, sources: Dict[str, bytes]
) -> None:
    """The handler, read with `ast`; what it cannot see is left to `pants check`."""
    try:
        checked = handlers.check_handler(
            str(tgt.address),
            tgt[PowertoolsHandlerField].value,
            handler.module,
            handler.func,
            sources,
            target_python=get_runtime(runtime).python_version,
        )
    except handlers.HandlerError as e:
        raise PowertoolsPackageError(str(e))
    if not checked.verified and checked.note:
        logger.info(f"{tgt.address}: {checked.note}")


def _plan(
    tgt: Target,
    deps: ThirdPartyTree,
    needs: LockInputs,
    layers: Sequence[LambdaArtifact],
    sources: Dict[str, bytes],
    subsystem: PowertoolsSubsystem,
) -> FunctionPlan:
    """What the function ZIP ships, and the Powertools extras its code needs."""
    try:
        plan = plan_function(
            str(tgt.address),
            tgt[PowertoolsRuntimeField].value,
            tgt[PowertoolsArchitectureField].value,
            deps.distributions,
            deps.metadata,
            needs.requirements,
            [layer.layer_contents() for layer in layers],
            _runtime_provided(tgt, subsystem),
            tgt[PowertoolsPublicLayerVersionField].value,
        )
        if plan.powertools_metadata:
            powertools_extras.check_extras(
                {
                    path: content.decode("utf-8", errors="replace")
                    for path, content in sources.items()
                    if path.endswith(".py")
                },
                plan.powertools_metadata,
                plan.available,
                str(tgt.address),
                plan.declared_extras,
            )
    except (FunctionPlanError, powertools_extras.MissingPowertoolsExtraError) as e:
        raise PowertoolsPackageError(str(e))
    return plan


def _check_function_budget(
    address: Address, report: ZipReport, layers: Sequence[LambdaArtifact]
) -> None:
    """Lambda's unzipped limit for the function and its layers, naming the largest parts."""
    largest: Dict[str, int] = dict(report.distribution_sizes)
    for name, size in report.largest_first_party:
        largest[f"{name} (first-party)"] = size
    for layer in layers:
        for name, size in layer.report.distribution_sizes.items():
            largest[f"{name} (layer {layer.address})"] = size
    try:
        limits.check_budget(
            str(address),
            report.unzipped_size,
            [(str(layer.address), layer.report.unzipped_size) for layer in layers],
            sorted(largest.items(), key=lambda kv: (-kv[1], kv[0]))[:10],
        )
    except limits.LambdaLimitError as e:
        raise PowertoolsPackageError(str(e))


def _layer_entries(plan: FunctionPlan, layers: Sequence[LambdaArtifact]) -> List[Dict[str, Any]]:
    """The manifest's `layers`, in the order Lambda applies them."""
    return [
        *plan.public_layers,
        *(
            {
                "address": str(layer.address),
                "artifact": layer.path,
                "manifest": manifest.manifest_filename(layer.path),
                "sha256": layer.report.sha256,
                "runtime": layer.runtime,
                "architecture": layer.architecture,
            }
            for layer in layers
        ),
    ]


@rule(desc="Build a Lambda function ZIP", level=LogLevel.DEBUG)
async def build_function_artifact(
    request: FunctionArtifactRequest, subsystem: PowertoolsSubsystem
) -> LambdaArtifact:
    address = request.address
    wrapped = await Get(
        WrappedTarget, WrappedTargetRequest(address, description_of_origin="<function>")
    )
    tgt = wrapped.target
    runtime = tgt[PowertoolsRuntimeField].value
    arch = tgt[PowertoolsArchitectureField].value
    _warn_deprecated(address, runtime)

    # What can be checked on the targets and sources alone comes first, before anything is built.
    await _check_handler_file(tgt)
    path = _artifact_path(tgt)
    await _check_unique_path(tgt, path)
    layer_addresses = await _layer_addresses(tgt)
    handler, sources, needs = await MultiGet(
        Get(
            ResolvedPythonFaaSHandler, ResolvePythonFaaSHandlerRequest(tgt[PowertoolsHandlerField])
        ),
        Get(FirstParty, FirstPartyRequest(address)),
        Get(LockInputs, LambdaLockNeedsRequest(address)),
    )
    source_contents = await Get(DigestContents, Digest, sources.digest)
    sources_by_path = {fc.path: fc.content for fc in source_contents}
    _check_handler(tgt, runtime, handler, sources_by_path)
    if needs.requirements:  # Code-only functions need no lock.
        lock = await Get(PlatformLock, PlatformLockRequest(needs.python_resolve))
        lock.check(str(address), needs)

    # Third-party code, the compiler and the layers, in parallel; then the plan.
    custom_platform = needs.custom_platforms[0] if needs.custom_platforms else None
    deps, compiler, *layers = await MultiGet(
        Get(
            ThirdPartyTree,
            ThirdPartyTreeRequest(
                needs.python_resolve, needs.requirements, runtime, arch, custom_platform
            ),
        ),
        Get(Compiler, CompilerRequest(address, runtime)),
        *(Get(LambdaArtifact, LayerArtifactRequest(layer, arch)) for layer in layer_addresses),
    )
    plan = _plan(tgt, deps, needs, layers, sources_by_path, subsystem)

    # The third-party part is cached across code edits and shared by functions with the same
    # requirements and layers; the first-party part is all a code edit rebuilds.
    native = _native_check(runtime, arch, custom_platform)
    deps_zip = await _zip(
        address,
        LambdaZipRequest(
            input_digest=deps.digest,
            output=_DEPS_ZIP,
            sources=(ZipSource(DEPS_DIR),),
            exclude_distributions=plan.left_out,
            excluded_output=_EXCLUDED_ZIP,
            stand_in_distributions=plan.provided_outside,
            compiler=compiler.python,
            native=native,
            description=f"Select third-party code for Lambda {runtime} {arch}",
            slim=_slim(tgt, subsystem),
        ),
    )
    reexport, srcs = await MultiGet(
        Get(
            Digest,
            CreateDigest(
                [
                    FileContent(
                        _REEXPORT, handlers.reexport_source(handler.module, handler.func).encode()
                    )
                ]
            ),
        ),
        Get(Digest, AddPrefix(sources.digest, _SRCS_DIR)),
    )
    zipped = await _zip(
        address,
        LambdaZipRequest(
            input_digest=await Get(Digest, MergeDigests([deps_zip.digest, srcs, reexport])),
            output=path,
            sources=(ZipSource(_DEPS_ZIP), ZipSource(_SRCS_DIR, first_party=True)),
            files=((f"{handlers.REEXPORT_MODULE}.py", _REEXPORT),),
            compiler=compiler.python,
            native=native,
            description=f"Write function {path}",
        ),
    )
    _check_function_budget(address, zipped.report, layers)

    reexported = f"{handlers.REEXPORT_MODULE}.{handlers.REEXPORT_FUNC}"
    environment = _environment(tgt)
    log_lines = (
        ("Runtime", f"{runtime} {arch}"),
        ("Handler", f"{reexported} ({handler.module}.{handler.func})"),
        *(("Layer", str(public["arn"])) for public in plan.public_layers),
        *(("Layer", layer.path) for layer in layers),
        *_slim_log_lines(deps_zip.report.slimmed),
    )
    digest, _ = await _finish(
        tgt,
        manifest.FUNCTION,
        runtime,
        arch,
        path,
        zipped,
        log_lines,
        handler=reexported,
        source_handler=f"{handler.module}.{handler.func}",
        files=sources.files,
        layers=_layer_entries(plan, layers),
        environment=environment,
        slimmed=deps_zip.report.slimmed,
    )
    layers_digest = await Get(Digest, MergeDigests(layer.digest for layer in layers))
    return LambdaArtifact(
        address=address,
        runtime=runtime,
        architecture=arch,
        path=path,
        digest=digest,
        report=zipped.report,
        log_lines=log_lines,
        handler=reexported,
        layer_paths=tuple(layer.path for layer in layers),
        layers_digest=layers_digest,
        provided_digest=deps_zip.excluded_digest,
        environment=FrozenDict(environment),
    )


def rules():
    return collect_rules()
