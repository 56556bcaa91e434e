"""The typed boundary around `sandbox/lambda_zip.py`: a frozen request in, a frozen report out.

One place turns a `LambdaZipRequest` into the script's JSON request, and the script's JSON report
into a `ZipReport`; the ZIP's bytes stay in the store (the script reports sha256 and sizes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from pants_powertools.util_rules.interpreters import LinkedPython, ScriptPythonRequest
from pants_powertools.util_rules.sandbox_inputs import script_input

_SCRIPT = "__lambda_zip/lambda_zip.py"
_REQUEST = "__lambda_zip/request.json"
_REPORT = "__lambda_zip/report.json"


class LambdaZipError(Exception):
    """The script refused its inputs; the message is written for the user."""


@dataclass(frozen=True)
class ZipSource:
    path: str  # A directory or a ZIP in the input digest.
    first_party: bool = False  # Code that must compile; third-party code that does not warns.


@dataclass(frozen=True)
class NativeCheck:
    architecture: str
    max_glibc: Tuple[int, int]


@dataclass(frozen=True)
class LambdaZipRequest:
    input_digest: Digest
    output: str
    sources: Tuple[ZipSource, ...]
    files: Tuple[Tuple[str, str], ...] = ()  # (arcname, path in the input digest)
    prefix: str = ""
    exclude_top_level: Tuple[str, ...] = ("bin",)
    exclude_distributions: Tuple[str, ...] = ()
    excluded_output: Optional[str] = None
    stand_in_distributions: Tuple[str, ...] = ()  # Which excluded ones go to excluded_output.
    # Compile hash-based .pyc with this interpreter, which must be the runtime's CPython.
    compiler: Optional[LinkedPython] = None
    native: Optional[NativeCheck] = None
    description: str = "Write a Lambda ZIP"
    # Leave out the distributions' tests, stubs, C sources and docs (never first-party files).
    slim: bool = False
    metadata_of: Tuple[str, ...] = ()  # Distributions whose METADATA text the report carries.

    def script_request(self) -> Dict[str, Any]:
        return {
            "output": self.output,
            "sources": [{"path": s.path, "first_party": s.first_party} for s in self.sources],
            "files": [list(pair) for pair in self.files],
            "prefix": self.prefix,
            "exclude_top_level": list(self.exclude_top_level),
            "exclude_distributions": sorted(self.exclude_distributions),
            "excluded_output": self.excluded_output,
            "stand_in_distributions": sorted(self.stand_in_distributions),
            "python_version": (
                ".".join(self.compiler.version.split(".")[:2]) if self.compiler else None
            ),
            "native": (
                {
                    "architecture": self.native.architecture,
                    "max_glibc": list(self.native.max_glibc),
                }
                if self.native
                else None
            ),
            "slim": self.slim,
            "metadata_of": list(self.metadata_of),
        }


@dataclass(frozen=True)
class ZipReport:
    sha256: str
    code_sha256: str  # Base64 of the digest, as Lambda reports `CodeSha256`.
    size: int
    unzipped_size: int
    file_count: int
    distributions: FrozenDict[str, str]
    distribution_sizes: FrozenDict[str, int]
    excluded_distributions: FrozenDict[str, str]
    compiled: int
    warnings: Tuple[str, ...]
    largest_first_party: Tuple[Tuple[str, int], ...]
    # {category: {"files": N, "bytes": unzipped size}} that slim left out; empty without slim.
    slimmed: FrozenDict[str, FrozenDict[str, int]] = FrozenDict()
    slim_kept: Tuple[str, ...] = ()  # Test or docs dirs kept because other code imports them.
    metadata: FrozenDict[str, str] = FrozenDict()  # {PEP 503 name: METADATA text}, if asked.

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ZipReport":
        return cls(
            sha256=data["sha256"],
            code_sha256=data["code_sha256"],
            size=int(data["size"]),
            unzipped_size=int(data["unzipped_size"]),
            file_count=int(data["file_count"]),
            distributions=FrozenDict(sorted(data["distributions"].items())),
            distribution_sizes=FrozenDict(sorted(data["distribution_sizes"].items())),
            excluded_distributions=FrozenDict(sorted(data["excluded_distributions"].items())),
            compiled=int(data["compiled"]),
            warnings=tuple(data["warnings"]),
            largest_first_party=tuple((p, int(s)) for p, s in data["largest_first_party"]),
            slimmed=FrozenDict(
                (category, FrozenDict((k, int(v)) for k, v in sorted(counts.items())))
                for category, counts in data.get("slimmed", {}).items()
            ),
            slim_kept=tuple(data.get("slim_kept", ())),
            metadata=FrozenDict(sorted(data.get("metadata", {}).items())),
        )


@dataclass(frozen=True)
class LambdaZip:
    digest: Digest  # Just the ZIP, at the request's `output`.
    report: ZipReport
    excluded_digest: Optional[Digest] = None  # The excluded distributions, when asked for.


@rule(desc="Write a Lambda ZIP", level=LogLevel.DEBUG)
async def write_lambda_zip(request: LambdaZipRequest) -> LambdaZip:
    python = request.compiler
    if python is None:
        python = await Get(LinkedPython, ScriptPythonRequest())
    script = await Get(
        Digest, script_input("__lambda_zip", "lambda_zip.py", request.script_request())
    )
    input_digest = await Get(Digest, MergeDigests([script, request.input_digest]))
    outputs = (
        request.output,
        _REPORT,
        *((request.excluded_output,) if request.excluded_output else ()),
    )
    process = python.process(
        ("-S", "-B", _SCRIPT, _REQUEST, _REPORT, "--workers", "{pants_concurrency}"),
        description=request.description,
        # Bytecode of CPython < 3.11 depends on the hash seed.
        env={"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUTF8": "1"},
        input_digest=input_digest,
        output_files=outputs,
        concurrency_available=4 if request.compiler else 1,
        level=LogLevel.DEBUG,
    )
    result = await Get(FallibleProcessResult, Process, process)
    if result.exit_code != 0:
        raise LambdaZipError(result.stderr.decode(errors="replace").strip())
    report_contents, zip_digest, excluded = await MultiGet(
        Get(DigestContents, DigestSubset(result.output_digest, PathGlobs([_REPORT]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([request.output]))),
        Get(
            Digest,
            DigestSubset(
                result.output_digest,
                PathGlobs([request.excluded_output] if request.excluded_output else []),
            ),
        ),
    )
    report = ZipReport.from_json(json.loads(report_contents[0].content))
    return LambdaZip(zip_digest, report, excluded if request.excluded_output else None)


def rules():
    return collect_rules()
