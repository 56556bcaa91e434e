"""Asking the package index about projects (their files and yanks), in a sandboxed Process.

The network access happens in the Process (`sandbox/index_lookup.py`), so rules stay pure and
remotable; `generate-lockfiles` uses the answer to explain failures and warn about yanks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Tuple

from pants.core.util_rules.adhoc_binaries import PythonBuildStandaloneBinary
from pants.core.util_rules.subprocess_environment import SubprocessEnvironmentVars
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule
from pants.util.logging import LogLevel

from pants_powertools.sandbox import script_files

logger = logging.getLogger(__name__)

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


def rules():
    return collect_rules()
