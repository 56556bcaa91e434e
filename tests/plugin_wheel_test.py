"""The plugin as its users get it: the `pants-powertools` wheel, loaded through `[GLOBAL].plugins`.

`tests/BUILD` lists `pants-plugins:dist` in `runtime_package_dependencies`, so Pants builds the
wheel and puts it at the sandbox root, next to the launcher and pants.toml (`//:launcher`).
The first tests read the wheel itself; the last one is a consumption smoke test: a throwaway
repository that knows the plugin only as that wheel locks a tiny requirement and packages a
function with the launcher and real Pants. Then the same repository is given 25 bad inputs, one
at a time: `pants package` must exit non-zero with the message on stderr and leave dist/ empty.

What it costs (warm caches, 2 cores): about 12 s for Pants to start with the plugin installed
from the wheel (it builds one scheduler to resolve the plugin, then pantsd's own), about 1.5 s
for the lock, then a fraction of a second per `pants package`. The trade-off: only the plugin's
lock goal runs (`generate-lockfiles --resolve=python-default-lambda-platforms`, against PyPI),
which is what proves the wheel registers it. Pants' own universal `python-default.lock` must
exist (requirement targets depend on their resolve's lockfile) but the plugin never reads it to
package, so it is committed test data (`plugin_wheel_data/python-default.lock`, written by
`pants generate-lockfiles --resolve=python-default` in this scratch repository) rather than a
second pex lock from PyPI on every run; a test checks that it is still a lock of `REQUIREMENT`
for the copied interpreter constraints, and the smoke test that the plugin's goal left it alone.

The scratch repository enables the plugin only through `plugins` (no `pythonpath`, and no
`pants_powertools` in `backend_packages`), so its targets can only come from the wheel's
`pantsbuild.plugin` entry points. Adding `pants_powertools` to `backend_packages` as well is
harmless: Pants registers the same rules and target types once.
"""

from __future__ import annotations

import email
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import pytest

from tests.scratch_pantsd import stop_pantsd

ROOT = Path(__file__).resolve().parent.parent  # The sandbox root (runtime packages, launcher).
DIST_NAME = "pants-powertools"
VERSION = "0.1.0"
WHEEL = f"pants_powertools-{VERSION}-py3-none-any.whl"

# The scratch repository's only requirement: small, pure Python, no dependencies of its own.
REQUIREMENT = ("typing-extensions", "4.12.2")
# Pants' universal lock of the scratch repository's python-default resolve (see above).
UNIVERSAL_LOCK = Path(__file__).resolve().parent / "plugin_wheel_data" / "python-default.lock"
# pants.toml sections copied verbatim from this repository: the pex CLI pin the launcher builds
# and checks, pip/interpreter settings Lambda locks need, interpreter search through pyenv.
COPIED_SECTIONS = ("anonymous-telemetry", "python", "python-infer", "python-bootstrap", "pex-cli")

HANDLER_SOURCE = """\
from typing_extensions import TypedDict


class Greeting(TypedDict):
    message: str


def handler(event, context) -> Greeting:
    return {"message": "hello " + event.get("name", "world")}
"""

FUNCTION_BUILD = """\
python_sources()

python_aws_lambda_powertools(
    name="lambda",
    handler="app.py:handler",
    runtime="python3.12",
    architecture="arm64",
)
"""


def _wheel() -> Path:
    path = ROOT / WHEEL
    assert path.is_file(), (
        f"{WHEEL} is missing from the test sandbox; is pants-plugins:dist listed in "
        f"runtime_package_dependencies in tests/BUILD? Found: {sorted(os.listdir(ROOT))}"
    )
    return path


def _dist_info(name: str) -> str:
    with zipfile.ZipFile(_wheel()) as zf:
        return zf.read(f"pants_powertools-{VERSION}.dist-info/{name}").decode()


def test_wheel_holds_the_plugin_and_no_tests() -> None:
    with zipfile.ZipFile(_wheel()) as zf:
        names = zf.namelist()
    modules = sorted(n for n in names if not n.startswith(f"pants_powertools-{VERSION}.dist-info/"))
    assert all(n.startswith("pants_powertools/") and n.endswith(".py") for n in modules), modules
    # The sandbox scripts are also read as data at run time (pkgutil.get_data) and run by a
    # CPython of the Lambda runtime.
    for module in (
        "__init__.py",
        "register.py",
        "goals/package.py",
        "util_rules/artifacts.py",
        "sandbox/lambda_zip.py",
        "sandbox/native_code.py",
        "sandbox/index_lookup.py",
    ):
        assert f"pants_powertools/{module}" in modules
    assert not [n for n in modules if n.endswith("_test.py") or "conftest" in n]


def test_wheel_metadata_requires_nothing_pants_provides() -> None:
    metadata = email.message_from_string(_dist_info("METADATA"))
    assert metadata["Name"] == DIST_NAME
    assert metadata["Version"] == VERSION
    # Pants (and the packaging it ships) is the host, never a dependency to install.
    assert metadata.get_all("Requires-Dist") is None, metadata.get_all("Requires-Dist")
    assert metadata["Requires-Python"] == ">=3.7,<3.10"


def test_wheel_declares_the_pants_plugin_entry_points() -> None:
    entry_points = _dist_info("entry_points.txt")
    group = re.search(r"^\[pantsbuild\.plugin\]\n((?:[^\[\n].*\n?)*)", entry_points, re.M)
    assert group, entry_points
    declared = dict(
        (key.strip(), value.strip())
        for key, value in (line.split("=", 1) for line in group.group(1).splitlines() if line)
    )
    assert declared == {
        "rules": "pants_powertools.register:rules",
        "target_types": "pants_powertools.register:target_types",
    }


def test_committed_universal_lock_is_for_the_requirement() -> None:
    """The committed `python-default.lock` is Pants' lock of exactly `REQUIREMENT` (regenerate it
    in the scratch repository with `pants generate-lockfiles --resolve=python-default` when
    `REQUIREMENT` or `[python].interpreter_constraints` changes)."""
    text = UNIVERSAL_LOCK.read_text()
    header = re.search(
        r"^// --- BEGIN PANTS LOCKFILE METADATA: DO NOT EDIT OR REMOVE ---\n(.*?)"
        r"^// --- END PANTS LOCKFILE METADATA ---\n",
        text,
        re.M | re.S,
    )
    assert header, text[:2000]
    metadata = json.loads("\n".join(line[3:] for line in header.group(1).splitlines()))
    assert metadata["generated_with_requirements"] == ["%s==%s" % REQUIREMENT]
    # The scratch repository copies [python] from pants.toml.
    python_section = _pants_toml_section((ROOT / "pants.toml").read_text(), "python")
    constraints = re.search(r"^interpreter_constraints = \[(.*)\]$", python_section, re.M)
    assert constraints, python_section
    assert metadata["valid_for_interpreter_constraints"] == json.loads(
        "[%s]" % constraints.group(1)
    )
    body = json.loads(text[header.end() :])
    assert [
        (r["project_name"], r["version"])
        for resolve in body["locked_resolves"]
        for r in resolve["locked_requirements"]
    ] == [REQUIREMENT]


def _pants_toml_section(text: str, name: str) -> str:
    match = re.search(r"^\[%s\]\n.*?(?=^\[|\Z)" % re.escape(name), text, re.M | re.S)
    assert match, f"pants.toml has no [{name}] section"
    return match.group(0).rstrip("\n") + "\n\n"


def _scratch_pants_toml(wheel: Path) -> str:
    ours = (ROOT / "pants.toml").read_text()
    return (
        "[GLOBAL]\n"
        'pants_version = "2.17.1"\n'
        'backend_packages = ["pants.backend.python"]\n'
        f'plugins = ["{DIST_NAME} @ {wheel.as_uri()}"]\n\n'
        + "".join(_pants_toml_section(ours, name) for name in COPIED_SECTIONS)
        + "[python.resolves]\n"
        'python-default = "3rdparty/python/python-default.lock"\n'
    )


def _scratch_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "3rdparty/python").mkdir(parents=True)
    (repo / "src/hello").mkdir(parents=True)
    shutil.copy(ROOT / "pants", repo / "pants")
    wheel = root / WHEEL
    shutil.copy(_wheel(), wheel)
    (repo / "pants.toml").write_text(_scratch_pants_toml(wheel))
    (repo / "3rdparty/python/requirements.txt").write_text("%s==%s\n" % REQUIREMENT)
    shutil.copy(UNIVERSAL_LOCK, repo / "3rdparty/python/python-default.lock")
    (repo / "3rdparty/python/BUILD").write_text('python_requirements(name="reqs")\n')
    (repo / "src/hello/app.py").write_text(HANDLER_SOURCE)
    (repo / "src/hello/BUILD").write_text(FUNCTION_BUILD)
    return repo


def _env() -> Dict[str, str]:
    """What the launcher and Pants need, and nothing of this test's own Pants/pex run."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for name in (
        "HOME",
        "PYENV_ROOT",
        "XDG_CACHE_HOME",
        "PANTS_BOOTSTRAP_CACHE",
        "PANTS_BOOTSTRAP_PYTHON",
        "PIP_INDEX_URL",
        "PIP_EXTRA_INDEX_URL",
        "PIP_CONFIG_FILE",
        "LANG",
        "LC_ALL",
    ):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _run_pants(repo: Path, args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(repo / "pants"), *args],
        cwd=repo,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
    )


def _pants(repo: Path, args: List[str]) -> subprocess.CompletedProcess:
    result = _run_pants(repo, args)
    assert result.returncode == 0, f"pants {' '.join(args)} failed:\n{result.stderr[-6000:]}"
    return result


@pytest.fixture(scope="module")
def locked_repo() -> Iterator[Path]:
    """The scratch repository with its Lambda lockfile generated by the plugin's lock goal (and
    Pants' own lockfile committed), shared by the tests below, with one pantsd for all of their
    Pants runs (stopped at the end).

    A private temporary folder, not pytest's `tmp_path`: every new pytest session on the
    machine prunes all but the newest three `/tmp/pytest-of-<user>/pytest-N` folders, and with
    other test runs going on it deleted the scratch repository under a running Pants."""
    scratch = Path(tempfile.mkdtemp(prefix="pants-powertools-plugin-wheel-"))
    try:
        repo = _scratch_repo(scratch)
        _pants(repo, ["generate-lockfiles", "--resolve=python-default-lambda-platforms"])
        yield repo
    finally:
        stop_pantsd(scratch / "repo")
        shutil.rmtree(scratch, ignore_errors=True)


def test_scratch_repository_packages_a_function_with_the_wheel(locked_repo: Path) -> None:
    repo = locked_repo
    lambda_lock = (repo / "3rdparty/python/python-default.lambda-platforms.lock").read_text()
    assert "python3.12-arm64" in lambda_lock
    assert '"%s==%s"' % REQUIREMENT in lambda_lock
    # The plugin's lock goal wrote only its own lockfile.
    assert (
        repo / "3rdparty/python/python-default.lock"
    ).read_bytes() == UNIVERSAL_LOCK.read_bytes()

    shutil.rmtree(repo / "dist", ignore_errors=True)
    _pants(repo, ["package", "::"])
    dist = repo / "dist"
    assert sorted(str(p.relative_to(dist)) for p in dist.rglob("*") if p.is_file()) == [
        "src.hello/lambda.lambda.json",
        "src.hello/lambda.zip",
    ]
    zip_path = dist / "src.hello/lambda.zip"
    with zipfile.ZipFile(zip_path) as zf:
        files = sorted(n for n in zf.namelist() if not n.endswith("/"))
    dist_info = "typing_extensions-%s.dist-info/" % REQUIREMENT[1]
    assert [f for f in files if not f.startswith(dist_info)] == [
        "hello/app.py",
        "lambda_function.py",
        "typing_extensions.py",
    ]
    assert dist_info + "METADATA" in files

    data = zip_path.read_bytes()
    manifest = json.loads((dist / "src.hello/lambda.lambda.json").read_text())
    assert manifest["kind"] == "function"
    assert manifest["artifact"] == "src.hello/lambda.zip"
    assert manifest["runtime"] == "python3.12"
    assert manifest["architectures"] == ["arm64"]
    assert manifest["handler"] == "lambda_function.handler"
    assert manifest["source_handler"] == "hello.app.handler"
    assert manifest["distributions"] == {REQUIREMENT[0]: REQUIREMENT[1]}
    assert manifest["layers"] == []
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["size"] == len(data)

    # The ZIP is pure Python, so any CPython can import the handler straight from it.
    call = (
        "import sys; sys.path.insert(0, sys.argv[1]); import lambda_function; "
        "print(lambda_function.handler({'name': 'wheel'}, None)['message'])"
    )
    ran = subprocess.run(
        [sys.executable, "-S", "-c", call, str(zip_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "hello wheel"


@dataclass(frozen=True)
class BadRow:
    """A bad input as a user writes it, and what `pants package` must say about it."""

    id: str
    files: Mapping[str, Union[str, bytes]]
    target: str
    expected: Tuple[str, ...]


def _function(name: str = "fn", **fields: str) -> str:
    fields.setdefault("handler", '"app.py:handler"')
    fields.setdefault("runtime", '"python3.12"')
    fields.setdefault("architecture", '"arm64"')
    body = "".join(f"    {key}={value},\n" for key, value in fields.items())
    return f'python_aws_lambda_powertools(\n    name="{name}",\n{body})\n'


def _layer(name: str, **fields: str) -> str:
    fields.setdefault("runtime", '"python3.12"')
    fields.setdefault("architectures", '["arm64"]')
    fields.setdefault("dependencies", '["3rdparty/python:reqs#typing-extensions"]')
    body = "".join(f"    {key}={value},\n" for key, value in fields.items())
    return f'powertools_layer(\n    name="{name}",\n{body})\n'


_APP = "def handler(event, context):\n    return {}\n"


def _aarch64_library() -> bytes:
    """A tiny aarch64 ELF shared object (the plugin's test data, a resource of this test)."""
    found = sorted(ROOT.glob("**/test_data/aarch64.so"))
    assert found, "pants-plugins/pants_powertools/test_data:test_data must be a dependency"
    return found[0].read_bytes()


def _row(
    row_id: str,
    build: str,
    expected: Sequence[str],
    *,
    files: Optional[Mapping[str, Union[str, bytes]]] = None,
    target: str = "fn",
) -> BadRow:
    """A row whose files live in a directory of its own, `src/bad_<row_id>/`."""
    directory = f"src/bad_{row_id}"
    written: Dict[str, Union[str, bytes]] = {f"{directory}/BUILD": "python_sources()\n" + build}
    for name, text in (files or {"app.py": _APP}).items():
        written[f"{directory}/{name}"] = text
    address = f"{directory}:{target}"
    return BadRow(row_id, written, address, (address, *expected))


# The bad inputs of package_test.py's table that this repository can express (its lock is for
# python3.12 arm64 only; a 250 MB size-limit row and a second resolve are left to that table),
# from the first place an error is caught to the last: fields refused when the target is built,
# cross-field checks, the handler read before anything is built, the layers' checks, the check
# across all targets, a lockfile read, and what is found only while the ZIP is written in its
# sandbox (a first-party compile error, native code for the wrong machine). Each must make real
# Pants exit non-zero with the message on stderr and leave dist/ without a ZIP.
BAD_ROWS = [
    _row(
        "runtime",
        _function(runtime='"python3.8"'),
        ["`runtime`", "'python3.8'", "Valid runtimes are:", "'python3.12'"],
    ),
    _row(
        "handler_dotdot",
        _function(handler='"../hello/app.py:handler"'),
        ["`handler`", "goes up with `..`", "Write its module path instead"],
    ),
    _row(
        "output_path",
        _function(output_path='"../escape.zip"'),
        ["`output_path`", "'../escape.zip' is not inside dist/"],
    ),
    _row(
        "output_path_absolute",
        _function(output_path='"/tmp/x.zip"'),
        ["`output_path`", "'/tmp/x.zip' is not inside dist/"],
    ),
    _row(
        "architecture",
        _function(architecture='"aarch64"'),
        ["`architecture`", "'aarch64'", "Did you mean 'arm64'?"],
    ),
    _row(
        "architectures_empty",
        _layer("layer", architectures="[]"),
        ["`architectures`", "it is empty"],
        target="layer",
    ),
    _row(
        "architectures_duplicate",
        _layer("layer", architectures='["arm64", "arm64"]'),
        ["`architectures`", "lists an architecture twice"],
        target="layer",
    ),
    _row(
        "complete_platforms_two",
        _function(complete_platforms='[":a", ":b"]')
        + 'file(name="a", source="a.json")\nfile(name="b", source="b.json")\n',
        ["`complete_platforms`", "names 2 files", "Name one file"],
        files={"app.py": _APP, "a.json": "{}\n", "b.json": "{}\n"},
    ),
    _row(
        "handler_unimportable_file",
        _function(handler='"my-app.py:lambda_handler"'),
        ["`handler`", "is not a valid Python identifier", "Rename the file to my_app.py"],
    ),
    _row(
        "handler_empty_function",
        _function(handler='"app.py:"'),
        ["`handler`", "names no function after the `:`"],
    ),
    _row(
        "handler_module",
        _function(handler='"bad_handler_module.nothere:handler"'),
        ["bad_handler_module.nothere", "bad_handler_module/nothere.py", "Check the spelling"],
    ),
    _row(
        "handler_path",
        _function(handler='"nothere.py:handler"'),
        ["`handler`", "nothere.py", "does not exist", "Fix the file name"],
    ),
    _row(
        "handler_async",
        _function(),
        ["`handler`", "cannot work", "asyncio.run(handler_async(event, context))"],
        files={"app.py": "async def handler(event, context):\n    return {}\n"},
    ),
    _row(
        "handler_constant",
        _function(handler='"app.py:HANDLER"'),
        ["`handler`", "cannot work", "the number 42"],
        files={"app.py": "HANDLER = 42\n"},
    ),
    _row(
        "handler_class",
        _function(),
        ["`handler`", "cannot work", "`handler_instance = handler()`"],
        files={"app.py": "class handler:\n    def __init__(self, event, context):\n        pass\n"},
    ),
    # A first-party lambda_function.py at a source root (src/ here) would be shadowed by the
    # generated re-export.
    BadRow(
        "reexport_clash",
        {
            "src/BUILD": "python_sources()\n",
            "src/lambda_function.py": "VALUE = 1\n",
            "src/bad_reexport_clash/BUILD": "python_sources()\n"
            + _function(dependencies='["src/lambda_function.py"]'),
            "src/bad_reexport_clash/app.py": _APP,
        },
        "src/bad_reexport_clash:fn",
        (
            "src/bad_reexport_clash:fn",
            "first-party file lambda_function.py",
            "Rename it (e.g. to app.py)",
        ),
    ),
    _row(
        "handler_function",
        _function(),
        ["defines no top-level `handler`", "Top-level names there: main", "Fix the name after"],
        files={"app.py": "def main(event, context):\n    return {}\n"},
    ),
    _row(
        "same_output_path",
        _function("one", output_path='"fn.zip"') + _function("two", output_path='"fn.zip"'),
        ["src/bad_same_output_path:two", "would both write dist/fn.zip", "`output_path`"],
        target="one",
    ),
    _row(
        "layer_not_a_layer",
        _function(layers='[":lib"]') + 'resource(name="lib", source="data.txt")\n',
        ["`layers`", "a `resource` target", "only `powertools_layer`"],
        files={"app.py": _APP, "data.txt": "x\n"},
    ),
    _row(
        "layer_architecture",
        _layer("layer", architectures='["x86_64"]') + _function(layers='[":layer"]'),
        ["src/bad_layer_architecture:layer", "lacks arm64"],
    ),
    _row(
        "layer_runtime",
        _layer("layer", runtime='"python3.11"') + _function(layers='[":layer"]'),
        ["src/bad_layer_runtime:layer", "lacks python3.12"],
    ),
    _row(
        "layer_count",
        "".join(_layer(f"layer{i}") for i in range(6))
        + _function(layers=repr([f":layer{i}" for i in range(6)])),
        ["6 layers", "at most 5"],
    ),
    BadRow(
        "damaged_lock",
        {"3rdparty/python/python-default.lambda-platforms.lock": "{\n"},
        "src/hello:lambda",
        (
            "3rdparty/python/python-default.lambda-platforms.lock is damaged",
            "pants generate-lockfiles --resolve=python-default-lambda-platforms",
        ),
    ),
    _row(
        # x86_64 with no requirements, so the arm64-only lock is not needed.
        "native_wrong_architecture",
        _function(architecture='"x86_64"', dependencies='[":so"]')
        + 'resources(name="so", sources=["thing.so"])\n',
        [
            "Native code that cannot load on Lambda x86_64",
            "bad_native_wrong_architecture/thing.so",
            "built for arm64 (aarch64)",
        ],
        files={"app.py": _APP, "thing.so": _aarch64_library()},
    ),
    _row(
        "syntax_error",
        _function(compile_bytecode="True"),
        [
            "bad_syntax_error/broken.py, line 2",
            "First-party code does not compile for Python 3.12",
            "Fix the syntax",
        ],
        files={
            "__init__.py": "",
            "app.py": "from bad_syntax_error import broken\n\n\n" + _APP,
            "broken.py": "X = 1\ndef oops(:\n    pass\n",
        },
    ),
]


def _dist_files(repo: Path) -> List[str]:
    dist = repo / "dist"
    return sorted(str(p.relative_to(dist)) for p in dist.rglob("*") if p.is_file())


def _package_bad_row(repo: Path, row: BadRow) -> Tuple[subprocess.CompletedProcess, List[str]]:
    shutil.rmtree(repo / "dist", ignore_errors=True)
    result = _run_pants(repo, ["package", row.target])
    return result, _dist_files(repo)


def _as_expected(row: BadRow, result: subprocess.CompletedProcess) -> bool:
    return result.returncode != 0 and all(e in result.stderr for e in row.expected)


@pytest.mark.parametrize("row", BAD_ROWS, ids=[row.id for row in BAD_ROWS])
def test_bad_input_fails_with_a_message_and_writes_nothing(locked_repo: Path, row: BadRow) -> None:
    repo = locked_repo
    saved = {path: (repo / path).read_text() for path in row.files if (repo / path).is_file()}
    try:
        for path, content in row.files.items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                (repo / path).write_bytes(content)
            else:
                (repo / path).write_text(content)
        # pantsd sees file edits asynchronously: a run right after the edits may still see the
        # previous row's files. A stale answer is retried for a few seconds; a wrong one stays.
        result, written = _package_bad_row(repo, row)
        for _ in range(10):
            if _as_expected(row, result):
                break
            time.sleep(0.5)
            result, written = _package_bad_row(repo, row)
    finally:
        for path in row.files:
            if path not in saved:
                (repo / path).unlink()
        for path, text in saved.items():
            (repo / path).write_text(text)
    stderr = result.stderr
    assert result.returncode != 0, f"pants package {row.target} passed:\n{stderr[-3000:]}"
    for expected in row.expected:
        assert expected in stderr, f"{expected!r} not in:\n{stderr[-6000:]}"
    assert "Traceback" not in stderr, stderr[-6000:]
    assert written == [], written
