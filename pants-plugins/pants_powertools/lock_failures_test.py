from __future__ import annotations

import json

from pants_powertools.complete_platforms import compatible_tags
from pants_powertools.lock_failures import (
    IndexFiles,
    LockPlatform,
    PlatformFailure,
    explain_lock_failures,
    explain_platform_failure,
    failing_platform,
    lock_platforms,
    nearest_versions,
    parse_index_lookup,
    parse_pip_failure,
    platforms_needed_by,
    yanked_pins,
    yanked_warning,
)
from pants_powertools.platform_lockfiles import LockInputs, custom_platform_filename
from pants_powertools.sandbox import index_lookup


def test_lock_platforms_describe_derived_and_custom_platforms() -> None:
    custom_json = json.dumps(
        {
            "marker_environment": {"platform_machine": "aarch64"},
            "compatible_tags": ["cp313-cp313-manylinux_2_34_aarch64", "py3-none-any"],
        }
    )
    custom = custom_platform_filename(custom_json)
    inputs = LockInputs.create(
        "lambda",
        [],
        [("python3.12", "arm64"), ("python3.11", "x86_64")],
        custom_platforms=[(custom, custom_json), ("custom-broken.json", "[]")],
    )
    described = lock_platforms(inputs)
    names = [name for name, _ in described]
    assert names[:2] == ["python3.11-x86_64.json", "python3.12-arm64.json"]
    assert sorted(names[2:]) == sorted(["custom-broken.json", custom])
    by_name = dict(described)
    assert by_name["python3.12-arm64.json"] == LockPlatform(
        "python3.12 arm64", frozenset(compatible_tags("python3.12", "arm64")), "aarch64"
    )
    assert by_name["python3.11-x86_64.json"].machine == "x86_64"
    assert by_name[custom] == LockPlatform(
        custom,
        frozenset({"cp313-cp313-manylinux_2_34_aarch64", "py3-none-any"}),
        "aarch64",
    )
    # Not a complete platform: pex will say so; the messages just name the file.
    assert by_name["custom-broken.json"] == LockPlatform("custom-broken.json", frozenset(), "")


def test_platforms_needed_by_name_each_platform_s_targets() -> None:
    fn = LockInputs.create("lambda", [], [("python3.12", "x86_64")])
    layer = LockInputs.create("lambda", [], [("python3.12", "x86_64"), ("python3.12", "arm64")])
    custom = LockInputs.create("lambda", [], [], custom_platforms=[("custom-1.json", "{}")])
    assert platforms_needed_by([("src:fn", fn), ("src:layer", layer), ("src:c", custom)]) == {
        "python3.12 x86_64": ["src:fn", "src:layer"],
        "python3.12 arm64": ["src:layer"],
        "custom-1.json": ["src:c"],
    }


# ---------------------------------------------------------------------------------------------
# Why locking failed. The pex outputs are what pex 2.3.3 (pip 24.0) printed for
# `pex3 lock create --style strict --no-build --complete-platform ...` (paths shortened).
# ---------------------------------------------------------------------------------------------

_PIP = (
    "pid 9252 -> /root/.pex/venvs/7b20/800a/bin/python -sE /root/.pex/venvs/7b20/800a/pex "
    "--disable-pip-version-check --no-python-version-warning --exists-action a --no-input "
    "--isolated -q --cache-dir /root/.pex/pip/24.0/pip_cache "
    "--log /tmp/pex-pip-log.o2a45l81/pip.log "
    "download --dest /tmp/tmp6xf1zrwk/{tag} --only-binary :all: {req} --retries 5 --timeout 15 "
    "exited with 1 and STDERR:\n"
)
NO_PROJECT_OUTPUT = _PIP.format(
    tag="cp312-cp312-manylinux_2_34_x86_64", req="this-project-does-not-exist-pptools==1.0"
) + (
    "ERROR: Could not find a version that satisfies the requirement "
    "this-project-does-not-exist-pptools==1.0 (from versions: none)\n"
    "ERROR: No matching distribution found for this-project-does-not-exist-pptools==1.0\n"
)
NO_VERSION_OUTPUT = _PIP.format(tag="cp312-cp312-manylinux_2_34_x86_64", req="tomli==2.0.99") + (
    "ERROR: Could not find a version that satisfies the requirement tomli==2.0.99 (from versions: "
    "0.2.0, 0.2.1, 0.2.2, 0.2.3, 0.2.4, 0.2.5, 0.2.6, 0.2.7, 0.2.8, 0.2.9, 0.2.10, 1.0.0, 1.0.1, "
    "1.0.2, 1.0.3, 1.0.4, 1.1.0, 1.2.0, 1.2.1, 1.2.2, 1.2.3, 2.0.0, 2.0.1, 2.0.2, 2.1.0, 2.2.1, "
    "2.3.0, 2.3.1, 2.3.2, 2.4.0, 2.4.1, 2.5.0)\n"
    "ERROR: No matching distribution found for tomli==2.0.99\n"
)
ARM_ONLY_X86_OUTPUT = _PIP.format(tag="cp312-cp312-manylinux_2_34_aarch64", req="tbb==2023.2.0") + (
    "ERROR: Could not find a version that satisfies the requirement tbb==2023.2.0 "
    "(from versions: none)\n"
    "ERROR: No matching distribution found for tbb==2023.2.0\n"
)
SDIST_ONLY_OUTPUT = _PIP.format(tag="cp312-cp312-manylinux_2_34_x86_64", req="docopt==0.6.2") + (
    "ERROR: Could not find a version that satisfies the requirement docopt==0.6.2 "
    "(from versions: none)\n"
    "ERROR: No matching distribution found for docopt==0.6.2\n"
)
REQUIRES_PYTHON_OUTPUT = _PIP.format(
    tag="cp39-cp39-manylinux_2_26_x86_64", req="aws-lambda-powertools==3.37.0"
) + (
    "ERROR: Ignored the following versions that require a different python version: 3.36.0 "
    "Requires-Python <4.0.0,>=3.10; 3.37.0 Requires-Python <4.0.0,>=3.10\n"
    "ERROR: Could not find a version that satisfies the requirement aws-lambda-powertools==3.37.0 "
    "(from versions: 0.1.0, 3.23.1a8)\n"
    "ERROR: No matching distribution found for aws-lambda-powertools==3.37.0\n"
)


def _platform(runtime: str, arch: str) -> LockPlatform:
    return LockPlatform(
        f"{runtime} {arch}",
        frozenset(compatible_tags(runtime, arch)),
        "aarch64" if arch == "arm64" else arch,
    )


X86 = _platform("python3.12", "x86_64")
ARM = _platform("python3.12", "arm64")
PY39 = _platform("python3.9", "x86_64")

PYPI = "https://pypi.org/simple/"
TOMLI_INDEX = IndexFiles(
    True,
    tuple(
        (f"tomli-{v}-py3-none-any.whl", None)
        for v in ("1.2.3", "2.0.0", "2.0.1", "2.0.2", "2.1.0", "2.5.0")
    )
    + (("tomli-2.0.1.tar.gz", None),),
    PYPI,
)
TBB_INDEX = IndexFiles(
    True,
    (
        ("tbb-2023.2.0-py2.py3-none-manylinux1_x86_64.whl", None),
        ("tbb-2023.2.0-py3-none-win_amd64.whl", None),
        ("tbb-2021.1.1-py2.py3-none-manylinux1_x86_64.whl", None),
    ),
    PYPI,
)
DOCOPT_INDEX = IndexFiles(
    True, (("docopt-0.6.2.tar.gz", None), ("docopt-0.6.1.tar.gz", None)), PYPI
)


def test_parse_pip_failure() -> None:
    failure = parse_pip_failure(NO_VERSION_OUTPUT)
    assert failure is not None
    assert failure.requirement == "tomli==2.0.99" and failure.project == "tomli"
    assert (
        failure.versions is not None
        and failure.versions[-1] == "2.5.0"
        and len(failure.versions) == 32
    )
    assert failure.platform_tag == "cp312-cp312-manylinux_2_34_x86_64"

    failure = parse_pip_failure(ARM_ONLY_X86_OUTPUT)
    assert failure is not None and failure.versions == ()
    assert failure.platform_tag == "cp312-cp312-manylinux_2_34_aarch64"

    failure = parse_pip_failure(REQUIRES_PYTHON_OUTPUT)
    assert failure is not None
    assert failure.ignored_for_python == (
        ("3.36.0", "<4.0.0,>=3.10"),
        ("3.37.0", "<4.0.0,>=3.10"),
    )
    # Tolerant of other pip/pex versions: only the last line, no --dest.
    failure = parse_pip_failure("ERROR: No matching distribution found for Some_Pkg[x]>=2\n")
    assert failure is not None and failure.project == "some-pkg" and failure.versions is None
    assert failure.platform_tag is None
    assert parse_pip_failure("Failed to resolve: network unreachable") is None


def test_a_failed_lock_is_attributed_to_the_platform_pip_names() -> None:
    # pip's `--dest .../cp312-cp312-manylinux_2_34_aarch64` names the arm64 platform.
    assert failing_platform(ARM_ONLY_X86_OUTPUT, [X86, ARM]) == ARM
    assert failing_platform(NO_VERSION_OUTPUT, [X86, ARM]) == X86
    # Without a tag: a lone platform is the one; several are all suspects.
    bare = "ERROR: No matching distribution found for tomli==9\n"
    assert failing_platform(bare, [ARM]) == ARM
    assert failing_platform(bare, [X86, ARM]) == LockPlatform("all platforms", frozenset(), "")
    assert failing_platform("pex crashed", [X86, ARM]).label == "all platforms"


def test_no_such_project() -> None:
    failure = parse_pip_failure(NO_PROJECT_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, X86, [X86], IndexFiles(False, (), PYPI))
    assert message.startswith(
        "this-project-does-not-exist-pptools==1.0: there is no project named "
        "`this-project-does-not-exist-pptools` on https://pypi.org/simple."
    )
    assert "wheel" not in message and "pin an older" not in message


def test_no_such_version_names_the_nearest() -> None:
    failure = parse_pip_failure(NO_VERSION_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, X86, [X86], TOMLI_INDEX)
    assert message == (
        "tomli==2.0.99: tomli has no version 2.0.99 on https://pypi.org/simple. Nearest versions "
        "there: 2.0.1, 2.0.2, 2.1.0, 2.5.0. Fix the version in your requirements."
    )
    assert nearest_versions("2.0.99", ["2.5.0", "2.0.2", "1.0", "2.1.0", "2.0.1"], 1) == [
        "2.0.2",
        "2.1.0",
    ]
    ranged = explain_platform_failure(
        parse_pip_failure(  # type: ignore[arg-type]
            "ERROR: No matching distribution found for tomli>=9\n"
        ),
        X86,
        [X86],
        TOMLI_INDEX,
    )
    assert "tomli has no version matching `>=9`" in ranged and "(newest: 2.5.0)" not in ranged


def test_no_wheel_for_one_architecture_suggests_a_marker() -> None:
    failure = parse_pip_failure(ARM_ONLY_X86_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, ARM, [X86, ARM], TBB_INDEX, ["tbb==2023.2.0"])
    assert message.startswith(
        "tbb==2023.2.0 has no wheel for python3.12 arm64: its wheels are only for "
        "manylinux1_x86_64, win_amd64 (Lambda needs wheels"
    )
    assert '`tbb==2023.2.0; platform_machine == "x86_64"`' in message
    assert "pulls it in" not in message
    # No version of tbb serves arm64 at all: no pin to suggest.
    assert "the newest is" not in message
    # A transitive dependency: the marker goes on what pulls it in.
    transitive = explain_platform_failure(failure, ARM, [X86, ARM], TBB_INDEX, ["numba==0.58"])
    assert "(on the requirement that pulls it in)" in transitive


def test_no_wheel_at_all_and_an_older_pin_that_has_one() -> None:
    failure = parse_pip_failure(SDIST_ONLY_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, X86, [X86], DOCOPT_INDEX)
    assert message.startswith(
        "docopt==0.6.2 has no wheel for python3.12 x86_64: it publishes only source distributions"
    )
    assert "platform_machine" not in message and "the newest is" not in message
    assert "[python-repos].find_links" in message

    numpy = IndexFiles(
        True,
        (
            ("numpy-2.3.0-cp312-cp312-manylinux_2_35_x86_64.whl", None),
            ("numpy-2.2.6-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", None),
        ),
    )
    failure = parse_pip_failure("ERROR: No matching distribution found for numpy==2.3.0\n")
    assert failure is not None
    message = explain_platform_failure(failure, X86, [X86], numpy)
    assert "its wheels are only for manylinux_2_35_x86_64" in message
    assert "the newest is numpy==2.2.6" in message


def test_requires_python() -> None:
    failure = parse_pip_failure(REQUIRES_PYTHON_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, PY39, [PY39], None)
    assert message.startswith(
        "aws-lambda-powertools==3.37.0 cannot run on python3.9 x86_64: "
        "it declares Requires-Python <4.0.0,>=3.10."
    )
    assert "newer `runtime`" in message


def test_without_the_index_pip_text_is_not_over_interpreted() -> None:
    failure = parse_pip_failure(NO_VERSION_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, X86, [X86], None)
    assert (
        "tomli==2.0.99 cannot be locked for python3.12 x86_64: pip found versions with a wheel for "
        "it (2.0.1, 2.0.2, 2.1.0, 2.2.1; newest 2.5.0), but not 2.0.99 (it does not exist, or has "
        "no wheel for this platform)."
    ) in message
    failure = parse_pip_failure(SDIST_ONLY_OUTPUT)
    assert failure is not None
    message = explain_platform_failure(failure, X86, [X86], IndexFiles(None))
    assert (
        "docopt does not exist on the index, or none of its versions has a wheel for it" in message
    )


def test_every_failing_platform_is_named_with_its_targets() -> None:
    message = explain_lock_failures(
        "lambda",
        [
            PlatformFailure(X86, SDIST_ONLY_OUTPUT),
            PlatformFailure(ARM, "pex: something else broke\n"),
        ],
        [X86, ARM, PY39],
        {"docopt": DOCOPT_INDEX},
        {"python3.12 x86_64": ["src/b:fn", "src/a:fn"], "python3.12 arm64": ["src:layer"]},
    )
    assert message.startswith(
        "Could not lock the `lambda` resolve for Lambda: 2 of 3 platform(s) failed.\n\n"
    )
    assert (
        "\npython3.12 x86_64 (needed by src/a:fn, src/b:fn):\n  docopt==0.6.2 has no wheel"
        in message
    )
    # Output that is not pip's "no matching distribution" is shown as it is.
    assert "\npython3.12 arm64 (needed by src:layer):\n  pex: something else broke" in message
    assert "python3.9" not in message


# ---------------------------------------------------------------------------------------------
# Yanked pins
# ---------------------------------------------------------------------------------------------


def _pex_lock(name: str, version: str, files: list) -> str:
    return json.dumps(
        {
            "locked_resolves": [
                {
                    "platform_tag": ["cp312", "cp312", "manylinux_2_34_x86_64"],
                    "locked_requirements": [
                        {
                            "project_name": name,
                            "version": version,
                            "artifacts": [
                                {
                                    "url": "https://files.example/" + f,
                                    "algorithm": "sha256",
                                    "hash": "0",
                                }
                                for f in files
                            ],
                        }
                    ],
                }
            ]
        }
    )


INDEX_LOOKUP_OUTPUT = json.dumps(
    {
        "errors": [],
        "projects": {
            "requests": {
                "found": True,
                "index": PYPI,
                "files": [
                    {
                        "filename": "requests-2.32.0-py3-none-any.whl",
                        "yanked": "Yanked due to conflicts with CVE-2024-35195 mitigation",
                    },
                    {"filename": "requests-2.32.3-py3-none-any.whl", "yanked": None},
                ],
            },
            "tomli": {
                "found": True,
                "files": [{"filename": "tomli-2.0.1-py3-none-any.whl", "yanked": ""}],
            },
        },
    }
)


def test_yanked_pins_warn_with_the_reason() -> None:
    index = parse_index_lookup(INDEX_LOOKUP_OUTPUT)
    lock = _pex_lock("Requests", "2.32.0", ["requests-2.32.0-py3-none-any.whl"])
    assert yanked_pins(lock, index) == [
        ("requests", "2.32.0", "Yanked due to conflicts with CVE-2024-35195 mitigation")
    ]
    assert (
        yanked_pins(_pex_lock("requests", "2.32.3", ["requests-2.32.3-py3-none-any.whl"]), index)
        == []
    )
    no_reason = yanked_pins(_pex_lock("tomli", "2.0.1", ["tomli-2.0.1-py3-none-any.whl"]), index)
    assert no_reason == [("tomli", "2.0.1", "")]
    warning = yanked_warning(
        "3rdparty/x.lambda-platforms.lock", yanked_pins(lock, index) + no_reason
    )
    assert warning is not None
    assert "3rdparty/x.lambda-platforms.lock pins versions that their index has yanked" in warning
    assert (
        "  requests==2.32.0: yanked: Yanked due to conflicts with CVE-2024-35195 mitigation"
        in warning
    )
    assert "  tomli==2.0.1: yanked (no reason given)" in warning
    assert yanked_warning("x.lock", []) is None
    # An index that could not be asked: no warning, no crash.
    assert parse_index_lookup("") == {} and yanked_pins(lock, {}) == []


def test_index_pages_are_parsed_with_their_yanks() -> None:
    files = index_lookup.parse_json_page(
        json.dumps(
            {
                "files": [
                    {"filename": "a-1.0-py3-none-any.whl", "yanked": False},
                    {"filename": "a-0.9.tar.gz", "yanked": "broken"},
                    {"filename": "a-0.8.tar.gz", "yanked": True},
                ]
            }
        )
    )
    assert files == [
        {"filename": "a-1.0-py3-none-any.whl", "yanked": None},
        {"filename": "a-0.9.tar.gz", "yanked": "broken"},
        {"filename": "a-0.8.tar.gz", "yanked": ""},
    ]
    html = (
        '<html><body><a href="../../p/a-1.0-py3-none-any.whl#sha256=00">a-1.0-py3-none-any.whl</a>'
        '<a href="a-0.9.tar.gz" data-yanked="broken">a-0.9.tar.gz</a>'
        '<a href="https://x/a-0.8.tar.gz" data-yanked>a-0.8.tar.gz</a></body></html>'
    )
    assert index_lookup.parse_html_page(html, "https://idx/simple/a/") == files
