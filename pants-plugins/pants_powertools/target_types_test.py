"""The targets' own validation, on a plain RuleRunner: bad fields fail when the BUILD file is
read, naming the target, the field and the fix, before any rule runs (no lock, no PyPI)."""

from __future__ import annotations

from typing import Sequence

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from pants_powertools.target_types import PowertoolsLayer, PythonAwsLambdaPowertools, target_types


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(target_types=list(target_types()))


def _function(**fields: object) -> str:
    fields.setdefault("handler", "app.py:handler")
    fields.setdefault("runtime", "python3.12")
    body = "".join(f"    {key}={value!r},\n" for key, value in fields.items())
    return f"python_aws_lambda_powertools(\n    name='fn',\n{body})\n"


def _layer(**fields: object) -> str:
    fields.setdefault("runtime", "python3.12")
    body = "".join(f"    {key}={value!r},\n" for key, value in fields.items())
    return f"powertools_layer(\n    name='layer',\n{body})\n"


def _error(rule_runner: RuleRunner, build: str, name: str) -> str:
    rule_runner.write_files(
        {"src/f/BUILD": build, "src/f/app.py": "def handler(e, c):\n    pass\n"}
    )
    with pytest.raises(ExecutionError) as excinfo:
        rule_runner.get_target(Address("src/f", target_name=name))
    return str(excinfo.value)


def test_good_targets_validate(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "src/f/BUILD": _function(output_path="lambdas/fn.zip") + _layer(),
            "src/f/app.py": "",
        }
    )
    fn = rule_runner.get_target(Address("src/f", target_name="fn"))
    layer = rule_runner.get_target(Address("src/f", target_name="layer"))
    assert isinstance(fn, PythonAwsLambdaPowertools) and isinstance(layer, PowertoolsLayer)


@pytest.mark.parametrize(
    "build, name, fragments",
    [
        (_function(runtime="python3.8"), "fn", ["`runtime`", "'python3.8'", "python3.12"]),
        (_function(architecture="aarch64"), "fn", ["`architecture`", "Did you mean 'arm64'?"]),
        (_layer(architectures=[]), "layer", ["`architectures`", "it is empty"]),
        (_layer(architectures=["arm64", "arm64"]), "layer", ["`architectures`", "twice"]),
        (_function(output_path="/tmp/x.zip"), "fn", ["`output_path`", "not inside dist/"]),
        (_function(output_path="../x.zip"), "fn", ["`output_path`", "not inside dist/"]),
        (_layer(output_path="../../layer.zip"), "layer", ["`output_path`", "not inside dist/"]),
        (_function(handler="../app.py:handler"), "fn", ["`handler`", ".."]),
        (_function(handler="app.py:"), "fn", ["`handler`", "app.py:"]),
        (_function(handler="lambda_function:handler"), "fn", ["`handler`", "lambda_function"]),
        (
            _function(complete_platforms=["src/f:a", "src/f:b"]),
            "fn",
            ["`complete_platforms`", "exactly one platform"],
        ),
        (
            _function(powertools_public_layer_version=0),
            "fn",
            ["`powertools_public_layer_version`", "positive"],
        ),
    ],
)
def test_bad_fields_fail_when_the_build_file_is_read(
    rule_runner: RuleRunner, build: str, name: str, fragments: Sequence[str]
) -> None:
    message = _error(rule_runner, build, name)
    assert f"src/f:{name}" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message}"
