"""A Lambda target's platform lock: what the target needs from it, and the lock as read.

`goals/lockfile.py` writes the lock (`pants generate-lockfiles`) for what the targets of a
resolve need; packaging reads it here, without its header, at a fixed sandbox path, and refuses
one that is missing or stale (`PlatformLock.check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from pants.backend.python.subsystems.setup import PythonSetup
from pants.backend.python.target_types import PythonRequirementsField, PythonResolveField
from pants.core.target_types import FileSourceField
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, PathGlobs
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

from pants_powertools import platform_lockfiles
from pants_powertools.complete_platforms import complete_platform_filename, complete_platform_json
from pants_powertools.platform_lockfiles import LockInputs, Platform
from pants_powertools.target_types import (
    PowertoolsArchitectureField,
    PowertoolsCompletePlatformsField,
    PowertoolsLayerArchitecturesField,
    PowertoolsLayersField,
    PowertoolsRuntimeField,
)

# Where complete platform files sit in the sandboxes of pex processes.
COMPLETE_PLATFORMS_DIR = "__lambda_platforms"
LOCK_FILE = "__lambda_platforms.lock"


class LambdaPlatformLockError(Exception):
    """A platform lock that is missing, stale, or cannot be resolved."""


def is_lambda_target(tgt: Target) -> bool:
    return tgt.has_field(PowertoolsRuntimeField) and tgt.has_field(PythonResolveField)


def target_platforms(tgt: Target) -> Tuple[Platform, ...]:
    runtime = tgt[PowertoolsRuntimeField].value
    if tgt.has_field(PowertoolsLayerArchitecturesField):
        return tuple((runtime, arch) for arch in tgt[PowertoolsLayerArchitecturesField].value)
    return ((runtime, tgt[PowertoolsArchitectureField].value),)


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
        platform_digests=platform_lockfiles.complete_platform_digests(platforms),
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
                    platform_digests=platform_lockfiles.complete_platform_digests(platforms),
                    custom_platforms=(c for item in items for c in item.custom_platforms),
                ),
            )
        )
    return AllLambdaLockNeeds(
        tuple(by_resolve), tuple((r, tuple(sorted(t))) for r, t in sorted(targets.items()))
    )


@dataclass(frozen=True)
class PlatformLockRequest:
    python_resolve: str


@dataclass(frozen=True)
class PlatformLock:
    python_resolve: str
    path: str
    inputs: Optional[LockInputs]  # None when the file does not exist.
    digest: Digest  # The lock without its header, at LOCK_FILE, as pex reads it.

    def check(self, target: str, needs: LockInputs) -> None:
        """Refuse a missing or stale lock, naming the command that fixes it."""
        if self.inputs is None:
            raise LambdaPlatformLockError(
                platform_lockfiles.missing_lock_message(target, self.path, self.python_resolve)
            )
        reasons = platform_lockfiles.stale_reasons(self.inputs, needs)
        if reasons:
            raise LambdaPlatformLockError(
                platform_lockfiles.stale_lock_message(
                    target, self.path, self.python_resolve, reasons
                )
            )


@rule
async def read_platform_lock(
    request: PlatformLockRequest, python_setup: PythonSetup
) -> PlatformLock:
    universal = python_setup.resolves.get(request.python_resolve)
    if universal is None:
        raise LambdaPlatformLockError(
            f"The resolve `{request.python_resolve}` is not in [python].resolves."
        )
    path = platform_lockfiles.platform_lockfile_path(universal)
    contents = await Get(DigestContents, PathGlobs([path]))
    if not contents:
        empty = await Get(Digest, CreateDigest([]))
        return PlatformLock(request.python_resolve, path, None, empty)
    text = contents[0].content.decode()
    try:
        inputs = platform_lockfiles.read_lock(text, path, request.python_resolve)
    except platform_lockfiles.LockHeaderError as e:
        raise LambdaPlatformLockError(str(e))
    digest = await Get(
        Digest,
        CreateDigest([FileContent(LOCK_FILE, platform_lockfiles.strip_header(text).encode())]),
    )
    return PlatformLock(request.python_resolve, path, inputs, digest)


def rules():
    return collect_rules()
