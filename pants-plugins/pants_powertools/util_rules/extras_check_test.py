"""The Powertools extras check, end to end: `BuiltPackage` for `python_aws_lambda_powertools`.

One resolve, `pt`, holds four requirement targets for aws-lambda-powertools 3.37.0 (plain,
`[tracer]`, `[parser]`, `[validation]`). Its Lambda platform lock for python3.12 x86_64 (the only
platform any target here uses) is committed in `test_data/pt.lambda-platforms.lock`, made by the
plugin's own `generate-lockfiles` rules; packaging installs from it. Each function names its
requirement target explicitly: the four targets all provide `aws_lambda_powertools`, so the
imports opt out of inference.

What is proven: a function whose code needs an extra that is in neither its ZIP, its layers nor
the runtime fails before any ZIP is written, with a message naming the file:line, the feature,
the extra and the requirement to use; the same code packages once the extra is there, whether
in the function's own requirement or in a layer.
"""

from __future__ import annotations

import io
import zipfile
from textwrap import dedent
from typing import Dict, List, Sequence

import pytest
from pants.core.goals.package import BuiltPackage
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import QueryRule, RuleRunner

from pants_powertools.goals.package import PowertoolsFunctionFieldSet, PowertoolsLayerFieldSet
from pants_powertools.platform_lockfiles import LockInputs
from pants_powertools.rule_runner_support import make_rule_runner, write_test_locks
from pants_powertools.util_rules.artifacts import PowertoolsPackageError
from pants_powertools.util_rules.platform_lock import LambdaLockNeedsRequest

POWERTOOLS = "aws-lambda-powertools==3.37.0"
RESOLVE = "pt"
RESOLVES = {RESOLVE: f"3rdparty/{RESOLVE}.lock"}

# ---------------------------------------------------------------------------------------------
# The workspace
# ---------------------------------------------------------------------------------------------


def _fn(name: str, requirement: str = "", layers: Sequence[str] = ()) -> str:
    deps = [f"3rdparty:{requirement}"] if requirement else []
    return dedent(
        f"""\
        python_aws_lambda_powertools(
            name="{name}",
            handler="app.py:handler",
            runtime="python3.12",
            architecture="x86_64",
            dependencies={deps!r},
            layers={list(layers)!r},
        )
        """
    )


def _code(imports: str, body: str = "") -> str:
    # The Powertools import is always on line 3, after a docstring and a blank line. Inference
    # is off for it: four targets own the module, and each function names its own.
    return (
        f'"""A handler."""\n\n{imports}  # pants: no-infer-dep\n{body}\n\n'
        "def handler(event, context):\n    return {}\n"
    )


WORKSPACE: Dict[str, str] = {
    "3rdparty/BUILD": dedent(
        f"""\
        python_requirement(name="pt", requirements=["{POWERTOOLS}"])
        python_requirement(name="pt-tracer", requirements=["aws-lambda-powertools[tracer]==3.37.0"])
        python_requirement(name="pt-parser", requirements=["aws-lambda-powertools[parser]==3.37.0"])
        python_requirement(
            name="pt-validation", requirements=["aws-lambda-powertools[validation]==3.37.0"]
        )
        """
    ),
    "src/layers/BUILD": dedent(
        """\
        powertools_layer(
            name="tracer",
            runtime="python3.12",
            architectures=["x86_64"],
            dependencies=["3rdparty:pt-tracer"],
        )
        powertools_layer(
            name="plain",
            runtime="python3.12",
            architectures=["x86_64"],
            dependencies=["3rdparty:pt"],
        )
        """
    ),
    "src/uses_tracer/BUILD": "python_sources()\n"
    + _fn("no_extra", "pt")
    + _fn("tracer_extra", "pt-tracer")
    + _fn("tracer_in_layer", "pt", layers=["src/layers:tracer"])
    + _fn("other_extra", "pt-parser")
    # Powertools only from a layer that lacks the extra; the function requires nothing itself.
    + _fn("plain_layer_only", layers=["src/layers:plain"]),
    "src/uses_tracer/app.py": _code(
        "from aws_lambda_powertools import Tracer", "tracer = Tracer()"
    ),
    "src/uses_parser/BUILD": "python_sources()\n"
    + _fn("no_extra", "pt")
    + _fn("parser_extra", "pt-parser"),
    "src/uses_parser/app.py": _code("from aws_lambda_powertools.utilities.parser import parse"),
    "src/uses_validation/BUILD": "python_sources()\n"
    + _fn("no_extra", "pt")
    + _fn("validation_extra", "pt-validation"),
    "src/uses_validation/app.py": _code(
        "from aws_lambda_powertools.utilities.validation import validate"
    ),
    "src/uses_event_validation/BUILD": "python_sources()\n" + _fn("no_extra", "pt"),
    "src/uses_event_validation/app.py": _code(
        "import aws_lambda_powertools.event_handler as eh",
        "app = eh.APIGatewayRestResolver(\n    enable_validation=True,\n)",
    ),
    "src/uses_masking/BUILD": "python_sources()\n" + _fn("no_extra", "pt"),
    "src/uses_masking/app.py": _code(
        "from aws_lambda_powertools.utilities.data_masking import DataMasking"
    ),
    # Control: Powertools without any extra-needing feature packages with the plain requirement.
    "src/uses_logger/BUILD": "python_sources()\n" + _fn("no_extra", "pt"),
    "src/uses_logger/app.py": _code(
        "from aws_lambda_powertools import Logger", "logger = Logger()"
    ),
}


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    runner = make_rule_runner(
        [
            QueryRule(LockInputs, [LambdaLockNeedsRequest]),
            QueryRule(BuiltPackage, [PowertoolsFunctionFieldSet]),
            QueryRule(BuiltPackage, [PowertoolsLayerFieldSet]),
            QueryRule(DigestContents, [Digest]),
        ],
        RESOLVES,
        default_resolve=RESOLVE,
        source_roots=["/src"],
    )
    runner.write_files(WORKSPACE)
    write_test_locks(runner, RESOLVES)
    return runner


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _function_zip(rule_runner: RuleRunner, spec_path: str, name: str) -> List[str]:
    """The entry names of the function ZIP that packaging produced."""
    tgt = rule_runner.get_target(Address(spec_path, target_name=name))
    built = rule_runner.request(BuiltPackage, [PowertoolsFunctionFieldSet.create(tgt)])
    contents = {fc.path: fc.content for fc in rule_runner.request(DigestContents, [built.digest])}
    (artifact,) = built.artifacts
    assert artifact.relpath and artifact.relpath.endswith(".zip"), artifact.relpath
    with zipfile.ZipFile(io.BytesIO(contents[artifact.relpath])) as zf:
        return zf.namelist()


def _layer_zip(rule_runner: RuleRunner, spec_path: str, name: str) -> List[str]:
    tgt = rule_runner.get_target(Address(spec_path, target_name=name))
    built = rule_runner.request(BuiltPackage, [PowertoolsLayerFieldSet.create(tgt)])
    contents = {fc.path: fc.content for fc in rule_runner.request(DigestContents, [built.digest])}
    (artifact,) = built.artifacts
    assert artifact.relpath is not None
    with zipfile.ZipFile(io.BytesIO(contents[artifact.relpath])) as zf:
        return zf.namelist()


def _packaging_error(rule_runner: RuleRunner, spec_path: str, name: str) -> str:
    """Packaging must fail with the plugin's own error; its message."""
    tgt = rule_runner.get_target(Address(spec_path, target_name=name))
    with pytest.raises(ExecutionError) as excinfo:
        rule_runner.request(BuiltPackage, [PowertoolsFunctionFieldSet.create(tgt)])
    wrapped: Sequence[BaseException] = excinfo.value.wrapped_exceptions
    assert len(wrapped) == 1, excinfo.value
    assert isinstance(wrapped[0], PowertoolsPackageError), f"{type(wrapped[0])}: {wrapped[0]}"
    return str(wrapped[0])


def _has_package(names: Sequence[str], package: str, root: str = "") -> bool:
    return f"{root}{package}/__init__.py" in names


def _assert_names(message: str, expected: Sequence[str]) -> None:
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"


# ---------------------------------------------------------------------------------------------
# Tracer
# ---------------------------------------------------------------------------------------------


def test_tracer_without_the_extra_fails_before_any_zip(rule_runner: RuleRunner) -> None:
    message = _packaging_error(rule_runner, "src/uses_tracer", "no_extra")
    _assert_names(
        message,
        [
            "src/uses_tracer:no_extra",
            "uses_tracer/app.py:3:",
            "Tracer (`aws_lambda_powertools.Tracer`)",
            "extra `tracer`",
            "aws-xray-sdk is not in the function ZIP, its layers or the Lambda runtime",
            "Use `aws-lambda-powertools[tracer]`",
            "requirement of the resolve this target uses to `aws-lambda-powertools[tracer]`",
        ],
    )
    # Exactly one problem: only the tracer extra is missing.
    assert message.count("\n  - ") == 1, message
    # Raised by the check, not by a failing ZIP step after it.
    assert "Could not write the ZIP" not in message


def test_tracer_with_the_extra_packages_aws_xray_sdk(rule_runner: RuleRunner) -> None:
    names = _function_zip(rule_runner, "src/uses_tracer", "tracer_extra")
    assert "uses_tracer/app.py" in names
    assert _has_package(names, "aws_lambda_powertools")
    assert _has_package(names, "aws_xray_sdk"), sorted(n for n in names if "/" not in n.rstrip("/"))


def test_tracer_extra_in_a_layer_is_enough(rule_runner: RuleRunner) -> None:
    # The premise: the function's own requirement has no extra, so its tree lacks aws-xray-sdk.
    needs = rule_runner.request(
        LockInputs,
        [LambdaLockNeedsRequest(Address("src/uses_tracer", target_name="tracer_in_layer"))],
    )
    assert needs.requirements == (POWERTOOLS,)
    layer_names = _layer_zip(rule_runner, "src/layers", "tracer")
    assert _has_package(layer_names, "aws_xray_sdk", root="python/")

    names = _function_zip(rule_runner, "src/uses_tracer", "tracer_in_layer")
    assert "uses_tracer/app.py" in names
    # The layer provides Powertools and the extra; the function carries neither.
    assert not _has_package(names, "aws_xray_sdk")
    assert not _has_package(names, "aws_lambda_powertools")


def test_suggested_requirement_keeps_the_declared_extras(rule_runner: RuleRunner) -> None:
    message = _packaging_error(rule_runner, "src/uses_tracer", "other_extra")
    _assert_names(
        message,
        [
            "uses_tracer/app.py:3:",
            "extra `tracer`",
            "to `aws-lambda-powertools[parser,tracer]`",
        ],
    )


def test_tracer_with_powertools_only_from_a_layer_without_the_extra(
    rule_runner: RuleRunner,
) -> None:
    needs = rule_runner.request(
        LockInputs,
        [LambdaLockNeedsRequest(Address("src/uses_tracer", target_name="plain_layer_only"))],
    )
    assert needs.requirements == ()
    assert not _has_package(
        _layer_zip(rule_runner, "src/layers", "plain"), "aws_xray_sdk", "python/"
    )
    message = _packaging_error(rule_runner, "src/uses_tracer", "plain_layer_only")
    _assert_names(message, ["uses_tracer/app.py:3:", "extra `tracer`"])


# ---------------------------------------------------------------------------------------------
# Parser, validation, data masking
# ---------------------------------------------------------------------------------------------


def test_parser_without_the_extra_fails(rule_runner: RuleRunner) -> None:
    message = _packaging_error(rule_runner, "src/uses_parser", "no_extra")
    _assert_names(
        message,
        [
            "src/uses_parser:no_extra",
            "uses_parser/app.py:3:",
            "Parser (`aws_lambda_powertools.utilities.parser.parse`)",
            "extra `parser`",
            "pydantic is not in",
            "`aws-lambda-powertools[parser]`",
        ],
    )


def test_parser_with_the_extra_packages_pydantic(rule_runner: RuleRunner) -> None:
    names = _function_zip(rule_runner, "src/uses_parser", "parser_extra")
    assert "uses_parser/app.py" in names
    assert _has_package(names, "pydantic")
    assert _has_package(names, "pydantic_core")


def test_validation_with_the_extra_packages_fastjsonschema(rule_runner: RuleRunner) -> None:
    names = _function_zip(rule_runner, "src/uses_validation", "validation_extra")
    assert _has_package(names, "fastjsonschema")


@pytest.mark.parametrize(
    "spec_path, expected",
    [
        pytest.param(
            "src/uses_validation",
            [
                "uses_validation/app.py:3:",
                "Validation (`aws_lambda_powertools.utilities.validation.validate`)",
                "extra `validation`",
                "fastjsonschema is not in",
                "`aws-lambda-powertools[validation]`",
            ],
            id="validation",
        ),
        pytest.param(
            "src/uses_event_validation",
            [
                # The keyword sits on line 5, inside the call that starts on line 4.
                "uses_event_validation/app.py:5:",
                "Event handler data validation (`enable_validation=True`)",
                "extra `parser`",
                "`aws-lambda-powertools[parser]`",
            ],
            id="enable_validation",
        ),
        pytest.param(
            "src/uses_masking",
            [
                "uses_masking/app.py:3:",
                "Data masking (`aws_lambda_powertools.utilities.data_masking.DataMasking`)",
                "extra `datamasking`",
                "aws-encryption-sdk, jsonpath-ng are not in",
                "`aws-lambda-powertools[datamasking]`",
            ],
            id="data_masking",
        ),
    ],
)
def test_other_features_without_their_extra_fail(
    rule_runner: RuleRunner, spec_path: str, expected: List[str]
) -> None:
    _assert_names(_packaging_error(rule_runner, spec_path, "no_extra"), [spec_path, *expected])


def test_powertools_without_extra_features_packages(rule_runner: RuleRunner) -> None:
    names = _function_zip(rule_runner, "src/uses_logger", "no_extra")
    assert "uses_logger/app.py" in names
    assert _has_package(names, "aws_lambda_powertools")
    assert not _has_package(names, "aws_xray_sdk")
