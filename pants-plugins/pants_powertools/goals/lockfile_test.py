"""`generate-lockfiles` for Lambda platforms, through the plugin's real rules and the real pex.

Each test locks a tiny resolve from PyPI with the `[pex-cli]` that ./pants built (its
`PANTS_PEX_CLI_URL_TEMPLATE` is passed to tests by `[test].extra_env_vars`) and asserts on the
lock's content: which wheels were chosen for which Lambda platform, and the header that
packaging later compares with what a target needs.
"""

from __future__ import annotations

import hashlib
import json
import re
from textwrap import dedent
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import pytest
from pants.core.goals.generate_lockfiles import GenerateLockfileResult, UserGenerateLockfiles
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools import platform_lockfiles
from pants_powertools.complete_platforms import complete_platform_json
from pants_powertools.distributions import canonicalize_name
from pants_powertools.goals.lockfile import (
    GenerateLambdaPlatformLockfile,
    RequestedLambdaPlatformResolveNames,
)
from pants_powertools.goals.package import PowertoolsFunctionFieldSet
from pants_powertools.platform_lockfiles import LockInputs
from pants_powertools.rule_runner_support import make_rule_runner
from pants_powertools.util_rules.platform_lock import (
    AllLambdaLockNeeds,
    LambdaLockNeedsRequest,
    LambdaPlatformLockError,
)

# ---------------------------------------------------------------------------------------------
# The RuleRunner, configured like the repository's pants.toml.
# ---------------------------------------------------------------------------------------------

RESOLVES = {
    "lk-numpy": "3rdparty/lk-numpy.lock",
    "lk-pydantic": "3rdparty/lk-pydantic.lock",
    "lk-sdist": "3rdparty/lk-sdist.lock",
    "lk-small": "3rdparty/lk-small.lock",
    "lk-nolock": "3rdparty/lk-nolock.lock",
    "lk-custom": "3rdparty/lk-custom.lock",
    "lk-multi": "3rdparty/lk-multi.lock",
    "lk-tbb": "3rdparty/lk-tbb.lock",
    "lk-noproject": "3rdparty/lk-noproject.lock",
    "lk-noversion": "3rdparty/lk-noversion.lock",
    "lk-yank": "3rdparty/lk-yank.lock",
}


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = make_rule_runner(
        [
            QueryRule(AllLambdaLockNeeds, []),
            QueryRule(UserGenerateLockfiles, [RequestedLambdaPlatformResolveNames]),
            QueryRule(GenerateLockfileResult, [GenerateLambdaPlatformLockfile]),
            QueryRule(BuiltPackage, [PowertoolsFunctionFieldSet]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(LockInputs, [LambdaLockNeedsRequest]),
        ],
        RESOLVES,
        # Lambda targets without `resolve=` get this one (see the resolve mismatch test).
        default_resolve="lk-small",
    )
    runner.write_files(FIXTURES)
    return runner


def _function(name: str, resolve: str, runtime: str, arch: str, deps: Iterable[str]) -> str:
    return dedent(
        f"""\
        python_aws_lambda_powertools(
            name="{name}",
            handler="app.py:handler",
            runtime="{runtime}",
            architecture="{arch}",
            resolve="{resolve}",
            dependencies={list(deps)!r},
        )
        """
    )


def _directory(resolve: str) -> str:
    """Each resolve's targets live in a directory named like it, as a Python package can be."""
    return resolve.replace("-", "_")


def _package_dir(
    resolve: str, requirement: str, import_name: str, functions: str
) -> Dict[str, str]:
    return {
        f"{_directory(resolve)}/BUILD": dedent(
            f"""\
            python_requirement(name="req", requirements=["{requirement}"], resolve="{resolve}")
            python_sources(resolve="{resolve}")
            """
        )
        + functions,
        f"{_directory(resolve)}/app.py": (
            f"import {import_name}\n\n\ndef handler(event, context):\n    return {{}}\n"
        ),
    }


FIXTURES: Dict[str, str] = {
    **_package_dir(
        "lk-numpy",
        "numpy>=2",
        "numpy",
        _function("py311", "lk-numpy", "python3.11", "x86_64", [":req"])
        + _function("py312", "lk-numpy", "python3.12", "x86_64", [":req"]),
    ),
    **_package_dir(
        "lk-pydantic",
        "pydantic-core",
        "pydantic_core",
        _function("arm", "lk-pydantic", "python3.12", "arm64", [":req"]),
    ),
    **_package_dir(
        "lk-sdist",
        "docopt==0.6.2",
        "docopt",
        _function("fn", "lk-sdist", "python3.12", "x86_64", [":req"]),
    ),
    **_package_dir(
        "lk-small",
        "tomli==2.0.1",
        "tomli",
        _function("fn", "lk-small", "python3.12", "x86_64", [":req"]),
    ),
    **_package_dir(
        "lk-custom",
        "tomli==2.0.1",
        "tomli",
        dedent(
            """\
            file(name="cp", source="cp.json")
            python_aws_lambda_powertools(
                name="fn",
                handler="app.py:handler",
                runtime="python3.12",
                resolve="lk-custom",
                dependencies=[":req"],
                complete_platforms=[":cp"],
            )
            """
        ),
    ),
    # docopt has no wheel at all: both platforms fail, and both are named.
    **_package_dir(
        "lk-multi",
        "docopt==0.6.2",
        "docopt",
        _function("x86", "lk-multi", "python3.12", "x86_64", [":req"])
        + _function("arm", "lk-multi", "python3.12", "arm64", [":req"])
        + _function("arm2", "lk-multi", "python3.12", "arm64", [":req"]),
    ),
    # tbb publishes x86_64 wheels only.
    **_package_dir(
        "lk-tbb",
        "tbb==2023.2.0",
        "tbb",
        _function("x86", "lk-tbb", "python3.12", "x86_64", [":req"])
        + _function("arm", "lk-tbb", "python3.12", "arm64", [":req"]),
    ),
    **_package_dir(
        "lk-noproject",
        "this-project-does-not-exist-pptools==1.0",
        "os",
        _function("fn", "lk-noproject", "python3.12", "x86_64", [":req"]),
    ),
    **_package_dir(
        "lk-noversion",
        "tomli==2.0.99",
        "tomli",
        _function("fn", "lk-noversion", "python3.12", "x86_64", [":req"]),
    ),
    # attrs 21.1.0 is yanked on PyPI ("Installable but not importable on Python 3.4.").
    **_package_dir(
        "lk-yank",
        "attrs==21.1.0",
        "attr",
        _function("fn", "lk-yank", "python3.12", "x86_64", [":req"]),
    ),
    # A platform of its own: CPython 3.11 on aarch64, unlike the target's runtime/architecture.
    "lk_custom/cp.json": complete_platform_json("python3.11", "arm64"),
    **_package_dir(
        "lk-nolock",
        "tomli==2.0.1",
        "tomli",
        _function("fn", "lk-nolock", "python3.12", "x86_64", [":req"]),
    ),
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _lock_request(rule_runner: RuleRunner, python_resolve: str) -> GenerateLambdaPlatformLockfile:
    name = platform_lockfiles.platform_resolve_name(python_resolve)
    requests = rule_runner.request(
        UserGenerateLockfiles, [RequestedLambdaPlatformResolveNames([name])]
    )
    assert len(requests) == 1
    request = requests[0]
    assert isinstance(request, GenerateLambdaPlatformLockfile)
    return request


def _generate(rule_runner: RuleRunner, python_resolve: str) -> Tuple[GenerateLockfileResult, str]:
    result = rule_runner.request(
        GenerateLockfileResult, [_lock_request(rule_runner, python_resolve)]
    )
    contents = rule_runner.request(DigestContents, [result.digest])
    assert [fc.path for fc in contents] == [result.path]
    return result, contents[0].content.decode()


_LOCKS: Dict[str, Tuple[GenerateLockfileResult, str]] = {}


def _lock(rule_runner: RuleRunner, python_resolve: str) -> Tuple[GenerateLockfileResult, str]:
    """Each resolve is locked once per module (pex asks PyPI every time)."""
    if python_resolve not in _LOCKS:
        _LOCKS[python_resolve] = _generate(rule_runner, python_resolve)
    return _LOCKS[python_resolve]


def _lock_json(lock_text: str) -> Dict:
    return json.loads(platform_lockfiles.strip_header(lock_text))


def _locked_requirement(lock_text: str, platform_key: str, project: str) -> Dict:
    for resolve in _lock_json(lock_text)["locked_resolves"]:
        if "-".join(resolve["platform_tag"]) != platform_key:
            continue
        for req in resolve["locked_requirements"]:
            if canonicalize_name(req["project_name"]) == project:
                return req
    raise AssertionError(f"{project} is not locked for {platform_key}")


def _wheel_filenames(locked_requirement: Mapping) -> List[str]:
    return [artifact["url"].rsplit("/", 1)[-1] for artifact in locked_requirement["artifacts"]]


def _wheel_platform_tags(filename: str) -> List[str]:
    assert filename.endswith(".whl"), filename
    return filename[: -len(".whl")].split("-")[-1].split(".")


_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(.+)$")
_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _manylinux_levels(filename: str) -> List[Tuple[Tuple[int, int], str]]:
    """((glibc major, minor), machine) of each manylinux tag of a wheel file name."""
    levels = []
    for tag in _wheel_platform_tags(filename):
        match = _MANYLINUX.match(tag)
        if match:
            levels.append(((int(match.group(1)), int(match.group(2))), match.group(3)))
            continue
        legacy, _, machine = tag.partition("_")
        if legacy in _LEGACY:
            levels.append((_LEGACY[legacy], machine))
    return levels


def _version_tuple(version: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _wrapped(error: ExecutionError) -> BaseException:
    wrapped: Sequence[BaseException] = error.wrapped_exceptions
    assert len(wrapped) == 1, error
    return wrapped[0]


def _packaging_error(rule_runner: RuleRunner, address: Address) -> BaseException:
    """The error that packaging the function at `address` fails with (it must fail)."""
    field_set = PowertoolsFunctionFieldSet.create(rule_runner.get_target(address))
    with pytest.raises(ExecutionError) as exc_info:
        rule_runner.request(BuiltPackage, [field_set])
    return _wrapped(exc_info.value)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def test_numpy_lock_honours_each_runtimes_glibc(rule_runner: RuleRunner) -> None:
    result, lock_text = _lock(rule_runner, "lk-numpy")
    assert result.resolve_name == "lk-numpy-lambda-platforms"
    assert result.path == "3rdparty/lk-numpy.lambda-platforms.lock"

    versions = platform_lockfiles.locked_versions(lock_text)
    assert set(versions) == {
        "cp311-cp311-manylinux_2_26_x86_64",
        "cp312-cp312-manylinux_2_34_x86_64",
    }
    numpy_311 = _locked_requirement(lock_text, "cp311-cp311-manylinux_2_26_x86_64", "numpy")
    numpy_312 = _locked_requirement(lock_text, "cp312-cp312-manylinux_2_34_x86_64", "numpy")

    # python3.11 runs on Amazon Linux 2 (glibc 2.26): its numpy must have such a wheel.
    files_311 = _wheel_filenames(numpy_311)
    assert files_311, numpy_311
    for filename in files_311:
        assert f"-{numpy_311['version']}-cp311-cp311-" in filename, filename
        levels = _manylinux_levels(filename)
        assert any(
            glibc <= (2, 26) and machine == "x86_64" for glibc, machine in levels
        ), f"{filename} needs a newer glibc than Lambda python3.11's 2.26"

    # python3.12 runs on Amazon Linux 2023 (glibc 2.34): it gets a newer numpy, whose x86_64
    # wheel needs more than glibc 2.26 (numpy >= 2.3 ships manylinux_2_27/2_28 only).
    assert _version_tuple(numpy_312["version"]) > _version_tuple(numpy_311["version"])
    files_312 = _wheel_filenames(numpy_312)
    assert files_312, numpy_312
    for filename in files_312:
        assert f"-{numpy_312['version']}-cp312-cp312-" in filename, filename
        levels = _manylinux_levels(filename)
        assert levels and all(machine == "x86_64" for _, machine in levels), filename
        assert all(glibc <= (2, 34) for glibc, _ in levels), filename
        assert min(glibc for glibc, _ in levels) > (2, 26), filename

    # What python3.11 was held back from: numpy 2.3 and 2.4 still support CPython 3.11 (only
    # their glibc is too new), so the older pick is the glibc cap at work, not Requires-Python.
    assert _version_tuple(numpy_311["version"]) < (2, 3)


def test_lock_is_strict_wheels_only_with_hashes_and_a_header(rule_runner: RuleRunner) -> None:
    _, lock_text = _lock(rule_runner, "lk-numpy")
    lines = lock_text.splitlines()
    assert "//    pants generate-lockfiles --resolve=lk-numpy-lambda-platforms" in lines

    inputs = platform_lockfiles.parse_header(lock_text)
    assert inputs == LockInputs.create(
        python_resolve="lk-numpy",
        requirements=["numpy>=2"],
        platforms=[("python3.11", "x86_64"), ("python3.12", "x86_64")],
        platform_digests={
            f"{runtime}-x86_64.json": hashlib.sha256(
                complete_platform_json(runtime, "x86_64").encode()
            ).hexdigest()
            for runtime in ("python3.11", "python3.12")
        },
    )

    data = _lock_json(lock_text)
    assert data["style"] == "strict"
    assert data["allow_builds"] is False
    assert data["requirements"] == ["numpy>=2"]
    assert len(data["locked_resolves"]) == 2
    for resolve in data["locked_resolves"]:
        for req in resolve["locked_requirements"]:
            assert req["artifacts"], req
            for artifact in req["artifacts"]:
                assert artifact["url"].endswith(".whl"), artifact
                assert artifact["algorithm"] == "sha256", artifact
                assert re.fullmatch(r"[0-9a-f]{64}", artifact["hash"]), artifact


def test_arm64_lock_carries_aarch64_pydantic_core(rule_runner: RuleRunner) -> None:
    _, lock_text = _lock(rule_runner, "lk-pydantic")
    inputs = platform_lockfiles.parse_header(lock_text)
    assert inputs.platforms == (("python3.12", "arm64"),)
    versions = platform_lockfiles.locked_versions(lock_text)
    assert list(versions) == ["cp312-cp312-manylinux_2_34_aarch64"]
    assert "pydantic-core" in versions["cp312-cp312-manylinux_2_34_aarch64"]

    pydantic_core = _locked_requirement(
        lock_text, "cp312-cp312-manylinux_2_34_aarch64", "pydantic-core"
    )
    filenames = _wheel_filenames(pydantic_core)
    assert filenames
    for filename in filenames:
        assert "-cp312-cp312-" in filename, filename
        levels = _manylinux_levels(filename)
        assert levels and all(machine == "aarch64" for _, machine in levels), filename
        assert "x86_64" not in filename


def _lock_error(rule_runner: RuleRunner, python_resolve: str) -> str:
    with pytest.raises(ExecutionError) as exc_info:
        _generate(rule_runner, python_resolve)
    error = _wrapped(exc_info.value)
    assert isinstance(error, LambdaPlatformLockError), error
    return str(error)


def test_sdist_only_requirement_fails_with_an_explanation(rule_runner: RuleRunner) -> None:
    message = _lock_error(rule_runner, "lk-sdist")
    assert message.startswith(
        "Could not lock the `lk-sdist` resolve for Lambda: 1 of 1 platform(s) failed.\n\n"
        "python3.12 x86_64 (needed by lk_sdist:fn):\n"
        "  docopt==0.6.2 has no wheel for python3.12 x86_64: it publishes only source distributions"
    )
    # The fix: docopt never published a wheel, so no pin or marker is offered.
    assert "To fix it: choose another `runtime` or `architecture`; or build the wheel" in message
    assert "[python-repos].find_links" in message
    assert "the newest is" not in message and "platform_machine" not in message
    # The explanation replaces pip's output rather than burying it.
    assert "Traceback" not in message
    assert "ERROR:" not in message
    assert "pex3" not in message and "pip" not in message


def test_every_failing_platform_is_named_with_its_targets(rule_runner: RuleRunner) -> None:
    message = _lock_error(rule_runner, "lk-multi")
    assert message.startswith(
        "Could not lock the `lk-multi` resolve for Lambda: 2 of 2 platform(s) failed."
    )
    assert (
        "\npython3.12 arm64 (needed by lk_multi:arm, lk_multi:arm2):\n"
        "  docopt==0.6.2 has no wheel for python3.12 arm64"
    ) in message
    assert (
        "\npython3.12 x86_64 (needed by lk_multi:x86):\n"
        "  docopt==0.6.2 has no wheel for python3.12 x86_64"
    ) in message


def test_no_such_project_and_no_such_version(rule_runner: RuleRunner) -> None:
    message = _lock_error(rule_runner, "lk-noproject")
    assert (
        "python3.12 x86_64 (needed by lk_noproject:fn):\n"
        "  this-project-does-not-exist-pptools==1.0: there is no project named "
        "`this-project-does-not-exist-pptools` on https://pypi.org/simple."
    ) in message
    assert "wheel" not in message

    message = _lock_error(rule_runner, "lk-noversion")
    assert (
        "  tomli==2.0.99: tomli has no version 2.0.99 on https://pypi.org/simple. Nearest versions "
        "there: 2.0.1, 2.0.2, 2.1.0, 2.2.1"
    ) in message


def test_one_architecture_wheels_suggest_a_marker_that_locks(rule_runner: RuleRunner) -> None:
    message = _lock_error(rule_runner, "lk-tbb")
    assert message.startswith(
        "Could not lock the `lk-tbb` resolve for Lambda: 1 of 2 platform(s) failed."
    )
    assert (
        "python3.12 arm64 (needed by lk_tbb:arm):\n"
        "  tbb==2023.2.0 has no wheel for python3.12 arm64"
    ) in message
    assert "python3.12 x86_64" not in message
    marked = 'tbb==2023.2.0; platform_machine == "x86_64"'
    assert f"`{marked}`" in message

    # The suggested requirement locks for both architectures; arm64's resolve has no tbb.
    rule_runner.write_files(
        {"lk_tbb/BUILD": FIXTURES["lk_tbb/BUILD"].replace('"tbb==2023.2.0"', repr(marked))}
    )
    try:
        _, lock_text = _generate(rule_runner, "lk-tbb")
    finally:
        rule_runner.write_files({"lk_tbb/BUILD": FIXTURES["lk_tbb/BUILD"]})
    versions = platform_lockfiles.locked_versions(lock_text)
    assert versions["cp312-cp312-manylinux_2_34_x86_64"]["tbb"] == "2023.2.0"
    assert versions["cp312-cp312-manylinux_2_34_aarch64"] == {}


def test_yanked_pin_warns(rule_runner: RuleRunner, caplog: pytest.LogCaptureFixture) -> None:
    _, lock_text = _generate(rule_runner, "lk-yank")
    assert platform_lockfiles.locked_versions(lock_text)["cp312-cp312-manylinux_2_34_x86_64"] == {
        "attrs": "21.1.0"
    }
    warnings = [r.getMessage() for r in caplog.records if "yanked" in r.getMessage()]
    assert len(warnings) == 1, caplog.records
    assert (
        "3rdparty/lk-yank.lambda-platforms.lock pins versions that their index has yanked"
        in warnings[0]
    )
    assert "attrs==21.1.0: yanked: Installable but not importable on Python 3.4." in warnings[0]


def test_resolve_mismatches_are_errors(rule_runner: RuleRunner) -> None:
    files = {
        "lk_mixed/BUILD": dedent(
            """\
            powertools_layer(name="layer", runtime="python3.12", dependencies=["lk_numpy:req"])
            powertools_layer(
                name="numpy-layer",
                runtime="python3.12",
                resolve="lk-numpy",
                dependencies=["lk_numpy:req"],
            )
            python_aws_lambda_powertools(
                name="fn",
                handler="app.py:handler",
                runtime="python3.12",
                resolve="lk-small",
                dependencies=["lk_small:req"],
                layers=[":numpy-layer"],
            )
            """
        ),
        "lk_mixed/app.py": "def handler(event, context):\n    return {}\n",
    }
    rule_runner.write_files(files)
    try:
        with pytest.raises(ExecutionError) as exc_info:
            rule_runner.request(
                LockInputs, [LambdaLockNeedsRequest(Address("lk_mixed", target_name="layer"))]
            )
        message = str(_wrapped(exc_info.value))
        assert message.startswith(
            "lk_mixed:layer uses the `lk-small` resolve (its `resolve` field is unset, so "
            "[python].default_resolve applies), but\n"
            "  its dependency lk_numpy:req uses the `lk-numpy` resolve\n"
        )
        assert 'Set `resolve="lk-numpy"` on lk_mixed:layer' in message

        with pytest.raises(ExecutionError) as exc_info:
            rule_runner.request(
                LockInputs, [LambdaLockNeedsRequest(Address("lk_mixed", target_name="fn"))]
            )
        message = str(_wrapped(exc_info.value))
        assert message.startswith(
            "lk_mixed:fn uses the `lk-small` resolve, but\n"
            "  its layer lk_mixed:numpy-layer uses the `lk-numpy` resolve\n"
        )
        # A consistent layer is fine.
        needs = rule_runner.request(
            LockInputs, [LambdaLockNeedsRequest(Address("lk_mixed", target_name="numpy-layer"))]
        )
        assert needs.python_resolve == "lk-numpy" and needs.requirements == ("numpy>=2",)
    finally:
        rule_runner.write_files({"lk_mixed/BUILD": ""})


def test_damaged_lock_names_the_file_and_the_command(rule_runner: RuleRunner) -> None:
    address = Address("lk_small", target_name="fn")
    _, lock_text = _lock(rule_runner, "lk-small")
    path = "3rdparty/lk-small.lambda-platforms.lock"
    damaged = lock_text.replace('"platforms": [', '"platforms": 12, "x": [', 1)
    assert damaged != lock_text
    rule_runner.write_files({path: damaged})
    try:
        error = _packaging_error(rule_runner, address)
    finally:
        rule_runner.write_files({path: lock_text})
    assert isinstance(error, LambdaPlatformLockError), error
    message = str(error)
    assert path in message
    assert "its metadata header field `platforms` should be a list, but is 12" in message
    assert "`pants generate-lockfiles --resolve=lk-small-lambda-platforms`" in message


def test_stale_and_missing_locks_name_the_command(rule_runner: RuleRunner) -> None:
    result, lock_text = _generate(rule_runner, "lk-small")
    rule_runner.write_files({result.path: lock_text})
    address = Address("lk_small", target_name="fn")
    field_set = PowertoolsFunctionFieldSet.create(rule_runner.get_target(address))

    # Fresh: the lock serves the function.
    built = rule_runner.request(BuiltPackage, [field_set])
    assert [a.relpath for a in built.artifacts] == ["lk_small/fn.zip"]

    # The BUILD file moves on without re-locking.
    rule_runner.write_files(
        {"lk_small/BUILD": FIXTURES["lk_small/BUILD"].replace("tomli==2.0.1", "tomli==2.0.2")}
    )
    error = _packaging_error(rule_runner, address)
    assert isinstance(error, LambdaPlatformLockError)
    message = str(error)
    assert "lk_small:fn" in message
    assert result.path in message
    assert "tomli==2.0.2" in message
    assert "`pants generate-lockfiles --resolve=lk-small-lambda-platforms`" in message

    # Same requirements, another architecture: the lock lacks that platform.
    rule_runner.write_files(
        {
            "lk_small/BUILD": FIXTURES["lk_small/BUILD"].replace(
                'architecture="x86_64"', 'architecture="arm64"'
            )
        }
    )
    message = str(_packaging_error(rule_runner, address))
    assert "lk_small:fn" in message
    assert "platforms not in the lock: python3.12 arm64" in message
    assert "`pants generate-lockfiles --resolve=lk-small-lambda-platforms`" in message


def test_missing_lock_names_the_command(rule_runner: RuleRunner) -> None:
    address = Address("lk_nolock", target_name="fn")
    error = _packaging_error(rule_runner, address)
    assert isinstance(error, LambdaPlatformLockError)
    message = str(error)
    assert "lk_nolock:fn" in message
    assert "3rdparty/lk-nolock.lambda-platforms.lock" in message
    assert "does not exist" in message
    assert "`pants generate-lockfiles --resolve=lk-nolock-lambda-platforms`" in message


def test_all_lock_needs_merge_per_resolve(rule_runner: RuleRunner) -> None:
    needs = rule_runner.request(AllLambdaLockNeeds, [])
    assert needs.get("lk-numpy").platforms == (("python3.11", "x86_64"), ("python3.12", "x86_64"))
    assert needs.get("lk-numpy").requirements == ("numpy>=2",)
    assert needs.get("lk-pydantic").platforms == (("python3.12", "arm64"),)


def test_custom_complete_platform_is_locked_and_used(rule_runner: RuleRunner) -> None:
    result, lock_text = _generate(rule_runner, "lk-custom")
    inputs = platform_lockfiles.parse_header(lock_text)
    custom_name = platform_lockfiles.custom_platform_filename(FIXTURES["lk_custom/cp.json"])
    assert inputs.platforms == ()
    assert [name for name, _ in inputs.platform_digests] == [custom_name]
    assert list(platform_lockfiles.locked_versions(lock_text)) == [
        "cp311-cp311-manylinux_2_26_aarch64"
    ]
    rule_runner.write_files({result.path: lock_text})

    address = Address("lk_custom", target_name="fn")
    field_set = PowertoolsFunctionFieldSet.create(rule_runner.get_target(address))
    built = rule_runner.request(BuiltPackage, [field_set])
    contents = rule_runner.request(DigestContents, [built.digest])
    zip_bytes = next(fc.content for fc in contents if fc.path.endswith(".zip"))
    import io
    import zipfile

    assert "tomli/__init__.py" in zipfile.ZipFile(io.BytesIO(zip_bytes)).namelist()

    # Editing the platform file makes the lock stale, with the command to run.
    rule_runner.write_files({"lk_custom/cp.json": complete_platform_json("python3.10", "arm64")})
    message = str(_packaging_error(rule_runner, address))
    assert "complete_platforms files not in the lock" in message
    assert "`pants generate-lockfiles --resolve=lk-custom-lambda-platforms`" in message
