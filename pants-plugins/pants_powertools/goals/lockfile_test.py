"""`generate-lockfiles` for Lambda platforms, through the plugin's real rules and the real pex.

The tests lock tiny resolves from PyPI with the `[pex-cli]` that ./pants built (its
`PANTS_PEX_CLI_URL_TEMPLATE` is passed to tests by `[test].extra_env_vars`) and assert on the
lock's content: which wheels were chosen for which Lambda platform, and the header that
packaging later compares with what a target needs.

Every lock is a `pex3 lock create` against PyPI, followed by a look-up on the index (and a
failed lock of several platforms re-locks each platform alone), so the module locks as few
times as its assertions allow: each resolve at most once (`_lock`, `_lock_error`), the tests of
aarch64 pydantic-core, of a yanked pin and of the marker that a failure suggests share one
lock (`lk-wheels`), both tests of a requirement without wheels share lk-multi's failure, and
the damaged-lock test damages a committed lock instead of locking one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
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
from pants_powertools.rule_runner_support import make_rule_runner, read_test_data
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
    "lk-wheels": "3rdparty/lk-wheels.lock",
    "lk-small": "3rdparty/lk-small.lock",
    "lk-nolock": "3rdparty/lk-nolock.lock",
    "lk-custom": "3rdparty/lk-custom.lock",
    "lk-multi": "3rdparty/lk-multi.lock",
    "lk-tbb": "3rdparty/lk-tbb.lock",
    "lk-noproject": "3rdparty/lk-noproject.lock",
    "lk-noversion": "3rdparty/lk-noversion.lock",
}

# The requirement that the lk-tbb failure suggests (arm64 has no tbb wheel); lk-wheels locks it.
TBB_MARKED = 'tbb==2023.2.0; platform_machine == "x86_64"'
# What lk-wheels' targets need, together (sorted as a lock's header lists them).
WHEELS_REQUIREMENTS = ["attrs==21.1.0", "pydantic-core", TBB_MARKED]
WHEELS_PLATFORMS = [("python3.12", "arm64"), ("python3.12", "x86_64")]


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


def _directory(name: str) -> str:
    """A directory named like `name`, as a Python package can be."""
    return name.replace("-", "_")


def _package_dir(
    resolve: str, requirement: str, import_name: str, functions: str, directory: str = ""
) -> Dict[str, str]:
    """One requirement and the functions that use it, in a directory named like the resolve
    (or like `directory`, when several directories share a resolve)."""
    folder = _directory(directory or resolve)
    return {
        f"{folder}/BUILD": dedent(
            f"""\
            python_requirement(name="req", requirements=[{requirement!r}], resolve="{resolve}")
            python_sources(resolve="{resolve}")
            """
        )
        + functions,
        f"{folder}/app.py": (
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
    # lk-wheels: requirements that lock on python3.12 (tbb has no wheel for python3.11's glibc,
    # so numpy stays apart), one directory each, so that one lock serves the tests of
    # pydantic-core on arm64, a yanked pin and the marker suggested for tbb. Every requirement
    # is locked for both platforms: each test looks only at its project on its platform.
    **_package_dir(
        "lk-wheels",
        "pydantic-core",
        "pydantic_core",
        _function("arm", "lk-wheels", "python3.12", "arm64", [":req"]),
        directory="lk-pydantic",
    ),
    # attrs 21.1.0 is yanked on PyPI ("Installable but not importable on Python 3.4.").
    **_package_dir(
        "lk-wheels",
        "attrs==21.1.0",
        "attr",
        _function("fn", "lk-wheels", "python3.12", "x86_64", [":req"]),
        directory="lk-yank",
    ),
    # What the lk-tbb failure suggests, for both architectures.
    **_package_dir(
        "lk-wheels",
        TBB_MARKED,
        "tbb",
        _function("x86", "lk-wheels", "python3.12", "x86_64", [":req"])
        + _function("arm", "lk-wheels", "python3.12", "arm64", [":req"]),
        directory="lk-tbb-marked",
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
    # docopt has no wheel at all (only an sdist): both platforms fail, and both are named.
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


class _Warnings(logging.Handler):
    """The warnings logged while it is attached to the root logger (as pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _generate_logging(
    rule_runner: RuleRunner, python_resolve: str
) -> Tuple[GenerateLockfileResult, str, List[str]]:
    """Lock `python_resolve`: the result, the lockfile's text and the warnings logged."""
    warnings = _Warnings()
    logging.getLogger().addHandler(warnings)
    try:
        result = rule_runner.request(
            GenerateLockfileResult, [_lock_request(rule_runner, python_resolve)]
        )
    finally:
        logging.getLogger().removeHandler(warnings)
    contents = rule_runner.request(DigestContents, [result.digest])
    assert [fc.path for fc in contents] == [result.path]
    return result, contents[0].content.decode(), warnings.messages


def _generate(rule_runner: RuleRunner, python_resolve: str) -> Tuple[GenerateLockfileResult, str]:
    result, lock_text, _ = _generate_logging(rule_runner, python_resolve)
    return result, lock_text


_LOCKS: Dict[str, Tuple[GenerateLockfileResult, str, List[str]]] = {}


def _lock_and_warnings(
    rule_runner: RuleRunner, python_resolve: str
) -> Tuple[GenerateLockfileResult, str, List[str]]:
    """Each resolve is locked once per module (pex asks PyPI every time)."""
    if python_resolve not in _LOCKS:
        _LOCKS[python_resolve] = _generate_logging(rule_runner, python_resolve)
    return _LOCKS[python_resolve]


def _lock(rule_runner: RuleRunner, python_resolve: str) -> Tuple[GenerateLockfileResult, str]:
    result, lock_text, _ = _lock_and_warnings(rule_runner, python_resolve)
    return result, lock_text


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
    _, lock_text = _lock(rule_runner, "lk-wheels")
    inputs = platform_lockfiles.parse_header(lock_text)
    assert ("python3.12", "arm64") in inputs.platforms
    versions = platform_lockfiles.locked_versions(lock_text)
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


_LOCK_ERRORS: Dict[str, str] = {}


def _lock_error(rule_runner: RuleRunner, python_resolve: str) -> str:
    """The message that locking `python_resolve` fails with (it must fail), once per module."""
    if python_resolve not in _LOCK_ERRORS:
        with pytest.raises(ExecutionError) as exc_info:
            _generate(rule_runner, python_resolve)
        error = _wrapped(exc_info.value)
        assert isinstance(error, LambdaPlatformLockError), error
        _LOCK_ERRORS[python_resolve] = str(error)
    return _LOCK_ERRORS[python_resolve]


def test_sdist_only_requirement_fails_with_an_explanation(rule_runner: RuleRunner) -> None:
    # lk-multi's lock (docopt, both architectures) also serves the next test.
    message = _lock_error(rule_runner, "lk-multi")
    assert (
        "\npython3.12 x86_64 (needed by lk_multi:x86):\n"
        "  docopt==0.6.2 has no wheel for python3.12 x86_64: it publishes only source distributions"
    ) in message
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
    assert f"`{TBB_MARKED}`" in message

    # The suggested requirement locks for both architectures (lk-wheels requires it, for
    # lk_tbb_marked's functions on x86_64 and arm64); arm64's resolve has no tbb.
    _, lock_text = _lock(rule_runner, "lk-wheels")
    assert TBB_MARKED in platform_lockfiles.parse_header(lock_text).requirements
    versions = platform_lockfiles.locked_versions(lock_text)
    assert versions["cp312-cp312-manylinux_2_34_x86_64"]["tbb"] == "2023.2.0"
    assert "tbb" not in versions["cp312-cp312-manylinux_2_34_aarch64"]


def test_yanked_pin_warns(rule_runner: RuleRunner) -> None:
    _, lock_text, logged = _lock_and_warnings(rule_runner, "lk-wheels")
    versions = platform_lockfiles.locked_versions(lock_text)
    assert versions["cp312-cp312-manylinux_2_34_x86_64"]["attrs"] == "21.1.0"
    warnings = [message for message in logged if "yanked" in message]
    assert len(warnings) == 1, logged
    assert (
        "3rdparty/lk-wheels.lambda-platforms.lock pins versions that their index has yanked"
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
    """Packaging from a damaged lock, which needs no lock from PyPI: a committed one (made by
    the plugin's rules, test_data's `other`) stands in for lk-small's, its header naming
    lk-small's resolve. Undamaged, it is merely stale (it locks typing-extensions, not tomli)."""
    address = Address("lk_small", target_name="fn")
    path = "3rdparty/lk-small.lambda-platforms.lock"
    committed = read_test_data("other.lambda-platforms.lock").decode()
    lock_text = committed.replace('"python_resolve": "other"', '"python_resolve": "lk-small"', 1)
    damaged = lock_text.replace('"platforms": [', '"platforms": 12, "x": [', 1)
    assert committed != lock_text != damaged
    try:
        rule_runner.write_files({path: lock_text})
        stale = _packaging_error(rule_runner, address)
        rule_runner.write_files({path: damaged})
        error = _packaging_error(rule_runner, address)
    finally:
        Path(rule_runner.build_root, path).unlink()
    assert isinstance(stale, LambdaPlatformLockError), stale
    assert "damaged" not in str(stale) and "tomli==2.0.1" in str(stale)
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
    # lk-wheels: the targets of three directories, each with its requirement and platforms.
    assert needs.get("lk-wheels").platforms == tuple(WHEELS_PLATFORMS)
    assert needs.get("lk-wheels").requirements == tuple(WHEELS_REQUIREMENTS)


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
