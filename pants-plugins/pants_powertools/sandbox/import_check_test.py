"""Tests for the import check script: tiny function and layer ZIPs, imported by the current
interpreter the way Lambda would import them."""

from __future__ import annotations

import json
import py_compile
import sys
import zipfile
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import pytest

from pants_powertools.sandbox import import_check
from pants_powertools.sandbox.import_check import (
    CheckRequest,
    main,
    parse_import_times,
    run_check,
    slowest_modules,
)

SITE_PACKAGES = "python/lib/python{}.{}/site-packages".format(*sys.version_info[:2])
GOOD = "def handler(event, context):\n    return {'ok': True}\n"


def write_zip(path: Path, files: Mapping[str, Union[str, bytes]]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return str(path)


def compiled(tmp_path: Path, files: Mapping[str, str]) -> Mapping[str, Union[str, bytes]]:
    """`files` plus unchecked-hash .pyc for each module, as the plugin ships them."""
    out: dict = dict(files)
    src = tmp_path / "compile"
    for name, content in files.items():
        if not name.endswith(".py"):
            continue
        source = src / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(content)
        stem = Path(name)
        cached = stem.parent / "__pycache__" / f"{stem.stem}.{sys.implementation.cache_tag}.pyc"
        target = src / cached
        py_compile.compile(
            str(source),
            cfile=str(target),
            dfile=name,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        out[cached.as_posix()] = target.read_bytes()
    return out


def check(
    tmp_path: Path,
    function: Mapping[str, Union[str, bytes]],
    layers: Sequence[Mapping[str, Union[str, bytes]]] = (),
    provided: Optional[Mapping[str, Union[str, bytes]]] = None,
    environment: Optional[Mapping[str, str]] = None,
    handler: str = "lambda_function.handler",
) -> import_check.CheckReport:
    inputs = tmp_path / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    request = CheckRequest(
        function_zip=write_zip(inputs / "function.zip", function),
        layer_zips=tuple(
            write_zip(inputs / f"layer{i}.zip", layer) for i, layer in enumerate(layers)
        ),
        provided_zips=(write_zip(inputs / "provided.zip", provided),) if provided else (),
        handler=handler,
        function_name="fn",
        environment=dict(environment or {}),
        scratch=str(tmp_path / "scratch"),
        timeout_seconds=60,
    )
    return run_check(request)


def test_good_handler_passes_and_reports_import_time(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        {
            "lambda_function.py": "import app\nhandler = app.handler\n",
            "app.py": "import json\n" + GOOD,
        },
    )
    assert report.ok, report.failures
    assert report.import_ms is not None and report.import_ms >= 0
    names = [name for name, _ in report.slowest]
    assert "json" in names
    # The handler's own modules take the whole import's time: not news.
    assert "app" not in names and "lambda_function" not in names
    assert report.python == "{}.{}.{}".format(*sys.version_info[:3])


@pytest.mark.parametrize(
    "source, expected",
    [
        ("async def handler(event, context):\n    return 1\n", "is an async function"),
        (
            "class Handler:\n    async def __call__(self, event, context):\n        return 1\n"
            "handler = Handler()\n",
            "is an async function",
        ),
        ("class handler:\n    def __init__(self, event, context):\n        pass\n", "is the class"),
        ("handler = {'not': 'callable'}\n", "is not callable (a dict object)"),
        ("def handler(event):\n    return 1\n", "cannot be called as handler(event, context)"),
    ],
)
def test_handler_that_lambda_cannot_call_fails(tmp_path: Path, source: str, expected: str) -> None:
    report = check(tmp_path, {"lambda_function.py": source})
    assert not report.ok
    assert expected in report.failures[0]


def test_callable_object_passes(tmp_path: Path) -> None:
    source = (
        "class Handler:\n"
        "    def __call__(self, event, context):\n"
        "        return 1\n"
        "handler = Handler()\n"
    )
    report = check(tmp_path, {"lambda_function.py": source})
    assert report.ok, report.failures


def test_missing_handler_attribute_fails(tmp_path: Path) -> None:
    report = check(tmp_path, {"lambda_function.py": "def other(event, context):\n    pass\n"})
    assert not report.ok
    assert "AttributeError" in report.failures[0]
    assert "'handler'" in report.failures[0]


def test_exception_at_import_is_reported_without_bootstrap_frames(tmp_path: Path) -> None:
    report = check(
        tmp_path,
        {
            "lambda_function.py": "from app import handler\n",
            "app.py": "import os\nTABLE = os.environ['TABLE_NAME']\n" + GOOD,
        },
    )
    assert not report.ok
    message = report.failures[0]
    assert "KeyError: 'TABLE_NAME'" in message
    assert 'File "/var/task/app.py", line 2, in <module>' in message
    assert 'File "/var/task/lambda_function.py", line 1' in message
    assert "bootstrap" not in message and "importlib" not in message
    assert str(tmp_path) not in message


def test_environment_reaches_the_handler(tmp_path: Path) -> None:
    source = (
        "import os, sys\n"
        "assert os.environ['TABLE_NAME'] == 'orders'\n"
        "assert os.environ['AWS_LAMBDA_FUNCTION_NAME'] == 'fn'\n"
        "assert os.environ['POWERTOOLS_TRACE_DISABLED'] == 'true'\n"
        "assert os.environ['_HANDLER'] == 'lambda_function.handler'\n"
        "assert os.getcwd() == os.environ['LAMBDA_TASK_ROOT']\n"
        "assert sys.path[0] == os.environ['LAMBDA_TASK_ROOT']\n"
        "for name in ('AWS_EXECUTION_ENV', 'AWS_LAMBDA_INITIALIZATION_TYPE',\n"
        "             '_LAMBDA_TELEMETRY_LOG_FD', 'HOME'):\n"
        "    assert name not in os.environ, name\n"
        "assert sys.flags.isolated and sys.flags.no_site and sys.dont_write_bytecode\n" + GOOD
    )
    report = check(tmp_path, {"lambda_function.py": source}, environment={"TABLE_NAME": "orders"})
    assert report.ok, report.failures


def test_module_from_layer(tmp_path: Path) -> None:
    function = {"lambda_function.py": "import helper\n" + GOOD}
    layer = {f"{SITE_PACKAGES}/helper.py": "VALUE = 1\n"}
    assert check(tmp_path / "with", function, [layer]).ok
    without = check(tmp_path / "without", function)
    assert not without.ok
    assert "ModuleNotFoundError: No module named 'helper'" in without.failures[0]


def test_later_layer_wins_and_python_dir_is_on_the_path(tmp_path: Path) -> None:
    function = {
        "lambda_function.py": "import helper, plain\nassert helper.VALUE == 2, helper.VALUE\n"
        + GOOD
    }
    first = {f"{SITE_PACKAGES}/helper.py": "VALUE = 1\n", "python/plain.py": ""}
    second = {f"{SITE_PACKAGES}/helper.py": "VALUE = 2\n"}
    report = check(tmp_path, function, [first, second])
    assert report.ok, report.failures


def test_pth_file_in_layer_is_honoured(tmp_path: Path) -> None:
    function = {"lambda_function.py": "import hidden\n" + GOOD}
    layer = {
        f"{SITE_PACKAGES}/extra.pth": "vendor\n",
        f"{SITE_PACKAGES}/vendor/hidden.py": "",
    }
    report = check(tmp_path, function, [layer])
    assert report.ok, report.failures


def test_provided_stand_in_comes_after_the_layers(tmp_path: Path) -> None:
    function = {
        "lambda_function.py": "import boto3, shadowed\nassert shadowed.WHERE == 'layer'\n" + GOOD
    }
    layer = {f"{SITE_PACKAGES}/shadowed.py": "WHERE = 'layer'\n"}
    provided = {"boto3/__init__.py": "", "shadowed.py": "WHERE = 'runtime'\n"}
    assert check(tmp_path / "with", function, [layer], provided).ok
    assert not check(tmp_path / "without", function, [layer]).ok


def test_shipped_bytecode_is_used(tmp_path: Path) -> None:
    function = compiled(
        tmp_path, {"lambda_function.py": "import helper\nfrom app import handler\n", "app.py": GOOD}
    )
    layer = compiled(tmp_path, {f"{SITE_PACKAGES}/helper.py": "VALUE = 1\n"})
    # Unchecked-hash .pyc are loaded without reading the source.
    function = {**function, "app.py": "raise RuntimeError('the source was read')\n"}
    report = check(tmp_path, function, [layer])
    assert report.ok, report.failures
    assert report.bytecode_checked
    assert report.modules_from_bytecode == 3


def test_foreign_or_missing_bytecode_is_reported(tmp_path: Path) -> None:
    function = dict(
        compiled(tmp_path, {"lambda_function.py": "from app import handler\nimport other\n"})
    )
    # A .pyc of another Python version: the running one must compile the source.
    function["app.py"] = GOOD
    function["__pycache__/app.cpython-30.pyc"] = b"\x00" * 16
    # A .pyc with a wrong magic number under the right name.
    function["other.py"] = ""
    function[f"__pycache__/other.{sys.implementation.cache_tag}.pyc"] = b"\x00" * 16
    report = check(tmp_path, function)
    assert not report.ok
    (message,) = report.failures
    assert message.startswith("shipped .pyc not used for: ")
    assert "/var/task/app.py (only app.cpython-30.pyc, none for" in message
    assert "/var/task/other.py (its .pyc was compiled by another Python version)" in message
    assert "lambda_function" not in message


def test_no_bytecode_means_no_bytecode_check(tmp_path: Path) -> None:
    report = check(tmp_path, {"lambda_function.py": GOOD})
    assert report.ok
    assert not report.bytecode_checked


def test_interpreter_that_dies_is_reported(tmp_path: Path) -> None:
    report = check(tmp_path, {"lambda_function.py": "import os\nos._exit(3)\n"})
    assert not report.ok
    assert "exited with code 3" in report.failures[0]


def test_parse_import_times_keeps_only_the_handler_import() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 | site",
            import_check._BEGIN,
            "import time:      2000 |       2000 |     aws_lambda_powertools.shared",
            "import time:      1000 |       3000 |   aws_lambda_powertools",
            "a log line",
            "import time:       500 |       3500 | lambda_function",
            import_check._END,
        ]
    )
    times, other = parse_import_times(stderr)
    assert times == [
        ("aws_lambda_powertools.shared", 2000),
        ("aws_lambda_powertools", 3000),
        ("lambda_function", 3500),
    ]
    assert other == "a log line"
    assert slowest_modules(times, ["lambda_function"], 5) == [
        ("aws_lambda_powertools", 3),
        ("aws_lambda_powertools.shared", 2),
    ]


def test_main_writes_report_and_exit_code(tmp_path: Path) -> None:
    request = {
        "function_zip": write_zip(tmp_path / "f.zip", {"lambda_function.py": "handler = 1\n"}),
        "handler": "lambda_function.handler",
        "scratch": str(tmp_path / "scratch"),
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    assert main([str(tmp_path / "request.json"), str(tmp_path / "report.json")]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is False
    assert "is not callable (a int object)" in report["failures"][0]


def test_prepared_runtime_is_compiled_and_shown_as_var_runtime(tmp_path: Path) -> None:
    stand_in = write_zip(
        tmp_path / "excluded.zip",
        {"boto3/__init__.py": "", "botox/__init__.py": "raise ValueError('from the runtime')\n"},
    )
    dest = tmp_path / "runtime"
    assert main(["--prepare-runtime", str(dest), stand_in]) == 0
    assert (
        dest / "boto3" / "__pycache__" / f"__init__.{sys.implementation.cache_tag}.pyc"
    ).exists()
    function_zip = write_zip(
        tmp_path / "function.zip", {"lambda_function.py": "import boto3, botox\n"}
    )
    request = CheckRequest(
        function_zip=function_zip,
        layer_zips=(),
        provided_zips=(),
        provided_dirs=(str(dest),),
        handler="lambda_function.handler",
        function_name="fn",
        environment={},
        scratch=str(tmp_path / "scratch"),
    )
    report = run_check(request)
    assert not report.ok
    assert 'File "/var/runtime/botox/__init__.py", line 1, in <module>' in report.failures[0]
    assert "ValueError: from the runtime" in report.failures[0]
