from __future__ import annotations

import json

from pants_powertools.platform_lockfiles import (
    LockInputs,
    add_header,
    explain_resolve_failure,
    generate_command,
    locked_versions,
    parse_header,
    platform_lockfile_path,
    platform_resolve_name,
    python_resolve_of,
    stale_lock_message,
    stale_reasons,
    strip_header,
    version_differences,
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
    assert platform_lockfile_path("3rdparty/python/default.lock") == "3rdparty/python/default.lambda-platforms.lock"
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
    subset = LockInputs.create("python-default", ["a[x]==1"], [("python3.12", "arm64")], {"python3.12-arm64.json": "bb"})
    assert stale_reasons(INPUTS, subset) == []
    changed = LockInputs.create("python-default", ["a[x]==1", "b==3"], [("python3.12", "x86_64")], {})
    assert stale_reasons(INPUTS, changed) == ["requirements not in the lock: b==3"]
    new_platform = LockInputs.create("python-default", ["b==2"], [("python3.11", "arm64")], {})
    assert stale_reasons(INPUTS, new_platform) == ["platforms not in the lock: python3.11 arm64"]
    new_digest = LockInputs.create("python-default", [], [("python3.12", "arm64")], {"python3.12-arm64.json": "cc"})
    assert stale_reasons(INPUTS, new_digest) == ["complete platforms changed since locking: python3.12-arm64.json"]
    message = stale_lock_message("src/a:fn", "x.lock", "python-default", ["requirements not in the lock: b==3"])
    assert "src/a:fn" in message and "b==3" in message
    assert "pants generate-lockfiles --resolve=python-default-lambda-platforms" in message


def test_version_differences() -> None:
    platform = _lock({"cp311-cp311-manylinux_2_26_x86_64": {"numpy": "2.2.6", "Six": "1.17.0"}})
    universal = _lock({"resolve": {"numpy": "2.3.4", "six": "1.17.0"}})
    assert locked_versions(platform) == {"cp311-cp311-manylinux_2_26_x86_64": {"numpy": "2.2.6", "six": "1.17.0"}}
    assert version_differences(platform, universal) == [
        ("numpy", "cp311-cp311-manylinux_2_26_x86_64", "2.2.6", "2.3.4")
    ]


PEX_OUTPUT = """pid 1 -> /x/pex --cache-dir /y download --dest /tmp/t/cp312-cp312-manylinux_2_34_x86_64 --only-binary :all: docopt==0.6.2 exited with 1 and STDERR:
ERROR: Could not find a version that satisfies the requirement docopt==0.6.2 (from versions: none)
ERROR: No matching distribution found for docopt==0.6.2
"""


def test_explain_resolve_failure() -> None:
    message = explain_resolve_failure(PEX_OUTPUT, [("python3.12", "arm64"), ("python3.12", "x86_64")])
    assert message is not None
    assert "docopt==0.6.2" in message and "python3.12 x86_64" in message and "arm64" not in message
    assert "pin an older version of docopt that" in message and "runtime" in message
    assert explain_resolve_failure("some other failure", [("python3.12", "x86_64")]) is None


PEX_PYTHON_OUTPUT = """pid 1 -> /x/pex download --dest /tmp/t/cp39-cp39-manylinux_2_26_x86_64 aws-lambda-powertools==3.37.0 exited with 1 and STDERR:
ERROR: Ignored the following versions that require a different python version: 3.36.0 Requires-Python <4.0.0,>=3.10; 3.37.0 Requires-Python <4.0.0,>=3.10
ERROR: Could not find a version that satisfies the requirement aws-lambda-powertools==3.37.0 (from versions: 0.1.0, 0.3.0, 0.3.1, 0.4.0, 0.5.0, 0.6.0, 0.6.1, 0.6.2, 0.6.3, 0.7.0, 3.23.1a8)
ERROR: No matching distribution found for aws-lambda-powertools==3.37.0
"""


def test_explain_requires_python() -> None:
    message = explain_resolve_failure(PEX_PYTHON_OUTPUT, [("python3.9", "x86_64")])
    assert message is not None
    assert "aws-lambda-powertools==3.37.0 cannot run on python3.9 x86_64" in message
    assert "Requires-Python <4.0.0,>=3.10" in message and "newer `runtime`" in message


def test_long_version_lists_are_shortened() -> None:
    output = PEX_PYTHON_OUTPUT.replace("3.37.0 Requires", "3.37.1 Requires").replace(
        "cp39-cp39-manylinux_2_26", "cp312-cp312-manylinux_2_34"
    )
    message = explain_resolve_failure(output, [("python3.12", "x86_64")])
    assert message is not None
    assert "…, 0.4.0, 0.5.0" in message and "0.3.1" not in message
