"""The typed boundary around `sandbox/layer_build.py`: all of a layer's ZIPs in one process.

A layer's installed trees are not worth caching apart from its ZIPs (no code edit rebuilds a
layer but for its requirements), and carrying them between processes costs more than building
them: each would be hashed into the store and written out again into the ZIP step's sandbox.
So one process installs every architecture's wheels at once, compiles the pure-Python files
they share once, and writes each ZIP (`lambda_zip.build_zip`, as for functions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from pants_powertools.util_rules.interpreters import LinkedPython, ScriptPythonRequest
from pants_powertools.util_rules.lambda_zip import (
    LambdaZip,
    LambdaZipError,
    LambdaZipRequest,
    ZipReport,
)
from pants_powertools.util_rules.sandbox_inputs import script_input
from pants_powertools.util_rules.third_party import (
    InstallProcess,
    InstallProcessRequest,
    ThirdPartyTreeRequest,
)

_DIR = "__layer_build"
_REQUEST = f"{_DIR}/request.json"
_REPORT = f"{_DIR}/report.json"


def layer_tree_dir(architecture: str) -> str:
    """Where an architecture's wheels are installed in the layer's sandbox."""
    return f"__deps/{architecture}"


@dataclass(frozen=True)
class LayerZipPart:
    """One architecture: its wheels (none for a layer of first-party code only) and its ZIP.

    The ZIP request's sources name `layer_tree_dir(architecture)` for the installed wheels; its
    input digest holds the rest (the layer's own code)."""

    tree: ThirdPartyTreeRequest
    zip: LambdaZipRequest

    @property
    def tree_dir(self) -> str:
        return layer_tree_dir(self.tree.architecture)


@dataclass(frozen=True)
class LayerZipsRequest:
    parts: Tuple[LayerZipPart, ...]
    compiler: Optional[LinkedPython]
    # Compile the .py files the trees share once, for the ZIPs' common prefix (not with `slim`,
    # which leaves files out first).
    share_bytecode: bool
    description: str = "Build a Lambda layer"


@dataclass(frozen=True)
class LayerZips:
    zips: Tuple[LambdaZip, ...]  # In the order of the request's parts.


@rule(desc="Build a Lambda layer's ZIPs", level=LogLevel.DEBUG)
async def write_layer_zips(request: LayerZipsRequest) -> LayerZips:
    with_wheels = [part for part in request.parts if part.tree.requirements]
    installs = await MultiGet(
        Get(InstallProcess, InstallProcessRequest(part.tree, part.tree_dir)) for part in with_wheels
    )
    python = request.compiler
    if python is None:
        python = await Get(LinkedPython, ScriptPythonRequest())
    env: Dict[str, str] = {}
    for install in installs:
        env.update(install.process.env)
    script_request = {
        "installs": [
            {
                "architecture": part.tree.architecture,
                "argv": list(install.process.argv),
                "dest": part.tree_dir,
            }
            for part, install in zip(with_wheels, installs)
        ],
        "env": env,
        "share_bytecode_prefix": (
            request.parts[0].zip.prefix
            if request.share_bytecode and request.compiler is not None and len(with_wheels) > 1
            else None
        ),
        "zips": [
            {"spec": part.zip.script_request(), "tree": part.tree_dir} for part in request.parts
        ],
    }
    script = await Get(Digest, script_input(_DIR, "layer_build.py", script_request))
    input_digest = await Get(
        Digest,
        MergeDigests(
            [
                script,
                *(install.process.input_digest for install in installs),
                *(part.zip.input_digest for part in request.parts),
            ]
        ),
    )
    immutable: Dict[str, Digest] = {}
    caches: Dict[str, str] = dict(python.append_only_caches)
    for install in installs:
        immutable.update(install.process.immutable_input_digests)
        caches.update(install.process.append_only_caches)
    outputs = tuple(part.zip.output for part in request.parts) + (_REPORT,)
    process = Process(
        argv=(
            python.argv0,
            "-S",
            "-B",
            f"{_DIR}/layer_build.py",
            _REQUEST,
            _REPORT,
            "--workers",
            "{pants_concurrency}",
        ),
        description=request.description,
        # Bytecode of CPython < 3.11 depends on the hash seed.
        env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1"},
        input_digest=input_digest,
        immutable_input_digests=FrozenDict(immutable),
        append_only_caches=FrozenDict(caches),
        output_files=outputs,
        # Two architectures install, compile and deflate side by side.
        concurrency_available=4,
        level=LogLevel.DEBUG,
    )
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0:
        raise LambdaZipError(result.stderr.decode(errors="replace").strip())
    report_contents = await Get(
        DigestContents, DigestSubset(result.output_digest, PathGlobs([_REPORT]))
    )
    digests = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([part.zip.output])))
        for part in request.parts
    )
    reports = json.loads(report_contents[0].content)
    return LayerZips(
        zips=tuple(
            LambdaZip(digest, ZipReport.from_json(data)) for digest, data in zip(digests, reports)
        ),
    )


def rules():
    return collect_rules()
