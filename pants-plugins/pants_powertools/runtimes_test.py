"""Tests for the Lambda runtime table and its look-ups."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import date

import pytest

from pants_powertools.runtimes import (
    ARCHITECTURE_NAMES,
    ARCHITECTURES,
    ARM64,
    RUNTIME_NAMES,
    RUNTIMES,
    X86_64,
    UnknownArchitectureError,
    UnknownRuntimeError,
    deprecation_warning,
    get_architecture,
    get_runtime,
    newest_runtime,
)


def test_runtime_names_cover_python_3_9_to_3_14_in_order() -> None:
    assert RUNTIME_NAMES == tuple("python3.{}".format(minor) for minor in range(9, 15))


@pytest.mark.parametrize("name", RUNTIME_NAMES)
def test_each_runtime_row_is_consistent(name: str) -> None:
    runtime = get_runtime(name)
    assert runtime.name == name
    assert name == "python{}".format(runtime.python_version_str)
    assert runtime.interpreter_tag == "cp3{}".format(runtime.python_version[1])
    assert runtime.python_full_version.startswith(runtime.python_version_str + ".")
    assert runtime.architectures == (X86_64, ARM64)
    assert runtime.supports(X86_64) and runtime.supports(ARM64)


@pytest.mark.parametrize(
    "name, os_name, glibc",
    [
        ("python3.9", "Amazon Linux 2", (2, 26)),
        ("python3.10", "Amazon Linux 2", (2, 26)),
        ("python3.11", "Amazon Linux 2", (2, 26)),
        ("python3.12", "Amazon Linux 2023", (2, 34)),
        ("python3.13", "Amazon Linux 2023", (2, 34)),
        ("python3.14", "Amazon Linux 2023", (2, 34)),
    ],
)
def test_os_and_glibc(name: str, os_name: str, glibc: tuple) -> None:
    runtime = get_runtime(name)
    assert runtime.os == os_name
    assert runtime.glibc == glibc


def test_deprecation_dates() -> None:
    assert {name: rt.deprecation_date for name, rt in RUNTIMES.items()} == {
        "python3.9": date(2025, 12, 15),
        "python3.10": date(2026, 10, 31),
        "python3.11": date(2027, 6, 30),
        "python3.12": date(2028, 10, 31),
        "python3.13": date(2029, 6, 30),
        "python3.14": date(2029, 6, 30),
    }


def test_newer_runtimes_are_never_deprecated_earlier() -> None:
    dates = [RUNTIMES[name].deprecation_date for name in RUNTIME_NAMES]
    assert dates == sorted(dates)


def test_table_rows_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        get_runtime("python3.12").glibc = (2, 99)  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        ARM64.machine = "arm64"  # type: ignore[misc]


def test_unknown_runtime_lists_valid_ones() -> None:
    with pytest.raises(UnknownRuntimeError) as exc_info:
        get_runtime("python3.8")
    message = str(exc_info.value)
    assert "'python3.8'" in message
    for name in RUNTIME_NAMES:
        assert repr(name) in message
    assert isinstance(exc_info.value, ValueError)


def test_architectures() -> None:
    assert ARCHITECTURE_NAMES == ("x86_64", "arm64")
    assert ARCHITECTURES == (X86_64, ARM64)
    assert get_architecture("x86_64").machine == "x86_64"
    assert get_architecture("arm64").machine == "aarch64"


@pytest.mark.parametrize(
    "name, hint", [("aarch64", "arm64"), ("amd64", "x86_64"), ("x64", "x86_64"), ("mips", None)]
)
def test_unknown_architecture_lists_valid_ones(name: str, hint: object) -> None:
    with pytest.raises(UnknownArchitectureError) as exc_info:
        get_architecture(name)
    message = str(exc_info.value)
    assert isinstance(exc_info.value, ValueError)
    assert "'x86_64', 'arm64'" in message
    if hint is None:
        assert "Did you mean" not in message
    else:
        assert "Did you mean {!r}?".format(hint) in message


def test_no_warning_before_deprecation() -> None:
    runtime = get_runtime("python3.12")
    assert deprecation_warning(runtime, date(2028, 10, 30)) is None


def test_warning_on_and_after_deprecation_names_date_and_newer_runtime() -> None:
    runtime = get_runtime("python3.9")
    for today in (date(2025, 12, 15), date(2026, 6, 1)):
        warning = deprecation_warning(runtime, today)
        assert warning is not None
        assert "python3.9" in warning
        assert "2025-12-15" in warning
        assert 'runtime="python3.14"' in warning


def test_warning_suggests_newest_runtime_still_supported() -> None:
    # On 2029-07-01 python3.13 and python3.14 are deprecated as well: suggest none of them.
    warning = deprecation_warning(get_runtime("python3.11"), date(2029, 7, 1))
    assert warning is not None
    assert "2027-06-30" in warning
    assert "knows no newer runtime" in warning


def test_warning_suggests_newest_supported_runtime() -> None:
    warning = deprecation_warning(get_runtime("python3.10"), date(2027, 1, 1))
    assert warning is not None
    assert 'runtime="python3.14"' in warning


def test_newest_runtime() -> None:
    assert newest_runtime().name == "python3.14"
