"""PEX complete platforms derived from the Lambda runtime table.

A complete platform tells PEX (`--complete-platform FILE`) exactly which wheels a target
interpreter accepts and how its environment markers evaluate, so lockfiles and ZIPs can be
built for Lambda on any machine, without Docker and without a local interpreter. Deriving it
from `runtimes.py` (rather than committing JSON captured inside AWS's images) keeps one source
of truth and makes a new runtime a one-line change. The tags come from `packaging.tags`, given
the platform list a glibc machine of the runtime's version would report, so they match
`packaging.tags.sys_tags()` on such a machine, order included (the tests prove it against real
interpreters).

Works with packaging 21.3 (the version Pants 2.17 ships) and newer.
"""

from __future__ import annotations

import json
from typing import Dict, List, Mapping, Tuple, Union

from packaging import tags as packaging_tags

from pants_powertools.runtimes import Architecture, LambdaRuntime, get_architecture, get_runtime

RuntimeLike = Union[LambdaRuntime, str]
ArchitectureLike = Union[Architecture, str]

# PEP 600: the oldest glibc a `manylinux_2_N_<machine>` tag is defined for on each machine;
# `packaging` stops at the same point (x86_64/i686 go back to manylinux1's glibc 2.5, other
# machines only to manylinux2014's 2.17).
_OLDEST_MANYLINUX_GLIBC: Mapping[str, Tuple[int, int]] = {
    "x86_64": (2, 5),
    "i686": (2, 5),
}
_DEFAULT_OLDEST_MANYLINUX_GLIBC = (2, 17)

# PEP 599/571/513 legacy names, each an alias of one `manylinux_2_N` level on some machines.
_LEGACY_MANYLINUX: Mapping[Tuple[int, int], Tuple[str, Tuple[str, ...]]] = {
    (2, 17): (
        "manylinux2014",
        ("x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x"),
    ),
    (2, 12): ("manylinux2010", ("x86_64", "i686")),
    (2, 5): ("manylinux1", ("x86_64", "i686")),
}

# Lambda runs functions in Firecracker micro-VMs whose kernel AWS picks independently of the
# runtime's OS and changes without notice (functions have reported `4.14.*.amzn2` and later
# 5.10-series releases). No wheel metadata we know of depends on these two markers; the values
# are plausible rather than exact, and identical for every runtime so that output is stable.
_PLATFORM_RELEASE = "5.10.0"
_PLATFORM_VERSION = "#1 SMP"


def _runtime(runtime: RuntimeLike) -> LambdaRuntime:
    return runtime if isinstance(runtime, LambdaRuntime) else get_runtime(runtime)


def _architecture(architecture: ArchitectureLike) -> Architecture:
    if isinstance(architecture, Architecture):
        return architecture
    return get_architecture(architecture)


def _checked(
    runtime: RuntimeLike, architecture: ArchitectureLike
) -> Tuple[LambdaRuntime, Architecture]:
    """Resolve names and refuse a pair AWS does not offer, before any tag is computed."""
    rt = _runtime(runtime)
    arch = _architecture(architecture)
    if not rt.supports(arch):
        raise ValueError(
            "AWS Lambda does not offer the {} runtime on {}; it offers it on: {}.".format(
                rt.name, arch.name, ", ".join(a.name for a in rt.architectures)
            )
        )
    return rt, arch


def linux_platform_tags(machine: str, glibc: Tuple[int, int]) -> List[str]:
    """Platform tags a glibc `glibc` Linux on `machine` accepts, most specific first.

    `manylinux_2_{N}` from the glibc minor down to the machine's oldest manylinux level, each
    followed by its legacy alias where one exists, then `linux_<machine>`: the order
    `packaging.tags.sys_tags()` yields on a real machine.
    """
    major, minor = glibc
    oldest_major, oldest_minor = _OLDEST_MANYLINUX_GLIBC.get(
        machine, _DEFAULT_OLDEST_MANYLINUX_GLIBC
    )
    if major != oldest_major:
        raise ValueError("Only glibc 2.x is supported, got {}.{}.".format(major, minor))
    platforms: List[str] = []
    for level in range(minor, oldest_minor - 1, -1):
        platforms.append("manylinux_{}_{}_{}".format(major, level, machine))
        legacy = _LEGACY_MANYLINUX.get((major, level))
        if legacy is not None and machine in legacy[1]:
            platforms.append("{}_{}".format(legacy[0], machine))
    platforms.append("linux_{}".format(machine))
    return platforms


def platform_tags(runtime: RuntimeLike, architecture: ArchitectureLike) -> List[str]:
    """The platform tags of a Lambda runtime on an architecture, most specific first."""
    rt, arch = _checked(runtime, architecture)
    return linux_platform_tags(arch.machine, rt.glibc)


def compatible_tags(runtime: RuntimeLike, architecture: ArchitectureLike) -> List[str]:
    """Every wheel tag the runtime accepts, in the interpreter's order of preference.

    CPython-specific tags (own ABI, abi3 down to cp32, none), then pure/generic tags down to
    `py30-none-any`, exactly as `packaging.tags.sys_tags()` composes them. The ABI is given
    explicitly so the result never depends on the interpreter running this code (a debug build
    would otherwise add a `d` ABI).
    """
    rt, _ = _checked(runtime, architecture)
    platforms = platform_tags(rt, architecture)
    specific = packaging_tags.cpython_tags(
        python_version=rt.python_version, abis=[rt.interpreter_tag], platforms=platforms
    )
    generic = packaging_tags.compatible_tags(
        python_version=rt.python_version, interpreter=rt.interpreter_tag, platforms=platforms
    )
    return [str(tag) for tag in specific] + [str(tag) for tag in generic]


def marker_environment(runtime: RuntimeLike, architecture: ArchitectureLike) -> Dict[str, str]:
    """PEP 508 environment markers as they evaluate inside the Lambda runtime.

    `python_full_version`/`implementation_version` use the table's representative patch:
    AWS patches runtimes in place, so no fixed value can be exact, and markers on the patch
    level are rare. See `_PLATFORM_RELEASE` for the kernel markers.
    """
    rt, arch = _checked(runtime, architecture)
    return {
        "implementation_name": "cpython",
        "implementation_version": rt.python_full_version,
        "os_name": "posix",
        "platform_machine": arch.machine,
        "platform_python_implementation": "CPython",
        "platform_release": _PLATFORM_RELEASE,
        "platform_system": "Linux",
        "platform_version": _PLATFORM_VERSION,
        "python_full_version": rt.python_full_version,
        "python_version": rt.python_version_str,
        "sys_platform": "linux",
    }


def complete_platform(
    runtime: RuntimeLike, architecture: ArchitectureLike
) -> Dict[str, Union[Dict[str, str], List[str]]]:
    """The PEX complete platform (`marker_environment` + `compatible_tags`) as a dict."""
    return {
        "marker_environment": marker_environment(runtime, architecture),
        "compatible_tags": compatible_tags(runtime, architecture),
    }


def complete_platform_json(runtime: RuntimeLike, architecture: ArchitectureLike) -> str:
    """The complete platform as a JSON document, byte-identical for identical inputs.

    Sorted keys, two-space indent, ASCII, trailing newline: it feeds Pants' cache keys, so any
    formatting drift would needlessly invalidate lockfiles and builds.
    """
    return (
        json.dumps(
            complete_platform(runtime, architecture),
            indent=2,
            sort_keys=True,
            ensure_ascii=True,
            separators=(",", ": "),
        )
        + "\n"
    )


def complete_platform_filename(runtime: RuntimeLike, architecture: ArchitectureLike) -> str:
    """A stable file name for the JSON document, e.g. `python3.12-arm64.json`."""
    rt, arch = _checked(runtime, architecture)
    return "{}-{}.json".format(rt.name, arch.name)
