"""`pants generate-lockfiles` for Lambda platforms: one platform lock per python resolve.

Each resolve used by Lambda targets gets a second resolve name (`<resolve>-lambda-platforms`)
whose lock is a strict pex lock for exactly the (runtime, architecture) pairs its targets
deploy to. What the targets need comes from `util_rules/platform_lock.py`, which packaging
also uses to refuse a stale lock; the messages and the header are `platform_lockfiles.py`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import PythonResolveField
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
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, PathGlobs
from pants.engine.process import FallibleProcessResult, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import AllTargets
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from pants_powertools import lock_failures, platform_lockfiles
from pants_powertools.lock_failures import LockPlatform
from pants_powertools.platform_lockfiles import LockInputs
from pants_powertools.util_rules.index_lookup import IndexLookup, IndexLookupRequest
from pants_powertools.util_rules.platform_lock import (
    COMPLETE_PLATFORMS_DIR,
    AllLambdaLockNeeds,
    LambdaPlatformLockError,
    complete_platform_files,
    is_lambda_target,
)

logger = logging.getLogger(__name__)


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
    return tuple(
        (f"{COMPLETE_PLATFORMS_DIR}/{name}", platform)
        for name, platform in lock_failures.lock_platforms(inputs)
    )


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
        differences = platform_lockfiles.version_differences_warning(
            lock_text, universal_contents[0].content.decode(), request.universal_lockfile
        )
        if differences:
            logger.warning(differences)
    lookup = await Get(
        IndexLookup,
        IndexLookupRequest(
            tuple(resolve_config.indexes), tuple(sorted(lock_failures.locked_pins(lock_text)))
        ),
    )
    warning = lock_failures.yanked_warning(
        request.lockfile_dest,
        lock_failures.yanked_pins(lock_text, lock_failures.parse_index_lookup(lookup.json_text)),
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
    failures: List[lock_failures.PlatformFailure] = []
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
            lock_failures.PlatformFailure(platform, _output(one))
            for (_, platform), one in zip(platforms, results)
            if one.exit_code != 0
        ]
    if not failures:
        # One platform, or each alone locks (then the platforms conflict together): pex's own
        # output, attributed to the platform its pip run names when it names one.
        output = _output(result)
        failing = lock_failures.failing_platform(output, [p for _, p in platforms])
        failures = [lock_failures.PlatformFailure(failing, output)]
    projects = sorted({f.pip_failure.project for f in failures if f.pip_failure is not None})
    index: Dict[str, lock_failures.IndexFiles] = {}
    if projects:
        lookup = await Get(
            IndexLookup, IndexLookupRequest(tuple(resolve_config.indexes), tuple(projects))
        )
        index = lock_failures.parse_index_lookup(lookup.json_text)
    return lock_failures.explain_lock_failures(
        inputs.python_resolve,
        failures,
        [platform for _, platform in platforms],
        index,
        lock_failures.platforms_needed_by(request.needed_by),
        inputs.requirements,
    )


def rules():
    return (
        *collect_rules(),
        UnionRule(GenerateLockfile, GenerateLambdaPlatformLockfile),
        UnionRule(KnownUserResolveNamesRequest, KnownLambdaPlatformResolveNamesRequest),
        UnionRule(RequestedUserResolveNames, RequestedLambdaPlatformResolveNames),
    )
