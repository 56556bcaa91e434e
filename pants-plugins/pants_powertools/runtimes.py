"""AWS Lambda Python runtimes and architectures: the facts every artifact is built for.

Everything the plugin knows about a Lambda runtime lives in the one table `_RUNTIME_TABLE`
below, so that complete platforms, lockfiles, warnings and manifests cannot disagree.
Pants-free on purpose: this module is unit-tested in milliseconds and outlives Pants APIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Dict, Iterable, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Architecture:
    """A Lambda instruction set, named as AWS names it, with the machine name Python reports.

    AWS says `arm64` where `platform.machine()` and wheel tags say `aarch64`; keeping both here
    stops the two vocabularies from leaking into each other.
    """

    name: str
    machine: str


X86_64 = Architecture(name="x86_64", machine="x86_64")
ARM64 = Architecture(name="arm64", machine="aarch64")

# x86_64 first: it is AWS's default architecture.
ARCHITECTURES: Tuple[Architecture, ...] = (X86_64, ARM64)


@dataclass(frozen=True)
class LambdaRuntime:
    """One AWS Lambda Python runtime: the interpreter and OS a packaged ZIP must run on."""

    name: str
    python_version: Tuple[int, int]
    os: str
    glibc: Tuple[int, int]
    architectures: Tuple[Architecture, ...]
    deprecation_date: date
    # A CPython patch release standing in for the one Lambda runs (AWS updates the patch
    # in place without notice). Used only for the `python_full_version` marker; see
    # complete_platforms.py for why an exact value is neither possible nor needed.
    representative_patch: int

    @property
    def python_version_str(self) -> str:
        """`"3.12"`: the `python_version` environment marker and interpreter constraint form."""
        return "{}.{}".format(*self.python_version)

    @property
    def python_full_version(self) -> str:
        """`"3.12.8"`: the `python_full_version` marker value used for this runtime."""
        return "{}.{}.{}".format(
            self.python_version[0], self.python_version[1], self.representative_patch
        )

    @property
    def interpreter_tag(self) -> str:
        """`"cp312"`: the wheel interpreter (and CPython ABI) tag of this runtime."""
        return "cp{}{}".format(*self.python_version)

    def supports(self, architecture: Architecture) -> bool:
        """Whether AWS offers this runtime on `architecture`."""
        return architecture in self.architectures

    def is_deprecated(self, today: date) -> bool:
        """Whether AWS has deprecated this runtime (no more security patches) as of `today`."""
        return today >= self.deprecation_date


_AL2 = "Amazon Linux 2"
_AL2023 = "Amazon Linux 2023"
_GLIBC_AL2 = (2, 26)
_GLIBC_AL2023 = (2, 34)
_BOTH = (X86_64, ARM64)

# THE table. Deprecation dates are AWS's "Deprecation date" column (the day the runtime stops
# getting security patches; blocking of function create/update follows weeks to months later)
# from https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html and
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html, as stored in early 2026.
# AWS moves these dates (python3.9 moved from 2025-10-31 to 2025-12-15); re-check them there.
# test_data/aws_lambda_runtimes.md records what AWS publishes (with the block dates this table
# leaves out), and the tests compare this table with it: update that record first.
# - python3.9: 2025-12-15 (deprecated table; its block-create/update dates were postponed more
#   than once, so they are deliberately not recorded).
# - python3.13 and python3.14 share 2029-06-30 (Amazon Linux 2023's end of life, not
#   Python's); that is AWS's table, not a typo.
# Representative patches: CPython's December 2024 patch releases (3.14: its first release).
_RUNTIME_TABLE: Tuple[LambdaRuntime, ...] = (
    LambdaRuntime("python3.9", (3, 9), _AL2, _GLIBC_AL2, _BOTH, date(2025, 12, 15), 21),
    LambdaRuntime("python3.10", (3, 10), _AL2, _GLIBC_AL2, _BOTH, date(2026, 10, 31), 16),
    LambdaRuntime("python3.11", (3, 11), _AL2, _GLIBC_AL2, _BOTH, date(2027, 6, 30), 11),
    LambdaRuntime("python3.12", (3, 12), _AL2023, _GLIBC_AL2023, _BOTH, date(2028, 10, 31), 8),
    LambdaRuntime("python3.13", (3, 13), _AL2023, _GLIBC_AL2023, _BOTH, date(2029, 6, 30), 1),
    LambdaRuntime("python3.14", (3, 14), _AL2023, _GLIBC_AL2023, _BOTH, date(2029, 6, 30), 0),
)

RUNTIMES: Mapping[str, LambdaRuntime] = {runtime.name: runtime for runtime in _RUNTIME_TABLE}
RUNTIME_NAMES: Tuple[str, ...] = tuple(RUNTIMES)
ARCHITECTURE_NAMES: Tuple[str, ...] = tuple(arch.name for arch in ARCHITECTURES)

_ARCHITECTURES_BY_NAME: Dict[str, Architecture] = {arch.name: arch for arch in ARCHITECTURES}


class UnknownRuntimeError(ValueError):
    """A runtime name that is not a Lambda Python runtime this plugin knows."""


class UnknownArchitectureError(ValueError):
    """An architecture name that is not one of Lambda's."""


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def get_runtime(name: str) -> LambdaRuntime:
    """Look a runtime up by its AWS identifier (`python3.12`), failing with the valid choices."""
    runtime = RUNTIMES.get(name)
    if runtime is None:
        raise UnknownRuntimeError(
            "Unknown AWS Lambda Python runtime {!r}. Valid runtimes are: {}.".format(
                name, _quoted(RUNTIME_NAMES)
            )
        )
    return runtime


def get_architecture(name: str) -> Architecture:
    """Look an architecture up by its AWS name (`arm64`), failing with the valid choices.

    Machine names (`aarch64`, `amd64`) are refused but the message points at AWS's name, since
    the same word must mean the same thing in BUILD files, manifests and SAM/CDK templates.
    """
    arch = _ARCHITECTURES_BY_NAME.get(name)
    if arch is not None:
        return arch
    hint = ""
    lowered = name.lower()
    for candidate in ARCHITECTURES:
        if lowered == candidate.machine or (candidate is X86_64 and lowered in ("amd64", "x64")):
            hint = " Did you mean {!r}? Lambda names it that way.".format(candidate.name)
    raise UnknownArchitectureError(
        "Unknown AWS Lambda architecture {!r}. Valid architectures are: {}.{}".format(
            name, _quoted(ARCHITECTURE_NAMES), hint
        )
    )


def newest_runtime() -> LambdaRuntime:
    """The newest runtime in the table."""
    return max(_RUNTIME_TABLE, key=lambda runtime: runtime.python_version)


def deprecation_warning(runtime: LambdaRuntime, today: date) -> Optional[str]:
    """A warning to show when building for a runtime AWS has deprecated, else None.

    Building still works (existing functions keep running), but the artifact will stop getting
    security patches and AWS will soon refuse to create or update functions with it.
    """
    if not runtime.is_deprecated(today):
        return None
    newer = [
        other
        for other in _RUNTIME_TABLE
        if other.python_version > runtime.python_version and not other.is_deprecated(today)
    ]
    if newer:
        suggestion = 'Move to a newer runtime, for example runtime="{}".'.format(
            max(newer, key=lambda other: other.python_version).name
        )
    else:
        suggestion = (
            "This plugin knows no newer runtime that is still supported: upgrade "
            "pants-powertools and check AWS's list of Lambda runtimes."
        )
    return (
        "AWS Lambda deprecated the {name} runtime on {when}: it no longer receives security "
        "patches, and AWS blocks creating and later updating functions that use it. "
        "{suggestion}".format(
            name=runtime.name, when=runtime.deprecation_date.isoformat(), suggestion=suggestion
        )
    )
