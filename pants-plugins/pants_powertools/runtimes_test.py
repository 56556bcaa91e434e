"""Tests for the Lambda runtime table and its look-ups."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import date, timedelta

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
from pants_powertools.test_data import aws_lambda_facts


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


# --- against AWS's own record (test_data/aws_lambda_runtimes.md) ------------------------------

AWS = aws_lambda_facts.runtimes()
AWS_GLIBC = aws_lambda_facts.glibc_by_operating_system()


def test_the_table_has_exactly_aws_python_runtimes() -> None:
    assert set(RUNTIME_NAMES) == set(AWS)


@pytest.mark.parametrize("name", RUNTIME_NAMES)
def test_each_runtime_is_as_aws_publishes_it(name: str) -> None:
    runtime, aws = get_runtime(name), AWS[name]
    assert runtime.os == aws.operating_system
    assert runtime.glibc == AWS_GLIBC[aws.operating_system]
    assert runtime.deprecation_date == aws.deprecation


def test_aws_dates_are_read_strictly() -> None:
    """What the record holds are real dates: a typo cannot slip through as a string."""
    assert aws_lambda_facts.aws_date("Jan 10, 2029") == date(2029, 1, 10)
    for bad in ("Feb 30, 2029", "2029-06-30", "June 30, 2029", "Jun 30 2029", ""):
        with pytest.raises(ValueError):
            aws_lambda_facts.aws_date(bad)
    record = aws_lambda_facts.FACTS_FILE.read_text()
    with pytest.raises(ValueError):
        aws_lambda_facts.runtimes(record.replace("Oct 31, 2028", "Oct 32, 2028"))


@pytest.mark.parametrize("name", sorted(AWS))
def test_aws_blocks_creation_then_updates_after_deprecation(name: str) -> None:
    aws = AWS[name]
    known = [d for d in (aws.deprecation, aws.block_create, aws.block_update) if d is not None]
    assert known == sorted(known) and len(set(known)) == len(known)


def test_older_runtimes_are_deprecated_no_later_than_newer_ones() -> None:
    by_age = sorted(RUNTIMES.values(), key=lambda runtime: runtime.python_version)
    for older, newer in zip(by_age, by_age[1:]):
        assert older.deprecation_date <= newer.deprecation_date, (older.name, newer.name)
        assert AWS[older.name].deprecation <= AWS[newer.name].deprecation
        assert older.glibc <= newer.glibc


@pytest.mark.parametrize("name", RUNTIME_NAMES)
def test_the_warning_starts_on_the_day_aws_deprecates(name: str) -> None:
    runtime, aws = get_runtime(name), AWS[name]
    day_before = aws.deprecation - timedelta(days=1)
    assert not runtime.is_deprecated(day_before)
    assert deprecation_warning(runtime, day_before) is None
    for today in (aws.deprecation, aws.block_create, aws.block_update):
        if today is None:
            continue
        warning = deprecation_warning(runtime, today)
        assert warning is not None and runtime.is_deprecated(today)
        assert "the {} runtime on {}".format(name, aws.deprecation.isoformat()) in warning
        # The suggestion is the newest runtime AWS still supports on that day, if any.
        supported = [
            n
            for n, other in AWS.items()
            if other.deprecation > today and get_runtime(n).python_version > runtime.python_version
        ]
        if supported:
            newest = max(supported, key=lambda n: get_runtime(n).python_version)
            assert 'runtime="{}"'.format(newest) in warning
        else:
            assert "knows no newer runtime" in warning


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
