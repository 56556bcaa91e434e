"""The typed boundary to the ZIP script, through the real rule and a CPython 3.12 compiler.

What a packaging test cannot set up without a broken wheel in a lock: third-party code that does
not compile for the runtime ships as source with a warning, while the same file as first-party
code fails the build naming the file and line.
"""

from __future__ import annotations

import io
import zipfile
from typing import Sequence

import pytest
from pants.engine.fs import CreateDigest, Digest, DigestContents, FileContent
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools.rule_runner_support import make_rule_runner
from pants_powertools.util_rules.interpreters import RuntimeInterpreter, RuntimeInterpreterRequest
from pants_powertools.util_rules.lambda_zip import (
    LambdaZip,
    LambdaZipError,
    LambdaZipRequest,
    ZipSource,
)

_BROKEN = "X = 1\nprint 'python 2'\n"
_GOOD = "def f():\n    return 1\n"


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    return make_rule_runner(
        [
            QueryRule(LambdaZip, [LambdaZipRequest]),
            QueryRule(RuntimeInterpreter, [RuntimeInterpreterRequest]),
            QueryRule(Digest, [CreateDigest]),
            QueryRule(DigestContents, [Digest]),
        ],
        {},
    )


def _request(rule_runner: RuleRunner, first_party: bool) -> LambdaZipRequest:
    found = rule_runner.request(RuntimeInterpreter, [RuntimeInterpreterRequest("python3.12")])
    if found.python is None:
        pytest.skip("No CPython 3.12 on this machine to compile python3.12 bytecode.")
    digest = rule_runner.request(
        Digest,
        [
            CreateDigest(
                [
                    FileContent("tree/lib/broken.py", _BROKEN.encode()),
                    FileContent("tree/lib/good.py", _GOOD.encode()),
                ]
            )
        ],
    )
    return LambdaZipRequest(
        input_digest=digest,
        output="out.zip",
        sources=(ZipSource("tree", first_party=first_party),),
        compiler=found.python,
    )


def test_third_party_code_that_does_not_compile_ships_as_source_with_a_warning(
    rule_runner: RuleRunner,
) -> None:
    zipped = rule_runner.request(LambdaZip, [_request(rule_runner, first_party=False)])
    warnings = zipped.report.warnings
    assert len(warnings) == 1, warnings
    assert "Not compiled for Python 3.12, shipped as source" in warnings[0]
    assert "lib/broken.py, line 2" in warnings[0]
    (zip_file,) = rule_runner.request(DigestContents, [zipped.digest])
    with zipfile.ZipFile(io.BytesIO(zip_file.content)) as zf:
        names = zf.namelist()
    assert "lib/broken.py" in names and "lib/__pycache__/broken.cpython-312.pyc" not in names
    # The rest still compiles.
    assert "lib/__pycache__/good.cpython-312.pyc" in names
    assert zipped.report.compiled == 1


def test_first_party_code_that_does_not_compile_fails(rule_runner: RuleRunner) -> None:
    with pytest.raises(ExecutionError) as excinfo:
        rule_runner.request(LambdaZip, [_request(rule_runner, first_party=True)])
    wrapped: Sequence[BaseException] = excinfo.value.wrapped_exceptions
    (error,) = wrapped
    assert isinstance(error, LambdaZipError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert "First-party code does not compile for Python 3.12" in message
    assert "lib/broken.py, line 2" in message
    assert "Traceback" not in message
