"""Reading a resolve's Lambda platform lock, as packaging consumes it.

`lockfile_rules.py` writes the lock (`pants generate-lockfiles`); this reads it, without its
header, at a fixed sandbox path, and refuses one that is missing or stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pants.backend.python.subsystems.setup import PythonSetup
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent, PathGlobs
from pants.engine.rules import Get, collect_rules, rule

from pants_powertools import platform_lockfiles
from pants_powertools.lockfile_rules import LambdaPlatformLockError
from pants_powertools.platform_lockfiles import LockInputs

LOCK_FILE = "__lambda_platforms.lock"


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
