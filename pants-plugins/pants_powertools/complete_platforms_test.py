"""Tests for PEX complete platforms: against an oracle that reads none of the plugin (AWS's
facts, the manylinux PEPs, `packaging.tags`) and against real CPython interpreters."""

from __future__ import annotations

import functools
import glob
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest
from packaging import tags as packaging_tags
from packaging.markers import Marker

from pants_powertools.complete_platforms import (
    compatible_tags,
    complete_platform,
    complete_platform_filename,
    complete_platform_json,
    linux_platform_tags,
    marker_environment,
    platform_tags,
)
from pants_powertools.runtimes import (
    ARCHITECTURE_NAMES,
    ARCHITECTURES,
    ARM64,
    RUNTIME_NAMES,
    X86_64,
    Architecture,
    UnknownArchitectureError,
    UnknownRuntimeError,
    get_runtime,
)
from pants_powertools.test_data import aws_lambda_facts

ALL_COMBINATIONS = [(rt, arch) for rt in RUNTIME_NAMES for arch in ARCHITECTURE_NAMES]
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")

# The PEP 508 marker variables (less `extra`), which are also exactly the fields of
# pex 2.3.3's `pex.pep_508.MarkerEnvironment`: PEX rejects unknown keys.
PEP_508_VARIABLES = {
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
}


def _platform(tag: str) -> str:
    return tag.split("-", 2)[2]


# --- platform tags ---------------------------------------------------------------------------


def test_x86_64_platforms_for_amazon_linux_2() -> None:
    expected = ["manylinux_2_{}_x86_64".format(n) for n in range(26, 16, -1)]
    expected += ["manylinux2014_x86_64"]
    expected += ["manylinux_2_{}_x86_64".format(n) for n in range(16, 11, -1)]
    expected += ["manylinux2010_x86_64"]
    expected += ["manylinux_2_{}_x86_64".format(n) for n in range(11, 4, -1)]
    expected += ["manylinux1_x86_64", "linux_x86_64"]
    assert platform_tags("python3.11", "x86_64") == expected


def test_aarch64_platforms_for_amazon_linux_2023() -> None:
    expected = ["manylinux_2_{}_aarch64".format(n) for n in range(34, 16, -1)]
    expected += ["manylinux2014_aarch64", "linux_aarch64"]
    assert platform_tags("python3.12", "arm64") == expected


def test_other_machines_stop_at_manylinux2014() -> None:
    assert linux_platform_tags("ppc64le", (2, 18)) == [
        "manylinux_2_18_ppc64le",
        "manylinux_2_17_ppc64le",
        "manylinux2014_ppc64le",
        "linux_ppc64le",
    ]


@pytest.mark.parametrize("runtime_name", RUNTIME_NAMES)
def test_arm64_tag_shape(runtime_name: str) -> None:
    runtime = get_runtime(runtime_name)
    tags = compatible_tags(runtime, ARM64)
    platforms = [_platform(tag) for tag in tags]
    assert not any("x86_64" in p or "manylinux1" in p or "manylinux2010" in p for p in platforms)
    assert all(p == "any" or p.endswith("_aarch64") for p in platforms)
    for tag, following in zip(tags, tags[1:]):
        if _platform(tag) == "manylinux_2_17_aarch64":
            assert following == tag.replace("manylinux_2_17_aarch64", "manylinux2014_aarch64")
    levels = sorted({int(m.group(2)) for m in map(_MANYLINUX.match, platforms) if m})
    assert levels == list(range(17, runtime.glibc[1] + 1))


@pytest.mark.parametrize("runtime_name, arch_name", ALL_COMBINATIONS)
def test_tag_shape(runtime_name: str, arch_name: str) -> None:
    runtime = get_runtime(runtime_name)
    machine = ARM64.machine if arch_name == "arm64" else X86_64.machine
    tags = compatible_tags(runtime_name, arch_name)
    cp = runtime.interpreter_tag
    assert len(tags) == len(set(tags))
    assert tags[0] == "{0}-{0}-manylinux_2_{1}_{2}".format(cp, runtime.glibc[1], machine)
    assert tags[-1] == "py30-none-any"
    for expected in (
        "{0}-abi3-linux_{1}".format(cp, machine),
        "cp32-abi3-manylinux2014_{}".format(machine),
        "{}-none-any".format(cp),
        "py3-none-any",
        "py3-none-manylinux_2_17_{}".format(machine),
    ):
        assert expected in tags
    for platform_ in map(_platform, tags):
        match = _MANYLINUX.match(platform_)
        if match:
            assert (int(match.group(1)), int(match.group(2))) <= runtime.glibc
        assert not platform_.startswith("musllinux")


# --- an independent oracle: AWS's facts, the manylinux PEPs and `packaging.tags` -----------
#
# The derivation reads runtimes.py; the oracle below reads none of the plugin. It takes the
# runtime's OS from AWS's record (test_data/aws_lambda_runtimes.md), that OS's glibc from the
# same record, the Python version from the runtime identifier, and the machine from the fact
# that Linux calls AWS's `arm64` `aarch64`. It enumerates the manylinux platforms from the PEPs
# and lets `packaging.tags` compose the tags, in the order pip and pex prefer them.

AWS = aws_lambda_facts.runtimes()
AWS_GLIBC = aws_lambda_facts.glibc_by_operating_system()
LINUX_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
# PEP 600: manylinux_2_N goes back to glibc 2.17 on every machine (manylinux2014, PEP 599),
# and to 2.5 on x86_64 only (manylinux1, PEP 513; manylinux2010, PEP 571).
OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
LEGACY_ALIASES = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def _oracle_platforms(machine: str, glibc: Tuple[int, int]) -> List[str]:
    major, newest = glibc
    assert major == 2
    platforms = []
    for minor in range(newest, OLDEST_GLIBC_MINOR[machine] - 1, -1):
        platforms.append("manylinux_2_{}_{}".format(minor, machine))
        if minor in LEGACY_ALIASES:
            platforms.append("{}_{}".format(LEGACY_ALIASES[minor], machine))
    return platforms + ["linux_{}".format(machine)]


def _oracle_tags(runtime_name: str, arch_name: str) -> List[str]:
    major, minor = (int(part) for part in runtime_name[len("python") :].split("."))
    interpreter = "cp{}{}".format(major, minor)
    machine = LINUX_MACHINE[arch_name]
    platforms = _oracle_platforms(machine, AWS_GLIBC[AWS[runtime_name].operating_system])
    specific = packaging_tags.cpython_tags((major, minor), [interpreter], platforms)
    generic = packaging_tags.compatible_tags((major, minor), interpreter, platforms)
    return [str(tag) for tag in specific] + [str(tag) for tag in generic]


@pytest.mark.parametrize("runtime_name", sorted(AWS))
@pytest.mark.parametrize("arch_name", sorted(LINUX_MACHINE))
def test_tags_equal_the_oracle_s(runtime_name: str, arch_name: str) -> None:
    assert compatible_tags(runtime_name, arch_name) == _oracle_tags(runtime_name, arch_name)


@pytest.mark.parametrize("machine", sorted(OLDEST_GLIBC_MINOR))
@pytest.mark.parametrize("glibc", sorted(set(AWS_GLIBC.values())))
def test_the_oracle_s_platforms_are_those_packaging_yields_on_such_a_machine(
    machine: str, glibc: Tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oracle's own check: `packaging` on a glibc `glibc` machine lists the same platforms.

    `packaging._manylinux` (private) reads the running glibc; it is told AWS's instead. Its
    `platform_tags` takes (linux, arch) in packaging 21 (Pants 2.17's) and [arch] since 22.
    """
    manylinux = pytest.importorskip("packaging._manylinux")
    monkeypatch.setattr(manylinux, "_get_glibc_version", lambda: glibc)
    monkeypatch.setattr(manylinux, "_is_compatible", lambda *args: True)
    linux = "linux_{}".format(machine)
    if len(inspect.signature(manylinux.platform_tags).parameters) == 2:
        platforms = list(manylinux.platform_tags(linux, machine))
    else:
        platforms = list(manylinux.platform_tags([machine]))
    assert _oracle_platforms(machine, glibc) == platforms + [linux]


def test_python3_14_on_arm64() -> None:
    """Facts a reader can check by eye, for the newest runtime on the less common machine."""
    tags = compatible_tags("python3.14", "arm64")
    # AL2023's glibc is 2.34: the most specific tag first, nothing newer than 2.34.
    assert tags[0] == "cp314-cp314-manylinux_2_34_aarch64"
    assert "cp314-cp314-manylinux_2_35_aarch64" not in tags
    assert not any(re.search(r"manylinux_2_(3[5-9]|[4-9]\d)_", tag) for tag in tags)
    # aarch64 only; manylinux2014 is manylinux_2_17's alias, and nothing older exists for it.
    assert all(tag.endswith("_aarch64") or tag.endswith("-any") for tag in tags)
    assert not any("x86_64" in tag or "manylinux1" in tag or "manylinux2010" in tag for tag in tags)
    position = tags.index("cp314-cp314-manylinux_2_17_aarch64")
    assert tags[position + 1] == "cp314-cp314-manylinux2014_aarch64"
    assert tags[position + 2] == "cp314-cp314-linux_aarch64"
    # The stable ABI from every CPython since 3.2, on every platform, most recent first.
    abi3 = [tag for tag in tags if tag.endswith("-abi3-manylinux_2_34_aarch64")]
    assert abi3 == ["cp3{}-abi3-manylinux_2_34_aarch64".format(n) for n in range(14, 1, -1)]
    assert "cp31-abi3-manylinux_2_34_aarch64" not in tags
    # Pure Python last, down to py30.
    assert tags[-3:] == ["py32-none-any", "py31-none-any", "py30-none-any"]
    assert {"py3-none-any", "cp314-none-any", "py314-none-manylinux_2_34_aarch64"} <= set(tags)
    # 20 platforms (manylinux_2_34 .. _2_17, manylinux2014, linux): cp314 with its own ABI,
    # abi3 and none, abi3 for cp313 .. cp32, then py314, py3, py313 .. py30 with none; then
    # cp314-none-any and the 16 py*-none-any.
    assert len(tags) == 20 * (3 + 12) + 20 * 16 + 1 + 16


def test_python3_14_on_arm64_markers() -> None:
    env = marker_environment("python3.14", "arm64")
    facts = (
        'platform_machine == "aarch64" and python_version == "3.14" and sys_platform == "linux"'
        ' and implementation_name == "cpython" and platform_system == "Linux"'
        ' and os_name == "posix" and platform_python_implementation == "CPython"'
    )
    assert Marker(facts).evaluate(dict(env))
    assert env["python_full_version"].startswith("3.14.")
    for wrong in (
        'platform_machine == "x86_64"',
        'platform_machine == "arm64"',
        'python_version < "3.14"',
        'python_version >= "3.15"',
        'sys_platform == "darwin"',
    ):
        assert not Marker(wrong).evaluate(dict(env)), wrong


# --- marker environment ----------------------------------------------------------------------


@pytest.mark.parametrize("runtime_name, arch_name", ALL_COMBINATIONS)
def test_marker_environment(runtime_name: str, arch_name: str) -> None:
    runtime = get_runtime(runtime_name)
    env = marker_environment(runtime_name, arch_name)
    assert set(env) == PEP_508_VARIABLES
    assert env["python_version"] == "{}.{}".format(*runtime.python_version)
    assert env["python_full_version"] == env["implementation_version"]
    assert env["python_full_version"].startswith(env["python_version"] + ".")
    assert env["platform_machine"] == ("aarch64" if arch_name == "arm64" else "x86_64")
    assert env["sys_platform"] == "linux" and env["platform_system"] == "Linux"
    assert env["implementation_name"] == "cpython"
    assert env["platform_python_implementation"] == "CPython"
    # Every variable evaluates with packaging, the way pip and PEX evaluate requirements.
    expression = " and ".join('{} != "nope"'.format(name) for name in sorted(env))
    assert Marker(expression).evaluate(dict(env))
    assert Marker('python_version >= "3.9" and platform_release >= "4"').evaluate(dict(env))


# --- JSON document ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime_name, arch_name", ALL_COMBINATIONS)
def test_json_is_deterministic_and_round_trips(runtime_name: str, arch_name: str) -> None:
    text = complete_platform_json(runtime_name, arch_name)
    assert text == complete_platform_json(get_runtime(runtime_name), arch_name)
    assert text.endswith("}\n") and not text.endswith("\n\n")
    data = json.loads(text)
    assert data == complete_platform(runtime_name, arch_name)
    assert list(data) == ["compatible_tags", "marker_environment"]
    assert list(data["marker_environment"]) == sorted(data["marker_environment"])
    assert data["compatible_tags"] == compatible_tags(runtime_name, arch_name)


def test_filenames() -> None:
    assert complete_platform_filename("python3.12", "arm64") == "python3.12-arm64.json"
    assert complete_platform_filename(get_runtime("python3.9"), X86_64) == "python3.9-x86_64.json"
    names = {complete_platform_filename(rt, arch) for rt, arch in ALL_COMBINATIONS}
    assert len(names) == len(ALL_COMBINATIONS)


def test_bad_names_fail_clearly() -> None:
    with pytest.raises(UnknownRuntimeError):
        complete_platform("python2.7", "x86_64")
    with pytest.raises(UnknownArchitectureError):
        complete_platform_json("python3.12", "aarch64")


def test_unsupported_architecture_is_refused() -> None:
    riscv = Architecture(name="riscv64", machine="riscv64")
    with pytest.raises(ValueError, match="does not offer the python3.12 runtime on riscv64"):
        complete_platform("python3.12", riscv)


# One pex process parses every document (pex's start-up, not the parsing, is what costs: about
# 0.9 s a process); each document's outcome, error included, is reported under its own key, so
# a document pex rejects fails only its own case below.
_PEX_PARSE = r"""
import json, sys, traceback
from pex.resolve.target_options import _create_complete_platform
results = {}
for key, text in json.load(sys.stdin).items():
    try:
        platform_ = _create_complete_platform(text)
        results[key] = {
            "markers": platform_.marker_environment.as_dict(),
            "tags": [str(tag) for tag in platform_.supported_tags],
        }
    except Exception:
        results[key] = {"error": traceback.format_exc()}
print(json.dumps(results))
"""


def _pex_cli() -> str:
    """The pex CLI PEX Pants runs (built by ./pants, which exports its location)."""
    template = os.environ.get("PANTS_PEX_CLI_URL_TEMPLATE", "")
    if template.startswith("file://"):
        return template[len("file://") :]
    try:
        import pex  # noqa: F401  # pants: no-infer-dep
    except ImportError:
        pytest.fail("Run via ./pants (PANTS_PEX_CLI_URL_TEMPLATE) or install pex==2.3.3.")
    return ""


def _document_key(runtime_name: str, arch_name: str) -> str:
    return "{}-{}".format(runtime_name, arch_name)


@pytest.fixture(scope="module")
def pex_parsed() -> Dict[str, Dict[str, Any]]:
    """What pex makes of every runtime/architecture's document, parsed in one pex process the
    way `pex --complete-platform` parses one (pex 2.3.3), keyed by `_document_key`."""
    pex_cli = _pex_cli()
    argv = (
        [sys.executable, pex_cli, "-c", _PEX_PARSE]
        if pex_cli
        else [sys.executable, "-c", _PEX_PARSE]
    )
    env = dict(os.environ, PEX_INTERPRETER="1", PEX_ROOT=os.path.join(os.getcwd(), ".pex_root"))
    documents = {
        _document_key(rt, arch): complete_platform_json(rt, arch) for rt, arch in ALL_COMBINATIONS
    }
    result = subprocess.run(
        argv,
        input=json.dumps(documents),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: Dict[str, Dict[str, Any]] = json.loads(result.stdout)
    assert sorted(parsed) == sorted(documents)
    return parsed


@pytest.mark.parametrize("runtime_name, arch_name", ALL_COMBINATIONS)
def test_pex_accepts_the_json(
    runtime_name: str, arch_name: str, pex_parsed: Dict[str, Dict[str, Any]]
) -> None:
    """Parse the document the way `pex --complete-platform` does (pex 2.3.3)."""
    parsed = pex_parsed[_document_key(runtime_name, arch_name)]
    assert "error" not in parsed, parsed.get("error")
    assert parsed["markers"] == marker_environment(runtime_name, arch_name)
    assert parsed["tags"] == compatible_tags(runtime_name, arch_name)


# --- proof against real interpreters ---------------------------------------------------------

_PROBE = r"""
import json, os, platform, sys, sysconfig
try:
    import packaging
    from packaging import tags
except ImportError:
    from pip._vendor import packaging
    from pip._vendor.packaging import tags
try:
    glibc = os.confstr("CS_GNU_LIBC_VERSION")
except (AttributeError, OSError, ValueError):
    glibc = None
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:2]),
    "machine": platform.machine(),
    "glibc": glibc,
    "special_build": bool(
        sysconfig.get_config_var("Py_GIL_DISABLED") or sysconfig.get_config_var("Py_DEBUG")
    ),
    "source": "{} {}".format(packaging.__name__, packaging.__version__),
    "tags": [str(tag) for tag in tags.sys_tags()],
}))
"""

_PROBED_MINORS = (9, 10, 11, 12, 13)


def _pyenv_root() -> Optional[str]:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    try:
        result = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    root = result.stdout.strip()
    return root if result.returncode == 0 and root else None


def _candidates(minor: int) -> List[str]:
    """Interpreters that may be CPython 3.`minor`: PATH first, then pyenv's versions."""
    name = "python3.{}".format(minor)
    found: List[str] = []
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    root = _pyenv_root()
    if root:
        for pattern in ("3.{}".format(minor), "3.{}.*".format(minor)):
            for directory in sorted(glob.glob(os.path.join(root, "versions", pattern))):
                path = os.path.join(directory, "bin", name)
                if os.access(path, os.X_OK) and path not in found:
                    found.append(path)
    return found


@functools.lru_cache(maxsize=None)
def _probe(minor: int) -> Optional[Tuple[str, Dict[str, Any]]]:
    """Run the probe with the first working, regular CPython 3.`minor` found, if any."""
    for interpreter in _candidates(minor):
        try:
            result = subprocess.run(
                [interpreter, "-I", "-c", _PROBE],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue  # e.g. a pyenv shim for a version that is not active
        if result.returncode != 0:
            continue
        info = json.loads(result.stdout)
        if (
            info["implementation"] == "cpython"
            and info["version"] == [3, minor]
            and not info["special_build"]
        ):
            return interpreter, info
    return None


def _cap(tags: List[str], glibc: Tuple[int, int]) -> List[str]:
    """Drop what Lambda's OS lacks: manylinux above its glibc, and any musllinux."""
    kept = []
    for tag in tags:
        platform_ = _platform(tag)
        if platform_.startswith("musllinux"):
            continue
        match = _MANYLINUX.match(platform_)
        if match and (int(match.group(1)), int(match.group(2))) > glibc:
            continue
        kept.append(tag)
    return kept


def test_some_real_interpreter_was_found() -> None:
    found = [minor for minor in _PROBED_MINORS if _probe(minor) is not None]
    assert found, (
        "No CPython 3.9-3.13 found on PATH or in pyenv: the complete platforms cannot be "
        "proven against a real interpreter. Install one (e.g. `pyenv install 3.12`)."
    )


@pytest.mark.parametrize("minor", _PROBED_MINORS)
def test_tags_match_real_interpreter_capped_at_lambda_glibc(minor: int) -> None:
    probed = _probe(minor)
    if probed is None:
        pytest.skip("no CPython 3.{} found on PATH or in pyenv".format(minor))
    interpreter, info = probed
    runtime = get_runtime("python3.{}".format(minor))
    arch = next((a for a in ARCHITECTURES if a.machine == info["machine"]), None)
    if arch is None:
        pytest.skip("machine {} is no Lambda architecture".format(info["machine"]))
    glibc_version = (info["glibc"] or "").split(" ")
    if len(glibc_version) != 2 or glibc_version[0] != "glibc":
        pytest.skip("{} does not run on glibc".format(interpreter))
    host_glibc = tuple(int(part) for part in glibc_version[1].split(".")[:2])
    if host_glibc < runtime.glibc:
        pytest.skip(
            "host glibc {} is older than Lambda's {}: it cannot show every tag".format(
                host_glibc, runtime.glibc
            )
        )
    expected = _cap(info["tags"], runtime.glibc)
    packaging_major = int(info["source"].split(" ")[1].split(".")[0])
    if packaging_major < 22:
        # packaging < 22 (e.g. inside pip < 23.3) left `cpXY-none-any` out of sys_tags();
        # 22.0 added it just before `pyXY-none-any`, where current pip (and so PEX) has it.
        own_any = "{}-none-any".format(runtime.interpreter_tag)
        assert own_any not in expected
        expected.insert(expected.index("py3{}-none-any".format(minor)), own_any)
    derived = compatible_tags(runtime, arch)
    assert derived == expected, "differs from {} ({})".format(interpreter, info["source"])
