"""`pants check` of `python_aws_lambda_powertools` through the real rules: code-only functions
(no requirements, no layers, so no lockfile or PyPI), built with bytecode for python3.12 and
imported by CPython 3.12 as Lambda would import them."""

from __future__ import annotations

import re
from textwrap import dedent

import pytest
from pants.core.goals.check import CheckResults
from pants.engine.addresses import Address
from pants.engine.platform import Platform
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools import platform_lockfiles
from pants_powertools.goals.check import (
    LambdaImportFieldSet,
    LambdaImportRequest,
    cannot_run_here,
    outcome_from_report,
)
from pants_powertools.platform_lockfiles import LockInputs
from pants_powertools.rule_runner_support import make_rule_runner
from pants_powertools.util_rules.platform_lock import LambdaLockNeedsRequest

BUILD = dedent(
    """\
    python_sources()

    python_aws_lambda_powertools(
        name="good",
        handler="app.py:handler",
        runtime="python3.12",
        compile_bytecode=True,
        exclude_runtime_provided=False,
    )
    python_aws_lambda_powertools(
        name="async",
        handler="app_async.py:handler",
        runtime="python3.12",
        compile_bytecode=True,
        exclude_runtime_provided=False,
    )
    python_aws_lambda_powertools(
        name="arm",
        handler="app.py:handler",
        runtime="python3.12",
        architecture="arm64",
        exclude_runtime_provided=False,
    )
    """
)


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = make_rule_runner(
        [
            QueryRule(CheckResults, [LambdaImportRequest]),
            QueryRule(LockInputs, [LambdaLockNeedsRequest]),
        ],
        resolves={"python-default": "3rdparty/python-default.lock"},
        default_resolve="python-default",
        source_roots=["src"],
    )
    runner.write_files(
        {
            "src/fns/BUILD": BUILD,
            "src/fns/__init__.py": "",
            "src/fns/app.py": (
                "import json\n\n\ndef handler(event, context):\n    return json.dumps(event)\n"
            ),
            # Built: the build-time handler check cannot see what a factory returns.
            "src/fns/app_async.py": dedent(
                """\
                def _make_handler():
                    async def handler(event, context):
                        return event

                    return handler


                handler = _make_handler()
                """
            ),
        }
    )
    # No requirements: the platform lock is just its header (nothing to resolve, no PyPI).
    needs = runner.request(
        LockInputs, [LambdaLockNeedsRequest(Address("src/fns", target_name="good"))]
    )
    runner.write_files(
        {
            platform_lockfiles.platform_lockfile_path("3rdparty/python-default.lock"): (
                platform_lockfiles.add_header("{}", needs)
            )
        }
    )
    return runner


def run_check(rule_runner: RuleRunner, *names: str) -> CheckResults:
    field_sets = [
        LambdaImportFieldSet.create(rule_runner.get_target(Address("src/fns", target_name=name)))
        for name in names
    ]
    return rule_runner.request(CheckResults, [LambdaImportRequest(field_sets)])


def test_good_handler_imports_and_reports_time(rule_runner: RuleRunner) -> None:
    results = run_check(rule_runner, "good")
    (result,) = results.results
    assert result.exit_code == 0, result.stdout
    assert re.match(
        r"src/fns:good: imports lambda_function\.handler in \d+ ms \(python3\.12 x86_64, "
        r"CPython 3\.12\.\d+, shipped \.pyc used for \d+ modules\)",
        result.stdout,
    ), result.stdout


def test_async_handler_fails(rule_runner: RuleRunner) -> None:
    (result,) = run_check(rule_runner, "async", "good").results
    assert result.exit_code == 1
    assert "src/fns:async: lambda_function.handler does not import as Lambda would" in result.stdout
    assert "is an async function" in result.stdout
    assert "src/fns:good: imports" in result.stdout


def test_other_architecture_is_static_only() -> None:
    reason = cannot_run_here(Platform.linux_x86_64, "python3.12", "arm64", None)
    assert reason == "arm64 code cannot run on this x86_64 machine"
    assert cannot_run_here(Platform.linux_arm64, "python3.12", "arm64", True) is None
    assert "macOS" in (cannot_run_here(Platform.macos_arm64, "python3.12", "arm64", None) or "")
    assert cannot_run_here(Platform.linux_x86_64, "python3.14", "x86_64", False) == (
        "no CPython 3.14 found on [python-bootstrap].search_path"
    )


def test_outcome_lines() -> None:
    ok = outcome_from_report(
        Address("src/a", target_name="fn"),
        "lambda_function.handler",
        "python3.12",
        "x86_64",
        {"ok": True, "python": "3.12.1", "import_ms": 412, "slowest": [["pydantic", 120]]},
    )
    assert ok.exit_code == 0
    assert ok.text == (
        "src/a:fn: imports lambda_function.handler in 412 ms (python3.12 x86_64, CPython 3.12.1);"
        " slowest: pydantic 120 ms"
    )
    failed = outcome_from_report(
        Address("src/a", target_name="fn"),
        "lambda_function.handler",
        "python3.12",
        "x86_64",
        {"ok": False, "python": "3.12.1", "failures": ["importing x failed:\n  KeyError: 'A'"]},
    )
    assert failed.exit_code == 1
    assert failed.text.splitlines()[1:] == ["  importing x failed:", "    KeyError: 'A'"]
