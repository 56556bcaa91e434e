"""Rules that make `pants generate-lockfiles` lock each Lambda resolve for its exact platforms.

Packaging reads the same lock through `PlatformLockfileRequest` and refuses a stale one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence, Set, Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import PythonRequirementsField, PythonResolveField
from pants.backend.python.util_rules.pex_cli import PexCliProcess
from pants.backend.python.util_rules.pex_requirements import (
    ResolvePexConfig,
    ResolvePexConfigRequest,
)
from pants.core.goals.generate_lockfiles import (
    GenerateLockfile,
    GenerateLockfileResult,
    KnownUserResolveNames,
    KnownUserResolveNamesRequest,
    RequestedUserResolveNames,
    UserGenerateLockfiles,
    WrappedGenerateLockfile,
)
from pants.core.target_types import FileSourceField
from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.core.util_rules.subprocess_environment import SubprocessEnvironmentVars
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, PathGlobs
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    AllTargets,
    Dependencies,
    DependenciesRequest,
    Target,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from pants_powertools import platform_lockfiles
from pants_powertools.complete_platforms import (
    compatible_tags,
    complete_platform_filename,
    complete_platform_json,
    marker_environment,
)
from pants_powertools.platform_lockfiles import LockInputs, LockPlatform, Platform
from pants_powertools.sandbox import script_files
from pants_powertools.target_types import (
    PowertoolsArchitectureField,
    PowertoolsCompletePlatformsField,
    PowertoolsLayerArchitecturesField,
    PowertoolsLayersField,
    PowertoolsRuntimeField,
)

logger = logging.getLogger(__name__)

COMPLETE_PLATFORMS_DIR = "__lambda_platforms"


class LambdaPlatformLockError(Exception):
    """A platform lock that is missing, stale, or cannot be resolved."""


def is_lambda_target(tgt: Target) -> bool:
    return tgt.has_field(PowertoolsRuntimeField) and tgt.has_field(PythonResolveField)


def target_platforms(tgt: Target) -> Tuple[Platform, ...]:
    runtime = tgt[PowertoolsRuntimeField].value
    if tgt.has_field(PowertoolsLayerArchitecturesField):
        return tuple((runtime, arch) for arch in tgt[PowertoolsLayerArchitecturesField].value)
    return ((runtime, tgt[PowertoolsArchitectureField].value),)


def complete_platform_digests(platforms: Tuple[Platform, ...]) -> Dict[str, str]:
    return {
        complete_platform_filename(runtime, arch): hashlib.sha256(
            complete_platform_json(runtime, arch).encode()
        ).hexdigest()
        for runtime, arch in platforms
    }


def complete_platform_files(
    platforms: Tuple[Platform, ...], custom: Tuple[Tuple[str, str], ...] = ()
) -> Tuple[FileContent, ...]:
    derived = tuple(
        FileContent(
            f"{COMPLETE_PLATFORMS_DIR}/{complete_platform_filename(runtime, arch)}",
            complete_platform_json(runtime, arch).encode(),
        )
        for runtime, arch in sorted(set(platforms))
    )
    return derived + tuple(
        FileContent(f"{COMPLETE_PLATFORMS_DIR}/{name}", text.encode()) for name, text in custom
    )


@dataclass(frozen=True)
class CustomCompletePlatformsRequest:
    address: Address


@dataclass(frozen=True)
class CustomCompletePlatforms:
    """The complete platform files a function names itself: (content-derived name, JSON)."""

    files: Tuple[Tuple[str, str], ...]


@rule
async def custom_complete_platforms(
    request: CustomCompletePlatformsRequest,
) -> CustomCompletePlatforms:
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(request.address, description_of_origin="<complete_platforms>"),
    )
    tgt = wrapped.target
    if (
        not tgt.has_field(PowertoolsCompletePlatformsField)
        or not tgt[PowertoolsCompletePlatformsField].value
    ):
        return CustomCompletePlatforms(())
    file_targets = await Get(
        Targets,
        UnparsedAddressInputs,
        tgt[PowertoolsCompletePlatformsField].to_unparsed_address_inputs(),
    )
    paths = []
    for file_tgt in file_targets:
        if not file_tgt.has_field(FileSourceField):
            raise LambdaPlatformLockError(
                f"The `complete_platforms` field of {request.address} names {file_tgt.address}, "
                "which is not a `file` target. Name `file` targets holding complete platform JSON."
            )
        paths.append(file_tgt[FileSourceField].file_path)
    # Read straight from the workspace: sources hydration would need an environment, which
    # `generate-lockfiles`' resolve discovery does not have.
    contents = await Get(DigestContents, PathGlobs(paths))
    files = []
    for fc in contents:
        text = fc.content.decode()
        try:
            json.loads(text)
        except ValueError as e:
            raise LambdaPlatformLockError(
                f"The `complete_platforms` file {fc.path} of {request.address} is not JSON ({e}). "
                "Generate one with `pex3 interpreter inspect --markers --tags` on the target "
                "platform, or remove the field to use the platform derived from `runtime` and "
                "`architecture`."
            )
        files.append((platform_lockfiles.custom_platform_filename(text), text))
    return CustomCompletePlatforms(tuple(sorted(files)))


@dataclass(frozen=True)
class LambdaLockNeedsRequest:
    address: Address


@rule
async def lambda_lock_needs(
    request: LambdaLockNeedsRequest, python_setup: PythonSetup
) -> LockInputs:
    """What a Lambda target needs from its resolve's platform lock.

    Walks dependencies by hand and stops at requirement targets: their own dependency on the
    resolve's lockfile must not be resolved, since that lockfile may not exist yet when
    `generate-lockfiles` runs for the first time.
    """
    root = (await Get(Targets, Addresses([request.address])))[0]
    resolve = root[PythonResolveField].normalized_value(python_setup)
    # A dependency in another resolve would be locked into this resolve's lock (and a layer in
    # another resolve built from another lock): refuse both, naming everything involved.
    mismatches: List[Tuple[str, str, str]] = []
    requirements: Set[str] = set()
    seen = {root.address}
    frontier = [root]
    while frontier:
        expandable = []
        for tgt in frontier:
            if tgt is not root and tgt.has_field(PythonResolveField):
                other = tgt[PythonResolveField].normalized_value(python_setup)
                if other != resolve:
                    mismatches.append(("dependency", str(tgt.address), other))
            if tgt.has_field(PythonRequirementsField):
                requirements.update(str(req) for req in tgt[PythonRequirementsField].value)
            elif tgt.has_field(Dependencies):
                expandable.append(tgt)
        deps_per_target = await MultiGet(
            Get(Targets, DependenciesRequest(tgt[Dependencies])) for tgt in expandable
        )
        frontier = []
        for deps in deps_per_target:
            for dep in deps:
                if dep.address not in seen:
                    seen.add(dep.address)
                    frontier.append(dep)
    if root.has_field(PowertoolsLayersField) and root[PowertoolsLayersField].value:
        layers = await Get(
            Targets, UnparsedAddressInputs, root[PowertoolsLayersField].to_unparsed_address_inputs()
        )
        for layer in layers:
            if layer.has_field(PythonResolveField):
                other = layer[PythonResolveField].normalized_value(python_setup)
                if other != resolve:
                    mismatches.append(("layer", str(layer.address), other))
    if mismatches:
        raise LambdaPlatformLockError(
            platform_lockfiles.resolve_mismatch_message(
                str(root.address), resolve, root[PythonResolveField].value is None, mismatches
            )
        )
    custom = await Get(CustomCompletePlatforms, CustomCompletePlatformsRequest(root.address))
    platforms = () if custom.files else target_platforms(root)
    return LockInputs.create(
        python_resolve=resolve,
        requirements=requirements,
        platforms=platforms,
        platform_digests=complete_platform_digests(platforms),
        custom_platforms=custom.files,
    )


@dataclass(frozen=True)
class AllLambdaLockNeeds:
    """Per python resolve used by Lambda targets, the union of what they need."""

    by_resolve: Tuple[Tuple[str, LockInputs], ...]
    # Per python resolve, each Lambda target's own needs: error messages name the targets.
    by_target: Tuple[Tuple[str, Tuple[Tuple[str, LockInputs], ...]], ...] = ()

    def get(self, python_resolve: str) -> LockInputs:
        return dict(self.by_resolve)[python_resolve]

    def targets(self, python_resolve: str) -> Tuple[Tuple[str, LockInputs], ...]:
        return dict(self.by_target).get(python_resolve, ())


@rule
async def all_lambda_lock_needs(all_targets: AllTargets) -> AllLambdaLockNeeds:
    lambda_targets = [tgt for tgt in all_targets if is_lambda_target(tgt)]
    needs = await MultiGet(
        Get(LockInputs, LambdaLockNeedsRequest(tgt.address)) for tgt in lambda_targets
    )
    merged: Dict[str, List[LockInputs]] = {}
    targets: Dict[str, List[Tuple[str, LockInputs]]] = {}
    for tgt, need in zip(lambda_targets, needs):
        merged.setdefault(need.python_resolve, []).append(need)
        targets.setdefault(need.python_resolve, []).append((str(tgt.address), need))
    by_resolve = []
    for python_resolve, items in sorted(merged.items()):
        platforms = tuple(p for item in items for p in item.platforms)
        by_resolve.append(
            (
                python_resolve,
                LockInputs.create(
                    python_resolve=python_resolve,
                    requirements=(r for item in items for r in item.requirements),
                    platforms=platforms,
                    platform_digests=complete_platform_digests(platforms),
                    custom_platforms=(c for item in items for c in item.custom_platforms),
                ),
            )
        )
    return AllLambdaLockNeeds(
        tuple(by_resolve), tuple((r, tuple(sorted(t))) for r, t in sorted(targets.items()))
    )


# ---------------------------------------------------------------------------------------------
# `pants generate-lockfiles`
# ---------------------------------------------------------------------------------------------


class KnownLambdaPlatformResolveNamesRequest(KnownUserResolveNamesRequest):
    pass


class RequestedLambdaPlatformResolveNames(RequestedUserResolveNames):
    pass


@dataclass(frozen=True)
class GenerateLambdaPlatformLockfile(GenerateLockfile):
    inputs: LockInputs
    universal_lockfile: str
    # (address, its own needs) of each Lambda target in the resolve, for error messages.
    needed_by: Tuple[Tuple[str, LockInputs], ...] = ()


@rule
async def known_lambda_platform_resolves(
    _: KnownLambdaPlatformResolveNamesRequest, all_targets: AllTargets, python_setup: PythonSetup
) -> KnownUserResolveNames:
    python_resolves = sorted(
        {
            tgt[PythonResolveField].normalized_value(python_setup)
            for tgt in all_targets
            if is_lambda_target(tgt)
        }
    )
    return KnownUserResolveNames(
        names=tuple(platform_lockfiles.platform_resolve_name(r) for r in python_resolves),
        option_name="[python].resolves (used by Lambda targets)",
        requested_resolve_names_cls=RequestedLambdaPlatformResolveNames,
    )


@rule
async def setup_lambda_platform_lockfiles(
    requested: RequestedLambdaPlatformResolveNames,
    needs: AllLambdaLockNeeds,
    python_setup: PythonSetup,
) -> UserGenerateLockfiles:
    requests = []
    for name in requested:
        python_resolve = platform_lockfiles.python_resolve_of(name)
        assert python_resolve is not None
        universal = python_setup.resolves[python_resolve]
        requests.append(
            GenerateLambdaPlatformLockfile(
                resolve_name=name,
                lockfile_dest=platform_lockfiles.platform_lockfile_path(universal),
                diff=False,
                inputs=needs.get(python_resolve),
                universal_lockfile=universal,
                needed_by=needs.targets(python_resolve),
            )
        )
    return UserGenerateLockfiles(requests)


@rule
def wrap_lambda_platform_lockfile(
    request: GenerateLambdaPlatformLockfile,
) -> WrappedGenerateLockfile:
    return WrappedGenerateLockfile(request)


def _lock_platforms(inputs: LockInputs) -> Tuple[Tuple[str, LockPlatform], ...]:
    """(complete platform file in the sandbox, how messages describe it) per platform."""
    result = []
    for runtime, arch in inputs.platforms:
        result.append(
            (
                f"{COMPLETE_PLATFORMS_DIR}/{complete_platform_filename(runtime, arch)}",
                LockPlatform(
                    f"{runtime} {arch}",
                    frozenset(compatible_tags(runtime, arch)),
                    marker_environment(runtime, arch)["platform_machine"],
                ),
            )
        )
    for name, text in inputs.custom_platforms:
        try:
            data = json.loads(text)
            tags = frozenset(str(t) for t in data.get("compatible_tags", []))
            machine = str(data.get("marker_environment", {}).get("platform_machine", ""))
        except (ValueError, AttributeError):
            tags, machine = frozenset(), ""
        result.append((f"{COMPLETE_PLATFORMS_DIR}/{name}", LockPlatform(name, tags, machine)))
    return tuple(result)


def _needed_by(needed_by: Sequence[Tuple[str, LockInputs]]) -> Dict[str, List[str]]:
    """{platform label: addresses of the targets that bring it into the resolve}."""
    result: Dict[str, List[str]] = {}
    for address, need in needed_by:
        labels = [f"{runtime} {arch}" for runtime, arch in need.platforms]
        labels += [name for name, _ in need.custom_platforms]
        for label in labels:
            result.setdefault(label, []).append(address)
    return result


def _lock_process(
    inputs: LockInputs,
    platform_files: Sequence[str],
    resolve_config: ResolvePexConfig,
    platforms_digest: Digest,
    python_setup: PythonSetup,
    description: str,
) -> PexCliProcess:
    platform_args = []
    for path in platform_files:
        platform_args.extend(["--complete-platform", path])
    return PexCliProcess(
        subcommand=("lock", "create"),
        extra_args=(
            "--output=lock.json",
            "--style=strict",
            # Lambda has no compiler: wheels only, so a missing wheel fails here, not in AWS.
            "--no-build",
            "--pip-version",
            python_setup.pip_version.value,
            "--resolver-version",
            "pip-2020-resolver",
            "--indent=2",
            *resolve_config.pex_args(),
            *platform_args,
            *inputs.requirements,
        ),
        additional_input_digest=platforms_digest,
        output_files=("lock.json",),
        description=description,
        # Like Pants' own lockfiles: always ask the index afresh, never replay a cached lock.
        cache_scope=ProcessCacheScope.PER_SESSION,
    )


_INDEX_LOOKUP_SCRIPT = "__index_lookup.py"


@dataclass(frozen=True)
class IndexLookupRequest:
    indexes: Tuple[str, ...]
    projects: Tuple[str, ...]


@dataclass(frozen=True)
class IndexLookup:
    """`index_lookup.py`'s JSON; empty when the index could not be asked."""

    json_text: str


@rule(desc="Ask the package index about locked projects", level=LogLevel.DEBUG)
async def lookup_index(
    request: IndexLookupRequest,
    bootstrap: PythonBuildStandaloneBinary,
    subprocess_env: SubprocessEnvironmentVars,
) -> IndexLookup:
    """The network access happens in this Process, so rules stay pure and remotable."""
    ((_, content),) = script_files("index_lookup.py")
    script = await Get(Digest, CreateDigest([FileContent(_INDEX_LOOKUP_SCRIPT, content)]))
    result = await Get(
        FallibleProcessResult,
        Process(
            argv=(
                bootstrap.path,
                _INDEX_LOOKUP_SCRIPT,
                "--out",
                "index.json",
                *(f"--index={index}" for index in request.indexes),
                *request.projects,
            ),
            input_digest=script,
            output_files=("index.json",),
            env={**subprocess_env.vars, "PYTHONDONTWRITEBYTECODE": "1"},
            append_only_caches=PythonBuildStandaloneBinary.APPEND_ONLY_CACHES,
            description=f"Ask the package index about {len(request.projects)} project(s)",
            level=LogLevel.DEBUG,
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    if result.exit_code != 0:
        logger.debug("index lookup failed: %s", result.stderr.decode(errors="replace"))
        return IndexLookup("")
    contents = await Get(DigestContents, Digest, result.output_digest)
    return IndexLookup(contents[0].content.decode() if contents else "")


@rule(desc="Generate a Lambda platform lockfile", level=LogLevel.DEBUG)
async def generate_lambda_platform_lockfile(
    request: GenerateLambdaPlatformLockfile, python_setup: PythonSetup
) -> GenerateLockfileResult:
    inputs = request.inputs
    resolve_config, platforms_digest = await MultiGet(
        Get(ResolvePexConfig, ResolvePexConfigRequest(inputs.python_resolve)),
        Get(
            Digest, CreateDigest(complete_platform_files(inputs.platforms, inputs.custom_platforms))
        ),
    )
    platforms = _lock_platforms(inputs)
    result = await Get(
        FallibleProcessResult,
        PexCliProcess,
        _lock_process(
            inputs,
            [path for path, _ in platforms],
            resolve_config,
            platforms_digest,
            python_setup,
            f"Lock {inputs.python_resolve} for Lambda "
            + ", ".join(platform.label for _, platform in platforms),
        ),
    )
    if result.exit_code != 0:
        raise LambdaPlatformLockError(
            await _explain_failure(
                request, platforms, result, resolve_config, platforms_digest, python_setup
            )
        )
    lock_contents, universal_contents = await MultiGet(
        Get(DigestContents, Digest, result.output_digest),
        Get(DigestContents, PathGlobs([request.universal_lockfile])),
    )
    lock_text = platform_lockfiles.add_header(lock_contents[0].content.decode(), inputs)
    if universal_contents:
        _warn_about_version_differences(
            lock_text, universal_contents[0].content.decode(), request.universal_lockfile
        )
    lookup = await Get(
        IndexLookup,
        IndexLookupRequest(
            tuple(resolve_config.indexes), tuple(sorted(platform_lockfiles.locked_pins(lock_text)))
        ),
    )
    warning = platform_lockfiles.yanked_warning(
        request.lockfile_dest,
        platform_lockfiles.yanked_pins(
            lock_text, platform_lockfiles.parse_index_lookup(lookup.json_text)
        ),
    )
    if warning:
        logger.warning(warning)
    digest = await Get(
        Digest, CreateDigest([FileContent(request.lockfile_dest, lock_text.encode())])
    )
    return GenerateLockfileResult(digest, request.resolve_name, request.lockfile_dest)


def _output(result: FallibleProcessResult) -> str:
    return result.stderr.decode(errors="replace") + result.stdout.decode(errors="replace")


async def _explain_failure(
    request: GenerateLambdaPlatformLockfile,
    platforms: Sequence[Tuple[str, LockPlatform]],
    result: FallibleProcessResult,
    resolve_config: ResolvePexConfig,
    platforms_digest: Digest,
    python_setup: PythonSetup,
) -> str:
    """Every failing platform (pex stops at the first), each explained with the index's help."""
    inputs = request.inputs
    failures: List[platform_lockfiles.PlatformFailure] = []
    if len(platforms) > 1:
        # Lock each platform alone to learn which ones fail and why.
        results = await MultiGet(
            Get(
                FallibleProcessResult,
                PexCliProcess,
                _lock_process(
                    inputs,
                    [path],
                    resolve_config,
                    platforms_digest,
                    python_setup,
                    f"Lock {inputs.python_resolve} for Lambda {platform.label} alone",
                ),
            )
            for path, platform in platforms
        )
        failures = [
            platform_lockfiles.PlatformFailure(platform, _output(one))
            for (_, platform), one in zip(platforms, results)
            if one.exit_code != 0
        ]
    if not failures:
        # One platform, or each alone locks (then the platforms conflict together): pex's own
        # output, attributed to the platform its pip run names when it names one.
        output = _output(result)
        failures = [platform_lockfiles.PlatformFailure(_platform_in(output, platforms), output)]
    projects = sorted({f.pip_failure.project for f in failures if f.pip_failure is not None})
    index: Dict[str, platform_lockfiles.IndexFiles] = {}
    if projects:
        lookup = await Get(
            IndexLookup, IndexLookupRequest(tuple(resolve_config.indexes), tuple(projects))
        )
        index = platform_lockfiles.parse_index_lookup(lookup.json_text)
    return platform_lockfiles.explain_lock_failures(
        inputs.python_resolve,
        failures,
        [platform for _, platform in platforms],
        index,
        _needed_by(request.needed_by),
        inputs.requirements,
    )


def _platform_in(output: str, platforms: Sequence[Tuple[str, LockPlatform]]) -> LockPlatform:
    failure = platform_lockfiles.parse_pip_failure(output)
    if failure is not None and failure.platform_tag:
        for _, platform in platforms:
            if failure.platform_tag in platform.tags:
                return platform
    if len(platforms) == 1:
        return platforms[0][1]
    return LockPlatform("all platforms", frozenset(), "")


def _warn_about_version_differences(platform_lock: str, universal_lock: str, path: str) -> None:
    try:
        differences = platform_lockfiles.version_differences(platform_lock, universal_lock)
    except ValueError:
        return
    if differences:
        lines = "\n".join(
            f"  {project}: {platform_version} for {platform}, {universal_version} in {path}"
            for project, platform, platform_version, universal_version in differences
        )
        logger.warning(
            "These distributions are locked at other versions for Lambda than in the resolve's "
            f"own lockfile, which tests run against:\n{lines}\n"
            "Pin them in your requirements to test what you deploy."
        )


def rules():
    return (
        *collect_rules(),
        UnionRule(GenerateLockfile, GenerateLambdaPlatformLockfile),
        UnionRule(KnownUserResolveNamesRequest, KnownLambdaPlatformResolveNamesRequest),
        UnionRule(RequestedUserResolveNames, RequestedLambdaPlatformResolveNames),
    )
