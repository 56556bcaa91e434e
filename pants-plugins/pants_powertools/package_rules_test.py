"""`pants package` for `powertools_layer` and `python_aws_lambda_powertools`, through the real rules.

The module locks two tiny resolves once (with the plugin's own `generate-lockfiles` rules and the
`[pex-cli]` that ./pants built), then packages layers and functions from them: the happy path
is checked entry by entry in the ZIPs, and every bad input must fail with a message that names
the target and the fix.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from textwrap import dedent
from typing import Dict, Mapping, Optional, Sequence, Tuple, Type, Union

import pytest

from pants.core.goals.generate_lockfiles import GenerateLockfileResult, UserGenerateLockfiles
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import InvalidTargetException
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools import platform_lockfiles
from pants_powertools.lockfile_rules import (
    GenerateLambdaPlatformLockfile,
    RequestedLambdaPlatformResolveNames,
)
from pants_powertools.rule_runner_support import make_rule_runner
from pants_powertools.package_rules import (
    PowertoolsFunctionFieldSet,
    PowertoolsLayerFieldSet,
    PowertoolsPackageError,
)
from pants_powertools.target_types import PowertoolsLayer

# ---------------------------------------------------------------------------------------------
# The RuleRunner, configured like the repository's pants.toml.
# ---------------------------------------------------------------------------------------------

RESOLVES = {
    "pkg": "3rdparty/pkg.lock",
    "other": "3rdparty/other.lock",
}


FIXTURES: Dict[str, str] = {
    "3rdparty/BUILD": dedent(
        """\
        python_requirement(name="typing-extensions", requirements=["typing-extensions==4.12.2"])
        python_requirement(name="tomli", requirements=["tomli==2.0.1"])
        python_requirement(name="jmespath", requirements=["jmespath==1.0.1"])
        python_requirement(
            name="old-typing-extensions",
            requirements=["typing-extensions==4.11.0"],
            resolve="other",
        )
        """
    ),
    "src/layers/BUILD": dedent(
        """\
        powertools_layer(
            name="layer",
            runtime="python3.12",
            architectures=["x86_64"],
            dependencies=["3rdparty:typing-extensions"],
        )
        powertools_layer(
            name="old",
            runtime="python3.12",
            architectures=["x86_64"],
            resolve="other",
            dependencies=["3rdparty:old-typing-extensions"],
        )
        """
    ),
    "src/fns/BUILD": dedent(
        """\
        python_sources()
        resources(name="data", sources=["data/*"])

        python_aws_lambda_powertools(
            name="fn",
            handler="app.py:handler",
            runtime="python3.12",
            layers=["src/layers:layer"],
            dependencies=[":data"],
        )
        python_aws_lambda_powertools(
            name="fn_keep_runtime_provided",
            handler="app.py:handler",
            runtime="python3.12",
            layers=["src/layers:layer"],
            dependencies=[":data"],
            exclude_runtime_provided=False,
        )
        python_aws_lambda_powertools(
            name="fn_bytecode",
            handler="app.py:handler",
            runtime="python3.12",
            layers=["src/layers:layer"],
            dependencies=[":data"],
            compile_bytecode=True,
        )
        """
    ),
    "src/fns/__init__.py": "",
    "src/fns/app.py": dedent(
        """\
        import jmespath
        import tomli
        import typing_extensions

        from fns import helper


        def handler(event, context):
            return helper.greet(tomli.loads('a = 1')["a"])
        """
    ),
    "src/fns/helper.py": "def greet(n):\n    return {'n': n}\n",
    "src/fns/data/config.txt": "setting = 1\n",
    "src/fns/data/tool.sh": "#!/bin/sh\necho hi\n",
    # Only first-party code: no third-party tree at all.
    "src/plain/BUILD": dedent(
        """\
        python_sources()
        python_aws_lambda_powertools(name="fn", handler="app.py:handler", runtime="python3.12")
        """
    ),
    "src/plain/app.py": "def handler(event, context):\n    return {}\n",
    # A python3.14 function: the `pkg` lock covers python3.14 x86_64 because of it.
    "src/py314/BUILD": dedent(
        """\
        python_sources()
        python_aws_lambda_powertools(
            name="fn",
            handler="app.py:handler",
            runtime="python3.14",
            compile_bytecode=True,
        )
        """
    ),
    "src/py314/app.py": "def handler(event, context):\n    return {}\n",
}


def _lock(rule_runner: RuleRunner, python_resolve: str) -> None:
    """Lock a resolve for its Lambda platforms with the plugin's rules; write it to the repo."""
    requests = rule_runner.request(
        UserGenerateLockfiles,
        [RequestedLambdaPlatformResolveNames([platform_lockfiles.platform_resolve_name(python_resolve)])],
    )
    assert len(requests) == 1 and isinstance(requests[0], GenerateLambdaPlatformLockfile)
    result = rule_runner.request(GenerateLockfileResult, [requests[0]])
    rule_runner.write_digest(result.digest)


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = make_rule_runner(
        [
            QueryRule(UserGenerateLockfiles, [RequestedLambdaPlatformResolveNames]),
            QueryRule(GenerateLockfileResult, [GenerateLambdaPlatformLockfile]),
            QueryRule(BuiltPackage, [PowertoolsFunctionFieldSet]),
            QueryRule(BuiltPackage, [PowertoolsLayerFieldSet]),
            QueryRule(DigestContents, [Digest]),
        ],
        RESOLVES,
        default_resolve="pkg",
        source_roots=["/src"],
    )
    runner.write_files(FIXTURES)
    # Pants keeps only the executable bit: the ZIP must say 0755 for it and 0644 for the rest.
    runner.chmod("src/fns/data/tool.sh", 0o750)
    runner.chmod("src/fns/helper.py", 0o600)
    _lock(runner, "pkg")
    _lock(runner, "other")
    return runner


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _package(rule_runner: RuleRunner, address: Address) -> Dict[str, bytes]:
    """{path: bytes} of everything `pants package` writes for the target."""
    tgt = rule_runner.get_target(address)
    field_set: Union[PowertoolsLayerFieldSet, PowertoolsFunctionFieldSet]
    if isinstance(tgt, PowertoolsLayer):
        field_set = PowertoolsLayerFieldSet.create(tgt)
    else:
        field_set = PowertoolsFunctionFieldSet.create(tgt)
    built = rule_runner.request(BuiltPackage, [field_set])
    contents = rule_runner.request(DigestContents, [built.digest])
    files = {fc.path: fc.content for fc in contents}
    for artifact in built.artifacts:
        assert artifact.relpath in files
    return files


_PACKAGED: Dict[Address, Dict[str, bytes]] = {}


def _packaged(rule_runner: RuleRunner, address: Address) -> Dict[str, bytes]:
    if address not in _PACKAGED:
        _PACKAGED[address] = _package(rule_runner, address)
    return _PACKAGED[address]


def _zip_and_manifest(files: Mapping[str, bytes]) -> Tuple[str, bytes, Dict]:
    zips = [path for path in files if path.endswith(".zip")]
    assert len(zips) == 1, sorted(files)
    zip_path = zips[0]
    manifest_path = zip_path[: -len(".zip")] + ".lambda.json"
    assert manifest_path in files, sorted(files)
    return zip_path, files[zip_path], json.loads(files[manifest_path])


def _entries(zip_bytes: bytes) -> Dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        return {info.filename: info for info in zf.infolist()}


def _read(zip_bytes: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        return zf.read(name)


def _has_distribution(names: Sequence[str], package: str, dist_info_prefix: str, root: str = "") -> bool:
    return any(
        name.startswith(f"{root}{package}/")
        or name == f"{root}{package}.py"
        or name.startswith(f"{root}{dist_info_prefix}-")
        for name in names
    )


FUNCTION = Address("src/fns", target_name="fn")
FUNCTION_KEEP = Address("src/fns", target_name="fn_keep_runtime_provided")
FUNCTION_BYTECODE = Address("src/fns", target_name="fn_bytecode")
LAYER = Address("src/layers", target_name="layer")


# ---------------------------------------------------------------------------------------------
# Happy path
# ---------------------------------------------------------------------------------------------


def test_layer_zip_puts_everything_under_python(rule_runner: RuleRunner) -> None:
    zip_path, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, LAYER))
    assert zip_path == "src.layers/layer-x86_64.zip"
    names = list(_entries(zip_bytes))
    assert names and all(name.startswith("python/") for name in names), names
    assert "python/typing_extensions.py" in names
    assert "python/typing_extensions-4.12.2.dist-info/METADATA" in names
    assert manifest["kind"] == "layer"
    assert manifest["architectures"] == ["x86_64"]
    assert manifest["distributions"] == {"typing-extensions": "4.12.2"}


def test_function_zip_holds_first_party_code_and_what_layers_lack(rule_runner: RuleRunner) -> None:
    zip_path, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, FUNCTION))
    assert zip_path == "src.fns/fn.zip"
    names = list(_entries(zip_bytes))

    # The re-exported handler and first-party code (source root stripped), resources included.
    assert "lambda_function.py" in names
    assert b"from fns.app import handler as handler" in _read(zip_bytes, "lambda_function.py")
    for name in ("fns/__init__.py", "fns/app.py", "fns/helper.py", "fns/data/config.txt", "fns/data/tool.sh"):
        assert name in names, name
    assert _read(zip_bytes, "fns/helper.py") == FIXTURES["src/fns/helper.py"].encode()

    # A distribution the layer lacks is carried; the layer's own is left out.
    assert _has_distribution(names, "tomli", "tomli")
    assert "tomli-2.0.1.dist-info/METADATA" in names
    assert not _has_distribution(names, "typing_extensions", "typing_extensions")
    # jmespath is runtime-provided: left out by default.
    assert not _has_distribution(names, "jmespath", "jmespath")
    # No bytecode unless asked for.
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert manifest["distributions"] == {"tomli": "2.0.1"}


def test_zip_entries_have_lambda_modes_and_fixed_timestamps(rule_runner: RuleRunner) -> None:
    for address in (FUNCTION, LAYER):
        _, zip_bytes, _ = _zip_and_manifest(_packaged(rule_runner, address))
        for name, info in _entries(zip_bytes).items():
            mode = info.external_attr >> 16
            assert info.date_time == (1980, 1, 1, 0, 0, 0), name
            if name.endswith("/"):
                assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o755, (name, oct(mode))
            else:
                assert stat.S_ISREG(mode), (name, oct(mode))
                assert stat.S_IMODE(mode) in (0o644, 0o755), (name, oct(mode))
    _, zip_bytes, _ = _zip_and_manifest(_packaged(rule_runner, FUNCTION))
    entries = _entries(zip_bytes)
    # 0600 in the repository, still readable by Lambda's user; the executable stays executable.
    assert stat.S_IMODE(entries["fns/helper.py"].external_attr >> 16) == 0o644
    assert stat.S_IMODE(entries["fns/data/tool.sh"].external_attr >> 16) == 0o755
    assert stat.S_IMODE(entries["fns/app.py"].external_attr >> 16) == 0o644


def test_manifests_describe_the_zips(rule_runner: RuleRunner) -> None:
    layer_zip_path, layer_zip, layer_manifest = _zip_and_manifest(_packaged(rule_runner, LAYER))
    zip_path, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, FUNCTION))
    expected_keys = {
        "manifest_version",
        "kind",
        "artifact",
        "runtime",
        "architectures",
        "handler",
        "sha256",
        "code_sha256",
        "size",
        "unzipped_size",
        "distributions",
        "layers",
        "environment",
    }
    for path, data, doc in ((layer_zip_path, layer_zip, layer_manifest), (zip_path, zip_bytes, manifest)):
        assert expected_keys <= set(doc), sorted(doc)
        assert doc["artifact"] == path
        assert doc["runtime"] == "python3.12"
        assert doc["sha256"] == hashlib.sha256(data).hexdigest()
        assert doc["code_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert doc["size"] == len(data)
        assert doc["unzipped_size"] == sum(
            info.file_size for info in _entries(data).values() if not info.is_dir()
        )
    assert manifest["kind"] == "function"
    assert manifest["handler"] == "lambda_function.handler"
    assert manifest["architectures"] == ["x86_64"]
    assert [layer["address"] for layer in manifest["layers"]] == ["src/layers:layer"]
    # The function names the exact layer ZIP it was split against.
    assert manifest["layers"][0]["sha256"] == layer_manifest["sha256"]
    assert manifest["layers"][0]["artifact"] == layer_zip_path


def test_runtime_provided_distribution_kept_on_request(rule_runner: RuleRunner) -> None:
    _, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, FUNCTION_KEEP))
    names = list(_entries(zip_bytes))
    assert "jmespath/__init__.py" in names
    assert "jmespath-1.0.1.dist-info/METADATA" in names
    assert manifest["distributions"] == {"jmespath": "1.0.1", "tomli": "2.0.1"}
    # Still without what the layer provides.
    assert not _has_distribution(names, "typing_extensions", "typing_extensions")


def test_function_without_requirements(rule_runner: RuleRunner) -> None:
    zip_path, zip_bytes, manifest = _zip_and_manifest(
        _packaged(rule_runner, Address("src/plain", target_name="fn"))
    )
    assert zip_path == "src.plain/fn.zip"
    assert sorted(_entries(zip_bytes)) == ["lambda_function.py", "plain/", "plain/app.py"]
    assert manifest["distributions"] == {}
    assert manifest["layers"] == []


def _cpython_312_magic(magic: bytes) -> bool:
    # importlib's MAGIC_NUMBER: a little-endian word then b"\r\n"; CPython 3.12 used 3500-3549.
    return magic[2:] == b"\r\n" and 3500 <= int.from_bytes(magic[:2], "little") < 3550


def test_compile_bytecode_ships_unchecked_hash_pycs(rule_runner: RuleRunner) -> None:
    _, zip_bytes, _ = _zip_and_manifest(_packaged(rule_runner, FUNCTION_BYTECODE))
    names = list(_entries(zip_bytes))
    pycs = [name for name in names if name.endswith(".pyc")]
    for expected in (
        "fns/__pycache__/app.cpython-312.pyc",
        "fns/__pycache__/helper.cpython-312.pyc",
        "tomli/__pycache__/__init__.cpython-312.pyc",
        "__pycache__/lambda_function.cpython-312.pyc",
    ):
        assert expected in pycs, (expected, pycs)
    for name in pycs:
        assert re.search(r"(^|/)__pycache__/[^/]+\.cpython-312\.pyc$", name), name
        data = _read(zip_bytes, name)
        assert _cpython_312_magic(data[:4]), (name, data[:4])
        assert data[:4] != importlib.util.MAGIC_NUMBER  # Not this (3.9) interpreter's.
        # PEP 552 flags word: 0b01 = hash-based, check_source off ("unchecked-hash").
        assert int.from_bytes(data[4:8], "little") == 1, name
        source = name.replace("__pycache__/", "").replace(".cpython-312.pyc", ".py")
        assert source in names, name


# ---------------------------------------------------------------------------------------------
# Bad inputs: each error names the target and the fix.
# ---------------------------------------------------------------------------------------------


_ZEROS = b"\0" * 5_242_880  # 50 of these are exactly Lambda's 262,144,000-byte limit.


@dataclass(frozen=True)
class BadCase:
    id: str
    files: Mapping[str, Union[str, bytes]]
    address: Address
    expected: Tuple[str, ...]
    error_type: Type[BaseException] = PowertoolsPackageError


def _function_build(name: str = "fn", **fields: object) -> str:
    lines = [f"    name={name!r},"]
    fields.setdefault("handler", "app.py:handler")
    fields.setdefault("runtime", "python3.12")
    lines += [f"    {key}={value!r}," for key, value in fields.items()]
    return "python_aws_lambda_powertools(\n" + "\n".join(lines) + "\n)\n"


def _layer_build(name: str, **fields: object) -> str:
    lines = [f"    name={name!r},"]
    fields.setdefault("runtime", "python3.12")
    fields.setdefault("dependencies", ["3rdparty:tomli"])
    lines += [f"    {key}={value!r}," for key, value in fields.items()]
    return "powertools_layer(\n" + "\n".join(lines) + "\n)\n"


_APP = "def handler(event, context):\n    return {}\n"


def _case(case_id: str, build: str, expected: Sequence[str], *, app: Optional[str] = _APP,
          extra: Optional[Mapping[str, Union[str, bytes]]] = None, target: str = "fn",
          error_type: Type[BaseException] = PowertoolsPackageError) -> BadCase:
    directory = f"src/bad_{case_id}"
    files: Dict[str, Union[str, bytes]] = {f"{directory}/BUILD": "python_sources()\n" + build}
    if app is not None:
        files[f"{directory}/app.py"] = app
    for path, content in (extra or {}).items():
        files[f"{directory}/{path}"] = content
    address = Address(directory, target_name=target)
    return BadCase(case_id, files, address, (str(address), *expected), error_type)


BAD_CASES = [
    _case(
        "runtime",
        _function_build(runtime="python3.8"),
        ["`runtime`", "'python3.8'", "Valid runtimes are:", "'python3.12'"],
        error_type=InvalidTargetException,
    ),
    _case(
        "architecture",
        _function_build(architecture="aarch64"),
        ["`architecture`", "'aarch64'", "Did you mean 'arm64'?"],
        error_type=InvalidTargetException,
    ),
    _case(
        "handler_file",
        _function_build(handler="bad_handler_file.nothere:handler"),
        ["bad_handler_file.nothere", "bad_handler_file/nothere.py", "Check the spelling"],
    ),
    _case(
        "handler_path",
        _function_build(handler="nothere.py:handler"),
        ["`handler`", "src/bad_handler_path/nothere.py", "does not exist", "Fix the file name"],
    ),
    _case(
        "handler_function",
        _function_build(handler="app.py:handler"),
        ["defines no top-level `handler`", "main", "Fix the name after the `:`"],
        app="def main(event, context):\n    return {}\n",
    ),
    _case(
        "layer_architecture",
        _layer_build("layer", architectures=["x86_64"])
        + _function_build(architecture="arm64", layers=[":layer"]),
        ["src/bad_layer_architecture:layer", "lacks arm64", "add \"arm64\" to the layer's `architectures`"],
    ),
    _case(
        "layer_runtime",
        _layer_build("layer", runtime="python3.11")
        + _function_build(runtime="python3.12", layers=[":layer"]),
        ["src/bad_layer_runtime:layer", "lacks python3.12", 'runtime="python3.12"'],
    ),
    _case(
        "version_conflict",
        _function_build(layers=["src/layers:old"], dependencies=["3rdparty:typing-extensions"]),
        [
            "typing-extensions==4.12.2",
            "src/layers:old",
            "typing-extensions==4.11.0",
            "Fix: resolve the function and the layer from the same lockfile",
        ],
    ),
    _case(
        "size",
        _function_build(dependencies=[":blobs"]) + 'resources(name="blobs", sources=["blobs/*"])\n',
        [
            "the function ZIP unzips to 262,14",
            "less than 262,144,000 bytes",
            "Fix, by what helps most",
            "container image",
        ],
        extra={f"blobs/zeros{i:02d}.bin": _ZEROS for i in range(50)},
    ),
    _case(
        "layer_count",
        "".join(_layer_build(f"layer{i}") for i in range(6))
        + _function_build(layers=[f":layer{i}" for i in range(6)]),
        ["6 layers", "at most 5", "Fix: merge layers"],
    ),
]


def _cpython_314_on_this_machine() -> bool:
    if shutil.which("python3.14"):
        return True
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return bool(glob.glob(os.path.join(pyenv_root, "versions", "3.14*", "bin", "python3.14")))


def _error_of(excinfo: pytest.ExceptionInfo) -> BaseException:
    error = excinfo.value
    assert isinstance(error, ExecutionError)
    assert len(error.wrapped_exceptions) == 1, error
    return error.wrapped_exceptions[0]


@pytest.mark.parametrize("case", BAD_CASES, ids=[case.id for case in BAD_CASES])
def test_bad_input_fails_naming_target_and_fix(rule_runner: RuleRunner, case: BadCase) -> None:
    rule_runner.write_files(dict(case.files))
    try:
        with pytest.raises(ExecutionError) as excinfo:
            _package(rule_runner, case.address)
    finally:
        # Leave no broken target behind for the next case; drop the big files.
        build_files = {path: "" for path in case.files if path.endswith("/BUILD")}
        rule_runner.write_files(build_files)
        for path in case.files:
            if path.endswith(".bin"):
                os.unlink(os.path.join(rule_runner.build_root, path))
    error = _error_of(excinfo)
    message = str(error)
    assert isinstance(error, case.error_type), f"{type(error).__name__}: {message}"
    for expected in case.expected:
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert "Traceback" not in message


def test_bytecode_without_a_runtime_interpreter_fails(rule_runner: RuleRunner) -> None:
    if _cpython_314_on_this_machine():
        pytest.skip("A CPython 3.14 is installed here, so python3.14 bytecode can be compiled.")
    with pytest.raises(ExecutionError) as excinfo:
        _package(rule_runner, Address("src/py314", target_name="fn"))
    error = _error_of(excinfo)
    message = str(error)
    assert isinstance(error, PowertoolsPackageError), message
    for expected in (
        "src/py314:fn",
        "`compile_bytecode=True`",
        "CPython 3.14",
        "pyenv install 3.14",
        "set `compile_bytecode=False`",
    ):
        assert expected in message, f"{expected!r} not in:\n{message}"
