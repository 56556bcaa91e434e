"""`pants package` for `powertools_layer` and `python_aws_lambda_powertools`, through the real
rules.

Nothing is locked here: the committed Lambda platform lockfiles of `test_data/` (made once by the
plugin's own `generate-lockfiles` rules) are copied into the build root, and the layers and
functions are packaged from them (the locked wheels still download once into Pants' named
caches). The happy path is checked entry by entry in the ZIPs and against the manifests; every
bad input of `BAD_CASES` must fail with the plugin's error type, naming the target, the field or
cause and the fix, without a traceback; the handlers of `GOOD_CASES` must package.

Each case writes its files into its own directory and removes it afterwards, so no broken BUILD
file outlives its test.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.util
import io
import json
import logging
import os
import shutil
import stat
import subprocess
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

import pytest
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import InvalidTargetException
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools.goals.package import PowertoolsFunctionFieldSet, PowertoolsLayerFieldSet
from pants_powertools.rule_runner_support import make_rule_runner, read_test_data, write_test_locks
from pants_powertools.sandbox import elf_strip
from pants_powertools.target_types import PowertoolsLayer
from pants_powertools.util_rules.artifacts import PowertoolsPackageError
from pants_powertools.util_rules.platform_lock import LambdaPlatformLockError

# ---------------------------------------------------------------------------------------------
# The RuleRunner, configured like the repository's pants.toml.
# ---------------------------------------------------------------------------------------------

RESOLVES = {
    "pkg": "3rdparty/pkg.lock",
    "other": "3rdparty/other.lock",
    # Powertools with `[tracer]`: wrapt ships C sources and a `wrapt-stubs` package.
    "pt": "3rdparty/pt.lock",
}
# A directory that is a source root of its own, so `lambda_function.py` can sit at a root.
REEXPORT_CLASH_ROOT = "src/bad_reexport_clash"
SOURCE_ROOTS = ["/src", f"/{REEXPORT_CLASH_ROOT}"]


FIXTURES: Dict[str, str] = {
    "3rdparty/BUILD": dedent(
        """\
        python_requirement(name="typing-extensions", requirements=["typing-extensions==4.12.2"])
        python_requirement(name="tomli", requirements=["tomli==2.0.1"])
        python_requirement(name="jmespath", requirements=["jmespath==1.0.1"])
        python_requirement(name="powertools", requirements=["aws-lambda-powertools==3.37.0"])
        python_requirement(
            name="old-typing-extensions",
            requirements=["typing-extensions==4.11.0"],
            resolve="other",
        )
        python_requirement(
            name="pt-tracer",
            requirements=["aws-lambda-powertools[tracer]==3.37.0"],
            resolve="pt",
        )
        # In no lockfile: a layer that needs it cannot be built.
        python_requirement(name="unlocked", requirements=["six==1.16.0"])
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
            name="layer_bytecode",
            runtime="python3.12",
            architectures=["x86_64"],
            dependencies=["3rdparty:tomli"],
            compile_bytecode=True,
        )
        powertools_layer(
            name="old",
            runtime="python3.12",
            architectures=["x86_64"],
            resolve="other",
            dependencies=["3rdparty:old-typing-extensions"],
        )
        powertools_layer(
            name="powertools",
            runtime="python3.12",
            architectures=["x86_64"],
            dependencies=["3rdparty:powertools"],
        )
        powertools_layer(
            name="unbuildable",
            runtime="python3.12",
            architectures=["x86_64"],
            dependencies=["3rdparty:unlocked"],
        )
        """
    ),
    "src/fns/BUILD": dedent(
        """\
        python_sources()
        resources(name="data", sources=["data/*"])
        files(name="config", sources=["config/*.json"])

        python_aws_lambda_powertools(
            name="fn",
            handler="app.py:handler",
            runtime="python3.12",
            layers=["src/layers:layer"],
            dependencies=[":data", ":config"],
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
    "src/slim/BUILD": dedent(
        """\
        python_sources(resolve="pt")
        powertools_layer(
            name="layer",
            runtime="python3.12",
            architectures=["x86_64"],
            resolve="pt",
            dependencies=["3rdparty:pt-tracer"],
            slim=True,
        )
        powertools_layer(
            name="full_layer",
            runtime="python3.12",
            architectures=["x86_64"],
            resolve="pt",
            dependencies=["3rdparty:pt-tracer"],
        )
        python_aws_lambda_powertools(
            name="fn",
            handler="app.py:handler",
            runtime="python3.12",
            resolve="pt",
            dependencies=["3rdparty:pt-tracer"],
            slim=True,
        )
        """
    ),
    "src/slim/app.py": "def handler(event, context):\n    return {}\n",
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
    "src/fns/config/settings.json": '{"stage": "test"}\n',
    # Only first-party code: no third-party tree at all.
    "src/plain/BUILD": dedent(
        """\
        python_sources()
        python_aws_lambda_powertools(name="fn", handler="app.py:handler", runtime="python3.12")
        """
    ),
    "src/plain/app.py": "def handler(event, context):\n    return {}\n",
    # A python3.14 function: the `pkg` lock covers python3.14 x86_64 for it.
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


def _runner(*extra_options: str) -> RuleRunner:
    runner = make_rule_runner(
        [
            QueryRule(BuiltPackage, [PowertoolsFunctionFieldSet]),
            QueryRule(BuiltPackage, [PowertoolsLayerFieldSet]),
            QueryRule(DigestContents, [Digest]),
        ],
        RESOLVES,
        default_resolve="pkg",
        source_roots=SOURCE_ROOTS,
        extra_options=extra_options,
    )
    runner.write_files(FIXTURES)
    write_test_locks(runner, RESOLVES)
    return runner


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = _runner()
    # Pants keeps only the executable bit: the ZIP must say 0755 for it and 0644 for the rest.
    runner.chmod("src/fns/data/tool.sh", 0o750)
    runner.chmod("src/fns/helper.py", 0o600)
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


# The module's runner never changes between tests, so a target's package is built once.
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


def _has_distribution(
    names: Sequence[str], package: str, dist_info_prefix: str, root: str = ""
) -> bool:
    return any(
        name.startswith(f"{root}{package}/")
        or name == f"{root}{package}.py"
        or name.startswith(f"{root}{dist_info_prefix}-")
        for name in names
    )


def _unzipped_size(zip_bytes: bytes) -> int:
    """What Lambda counts: the sum of the uncompressed sizes of the ZIP's files."""
    return sum(info.file_size for info in _entries(zip_bytes).values() if not info.is_dir())


FUNCTION = Address("src/fns", target_name="fn")
FUNCTION_KEEP = Address("src/fns", target_name="fn_keep_runtime_provided")
FUNCTION_BYTECODE = Address("src/fns", target_name="fn_bytecode")
LAYER = Address("src/layers", target_name="layer")
LAYER_BYTECODE = Address("src/layers", target_name="layer_bytecode")
PY314 = Address("src/py314", target_name="fn")


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
    for name in (
        "fns/__init__.py",
        "fns/app.py",
        "fns/helper.py",
        "fns/data/config.txt",
        "fns/data/tool.sh",
    ):
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


def test_files_target_ships_at_its_build_root_path(rule_runner: RuleRunner) -> None:
    _, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, FUNCTION))
    entries = _entries(zip_bytes)
    # `files` keep their build-root-relative path (Lambda's working directory is the task
    # root), unlike resources, which are source-root-relative.
    content = FIXTURES["src/fns/config/settings.json"].encode()
    assert _read(zip_bytes, "src/fns/config/settings.json") == content
    assert "fns/config/settings.json" not in entries
    assert manifest["files"] == ["src/fns/config/settings.json"]
    # Counted in the unzipped size the manifest reports.
    assert entries["src/fns/config/settings.json"].file_size == len(content)
    assert manifest["unzipped_size"] == _unzipped_size(zip_bytes)
    # A function without `files` dependencies lists none.
    _, _, keep_manifest = _zip_and_manifest(_packaged(rule_runner, FUNCTION_KEEP))
    assert keep_manifest["files"] == []


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
    for path, data, doc in (
        (layer_zip_path, layer_zip, layer_manifest),
        (zip_path, zip_bytes, manifest),
    ):
        assert expected_keys <= set(doc), sorted(doc)
        assert doc["artifact"] == path
        assert doc["runtime"] == "python3.12"
        # The facts the ZIP step reported are those of the bytes `pants package` wrote.
        assert doc["sha256"] == hashlib.sha256(data).hexdigest()
        assert doc["code_sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert doc["size"] == len(data)
        assert doc["unzipped_size"] == _unzipped_size(data)
    assert "source_handler" not in layer_manifest and "files" not in layer_manifest
    assert manifest["kind"] == "function"
    assert manifest["handler"] == "lambda_function.handler"
    assert manifest["source_handler"] == "fns.app.handler"
    assert manifest["files"] == ["src/fns/config/settings.json"]
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
    assert manifest["files"] == []
    assert manifest["source_handler"] == "plain.app.handler"


# ---------------------------------------------------------------------------------------------
# Slim
# ---------------------------------------------------------------------------------------------

SLIM_LAYER = Address("src/slim", target_name="layer")
SLIM_FUNCTION = Address("src/slim", target_name="fn")
SLIM_FULL_LAYER = Address("src/slim", target_name="full_layer")


def _assert_slimmed(names: Sequence[str], manifest: Mapping, root: str) -> None:
    """No test dirs, stubs, C sources or docs of distributions; their dist-info intact."""
    assert f"{root}wrapt/__init__.py" in names
    assert any(n.startswith(f"{root}wrapt-") and n.endswith(".dist-info/RECORD") for n in names)
    assert not [n for n in names if "/tests/" in n or n.startswith(f"{root}tests/")]
    assert not [n for n in names if n.endswith(".pyi") or n.startswith(f"{root}wrapt-stubs/")]
    assert not [n for n in names if n.endswith((".c", ".h", ".pyx", ".pxd"))]
    packaged_docs = [n for n in names if n.endswith((".md", ".rst")) and ".dist-info/" not in n]
    assert not [n for n in packaged_docs if "LICENSE" not in n.upper()], packaged_docs
    slimmed = manifest["slimmed"]
    assert sorted(slimmed) == ["docs", "sources", "stubs", "symbols", "tests"]
    # wrapt ships `wrapt/_wrappers.c` and `wrapt-stubs/`; pydantic is not in [tracer].
    assert slimmed["sources"]["files"] >= 1 and slimmed["sources"]["bytes"] > 0
    assert slimmed["stubs"]["files"] >= 1 and slimmed["stubs"]["bytes"] > 0
    # ... and `wrapt/_wrappers.*.so` with its symbol table, which slim strips.
    assert slimmed["symbols"]["files"] >= 1 and slimmed["symbols"]["bytes"] > 0
    assert manifest["distributions"]["wrapt"]


def _native_files(zip_bytes: bytes) -> Dict[str, bytes]:
    return {
        name: _read(zip_bytes, name)
        for name in _entries(zip_bytes)
        if name.endswith(".so") and "/wrapt/" in f"/{name}"
    }


def test_slim_layer_leaves_out_what_lambda_never_runs(rule_runner: RuleRunner) -> None:
    _, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, SLIM_LAYER))
    _assert_slimmed(list(_entries(zip_bytes)), manifest, root="python/")
    # Without slim, the manifest still has the key, empty.
    _, full_zip, full_manifest = _zip_and_manifest(_packaged(rule_runner, SLIM_FULL_LAYER))
    assert full_manifest["slimmed"] == {}
    # wrapt's extension module: stripped once (nothing left to strip), and only with slim.
    ((name, stripped),) = _native_files(zip_bytes).items()
    original = _native_files(full_zip)[name]
    assert elf_strip.strip_symbols(stripped) is None
    assert elf_strip.strip_symbols(original) == stripped
    assert manifest["slimmed"]["symbols"] == {"files": 1, "bytes": len(original) - len(stripped)}


def test_slim_function_slims_its_third_party_code(rule_runner: RuleRunner) -> None:
    _, zip_bytes, manifest = _zip_and_manifest(_packaged(rule_runner, SLIM_FUNCTION))
    names = list(_entries(zip_bytes))
    _assert_slimmed(names, manifest, root="")
    assert "slim/app.py" in names and "lambda_function.py" in names
    assert _zip_and_manifest(_packaged(rule_runner, FUNCTION))[2]["slimmed"] == {}


# ---------------------------------------------------------------------------------------------
# Bytecode
# ---------------------------------------------------------------------------------------------


def _cpython_312_magic(magic: bytes) -> bool:
    # importlib's MAGIC_NUMBER: a little-endian word then b"\r\n"; CPython 3.12 used 3500-3549.
    return magic[2:] == b"\r\n" and 3500 <= int.from_bytes(magic[:2], "little") < 3550


def _assert_every_source_has_its_pyc(zip_bytes: bytes, root: str = "") -> List[str]:
    """Every .py has exactly its unchecked-hash CPython 3.12 .pyc, and every .pyc its .py."""
    names = list(_entries(zip_bytes))
    sources = [name for name in names if name.endswith(".py")]
    pycs = [name for name in names if name.endswith(".pyc")]
    assert sources and all(name.startswith(root) for name in names)
    # Fails when no bytecode was compiled at all.
    assert pycs, "compile_bytecode=True, but the ZIP holds no .pyc"
    expected = {
        f"{os.path.dirname(source) + '/' if '/' in source else ''}__pycache__/"
        f"{os.path.basename(source)[:-3]}.cpython-312.pyc"
        for source in sources
    }
    assert sorted(expected - set(pycs)) == []
    assert sorted(set(pycs) - expected) == []
    for name in pycs:
        data = _read(zip_bytes, name)
        assert _cpython_312_magic(data[:4]), (name, data[:4])
        assert data[:4] != importlib.util.MAGIC_NUMBER  # Not this (3.9) interpreter's.
        # PEP 552 flags word: 0b01 = hash-based, check_source off ("unchecked-hash").
        assert int.from_bytes(data[4:8], "little") == 1, name
    return pycs


def test_function_bytecode_is_unchecked_hash_pyc_for_every_source(rule_runner: RuleRunner) -> None:
    _, zip_bytes, _ = _zip_and_manifest(_packaged(rule_runner, FUNCTION_BYTECODE))
    pycs = _assert_every_source_has_its_pyc(zip_bytes)
    for expected in (
        "fns/__pycache__/app.cpython-312.pyc",
        "fns/__pycache__/helper.cpython-312.pyc",
        "tomli/__pycache__/__init__.cpython-312.pyc",
        "__pycache__/lambda_function.cpython-312.pyc",
    ):
        assert expected in pycs, (expected, pycs)


def _cpython_312() -> Optional[str]:
    candidates = [shutil.which("python3.12")]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.12*", "bin", "python3")))
    for candidate in filter(None, candidates):
        check = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"]
        )
        if check.returncode == 0:
            return candidate
    return None


# Whether each code object of the .pyc files named in argv[2:], read from the ZIP at argv[1],
# has column positions anywhere (the `^^^^` of a traceback): {name: bool}.
_HAS_COLUMNS = """
import json, marshal, sys, zipfile
def codes(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_positions"):
            yield from codes(const)
with zipfile.ZipFile(sys.argv[1]) as zf:
    out = {
        name: any(p[2] is not None for c in codes(marshal.loads(zf.read(name)[16:]))
                  for p in c.co_positions())
        for name in sys.argv[2:]
    }
json.dump(out, sys.stdout)
"""


def test_function_bytecode_has_columns_for_its_own_code_only(
    rule_runner: RuleRunner, tmp_path: Path
) -> None:
    """First-party tracebacks point at the failing expression; third-party .pyc leave the
    column tables out (~18% of their zipped size), keeping their line numbers."""
    python = _cpython_312()
    if python is None:
        pytest.skip("needs a CPython 3.12 to read CPython 3.12 code objects")
    _, zip_bytes, _ = _zip_and_manifest(_packaged(rule_runner, FUNCTION_BYTECODE))
    zip_path = tmp_path / "fn.zip"
    zip_path.write_bytes(zip_bytes)
    pycs = [
        "fns/__pycache__/app.cpython-312.pyc",
        "__pycache__/lambda_function.cpython-312.pyc",
        "tomli/__pycache__/_parser.cpython-312.pyc",
    ]
    found = subprocess.run(
        [python, "-c", _HAS_COLUMNS, str(zip_path), *pycs], stdout=subprocess.PIPE, check=True
    ).stdout
    assert json.loads(found) == dict(zip(pycs, (True, True, False)))


def test_layer_bytecode_is_unchecked_hash_pyc_for_every_source(rule_runner: RuleRunner) -> None:
    _, zip_bytes, _ = _zip_and_manifest(_packaged(rule_runner, LAYER_BYTECODE))
    pycs = _assert_every_source_has_its_pyc(zip_bytes, root="python/")
    assert "python/tomli/__pycache__/__init__.cpython-312.pyc" in pycs


def _cpython_314_on_this_machine() -> bool:
    if shutil.which("python3.14"):
        return True
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return bool(glob.glob(os.path.join(pyenv_root, "versions", "3.14*", "bin", "python3.14")))


_NO_314 = pytest.mark.skipif(
    _cpython_314_on_this_machine(),
    reason="A CPython 3.14 is installed here, so python3.14 bytecode can be compiled.",
)


def _error_of(excinfo: pytest.ExceptionInfo) -> BaseException:
    error = excinfo.value
    assert isinstance(error, ExecutionError)
    wrapped: Sequence[BaseException] = error.wrapped_exceptions
    assert len(wrapped) == 1, error
    return wrapped[0]


@_NO_314
def test_bytecode_field_without_a_runtime_interpreter_fails(rule_runner: RuleRunner) -> None:
    with pytest.raises(ExecutionError) as excinfo:
        _package(rule_runner, PY314)
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
    assert "Traceback" not in message


@_NO_314
def test_bytecode_option_without_a_runtime_interpreter_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # `[powertools].compile_bytecode` asks for bytecode everywhere; a runtime whose CPython is
    # missing here still packages, from source, with a warning. Its own runner: options differ.
    runner = _runner("--powertools-compile-bytecode")
    runner.write_files(
        {
            "src/py314_option/BUILD": "python_sources()\n"
            'python_aws_lambda_powertools(name="fn", handler="app.py:handler", '
            'runtime="python3.14", dependencies=["3rdparty:tomli"])\n',
            "src/py314_option/app.py": (
                "import tomli\n\ndef handler(event, context):\n    return {}\n"
            ),
        }
    )
    with caplog.at_level(logging.WARNING):
        _, zip_bytes, manifest = _zip_and_manifest(
            _package(runner, Address("src/py314_option", target_name="fn"))
        )
    names = list(_entries(zip_bytes))
    assert "py314_option/app.py" in names and "tomli/__init__.py" in names
    assert not [name for name in names if name.endswith(".pyc") or "__pycache__" in name]
    assert manifest["runtime"] == "python3.14"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "src/py314_option:fn" in w and "no CPython 3.14" in w and "without bytecode" in w
        for w in warnings
    ), warnings
    # The same option with a CPython at hand compiles (the control: the option is honoured).
    runner.write_files(
        {
            "src/py312_option/BUILD": "python_sources()\n"
            'python_aws_lambda_powertools(name="fn", handler="app.py:handler", '
            'runtime="python3.12")\n',
            "src/py312_option/app.py": "def handler(event, context):\n    return {}\n",
        }
    )
    _, zip_bytes, _ = _zip_and_manifest(
        _package(runner, Address("src/py312_option", target_name="fn"))
    )
    assert "py312_option/__pycache__/app.cpython-312.pyc" in _entries(zip_bytes)


# ---------------------------------------------------------------------------------------------
# Handlers that static analysis accepts although they are not a plain `def`.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoodCase:
    id: str
    files: Mapping[str, str]
    address: Address
    source_handler: str


def _good(case_id: str, handler: str, files: Mapping[str, str], source_handler: str) -> GoodCase:
    directory = f"src/good_{case_id}"
    build = (
        "python_sources()\n"
        f'python_aws_lambda_powertools(name="fn", handler={handler!r}, runtime="python3.12")\n'
    )
    all_files = {f"{directory}/BUILD": build, f"{directory}/__init__.py": ""}
    all_files.update({f"{directory}/{path}": content for path, content in files.items()})
    return GoodCase(case_id, all_files, Address(directory, target_name="fn"), source_handler)


GOOD_CASES = [
    _good(
        "star_import",
        "app.py:handler",
        {
            "app.py": "from good_star_import.impl import *  # noqa: F403\n",
            "impl.py": "def handler(event, context):\n    return {}\n",
        },
        "good_star_import.app.handler",
    ),
    _good(
        "callable_object",
        "app.py:handler",
        {
            "app.py": dedent(
                """\
                class Wrapper:
                    def __call__(self, event, context):
                        return {}


                handler = Wrapper()
                """
            )
        },
        "good_callable_object.app.handler",
    ),
]


@contextmanager
def _case_files(rule_runner: RuleRunner, files: Mapping[str, Union[str, bytes]]) -> Iterator[None]:
    """Write a case's files; remove its directories afterwards, broken BUILD files included."""
    rule_runner.write_files(dict(files))
    try:
        yield
    finally:
        for directory in sorted({path.split("/")[0] + "/" + path.split("/")[1] for path in files}):
            shutil.rmtree(os.path.join(rule_runner.build_root, directory), ignore_errors=True)


@pytest.mark.parametrize("case", GOOD_CASES, ids=[case.id for case in GOOD_CASES])
def test_handler_that_is_not_a_plain_def_packages(rule_runner: RuleRunner, case: GoodCase) -> None:
    with _case_files(rule_runner, case.files):
        _, zip_bytes, manifest = _zip_and_manifest(_package(rule_runner, case.address))
    module, _, func = case.source_handler.rpartition(".")
    assert manifest["source_handler"] == case.source_handler
    assert manifest["handler"] == "lambda_function.handler"
    assert f"from {module} import {func} as handler".encode() in _read(
        zip_bytes, "lambda_function.py"
    )
    assert module.replace(".", "/") + ".py" in _entries(zip_bytes)


# ---------------------------------------------------------------------------------------------
# Bad inputs: each error names the target, the field or cause, and the fix.
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


def _case(
    case_id: str,
    build: str,
    expected: Sequence[str],
    *,
    app: Optional[str] = _APP,
    extra: Optional[Mapping[str, Union[str, bytes]]] = None,
    target: str = "fn",
    error_type: Type[BaseException] = PowertoolsPackageError,
    sources: str = "python_sources()\n",
) -> BadCase:
    directory = f"src/bad_{case_id}"
    files: Dict[str, Union[str, bytes]] = {f"{directory}/BUILD": sources + build}
    if app is not None:
        files[f"{directory}/app.py"] = app
    for path, content in (extra or {}).items():
        files[f"{directory}/{path}"] = content
    address = Address(directory, target_name=target)
    return BadCase(case_id, files, address, (str(address), *expected), error_type)


BAD_CASES = [
    # Fields refused when the target is constructed.
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
        "architectures_empty",
        _layer_build("layer", architectures=[]),
        ["`architectures`", "it is empty", "list at least one of `x86_64`, `arm64`"],
        target="layer",
        error_type=InvalidTargetException,
    ),
    _case(
        "architectures_duplicate",
        _layer_build("layer", architectures=["x86_64", "x86_64"]),
        ["`architectures`", "lists an architecture twice", "['x86_64', 'x86_64']"],
        target="layer",
        error_type=InvalidTargetException,
    ),
    _case(
        "handler_unimportable_file",
        _function_build(handler="my-app.py:lambda_handler"),
        [
            "`handler`",
            "'my-app.py:lambda_handler'",
            "module name `my-app` is not a valid Python identifier",
            "Rename the file to my_app.py",
            "'my_app.py:lambda_handler'",
        ],
        error_type=InvalidTargetException,
    ),
    _case(
        "handler_dotdot",
        _function_build(handler="../app.py:handler"),
        ["`handler`", "'../app.py:handler'", "goes up with `..`", "Write its module path instead"],
        error_type=InvalidTargetException,
    ),
    _case(
        "handler_empty_function",
        _function_build(handler="app.py:"),
        ["`handler`", "'app.py:'", "names no function after the `:`", "'app.py:lambda_handler'"],
        error_type=InvalidTargetException,
    ),
    _case(
        "output_path_absolute",
        _function_build(output_path="/tmp/x.zip"),
        ["`output_path`", "'/tmp/x.zip' is not inside dist/", "'x.zip'"],
        error_type=InvalidTargetException,
    ),
    _case(
        "output_path_parent",
        _function_build(output_path="../x.zip"),
        ["`output_path`", "'../x.zip' is not inside dist/", "'x.zip'"],
        error_type=InvalidTargetException,
    ),
    _case(
        "complete_platforms_two",
        _function_build(complete_platforms=[":a", ":b"])
        + 'file(name="a", source="a.json")\nfile(name="b", source="b.json")\n',
        ["`complete_platforms`", "names 2 files", "exactly one platform", "Name one file"],
        extra={"a.json": "{}\n", "b.json": "{}\n"},
        error_type=InvalidTargetException,
    ),
    # The handler, checked before anything is built.
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
        "handler_async",
        _function_build(),
        [
            "`handler`",
            "cannot work",
            "Object of type coroutine is not JSON serializable",
            "asyncio.run(handler_async(event, context))",
        ],
        app="async def handler(event, context):\n    return {}\n",
    ),
    _case(
        "handler_constant",
        _function_build(handler="app.py:HANDLER"),
        [
            "`handler`",
            "'app.py:HANDLER'",
            "cannot work",
            "the number 42",
            "Point the `handler` field at a function",
        ],
        app="HANDLER = 42\n",
    ),
    _case(
        "handler_class",
        _function_build(),
        [
            "`handler`",
            "cannot work",
            "class",
            "`handler_instance = handler()`",
            "__call__(self, event, context)",
        ],
        app="class handler:\n    def __init__(self, event, context):\n        pass\n",
    ),
    _case(
        # A first-party `lambda_function.py` at a source root would be shadowed by the generated
        # re-export. The layer cannot be built (its requirement is in no lock): the error proves
        # the handler is checked before any layer is.
        "reexport_clash",
        _function_build(layers=["src/layers:unbuildable"]),
        [
            "first-party file lambda_function.py",
            "re-export",
            "`lambda_function.handler`",
            "Rename it (e.g. to app.py)",
        ],
        app="import lambda_function\n\n\ndef handler(event, context):\n    return {}\n",
        extra={"lambda_function.py": "VALUE = 1\n"},
    ),
    _case(
        "syntax_error_bytecode",
        _function_build(compile_bytecode=True),
        [
            "bad_syntax_error_bytecode/broken.py, line 2",
            "First-party code does not compile for Python 3.12",
            "Fix the syntax",
        ],
        app=(
            "from bad_syntax_error_bytecode import broken\n\n\n"
            "def handler(event, context):\n    return {}\n"
        ),
        extra={"__init__.py": "", "broken.py": "X = 1\ndef oops(:\n    pass\n"},
    ),
    _case(
        "native_wrong_architecture",
        _function_build(dependencies=[":so"]) + 'resources(name="so", sources=["thing.so"])\n',
        [
            "Native code that cannot load on Lambda x86_64",
            "bad_native_wrong_architecture/thing.so",
            "built for arm64 (aarch64)",
        ],
        extra={"thing.so": read_test_data("aarch64.so")},
    ),
    _case(
        "native_wrong_architecture_layer",
        _layer_build("layer", dependencies=[":so"])
        + 'resources(name="so", sources=["thing.so"])\n',
        [
            "Native code that cannot load on Lambda x86_64",
            "python/bad_native_wrong_architecture_layer/thing.so",
            "built for arm64 (aarch64)",
        ],
        target="layer",
        extra={"thing.so": read_test_data("aarch64.so")},
    ),
    # Layers.
    _case(
        "layer_not_a_layer",
        _function_build(layers=[":lib"]) + 'resource(name="lib", source="data.txt")\n',
        [
            "`layers`",
            "src/bad_layer_not_a_layer:lib, a `resource` target",
            "only `powertools_layer`",
        ],
        extra={"data.txt": "x\n"},
    ),
    _case(
        "layer_architecture",
        _layer_build("layer", architectures=["x86_64"])
        + _function_build(architecture="arm64", layers=[":layer"]),
        [
            "src/bad_layer_architecture:layer",
            "lacks arm64",
            'add "arm64" to the layer\'s `architectures`',
        ],
    ),
    _case(
        "layer_runtime",
        _layer_build("layer", runtime="python3.11")
        + _function_build(runtime="python3.12", layers=[":layer"]),
        ["src/bad_layer_runtime:layer", "lacks python3.12", 'runtime="python3.12"'],
    ),
    _case(
        "layer_count",
        "".join(_layer_build(f"layer{i}") for i in range(6))
        + _function_build(layers=[f":layer{i}" for i in range(6)]),
        ["6 layers", "at most 5", "Fix: merge layers"],
    ),
    _case(
        "public_and_built_powertools_layer",
        _function_build(powertools_public_layer_version=3, layers=["src/layers:powertools"]),
        [
            "`powertools_public_layer_version=3`",
            "src/layers:powertools carries aws-lambda-powertools too",
            "Use one or the other",
        ],
    ),
    _case(
        # A layer from another lockfile could carry other versions: refused before any build
        # (a version conflict within one resolve cannot happen; layering_test covers the check).
        "layer_in_another_resolve",
        _function_build(layers=["src/layers:old"], dependencies=["3rdparty:typing-extensions"]),
        [
            "uses the `pkg` resolve",
            "its layer src/layers:old uses the `other` resolve",
            'Set `resolve="other"`',
        ],
        error_type=LambdaPlatformLockError,
    ),
    # Limits.
    _case(
        "size",
        # The function's own files: one clearly largest, then 49 of 5 MiB.
        _function_build(dependencies=[":blobs"]) + 'resources(name="blobs", sources=["blobs/*"])\n',
        [
            "the function ZIP unzips to 26",
            "less than 262,144,000 bytes",
            "bad_size/blobs/big.bin (first-party): 10,000,000",
            "bad_size/blobs/zeros00.bin (first-party)",
            "Fix, by what helps most",
            "container image",
        ],
        extra={
            "blobs/big.bin": b"\0" * 10_000_000,
            **{f"blobs/zeros{i:02d}.bin": _ZEROS for i in range(49)},
        },
    ),
]


def test_unbuildable_layer_cannot_be_built(rule_runner: RuleRunner) -> None:
    # The premise of the `reexport_clash` row: building this layer fails (its requirement is in
    # no lock), so a function on it that fails with a handler error never built it.
    with pytest.raises(ExecutionError) as excinfo:
        _package(rule_runner, Address("src/layers", target_name="unbuildable"))
    error = _error_of(excinfo)
    assert isinstance(error, LambdaPlatformLockError), f"{type(error).__name__}: {error}"
    assert "six==1.16.0" in str(error) and "generate-lockfiles" in str(error), str(error)


@pytest.mark.parametrize("case", BAD_CASES, ids=[case.id for case in BAD_CASES])
def test_bad_input_fails_naming_target_and_fix(rule_runner: RuleRunner, case: BadCase) -> None:
    with _case_files(rule_runner, case.files):
        with pytest.raises(ExecutionError) as excinfo:
            _package(rule_runner, case.address)
    error = _error_of(excinfo)
    message = str(error)
    print(f"{case.id}: {type(error).__name__}: {message}")
    assert isinstance(error, case.error_type), f"{type(error).__name__}: {message}"
    for expected in case.expected:
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert "Traceback" not in message
    if case.id == "size":
        # The largest first-party file comes first.
        assert message.index("big.bin") < message.index("zeros00.bin"), message
