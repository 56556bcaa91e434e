from __future__ import annotations

import hashlib
import json

import pytest

from pants_powertools.complete_platforms import complete_platform_json
from pants_powertools.platform_lockfiles import (
    LockHeaderError,
    LockInputs,
    add_header,
    complete_platform_digests,
    generate_command,
    locked_versions,
    parse_header,
    platform_lockfile_path,
    platform_resolve_name,
    python_resolve_of,
    read_lock,
    resolve_mismatch_message,
    stale_lock_message,
    stale_reasons,
    strip_header,
    version_differences,
    version_differences_warning,
)


def _lock(versions_by_platform: dict) -> str:
    return json.dumps(
        {
            "locked_resolves": [
                {
                    "platform_tag": platform.split("-"),
                    "locked_requirements": [
                        {"project_name": name, "version": version}
                        for name, version in versions.items()
                    ],
                }
                for platform, versions in versions_by_platform.items()
            ]
        }
    )


INPUTS = LockInputs.create(
    "python-default",
    ["b==2", "a[x]==1"],
    [("python3.12", "x86_64"), ("python3.12", "arm64")],
    {"python3.12-x86_64.json": "aa", "python3.12-arm64.json": "bb"},
)


def test_names_and_paths() -> None:
    assert platform_resolve_name("python-default") == "python-default-lambda-platforms"
    assert python_resolve_of("python-default-lambda-platforms") == "python-default"
    assert python_resolve_of("python-default") is None
    assert (
        platform_lockfile_path("3rdparty/python/default.lock")
        == "3rdparty/python/default.lambda-platforms.lock"
    )
    assert generate_command("x") == "pants generate-lockfiles --resolve=x-lambda-platforms"


def test_header_round_trips_and_strips() -> None:
    body = _lock({"cp312-cp312-manylinux_2_34_x86_64": {"a": "1"}})
    text = add_header(body, INPUTS)
    assert text.startswith("//")
    assert parse_header(text) == INPUTS
    assert json.loads(strip_header(text)) == json.loads(body)
    assert INPUTS.requirements == ("a[x]==1", "b==2")


def test_stale_reasons() -> None:
    assert stale_reasons(INPUTS, INPUTS) == []
    subset = LockInputs.create(
        "python-default", ["a[x]==1"], [("python3.12", "arm64")], {"python3.12-arm64.json": "bb"}
    )
    assert stale_reasons(INPUTS, subset) == []
    changed = LockInputs.create(
        "python-default", ["a[x]==1", "b==3"], [("python3.12", "x86_64")], {}
    )
    assert stale_reasons(INPUTS, changed) == ["requirements not in the lock: b==3"]
    new_platform = LockInputs.create("python-default", ["b==2"], [("python3.11", "arm64")], {})
    assert stale_reasons(INPUTS, new_platform) == ["platforms not in the lock: python3.11 arm64"]
    new_digest = LockInputs.create(
        "python-default", [], [("python3.12", "arm64")], {"python3.12-arm64.json": "cc"}
    )
    assert stale_reasons(INPUTS, new_digest) == [
        "complete platforms changed since locking: python3.12-arm64.json"
    ]
    message = stale_lock_message(
        "src/a:fn", "x.lock", "python-default", ["requirements not in the lock: b==3"]
    )
    assert "src/a:fn" in message and "b==3" in message
    assert "pants generate-lockfiles --resolve=python-default-lambda-platforms" in message


def test_version_differences() -> None:
    platform = _lock({"cp311-cp311-manylinux_2_26_x86_64": {"numpy": "2.2.6", "Six": "1.17.0"}})
    universal = _lock({"resolve": {"numpy": "2.3.4", "six": "1.17.0"}})
    assert locked_versions(platform) == {
        "cp311-cp311-manylinux_2_26_x86_64": {"numpy": "2.2.6", "six": "1.17.0"}
    }
    assert version_differences(platform, universal) == [
        ("numpy", "cp311-cp311-manylinux_2_26_x86_64", "2.2.6", "2.3.4")
    ]


def test_version_differences_warning() -> None:
    platform = _lock({"cp311-cp311-manylinux_2_26_x86_64": {"numpy": "2.2.6"}})
    universal = _lock({"resolve": {"numpy": "2.3.4"}})
    assert version_differences_warning(platform, universal, "3rdparty/x.lock") == (
        "These distributions are locked at other versions for Lambda than in the resolve's own "
        "lockfile, which tests run against:\n"
        "  numpy: 2.2.6 for cp311-cp311-manylinux_2_26_x86_64, 2.3.4 in 3rdparty/x.lock\n"
        "Pin them in your requirements to test what you deploy."
    )
    assert version_differences_warning(platform, platform, "3rdparty/x.lock") is None
    assert version_differences_warning(platform, "not json", "3rdparty/x.lock") is None


def test_the_lock_header_digests_are_those_of_the_derived_platform_files() -> None:
    digests = complete_platform_digests([("python3.12", "arm64"), ("python3.9", "x86_64")])
    assert digests == {
        "python3.12-arm64.json": hashlib.sha256(
            complete_platform_json("python3.12", "arm64").encode()
        ).hexdigest(),
        "python3.9-x86_64.json": hashlib.sha256(
            complete_platform_json("python3.9", "x86_64").encode()
        ).hexdigest(),
    }


# ---------------------------------------------------------------------------------------------
# Damaged locks
# ---------------------------------------------------------------------------------------------

GOOD_LOCK = add_header(_lock({"cp312-cp312-manylinux_2_34_x86_64": {"a": "1"}}), INPUTS)


def _damage(old: str, new: str) -> str:
    assert old in GOOD_LOCK, old
    return GOOD_LOCK.replace(old, new, 1)


@pytest.mark.parametrize(
    "text, reason",
    [
        (strip_header(GOOD_LOCK), "it has no pants-powertools metadata header"),
        (
            "\n".join(GOOD_LOCK.splitlines()[:9]),
            "its metadata header is cut off (no end line)",
        ),
        (
            _damage('//   "python_resolve"', "//   python_resolve"),
            "its metadata header is not valid JSON",
        ),
        (
            _damage('"platforms": [', '"platforms": "python3.12-arm64", "x": ['),
            'its metadata header field `platforms` should be a list, but is "python3.12-arm64"',
        ),
        (
            _damage('"requirements": [', '"requirements": [7, '),
            "its metadata header field `requirements` should be a list of strings, but is [7,",
        ),
        (
            _damage('"python_resolve": "python-default"', '"python_resolve": 3'),
            "its metadata header field `python_resolve` should be a string, but is 3",
        ),
        (
            _damage('"python_resolve": "python-default",', ""),
            "its metadata header lacks the field `python_resolve`",
        ),
        (
            _damage('"python3.12-arm64",\n', '"arm64",\n'),
            "its metadata header field `platforms` has 'arm64', not `<runtime>-<architecture>`",
        ),
        (
            _damage('"complete_platform_sha256": {', '"complete_platform_sha256": {"x": 1, '),
            "its metadata header field `complete_platform_sha256` should be an object of strings",
        ),
        (GOOD_LOCK[: len(GOOD_LOCK) - 40], "its lock is not valid JSON, perhaps cut off"),
        (GOOD_LOCK.split("\n{")[0] + "\n", "it has a header but no lock"),
        (GOOD_LOCK.split("\n{")[0] + '\n{"locked_resolves": {}}', "its lock is not a pex lock"),
    ],
)
def test_damaged_locks_name_the_damage_the_file_and_the_command(text: str, reason: str) -> None:
    with pytest.raises(LockHeaderError) as exc_info:
        parse_header(text)
    assert str(exc_info.value).startswith(reason)
    with pytest.raises(LockHeaderError) as exc_info:
        read_lock(text, "3rdparty/py.lambda-platforms.lock", "python-default")
    message = str(exc_info.value)
    assert message.startswith(
        "The Lambda platform lockfile 3rdparty/py.lambda-platforms.lock is damaged: " + reason
    )
    assert message.endswith(
        "Run `pants generate-lockfiles --resolve=python-default-lambda-platforms` "
        "to regenerate it (and commit it)."
    )


def test_read_lock() -> None:
    assert read_lock(GOOD_LOCK, "x.lock", "python-default") == INPUTS
    with pytest.raises(
        LockHeaderError, match="generated for the `python-default` resolve, not `other`"
    ):
        read_lock(GOOD_LOCK, "x.lock", "other")


def test_resolve_mismatch_message() -> None:
    message = resolve_mismatch_message(
        "src:layer",
        "python-default",
        True,
        [("dependency", "3rdparty:reqs#aws-lambda-powertools", "lambda")],
    )
    assert message.startswith(
        "src:layer uses the `python-default` resolve (its `resolve` field is unset, so "
        "[python].default_resolve applies), but\n"
        "  its dependency 3rdparty:reqs#aws-lambda-powertools uses the `lambda` resolve\n"
    )
    assert 'Set `resolve="lambda"` on src:layer' in message
